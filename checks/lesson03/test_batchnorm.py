"""Lesson 03 checks, one test per exercise: `pytest checks/lesson03 --exercise <exercise>`."""

from checks.lesson03 import exercises as check


def test_init_mlp(lesson):
    check.init_mlp(lesson.init_mlp)


def test_BatchNorm1d(lesson):
    check.BatchNorm1d(lesson.BatchNorm1d)


def test_Linear(lesson):
    check.Linear(lesson.Linear)


def test_build_deep_mlp(lesson):
    check.build_deep_mlp(lesson.build_deep_mlp, lesson.Linear, lesson.BatchNorm1d)


def test_saturation_fraction(lesson):
    check.saturation_fraction(lesson.saturation_fraction)


def test_update_to_data_ratio(lesson):
    check.update_to_data_ratio(lesson.update_to_data_ratio)


def test_recompute_population_stats(lesson):
    check.recompute_population_stats(lesson.recompute_population_stats)
