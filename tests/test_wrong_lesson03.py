"""Every classic mistake of lesson 03 fails its exercise's check with a CheckFailure,
and the correct layers the mistakes are built from pass (so a wrong version fails
for its one mistake)."""

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


@pytest.mark.parametrize("exercise", sorted(RIGHT))
def test_base_of_the_mistakes_passes(exercise):
    getattr(check, exercise)(RIGHT[exercise])
