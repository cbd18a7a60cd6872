"""Every classic mistake of lesson 07 fails its exercise's check with a CheckFailure; the right
versions, and other correct designs, pass the same checks."""

import pytest

from checks.lesson07 import exercises as check
from course.assertions import CheckFailure
from tests.wrong.lesson07 import HINTS, OTHER_RIGHT, RIGHT, WRONG

CASES = [(exercise, wrong) for exercise, wrongs in WRONG.items() for wrong in wrongs]
RIGHTS = [(exercise, right) for exercise, rights in OTHER_RIGHT.items() for right in rights]


@pytest.mark.parametrize("exercise", sorted(RIGHT))
def test_right_versions_pass(exercise):
    getattr(check, exercise)(RIGHT[exercise])


@pytest.mark.parametrize("exercise,right", RIGHTS, ids=[r.__name__ for _, r in RIGHTS])
def test_other_right_answers_pass(exercise, right):
    getattr(check, exercise)(right)


@pytest.mark.parametrize("exercise,wrong", CASES, ids=[w.__name__ for _, w in CASES])
def test_mistake_is_caught(exercise, wrong):
    with pytest.raises(CheckFailure) as failure:
        getattr(check, exercise)(wrong)
    message = str(failure.value)
    assert message.startswith(exercise), message
    assert len(message) < 800, "a failure message should be short enough to read"
    if wrong.__name__ in HINTS:
        assert HINTS[wrong.__name__] in message, message


def test_every_exercise_has_mistakes_and_a_right_version():
    assert set(WRONG) == set(RIGHT)
    assert all(len(w) >= 2 for w in WRONG.values())


# Issue 10, item 15: each exercise is judged alone. A later exercise that calls a wrong earlier one by
# name, as the lesson's solution does, is failed with the earlier one named; a right earlier one, or
# a wrong one in a way the later does not rely on, leaves the later exercise's own verdict.
from tests.wrong import lesson07 as W  # noqa: E402
from course.grading.handles import LearnerError  # noqa: E402

DEFAULT_USES = {"get_stats": W.get_stats_right, "merge": W.merge_right, "encode_ordinary": W.encode_ordinary_calls}
BLAME = [
    ("train", {"merge": W.merge_drops_last}, "merge"),
    ("train", {"get_stats": W.get_stats_set}, "get_stats"),
    ("encode", {"merge": W.merge_from_the_right}, "merge"),
    ("encode", {"get_stats": W.get_stats_no_overlap}, "get_stats"),
    ("train_regex", {"get_stats": W.get_stats_ignores_counts}, "get_stats"),
    ("train_regex", {"get_stats": W.get_stats_copy}, "get_stats"),
    ("encode_ordinary", {"merge": W.merge_drops_last}, "merge"),
    ("encode_special", {"encode_ordinary": W.encode_ordinary_greedy}, "encode_ordinary"),
    ("encode_special", {"encode_ordinary": W.using(W.encode_ordinary_calls, merge=W.merge_drops_last),
                        "merge": W.merge_drops_last}, "merge"),
    ("train_fast", {"merge": W.merge_overlapping}, "merge"),
]


def _call(exercise, later, definitions):
    uses = {**DEFAULT_USES, **definitions}
    return getattr(check, exercise)(later, *(uses[name] for name in W.USES[exercise]))


@pytest.mark.parametrize("exercise,definitions,culprit", BLAME, ids=[f"{e}-{c}" for e, _, c in BLAME])
def test_a_wrong_earlier_exercise_is_named(exercise, definitions, culprit):
    later = W.using(W.CALLS[exercise], **definitions)
    with pytest.raises(CheckFailure) as failure:
        _call(exercise, later, definitions)
    message = str(failure.value)
    assert message.startswith(exercise), message
    assert f"this uses your `{culprit}`, which fails its own check: fix that first" in message, message
    assert f"pytest checks/lesson07 -k {culprit}` says: {culprit}(" in message, message


@pytest.mark.parametrize("exercise", sorted(W.CALLS))
def test_the_lessons_design_passes_with_right_earlier_exercises(exercise):
    _call(exercise, W.CALLS[exercise], {})


def test_an_earlier_slip_the_later_exercise_does_not_use_is_not_its_fault():
    """train never passes `counts`: a get_stats that ignores it leaves train right."""
    later = W.using(W.train_calls, get_stats=W.get_stats_ignores_counts)
    _call("train", later, {"get_stats": W.get_stats_ignores_counts})


def test_a_wrong_later_exercise_keeps_its_own_message():
    with pytest.raises(CheckFailure) as failure:
        _call("train", W.train_dict_order, {})
    assert "dict order" in str(failure.value) and "this uses your" not in str(failure.value)


def test_a_blank_earlier_exercise_means_not_attempted():
    later = W.using(W.train_calls, get_stats=W.get_stats_blank)
    with pytest.raises(LearnerError) as error:
        _call("train", later, {"get_stats": W.get_stats_blank})
    assert error.value.is_a("NotImplementedError")
