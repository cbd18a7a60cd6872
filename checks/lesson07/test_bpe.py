"""Lesson 07 checks, one test per exercise: `pytest checks/lesson07 --exercise <exercise>`."""

from checks.lesson07 import exercises as check


def test_get_stats(lesson):
    check.get_stats(lesson.get_stats)


def test_merge(lesson):
    check.merge(lesson.merge)


def test_train(lesson):
    check.train(lesson.train, lesson.get_stats, lesson.merge)


def test_encode(lesson):
    check.encode(lesson.encode, lesson.get_stats, lesson.merge)


def test_build_vocab(lesson):
    check.build_vocab(lesson.build_vocab)


def test_decode(lesson):
    check.decode(lesson.decode)


def test_train_regex(lesson):
    check.train_regex(lesson.train_regex, lesson.get_stats, lesson.merge)


def test_encode_ordinary(lesson):
    check.encode_ordinary(lesson.encode_ordinary, lesson.get_stats, lesson.merge)


def test_encode_special(lesson):
    check.encode_special(lesson.encode_special, lesson.encode_ordinary, lesson.get_stats,
                         lesson.merge)


def test_merges_from_ranks(lesson):
    check.merges_from_ranks(lesson.merges_from_ranks)


def test_train_fast(lesson):
    check.train_fast(lesson.train_fast, lesson.merge)
