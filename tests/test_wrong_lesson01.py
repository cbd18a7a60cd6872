"""Every classic mistake of lesson 01 fails its exercise's check with a CheckFailure."""

import pytest

from checks.lesson01 import exercises as check
from course.assertions import CheckFailure
from tests.wrong import lesson01 as wrong
from tests.wrong.lesson01 import WRONG

CASES = [(exercise, wrong) for exercise, wrongs in WRONG.items() for wrong in wrongs]


@pytest.mark.parametrize("exercise,wrong", CASES, ids=[w.__name__ for _, w in CASES])
def test_mistake_is_caught(exercise, wrong):
    with pytest.raises(CheckFailure) as failure:
        getattr(check, exercise)(wrong)
    message = str(failure.value)
    assert exercise in message, message
    assert len(message) < 800, "a failure message should be short enough to read"


HINTS = {  # the message names the mistake
    "count_transposed": "transposed",
    "count_float": "expected torch.int64",
    "nll_tensor": "expected a Python float",
    "vocab_no_return": "got NoneType",
    "neural_one_hot_no_classes": "num_classes",
    "sgd_one_hot_no_classes": "num_classes",
    "count_no_accumulate": "counted once",
    "neural_data_term_detached": "only the penalty's gradient reaches W",
    "sgd_ignores_reg": "reg is not passed on",
    "sgd_reg_zero": "penalty reg * (W**2).mean() is missing",
    "sgd_zero_after": "W.grad is not reset before backward()",
    "sgd_loss_after": "the loss computed before the update",
    "sgd_replaces_w": "W did not change",
}


@pytest.mark.parametrize("name", sorted(HINTS))
def test_hint_names_the_mistake(name):
    exercise = next(e for e, wrongs in WRONG.items() if any(w.__name__ == name for w in wrongs))
    with pytest.raises(CheckFailure) as failure:
        getattr(check, exercise)(getattr(wrong, name))
    assert HINTS[name] in str(failure.value), str(failure.value)


def test_sgd_step_alone_passes_on_a_right_neural_nll():
    check.sgd_step(wrong.sgd_using(wrong.neural_right), wrong.neural_right)


@pytest.mark.parametrize("neural_nll", [wrong.neural_softmax_dim0, wrong.neural_no_reg, wrong.neural_sum])
def test_sgd_step_names_a_wrong_neural_nll(neural_nll):
    """Each exercise is judged alone: a right sgd_step on a wrong neural_nll blames neural_nll."""
    with pytest.raises(CheckFailure) as failure:
        check.sgd_step(wrong.sgd_using(neural_nll), neural_nll)
    message = str(failure.value)
    assert message.startswith("sgd_step") and "this uses your `neural_nll`, which fails its own check" in message, \
        message


def test_a_blank_sgd_step_is_not_blamed_on_neural_nll():
    """A blank exercise is "not attempted", whatever the state of the exercises it would use."""
    def sgd_step(W, xs, ys, lr, reg=0.01):
        raise NotImplementedError

    with pytest.raises(Exception) as failure:
        check.sgd_step(sgd_step, wrong.neural_sum)
    assert "fails its own check" not in str(failure.value) and "NotImplementedError" in repr(failure.value), \
        repr(failure.value)
