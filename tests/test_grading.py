"""The seam itself: what crosses the wire, and what a probe can and cannot do to the judge."""

import collections
import math
import time

import numpy as np
import pytest
import torch

from course.grading import wire
from course.grading.handles import LearnerError, Local
from course.grading.judge import ProbeCrash, ProbeLoadError, ProbeTimeout, RemoteLesson


def roundtrip(value):
    return wire.loads(wire.dumps(value))


def test_plain_values_keep_their_types():
    value = {"f": 1.5, "i": 3, "big": 2**70, "b": True, "s": "é😉", "n": None, "inf": math.inf,
             1: (1, 2), (0, 1): [b"\x00\xff", bytearray(b"ab")], "set": {1, 2}, "np": np.float64(0.5),
             "arr": np.arange(6, dtype=np.int32).reshape(2, 3), "dtype": torch.float16,
             "size": torch.Size([2, 3])}
    back = roundtrip(value)
    assert back.keys() == value.keys()
    for k in value:
        if k == "arr":
            assert back[k].dtype == np.int32 and (back[k] == value[k]).all()
        else:
            assert back[k] == value[k] and type(back[k]) is type(value[k]), k


def test_tensors_keep_dtype_shape_values_and_requires_grad():
    for t in (torch.randn(3, 4, dtype=torch.float64), torch.tensor(2.5), torch.arange(5)[::2],
              torch.zeros(0, 3), torch.tensor([True, False]), torch.randn(2, dtype=torch.bfloat16)):
        back = roundtrip(t)
        assert back.dtype == t.dtype and back.shape == t.shape and torch.equal(back, t)
    w = torch.randn(2, requires_grad=True)
    assert roundtrip(w * 2).requires_grad and not roundtrip(w.detach()).requires_grad
    assert isinstance(roundtrip(torch.nn.Parameter(torch.ones(2))), torch.nn.Parameter)


def test_subclasses_cross_as_plain_values_and_objects_as_opaque():
    class Rigged(float):
        def __eq__(self, other):
            return True

    back = roundtrip([Rigged(1.0), collections.OrderedDict(a=1), collections.Counter("aab"),
                      torch.topk(torch.arange(4.0), 2), object()])
    assert type(back[0]) is float and back[0] != 2.0
    assert back[1] == {"a": 1} and type(back[1]) is dict and back[2] == {"a": 2, "b": 1}
    assert type(back[3]) is tuple and torch.equal(back[3][0], torch.tensor([3.0, 2.0]))
    assert isinstance(back[4], wire.Opaque) and type(back[4]).__name__ == "object" and back[4] != back[4]


@pytest.mark.parametrize("data", [b"", b"\x00" * 8, wire.dumps([1])[:-1], b"\xff" * 64,
                                  wire.dumps({"x": 1}).replace(b'"dict"', b'"evil"')])
def test_malformed_messages_are_refused(data):
    with pytest.raises(wire.WireError):
        wire.loads(data)


def test_generators_advance_as_in_a_local_call(tmp_path):
    source = tmp_path / "gen.py"
    source.write_text("import torch\n\ndef draw(g):\n    return torch.rand(3, generator=g)\n")
    lesson = RemoteLesson(source)
    lesson.set_deadline(10)
    g, ref = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    try:
        assert torch.equal(lesson.draw(g), torch.rand(3, generator=ref))
        assert torch.equal(lesson.draw(g), torch.rand(3, generator=ref))
    finally:
        lesson.close()


def _lesson(tmp_path, text, name="learner"):
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    lesson = RemoteLesson(path)
    lesson.set_deadline(5)
    return lesson


def test_a_crash_fails_one_call_and_the_next_gets_a_fresh_probe(tmp_path):
    lesson = _lesson(tmp_path, "import os\n\ndef die():\n    os._exit(0)\n\ndef ok():\n    return 7\n")
    other = _lesson(tmp_path, "def ok():\n    return 8\n", "other")
    try:
        assert other.ok() == 8
        with pytest.raises(ProbeCrash, match="exit status 0"):
            lesson.die()
        assert lesson.ok() == 7 and other.ok() == 8  # closing a dead probe leaves the others alone
    finally:
        lesson.close()
        other.close()


def test_exceptions_arrive_as_learner_errors_with_frames(tmp_path):
    lesson = _lesson(tmp_path, "def f():\n    raise KeyError('k')\n\ndef g():\n    raise SystemExit(3)\n")
    try:
        with pytest.raises(LearnerError) as e:
            lesson.f()
        assert e.value.is_a("LookupError") and e.value.frames[-1][1] == 2 and "raise KeyError" in e.value.frames[-1][3]
        with pytest.raises(LearnerError, match="SystemExit"):
            lesson.g()
    finally:
        lesson.close()


def test_a_loop_that_swallows_the_interrupt_is_killed_at_the_limit(tmp_path):
    lesson = _lesson(tmp_path, "def spin():\n    while True:\n        try:\n            while True:\n"
                               "                pass\n        except BaseException:\n            pass\n")
    lesson.set_deadline(1)
    started = time.time()
    try:
        with pytest.raises((ProbeTimeout, LearnerError)):
            lesson.spin()
    finally:
        lesson.close()
    assert time.time() - started < 8


def test_a_file_that_exits_while_loading_cannot_load(tmp_path):
    lesson = _lesson(tmp_path, "import os\n\ndef f(x=os._exit(0)):\n    return 1\n")
    try:
        with pytest.raises(ProbeLoadError, match="while loading"):
            lesson.f()
        with pytest.raises(ProbeLoadError):  # the same answer, without starting again
            lesson.f()
    finally:
        lesson.close()


def test_memory_above_the_limit_fails_that_call(tmp_path):
    path = tmp_path / "hog.py"
    path.write_text("def hog():\n    return len(bytearray(2 << 30))\n\ndef small():\n    return len(bytearray(1 << 20))\n")
    lesson = RemoteLesson(path, memory_gb=0.5)
    lesson.set_deadline(10)
    try:
        with pytest.raises(LearnerError, match="MemoryError"):
            lesson.hog()
        assert lesson.small() == 1 << 20
    finally:
        lesson.close()


def test_local_handles_make_the_same_round_trip():
    def learner(x, g):
        return {"t": x * 2, "draw": torch.rand(1, generator=g)}

    g = torch.Generator().manual_seed(1)
    out = Local(learner)(torch.ones(2), g)
    assert torch.equal(out["t"], torch.full((2,), 2.0)) and not torch.equal(g.get_state(),
                                                                          torch.Generator().manual_seed(1).get_state())
    with pytest.raises(LearnerError, match="ZeroDivisionError"):
        Local(lambda: 1 / 0)()
