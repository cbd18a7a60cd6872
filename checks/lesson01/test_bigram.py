"""Lesson 01 checks, one test per exercise: `pytest checks/lesson01 --exercise <exercise>`."""

from checks.lesson01 import exercises as check


def test_build_vocab(lesson):
    check.build_vocab(lesson.build_vocab)


def test_count_bigrams(lesson):
    check.count_bigrams(lesson.count_bigrams)


def test_bigram_probs(lesson):
    check.bigram_probs(lesson.bigram_probs)


def test_sample_name(lesson):
    check.sample_name(lesson.sample_name)


def test_nll(lesson):
    check.nll(lesson.nll)


def test_bigram_dataset(lesson):
    check.bigram_dataset(lesson.bigram_dataset)


def test_neural_nll(lesson):
    check.neural_nll(lesson.neural_nll)


def test_sgd_step(lesson):
    check.sgd_step(lesson.sgd_step, lesson.neural_nll)
