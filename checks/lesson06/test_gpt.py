"""Lesson 06 checks, one test per exercise: `pytest checks/lesson06 --exercise <exercise>`."""

from checks.lesson06 import exercises as check


def test_causal_average(lesson):
    check.causal_average(lesson.causal_average)


def test_attention_head(lesson):
    check.attention_head(lesson.attention_head)


def test_multi_head_attention(lesson):
    check.multi_head_attention(lesson.multi_head_attention)


def test_layer_norm(lesson):
    check.layer_norm(lesson.layer_norm)


def test_transformer_block(lesson):
    check.transformer_block(lesson.transformer_block)


def test_gpt_forward(lesson):
    check.gpt_forward(lesson.gpt_forward, lesson.GPT, lesson.GPTConfig, lesson.layer_norm, lesson.multi_head_attention,
                      lesson.transformer_block)


def test_generate(lesson):
    check.generate(lesson.generate)
