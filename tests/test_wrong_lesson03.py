"""Every classic mistake of lesson 03 fails its exercise's check with a CheckFailure,
and correct versions written differently from the reference pass (among them the
layers the mistakes are built from, so a wrong version fails for its one mistake)."""

import pytest

from checks.lesson03 import exercises as check
from course.assertions import CheckFailure
from tests.wrong.lesson03 import RIGHT, WRONG

CASES = [(exercise, wrong) for exercise, wrongs in WRONG.items() for wrong in wrongs]


@pytest.mark.parametrize("exercise,wrong", CASES, ids=[w.__name__ for _, w in CASES])
def test_mistake_is_caught(exercise, wrong):
    with pytest.raises(CheckFailure) as failure:
        getattr(check, exercise)(wrong)
    message = str(failure.value)
    assert exercise in message, message
    assert len(message) < 800, "a failure message should be short enough to read"


RIGHT_CASES = [(exercise, right) for exercise, rights in RIGHT.items() for right in rights]


@pytest.mark.parametrize("exercise,right", RIGHT_CASES, ids=[r.__name__ for _, r in RIGHT_CASES])
def test_correct_version_passes(exercise, right):
    getattr(check, exercise)(right)
