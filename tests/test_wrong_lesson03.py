"""Every classic mistake of lesson 03 fails its exercise's check with a CheckFailure,
and correct versions written differently from the reference pass (among them the
layers the mistakes are built from, so a wrong version fails for its one mistake)."""

import pytest

from checks.lesson03 import exercises as check
from course.assertions import CheckFailure
from tests.wrong.lesson03 import BatchNorm1d, DEPENDS, RIGHT, WRONG, deep_from_wrong_linear, linear_no_sqrt

CASES = [(exercise, wrong) for exercise, wrongs in WRONG.items() for wrong in wrongs]


@pytest.mark.parametrize("exercise,wrong", CASES, ids=[w.__name__ for _, w in CASES])
def test_mistake_is_caught(exercise, wrong):
    with pytest.raises(CheckFailure) as failure:
        getattr(check, exercise)(wrong, *DEPENDS.get(exercise, ()))
    message = str(failure.value)
    assert exercise in message, message
    assert len(message) < 800, "a failure message should be short enough to read"


RIGHT_CASES = [(exercise, right) for exercise, rights in RIGHT.items() for right in rights]


@pytest.mark.parametrize("exercise,right", RIGHT_CASES, ids=[r.__name__ for _, r in RIGHT_CASES])
def test_correct_version_passes(exercise, right):
    getattr(check, exercise)(right, *DEPENDS.get(exercise, ()))


# The gaps found from outside (issues 10 and 15), each with the message it must give.
MESSAGES = [
    ("Linear", "linear_bias_no_grad", "bias does not require grad"),
    ("Linear", "linear_detached_bias", "no gradient reached bias"),
    ("BatchNorm1d", "bn_gamma_no_grad", "gamma does not require grad"),
    ("BatchNorm1d", "bn_rejects_batch_of_two", "training mode on batches of 2 raised ValueError"),
    ("BatchNorm1d", "bn_eval_batch_stats_rejects_one", "evaluation mode on a batch of 1 \\(after training\\) raised"),
    ("build_deep_mlp", "deep_shared_linear", "gradient of the loss with respect to parameter"),
    ("recompute_population_stats", "pop_float64_buffers",
     "running_mean is torch.float64, the buffer was torch.float32"),
    ("recompute_population_stats", "pop_with_grad", "running_mean requires grad"),
    ("recompute_population_stats", "pop_keeps_incomplete_batch", "drop the last, incomplete batch"),
    ("recompute_population_stats", "pop_drops_last_full_batch", "every complete batch"),
    ("recompute_population_stats", "pop_gathers_outputs", "inputs"),
    ("build_deep_mlp", "deep_output_gain", "output Linear weight"),
    ("build_deep_mlp", "deep_gamma_float", "gamma of the last BatchNorm1d should be a tensor"),
    ("build_deep_mlp", "deep_c_uniform", "C: std is"),
    ("build_deep_mlp", "deep_linear_global_rng", "same seed gave different parameters"),
    ("recompute_population_stats", "pop_keeps_mode", "run the net in training mode"),
    ("recompute_population_stats", "pop_float32_sums", "accumulate in float64"),
    ("recompute_population_stats", "pop_one_short_batch", "drop the last, incomplete batch"),
    ("init_mlp", "init_wrong_order", "documented order"),
    ("init_mlp", "init_float64", "float32"),
    ("saturation_fraction", "saturation_at_threshold", "exactly at the threshold"),
    ("saturation_fraction", "saturation_tensor", "Python float"),
    ("update_to_data_ratio", "ratio_tensor", "Python float"),
]


@pytest.mark.parametrize("exercise,name,expected", MESSAGES, ids=[m[1] for m in MESSAGES])
def test_message_names_the_mistake(exercise, name, expected):
    wrong = next(w for w in WRONG[exercise] if w.__name__ == name)
    with pytest.raises(CheckFailure, match=expected):
        getattr(check, exercise)(wrong, *DEPENDS.get(exercise, ()))


def test_a_wrong_layer_is_blamed_not_build_deep_mlp():
    """Issue 10 item 15: each exercise is judged alone; build_deep_mlp calls the learner's Linear by name,
    so its check runs Linear's check first and names Linear."""
    with pytest.raises(CheckFailure, match="this uses your `Linear`, which fails its own check: fix that first"):
        check.build_deep_mlp(deep_from_wrong_linear, linear_no_sqrt, BatchNorm1d)
