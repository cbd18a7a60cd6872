"""Every classic mistake of lesson 02 fails its exercise's check with a CheckFailure."""

import pytest

from checks.lesson02 import exercises as check
from course.assertions import CheckFailure
from tests.wrong import lesson02 as wrong
from tests.wrong.lesson02 import RIGHT, WRONG

CASES = [(exercise, wrong) for exercise, wrongs in WRONG.items() for wrong in wrongs]


@pytest.mark.parametrize("exercise,wrong", CASES, ids=[w.__name__ for _, w in CASES])
def test_mistake_is_caught(exercise, wrong):
    with pytest.raises(CheckFailure) as failure:
        getattr(check, exercise)(wrong)
    message = str(failure.value)
    assert exercise in message, message
    assert len(message) < 800, "a failure message should be short enough to read"


RIGHTS = [(exercise, right) for exercise, rights in RIGHT.items() for right in rights]


@pytest.mark.parametrize("exercise,right", RIGHTS, ids=[r.__name__ for _, r in RIGHTS])
def test_right_answers_pass(exercise, right):
    getattr(check, exercise)(right)


HINTS = {  # the message names the mistake
    "dataset_aliased_context": "stores the list itself",
    "dataset_no_return": "got NoneType",
    "ce_alias": "calls log_softmax",
    "ce_alias_logsumexp": "calls logsumexp",
    "ce_max_no_keepdim": "keepdim=True",
    "ce_one_hot_without_num_classes": "num_classes",
    "embed_one_hot_without_num_classes": "num_classes",
    "sample_softmax_dim0": "dim=1",
    "forward_softmax": "no softmax at the end",
    "forward_relu": "non-linearity is tanh",
    "forward_no_tanh": "no non-linearity",
    "forward_no_b1": "b1 is missing",
    "forward_no_b2": "b2 is missing",
    "forward_tanh_on_logits": "output layer is linear",
    "forward_bias_after_tanh": "b1 goes inside the tanh",
    "forward_transposed_embedding": "wrong order",
    "forward_w1_data": "W1 gets no gradient: it is not used in the forward pass, or used detached",
    "sample_temperature": "flatter than the model's probabilities",
    "sample_sharpened": "sharper than the model's probabilities",
    "sgd_replaces_in_list": "the list holds a new tensor in place of C",
}


@pytest.mark.parametrize("name", sorted(HINTS))
def test_hint_names_the_mistake(name):
    exercise = next(e for e, wrongs in WRONG.items() if any(w.__name__ == name for w in wrongs))
    with pytest.raises(CheckFailure) as failure:
        getattr(check, exercise)(getattr(wrong, name), **({"short_run": False} if exercise == "sgd_step" else {}))
    assert HINTS[name] in str(failure.value), str(failure.value)


def test_forward_hint_points_without_solving():
    """A hint names the part that is wrong; it does not write out the whole forward pass."""
    with pytest.raises(CheckFailure) as failure:
        check.forward(wrong.forward_relu)
    assert "@ W2 + b2" not in str(failure.value), str(failure.value)


def test_judged_alone_when_the_earlier_exercises_are_right():
    forward = wrong.make_forward(wrong._emb)
    check.forward(forward, wrong._emb)
    check.sample(wrong.make_sample(forward), forward, wrong._emb)
    check.sgd_step(wrong.make_sgd_step(forward), forward, wrong._emb, short_run=False)


@pytest.mark.parametrize("embed", [wrong.embed_transposed, wrong.embed_reversed])
def test_a_wrong_embed_is_named(embed):
    """Each exercise is judged alone: right code on top of a wrong embed blames embed."""
    forward = wrong.make_forward(embed)
    for exercise, f in (("forward", forward), ("sample", wrong.make_sample(forward)),
                        ("sgd_step", wrong.make_sgd_step(forward))):
        args = (f,) if exercise == "forward" else (f, forward)
        with pytest.raises(CheckFailure) as failure:
            getattr(check, exercise)(*args, embed=embed)
        message = str(failure.value)
        assert message.startswith(exercise) and "this uses your `embed`, which fails its own check" in message, \
            message


def test_a_wrong_forward_is_named():
    forward = wrong.forward_tanh_on_logits
    with pytest.raises(CheckFailure) as failure:
        check.sample(wrong.make_sample(forward), forward, wrong._emb)
    assert "this uses your `forward`, which fails its own check" in str(failure.value), str(failure.value)
