"""Every classic mistake of lesson 02 fails its exercise's check with a CheckFailure."""

import pytest

from checks.lesson02 import exercises as check
from course.assertions import CheckFailure
from tests.wrong.lesson02 import WRONG

CASES = [(exercise, wrong) for exercise, wrongs in WRONG.items() for wrong in wrongs]


@pytest.mark.parametrize("exercise,wrong", CASES, ids=[w.__name__ for _, w in CASES])
def test_mistake_is_caught(exercise, wrong):
    with pytest.raises(CheckFailure) as failure:
        getattr(check, exercise)(wrong)
    message = str(failure.value)
    assert exercise in message, message
    assert len(message) < 800, "a failure message should be short enough to read"
