"""The seam itself: what crosses the wire, and what a probe can and cannot do to the judge."""

import collections
import json
import math
import os
import random
import struct
import sys
import time

import numpy as np
import pytest
import torch

from course.grading import wire
from course.grading.handles import LearnerError, Local
from course.grading.channel import (OUTPUT_HEAD, OUTPUT_TAIL, AnswerTooLarge, BudgetExhausted, ProbeCrash,
                                    ProbeLoadError, ProbeTimeout)
from course.grading.judge import RemoteLesson
from course.grading.verdict import describe


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


def _message(value, blobs=()):
    header = json.dumps({"v": value, "n": [len(b) for b in blobs]}).encode()
    return struct.pack("<Q", len(header)) + header + b"".join(blobs)


@pytest.mark.parametrize("data", [
    # a generator state of the wrong size: torch raised RuntimeError through wire.loads
    _message({"_": "generator", "state": {"dtype": "uint8", "shape": [3], "blob": 0}}, [b"abc"]),
    # an empty tensor whose other dimensions overflow: RuntimeError too
    _message({"_": "tensor", "dtype": "float32", "shape": [0, 2**62, 2**62], "blob": 0}, [b""]),
    _message({"_": "npscalar", "dtype": "zz", "blob": 0}, [b"\0" * 8]),
    struct.pack("<Q", wire.MAX_HEADER + 1) + b"{}"])
def test_crafted_headers_are_refused_as_wire_errors(data):
    with pytest.raises(wire.WireError):
        wire.loads(data)


def test_random_and_mutated_messages_raise_only_wire_errors():
    rng = random.Random(19)
    samples = [wire.dumps(v) for v in ([1, 2.5, "x"], {"t": torch.arange(6.0).reshape(2, 3)}, (b"ab", {1, 2}),
                                       torch.Generator().manual_seed(0), np.arange(4), torch.Size([2, 3]))]
    tags = [b'"tensor"', b'"generator"', b'"size"', b'"ndarray"', b'"npscalar"', b'"dict"', b'"int"', b'"set"']
    for _ in range(3000):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 4)):
            kind = rng.randrange(4)
            at = rng.randrange(len(data) + 1)
            if kind == 0 and at < len(data):
                data[at] = rng.randrange(256)
            elif kind == 1:
                data[at:at] = rng.choice(tags + [b"-1", b"1e400", b"[", b"]", b'"', b"99999999999999999999"])
            elif kind == 2:
                del data[at:at + rng.randint(1, 8)]
            else:
                data = bytearray(rng.randbytes(rng.randint(0, 64)))
        try:
            wire.loads(bytes(data))
        except wire.WireError:
            pass  # anything else fails the test


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


def test_what_learner_code_prints_comes_back_bounded(tmp_path):
    lesson = _lesson(tmp_path, "import os, sys\n\ndef f():\n    print('hello')\n"
                               "    print('to stderr', file=sys.stderr)\n"
                               "    sys.__stdout__.write('and the original\\n')\n    return 1\n\n"
                               "def flood():\n    for i in range(100000):\n        print('line', i)\n"
                               "    os.write(1, b'x' * (8 << 20))\n    print('the end')\n    return 2\n")
    lesson.set_deadline(30)
    try:
        assert lesson.f() == 1
        assert lesson.take_output() == "hello\nto stderr\nand the original\n"
        assert lesson.flood() == 2
        out = lesson.take_output()
        assert out.startswith("line 0\nline 1\n") and out.endswith("xxthe end\n"), out[-200:]
        assert "more bytes not shown ...]" in out and len(out) < OUTPUT_HEAD + OUTPUT_TAIL + 100
        assert lesson.take_output() == ""
    finally:
        lesson.close()


def test_judge_file_records_what_each_exercise_printed(tmp_path):
    from course import lessons as registry
    from course.classroom.setup import solution_notebook
    from course.grading.lesson_judge import grading_calls, judge_file
    from tests.nbgrader_learners import py_text, solved

    lesson = registry.get("01")
    text = py_text(solved(lesson, "all")).replace("def build_vocab(words):\n",
                                                    "def build_vocab(words):\n    print('debug', len(words))\n", 1)
    path = tmp_path / f"{lesson.name}.py"
    path.write_text(text)
    calls = grading_calls(lesson, solution_notebook(lesson))
    calls = {ex: calls[ex] for ex in ("build_vocab", "count_bigrams")}
    printed = {}
    verdicts = judge_file(lesson, path, calls, seconds=20, printed=printed)
    assert verdicts == {"build_vocab": ("pass", ""), "count_bigrams": ("pass", "")}
    assert printed["build_vocab"].startswith("debug ") and "count_bigrams" not in printed


# Learner code that writes its own bytes on the probe's socket to the judge.
SOCKET = """import os, stat, struct, time

def _sock():
    return next(fd for fd in range(3, 64) if _is_socket(fd))

def _is_socket(fd):
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        return False

def half_sent():
    os.write(_sock(), struct.pack('<Q', 1000) + b'x')  # 1000 bytes announced, one sent, the rest never
    return 1

def huge_header():
    os.write(_sock(), struct.pack('<QQ', 8 + (200 << 20), 200 << 20))
    chunk = b'[' + b'0,' * (1 << 19)
    for _ in range(400):
        os.write(_sock(), chunk)

def huge_body():
    os.write(_sock(), struct.pack('<Q', 900 << 20))
    chunk = bytes(1 << 20)
    for _ in range(900):
        os.write(_sock(), chunk)

def announced_only():
    os.write(_sock(), struct.pack('<Q', 60 << 20))  # under the cap, and then nothing
    time.sleep(30)

def ok():
    return 7
"""


def test_a_probe_that_stops_reading_cannot_stall_the_judge(tmp_path):
    lesson = _lesson(tmp_path, "import time\nimport course.grading.probe as probe\n\n"
                               "def deaf():\n    probe.receive = lambda *args, **kwargs: time.sleep(3600)\n    return 1\n\n"
                               "def take(x):\n    return 1\n")
    lesson.set_deadline(1)
    try:
        assert lesson.deaf() == 1
        started = time.monotonic()
        with pytest.raises(ProbeTimeout):
            lesson.take(torch.zeros(8 << 20))  # 32 MB: more than the socket holds
        assert time.monotonic() - started < 6
    finally:
        lesson.close()


def _peak_rss_reset():
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _peak_rss():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) << 10 for line in fh if line.startswith("VmHWM:"))


def test_a_message_cut_short_times_out_and_the_next_call_gets_a_fresh_probe(tmp_path):
    lesson = _lesson(tmp_path, SOCKET)
    lesson.set_deadline(1)
    started = time.monotonic()
    try:
        with pytest.raises(ProbeTimeout):
            lesson.half_sent()
        assert time.monotonic() - started < 6  # 1 s limit + 2 s grace, not forever
        assert lesson.ok() == 7
    finally:
        lesson.close()


@pytest.mark.parametrize("name", ["huge_header", "huge_body"])
def test_an_answer_too_large_is_refused_without_the_judge_holding_it(tmp_path, name):
    lesson = _lesson(tmp_path, SOCKET)
    lesson.set_deadline(20)
    try:
        assert lesson.ok() == 7
        _peak_rss_reset()
        before, started = _peak_rss(), time.monotonic()
        with pytest.raises(AnswerTooLarge) as e:
            getattr(lesson, name)()
        assert _peak_rss() - before < 32 << 20 and time.monotonic() - started < 10
        status, message = describe(name, e.value)
        assert status == "error" and message.startswith(f"{name}: answer too large: your code sent back"), message
        assert lesson.ok() == 7
    finally:
        lesson.close()


def test_an_announced_size_is_not_allocated_before_it_arrives(tmp_path):
    lesson = _lesson(tmp_path, SOCKET)
    lesson.set_deadline(1)
    try:
        assert lesson.ok() == 7
        _peak_rss_reset()
        before = _peak_rss()
        with pytest.raises(ProbeTimeout):
            lesson.announced_only()
        assert _peak_rss() - before < 16 << 20
    finally:
        lesson.close()


def test_a_learners_time_budget_ends_their_remaining_checks(tmp_path):
    path = tmp_path / "slow.py"
    path.write_text("import time\n\ndef slow():\n    time.sleep(1.5)\n    return 1\n\ndef fast():\n    return 2\n")
    lesson = RemoteLesson(path, budget=3.0)
    lesson.set_deadline(10)
    started = time.monotonic()
    try:
        assert lesson.slow() == 1
        with pytest.raises(BudgetExhausted):
            lesson.slow()  # about 1.4 s of the budget left: stopped then
        with pytest.raises(BudgetExhausted) as e:
            lesson.fast()  # not run at all
        assert time.monotonic() - started < 5.5
        status, message = describe("fast", e.value)
        assert status == "timeout" and "time budget of 3 s" in message, message
    finally:
        lesson.close()


STEAL = """import gc, os, sys

def die():
    os._exit(0)

def steal(prefix):
    found = set()
    frame = sys._getframe()
    while frame is not None:
        found |= {v for v in frame.f_locals.values() if isinstance(v, str) and v.startswith(prefix) and v != prefix}
        frame = frame.f_back
    for obj in gc.get_objects():
        try:  # a dict another thread changes meanwhile: skipped, as a thief would
            values = list(obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple, set))
                          else ())
        except RuntimeError:
            continue
        found |= {v for v in values if isinstance(v, str) and v.startswith(prefix) and v != prefix}
    return sorted(found)
"""


def test_a_probe_forked_after_a_crash_holds_no_value_of_the_check(tmp_path):
    """The probe that replaces a crashed one is forked from the zygote, not from inside the check that
    is running (whose frames hold its expected values)."""
    lesson = _lesson(tmp_path, STEAL)
    expected = f"oracle-{os.getpid()}-{time.time()}"  # noqa: F841 - what a check holds when it calls
    held = {"expected": expected, "values": [expected]}
    try:
        with pytest.raises(ProbeCrash):
            lesson.die()
        assert lesson.steal("oracle-") == [] and held
        assert lesson.steal("oracle-") == []
    finally:
        lesson.close()


def test_a_zygote_that_was_killed_is_replaced_by_a_fresh_interpreter(tmp_path):
    import signal
    import types

    from course.grading.zygote import zygote

    lesson = _lesson(tmp_path, "import sys\n\ndef f(name):\n    return name in sys.modules\n")
    try:
        forked = lesson.f("pytest")
        if zygote.started == 1:  # this process's first zygote is a fork of it: everything it imported
            assert forked is True  # (earlier tests in the same process may have replaced it already)
        marker = f"judge_only_{os.getpid()}"  # a module only this process holds, whatever ran before
        sys.modules[marker] = types.ModuleType(marker)
        old = zygote.pid
        os.kill(old, signal.SIGKILL)
        lesson.close()
        assert lesson.f(marker) is False and zygote.pid != old  # a new interpreter, not a fork of this one
    finally:
        lesson.close()
