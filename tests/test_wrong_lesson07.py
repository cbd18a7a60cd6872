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
