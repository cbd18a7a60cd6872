"""Lesson 02 checks, one test per exercise: `pytest checks/lesson02 --exercise <exercise>`."""

from checks.lesson02 import exercises as check


def test_build_dataset(lesson):
    check.build_dataset(lesson.build_dataset)


def test_embed(lesson):
    check.embed(lesson.embed)


def test_forward(lesson):
    check.forward(lesson.forward, lesson.embed)


def test_cross_entropy(lesson):
    check.cross_entropy(lesson.cross_entropy)


def test_sgd_step(lesson):
    check.sgd_step(lesson.sgd_step, lesson.forward, lesson.embed)


def test_sample(lesson):
    check.sample(lesson.sample, lesson.forward, lesson.embed)
