"""Every classic mistake of lesson 05 fails its exercise's check with a CheckFailure.

The right versions in tests/wrong/lesson05.py pass the same checks, and so do
correct versions written differently (one-hot, unfold, loops, float64), so
each mistake is caught for what it changes, not for something else.
"""

import pytest

from checks.lesson05 import exercises as check
from course.assertions import CheckFailure
from tests.wrong.lesson05 import CLASSES, OTHER_RIGHT, RIGHT, WRONG

CASES = [(exercise, wrong) for exercise, wrongs in WRONG.items() for wrong in wrongs]
RIGHTS = [(exercise, right) for exercise, rights in OTHER_RIGHT.items() for right in rights]


def _run(exercise, f, seed=0):
    if exercise == "hierarchy_to_conv":
        return check.hierarchy_to_conv(f, *CLASSES, seed=seed)
    return getattr(check, exercise)(f, seed=seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("exercise", sorted(RIGHT))
def test_right_versions_pass(exercise, seed):
    _run(exercise, RIGHT[exercise], seed)


@pytest.mark.parametrize("exercise,right", RIGHTS, ids=[r.__name__ for _, r in RIGHTS])
def test_other_right_answers_pass(exercise, right):
    _run(exercise, right)


@pytest.mark.parametrize("exercise,wrong", CASES, ids=[w.__name__ for _, w in CASES])
def test_mistake_is_caught(exercise, wrong):
    with pytest.raises(CheckFailure) as failure:
        _run(exercise, wrong)
    message = str(failure.value)
    assert message.startswith(exercise), message
    assert len(message) < 800, "a failure message should be short enough to read"


HINTS = {  # the hint names the mistake
    "bn_reduces_dim0_only": "dims (0, 1)",
    "bn_updates_running_stats_in_eval": "only when self.training",
    "bn_normalises_with_unbiased_var": "biased variance",
    "bn_momentum_reversed": "weight momentum",
    "bn_stores_biased_var": "unbiased",
    "conv_symmetric_padding": "symmetric",
    "conv_dilation_on_padding_only": "padding only",
    "conv_dilation_ignored": "dilation is ignored",
    "conv_shifted_by_one": "shifted by one",
    "conv_reversed_taps": "reverse order",
    "conv_pads_when_told_not_to": "pad=False",
    "flatten_strided_groups": "neighbours",
    "flatten_interleaved_channels": "interleaved",
    "flatten_squeezes_batch_of_one": ".squeeze(1)",
    "flatten_never_squeezes": "drop the time dimension",
    "sequential_eval_misses_nested": "nested Sequential",
    "embedding_uniform_init": "torch.randn",
    "embedding_ignores_generator": "generator",
    "build_hierarchy_with_bias": "bias=False",
    "build_hierarchy_output_not_scaled": "0.1",
    "receptive_field_no_plus_one": "add 1",
    "receptive_field_k_times_d": "(k - 1) * d",
    "receptive_field_ignores_kernel_sizes": "the kernel sizes are ignored",
    "flatten_factor_not_named_n": "has no attribute n",
    "to_conv_no_dilation": "dilation",
    "to_conv_wrong_weight_view": "view(n, C_in, C_out)",
    "to_conv_shares_tensors": "share nothing",
    "to_conv_fresh_running_stats": "running",
    "to_conv_clone_without_detach": "not a leaf",
    "to_conv_default_bn_eps_momentum": "same eps and momentum",
    "to_conv_adds_a_bias": "has no bias",
    "to_conv_convolutions_with_bias": "bias=False, like the Linear it replaces",
    "embedding_one_hot_without_num_classes": "num_classes",
    "embedding_view_of_indices": "unfold",
    "embedding_weight_not_trainable": "create the tensor, then call .requires_grad_()",
    "flatten_view_of_noncontiguous": "reshape",
    "bn_views_noncontiguous_input": "not contiguous",
    "conv_views_noncontiguous_input": "not contiguous",
    "conv_right_padding": "zeros are on the right",
    "build_hierarchy_three_levels": "block_size",
    "build_hierarchy_bn_updates_in_eval": "does BatchNorm1d pass its check",
    "to_conv_dilation_includes_own_factor": "product of the flatten factors before this level",
    "to_conv_copies_not_trainable": "requires_grad_",
    "to_conv_dilation_power_of_two": "product of the flatten factors before this level",
}


@pytest.mark.parametrize("name", sorted(HINTS))
def test_hint_names_the_mistake(name):
    exercise, wrong = next((e, w) for e, w in CASES if w.__name__ == name)
    with pytest.raises(CheckFailure) as failure:
        _run(exercise, wrong)
    assert HINTS[name] in str(failure.value), str(failure.value)
