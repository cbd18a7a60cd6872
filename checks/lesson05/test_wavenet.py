"""Lesson 05 checks, one test per exercise: `pytest checks/lesson05 --exercise <exercise>`."""

from checks.lesson05 import exercises as check


def test_Embedding(lesson):
    check.Embedding(lesson.Embedding)


def test_FlattenConsecutive(lesson):
    check.FlattenConsecutive(lesson.FlattenConsecutive)


def test_BatchNorm1d(lesson):
    check.BatchNorm1d(lesson.BatchNorm1d)


def test_Sequential(lesson):
    check.Sequential(lesson.Sequential)


def test_build_hierarchy(lesson):
    check.build_hierarchy(lesson.build_hierarchy)


def test_CausalConv1d(lesson):
    check.CausalConv1d(lesson.CausalConv1d)


def test_receptive_field(lesson):
    check.receptive_field(lesson.receptive_field)


def test_hierarchy_to_conv(lesson):
    check.hierarchy_to_conv(lesson.hierarchy_to_conv, lesson.Sequential, lesson.Embedding, lesson.FlattenConsecutive,
                            lesson.Linear, lesson.BatchNorm1d, lesson.Tanh)
