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


# The gaps found from outside (issues 10 and 15), each with the message it must give.
def _message(exercise, fn, *uses):
    with pytest.raises(CheckFailure) as failure:
        getattr(check, exercise)(fn, *uses)
    return str(failure.value)


def test_aliasing_slip_gets_its_own_hint():
    from tests.wrong.lesson04 import softmax_aliased
    message = _message("backward_softmax", softmax_aliased)
    assert "dnorm_logits holds the values of dlogits" in message, message
    assert "d exp(x)/dx" not in message, message


def test_fix_it_first_only_for_gradients_computed_from_it():
    from tests.wrong.lesson04 import affine_sums_no_keepdim
    message = _message("backward_bn_affine", affine_sums_no_keepdim)  # dbngain and dbnbias: independent
    assert "first wrong: dbngain" in message and "fix it first" not in message, message
    message = _message("backward_bn_stats", WRONG["backward_bn_stats"][0])  # dbndiff2 wrong, then dbndiff, ...
    assert "fix it first: dbndiff, dhprebn are computed from it" in message, message


@pytest.mark.parametrize("exercise,name", [("backward_loss", "loss_one_hot_no_classes"),
                                           ("backward_softmax", "softmax_one_hot_no_classes"),
                                           ("backward_embedding", "embedding_one_hot_no_classes")])
def test_one_hot_without_num_classes_is_named(exercise, name):
    """A batch that lacks the last token: F.one_hot without num_classes makes vectors that are too short."""
    message = _message(exercise, next(w for w in WRONG[exercise] if w.__name__ == name))
    assert message.startswith(exercise) and "never an input, never a target" in message, message
    assert "num_classes" in message, message


def test_large_logits_need_the_max_subtracted():
    from tests.wrong.lesson04 import ce_no_max
    message = _message("cross_entropy_backward", ce_no_max)
    assert "subtract each row's max" in message, message


def test_loss_must_be_a_python_float():
    from tests.wrong.lesson04 import step_tensor_loss
    assert "expected the loss as a Python float, got Tensor" in _message("train_step", step_tensor_loss)


def test_a_wrong_step_is_blamed_not_backward_all_or_train_step():
    """Each exercise is judged alone: backward_all and train_step call the learner's step functions by name,
    so their checks run those checks first and name the wrong one."""
    module = solution_with("backward_bn_stats", WRONG["backward_bn_stats"][0])
    message = _message("backward_all", module.backward_all, *(getattr(module, n) for n in check.STEPS))
    assert "this uses your `backward_bn_stats`, which fails its own check: fix that first" in message, message
    module = solution_with("batchnorm_backward", WRONG["batchnorm_backward"][0])
    message = _message("train_step", module.train_step, *(getattr(module, n) for n in check.TRAIN_STEP_USES))
    assert "this uses your `batchnorm_backward`, which fails its own check: fix that first" in message, message
