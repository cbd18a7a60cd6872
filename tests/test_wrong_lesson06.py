"""Every classic mistake of lesson 06 fails its exercise's check with a CheckFailure.

The right versions in tests/wrong/lesson06.py pass the same checks, so each
mistake is caught for what it changes, not for something else.
"""

import pytest

from checks.lesson06 import exercises as check
from course.assertions import CheckFailure
from tests.wrong import lesson06 as wrong
from tests.wrong.lesson06 import OTHER_RIGHT, RIGHT, WRONG, WRONG_MODELS, Config, gpt_right

CASES = [(exercise, wrong) for exercise, wrongs in WRONG.items() for wrong in wrongs]


def _run(exercise, f):
    if exercise == "gpt_forward":
        return check.gpt_forward(f, gpt_right, Config)
    return getattr(check, exercise)(f)


@pytest.mark.parametrize("exercise", sorted(RIGHT))
def test_right_versions_pass(exercise):
    _run(exercise, RIGHT[exercise])


RIGHTS = [(exercise, right) for exercise, rights in OTHER_RIGHT.items() for right in rights]


@pytest.mark.parametrize("exercise,right", RIGHTS, ids=[r.__name__ for _, r in RIGHTS])
def test_other_right_answers_pass(exercise, right):
    """Loops, float64, other mask or top-k constructions: correct, so they must pass."""
    _run(exercise, right)


@pytest.mark.parametrize("exercise,wrong", CASES, ids=[w.__name__ for _, w in CASES])
def test_mistake_is_caught(exercise, wrong):
    with pytest.raises(CheckFailure) as failure:
        _run(exercise, wrong)
    message = str(failure.value)
    assert message.startswith(exercise), message
    assert len(message) < 800, "a failure message should be short enough to read"


@pytest.mark.parametrize("name", sorted(WRONG_MODELS))
def test_wrong_model_is_caught(name):
    with pytest.raises(CheckFailure) as failure:
        check.gpt_forward(RIGHT["gpt_forward"], WRONG_MODELS[name], Config)
    assert "GPT(config)" in str(failure.value)


HINTS = {  # the hint names the mistake
    "head_scaled_by_n_embd": "embedding size",
    "head_mask_sees_next": "see the next one",
    "head_mask_hides_self": "hides each position from itself",
    "head_softmax_over_queries": "query dimension",
    "mha_wrong_head_split": "view(B, T, n_head, d)",
    "ln_unbiased_variance": "unbiased",
    "block_no_attention_residual": "attention branch has no residual",
    "block_no_mlp_residual": "feed-forward branch has no residual",
    "block_post_norm": "post-norm",
    "forward_no_positions": "position embeddings are missing",
    "average_whole_sequence": "future must be masked",
    "head_detached_output": "not connected to its inputs through autograd",
    "head_detached_scores": "no gradient reached w_query",
    "mha_detached_values": "gradient with respect to x",
    "ln_no_keepdim": "keepdim=True",
    "block_detached_attention_branch": "block.attn.w,",
    "block_detached_mlp_branch": "block.mlp.0.weight",
    "block_detached_residual": "gradient with respect to x",
    "forward_no_dropout": "embedding dropout is missing",
    "forward_dropout_on_tokens_only": "to the sum of the embeddings",
    "forward_hidden_with_targets": "hidden state",
    "forward_loss_first_with_targets": "(logits, loss) in that order",
    "forward_detached_embeddings": "no gradient reached model.tok_emb.weight",
    "generate_top_k_unclamped": "min(top_k, V)",
}


@pytest.mark.parametrize("name", sorted(HINTS))
def test_hint_names_the_mistake(name):
    exercise = next(e for e, wrongs in WRONG.items() if any(w.__name__ == name for w in wrongs))
    wrong = next(w for w in WRONG[exercise] if w.__name__ == name)
    with pytest.raises(CheckFailure) as failure:
        _run(exercise, wrong)
    assert HINTS[name] in str(failure.value), str(failure.value)


def _gpt_on(layer_norm=wrong.ln_right, attention=wrong.mha_right):
    return dict(layer_norm=layer_norm, multi_head_attention=attention, transformer_block=wrong.block_right)


def test_gpt_judged_alone_when_its_parts_are_right():
    check.gpt_forward(RIGHT["gpt_forward"], gpt_right, Config, **_gpt_on())


@pytest.mark.parametrize("layer_norm", [wrong.ln_over_all, wrong.ln_over_batch])
def test_gpt_names_a_wrong_layer_norm(layer_norm):
    """Each exercise is judged alone: a GPT that fails because of its layer_norm blames layer_norm."""
    model = wrong.make_gpt(layer_norm=layer_norm)
    with pytest.raises(CheckFailure) as failure:
        check.gpt_forward(RIGHT["gpt_forward"], model, Config, **_gpt_on(layer_norm=layer_norm))
    assert "this uses your `layer_norm`, which fails its own check" in str(failure.value), str(failure.value)


def test_gpt_names_a_wrong_attention():
    model = wrong.make_gpt(attention=wrong.mha_no_mask)
    with pytest.raises(CheckFailure) as failure:
        check.gpt_forward(RIGHT["gpt_forward"], model, Config, **_gpt_on(attention=wrong.mha_no_mask))
    assert "this uses your `multi_head_attention`, which fails its own check" in str(failure.value), \
        str(failure.value)


def test_gpt_with_right_parts_keeps_its_own_message():
    """A GPT whose parts pass their checks is blamed for itself (here: PyTorch's default init)."""
    with pytest.raises(CheckFailure) as failure:
        check.gpt_forward(RIGHT["gpt_forward"], WRONG_MODELS["default_init"], Config, **_gpt_on())
    assert "a fresh model's loss" in str(failure.value), str(failure.value)
