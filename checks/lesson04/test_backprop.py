"""Lesson 04 checks, one test per exercise: `pytest checks/lesson04 --exercise <exercise>`."""

from checks.lesson04 import exercises as check


def test_backward_loss(lesson):
    check.backward_loss(lesson.backward_loss)


def test_backward_softmax(lesson):
    check.backward_softmax(lesson.backward_softmax)


def test_backward_output_layer(lesson):
    check.backward_output_layer(lesson.backward_output_layer)


def test_backward_bn_affine(lesson):
    check.backward_bn_affine(lesson.backward_bn_affine)


def test_backward_bn_stats(lesson):
    check.backward_bn_stats(lesson.backward_bn_stats)


def test_backward_first_layer(lesson):
    check.backward_first_layer(lesson.backward_first_layer)


def test_backward_embedding(lesson):
    check.backward_embedding(lesson.backward_embedding)


def test_backward_all(lesson):
    check.backward_all(lesson.backward_all, *(getattr(lesson, name) for name in check.STEPS))


def test_cross_entropy_backward(lesson):
    check.cross_entropy_backward(lesson.cross_entropy_backward)


def test_batchnorm_backward(lesson):
    check.batchnorm_backward(lesson.batchnorm_backward)


def test_train_step(lesson):
    check.train_step(lesson.train_step, *(getattr(lesson, name) for name in check.TRAIN_STEP_USES))
