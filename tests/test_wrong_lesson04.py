"""Lesson 04's checks discriminate: every classic mistake fails the check of its
exercise (and at most the checks of the exercises that call it), every correct
alternative passes on several seeds, and so does the reference solution."""

import pytest

from checks.lesson04 import exercises as check
from course import lessons as registry
from course.assertions import CheckFailure
from course.grading.handles import LearnerError
from course.loader import load
from tests.wrong.lesson04 import RAISES, RIGHT, WRONG

EXERCISES = ["backward_loss", "backward_softmax", "backward_output_layer", "backward_bn_affine", "backward_bn_stats",
             "backward_first_layer", "backward_embedding", "backward_all", "cross_entropy_backward",
             "batchnorm_backward", "train_step"]
CALLERS = {"backward_all", "train_step"}  # the solution's backward_all and train_step call the other exercises

CASES = [(exercise, wrong) for exercise, wrongs in WRONG.items() for wrong in wrongs]
GOOD = [(exercise, right) for exercise, rights in RIGHT.items() for right in rights]
SEEDS = [0, 1, 2]


def solution_with(exercise, fn):
    """The reference solution's definitions, with one exercise swapped for `fn`."""
    module = load(registry.get("04").script(registry.solutions_dir()), f"lesson04_with_{fn.__name__}")
    setattr(module, exercise, fn)
    return module


def failing_checks(module):
    failed = {}
    for name in EXERCISES:
        try:
            getattr(check, name)(getattr(module, name))
        except Exception as e:  # a CheckFailure, or an error raised inside the learner's code
            failed[name] = e
    return failed


@pytest.mark.parametrize("exercise,wrong", CASES, ids=[w.__name__ for _, w in CASES])
def test_mistake_is_caught_by_its_check_only(exercise, wrong):
    if wrong in RAISES:
        with pytest.raises(LearnerError) as failure:
            getattr(check, exercise)(wrong)
        assert failure.value.is_a("RuntimeError"), failure.value
        assert failure.value.frames[-1][2] == wrong.__qualname__, "the error must come from the learner's code"
    else:
        with pytest.raises(CheckFailure) as failure:
            getattr(check, exercise)(wrong)
        message = str(failure.value)
        assert exercise in message, message
        assert len(message) < 2000, "a failure message should be short enough to read"
    failed = failing_checks(solution_with(exercise, wrong))
    assert exercise in failed
    others = set(failed) - {exercise}
    assert others <= CALLERS, f"{wrong.__name__} also fails {sorted(others)}"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("exercise,right", GOOD, ids=[r.__name__ for _, r in GOOD])
def test_correct_alternative_passes(exercise, right, seed):
    getattr(check, exercise)(right, seed=seed)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_solution_passes_every_check(seed):
    module = load(registry.get("04").script(registry.solutions_dir()), "lesson04_solution")
    for name in EXERCISES:
        getattr(check, name)(getattr(module, name), seed=seed)


def test_wrong_answers_cover_every_exercise():
    assert set(WRONG) == set(EXERCISES)


def test_first_wrong_gradient_is_named():
    with pytest.raises(CheckFailure) as failure:
        check.backward_all(solution_with("backward_bn_stats", WRONG["backward_bn_stats"][0]).backward_all)
    message = str(failure.value)
    assert "first wrong: dbndiff2" in message, message
    assert all(f"d{name} " in message for name in check.GRADIENTS), "the report lists all 26 gradients"


def test_shape_is_compared_before_values():
    with pytest.raises(CheckFailure, match=r"db2 +WRONG +shape \(1, 27\), expected \(27,\)"):
        check.backward_output_layer(WRONG["backward_output_layer"][2])
