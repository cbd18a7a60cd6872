"""Every classic mistake of lesson 07 fails its exercise's check with a CheckFailure; the right
versions, and other correct designs, pass the same checks."""

import pytest

from checks.lesson07 import exercises as check
from course.assertions import CheckFailure
from tests.wrong.lesson07 import HINTS, OTHER_RIGHT, RIGHT, WRONG

CASES = [(exercise, wrong) for exercise, wrongs in WRONG.items() for wrong in wrongs]
RIGHTS = [(exercise, right) for exercise, rights in OTHER_RIGHT.items() for right in rights]


@pytest.mark.parametrize("exercise", sorted(RIGHT))
def test_right_versions_pass(exercise):
    getattr(check, exercise)(RIGHT[exercise])


@pytest.mark.parametrize("exercise,right", RIGHTS, ids=[r.__name__ for _, r in RIGHTS])
def test_other_right_answers_pass(exercise, right):
    getattr(check, exercise)(right)


@pytest.mark.parametrize("exercise,wrong", CASES, ids=[w.__name__ for _, w in CASES])
def test_mistake_is_caught(exercise, wrong):
    with pytest.raises(CheckFailure) as failure:
        getattr(check, exercise)(wrong)
    message = str(failure.value)
    assert message.startswith(exercise), message
    assert len(message) < 800, "a failure message should be short enough to read"
    if wrong.__name__ in HINTS:
        assert HINTS[wrong.__name__] in message, message


def test_every_exercise_has_mistakes_and_a_right_version():
    assert set(WRONG) == set(RIGHT)
    assert all(len(w) >= 2 for w in WRONG.values())


# Issue 10, item 15: each exercise is judged alone. A later exercise that calls a wrong earlier one by
# name, as the lesson's solution does, is failed with the earlier one named; a right earlier one, or
# a wrong one in a way the later does not rely on, leaves the later exercise's own verdict.
from tests.wrong import lesson07 as W  # noqa: E402
from course.grading.handles import LearnerError  # noqa: E402

DEFAULT_USES = {"get_stats": W.get_stats_right, "merge": W.merge_right, "encode_ordinary": W.encode_ordinary_calls}
BLAME = [
    ("train", {"merge": W.merge_drops_last}, "merge"),
    ("train", {"get_stats": W.get_stats_set}, "get_stats"),
    ("encode", {"merge": W.merge_from_the_right}, "merge"),
    ("encode", {"get_stats": W.get_stats_no_overlap}, "get_stats"),
    ("train_regex", {"get_stats": W.get_stats_ignores_counts}, "get_stats"),
    ("train_regex", {"get_stats": W.get_stats_copy}, "get_stats"),
    ("encode_ordinary", {"merge": W.merge_drops_last}, "merge"),
    ("encode_special", {"encode_ordinary": W.encode_ordinary_greedy}, "encode_ordinary"),
    ("encode_special", {"encode_ordinary": W.using(W.encode_ordinary_calls, merge=W.merge_drops_last),
                        "merge": W.merge_drops_last}, "merge"),
    ("train_fast", {"merge": W.merge_overlapping}, "merge"),
]


def _call(exercise, later, definitions):
    uses = {**DEFAULT_USES, **definitions}
    return getattr(check, exercise)(later, *(uses[name] for name in W.USES[exercise]))


@pytest.mark.parametrize("exercise,definitions,culprit", BLAME, ids=[f"{e}-{c}" for e, _, c in BLAME])
def test_a_wrong_earlier_exercise_is_named(exercise, definitions, culprit):
    later = W.using(W.CALLS[exercise], **definitions)
    with pytest.raises(CheckFailure) as failure:
        _call(exercise, later, definitions)
    message = str(failure.value)
    assert message.startswith(exercise), message
    assert f"this uses your `{culprit}`, which fails its own check: fix that first" in message, message
    assert f"pytest checks/lesson07 --exercise {culprit}` says: {culprit}(" in message, message


@pytest.mark.parametrize("exercise", sorted(W.CALLS))
def test_the_lessons_design_passes_with_right_earlier_exercises(exercise):
    _call(exercise, W.CALLS[exercise], {})


def test_an_earlier_slip_the_later_exercise_does_not_use_is_not_its_fault():
    """train never passes `counts`: a get_stats that ignores it leaves train right."""
    later = W.using(W.train_calls, get_stats=W.get_stats_ignores_counts)
    _call("train", later, {"get_stats": W.get_stats_ignores_counts})


def test_a_wrong_later_exercise_keeps_its_own_message():
    with pytest.raises(CheckFailure) as failure:
        _call("train", W.train_dict_order, {})
    assert "dict order" in str(failure.value) and "this uses your" not in str(failure.value)


def test_a_blank_earlier_exercise_means_not_attempted():
    later = W.using(W.train_calls, get_stats=W.get_stats_blank)
    with pytest.raises(LearnerError) as error:
        _call("train", later, {"get_stats": W.get_stats_blank})
    assert error.value.is_a("NotImplementedError")


# Issue 21: a get_stats that also counts the pair (last, first) makes an encoder loop forever: it picks that
# pair, merge finds nothing, nothing changes. The timeout names get_stats, as train_regex's wrong merges do.
# An encoder whose own loop never ends, with a right get_stats, is reported as stopped in the encoder (where
# it loops), not in the get_stats it happened to be calling when time ran out. Timeouts exist only where
# the learner's code runs in a probe, so these run through one, with a short time limit.
import inspect  # noqa: E402

from course.grading.judge import RemoteLesson  # noqa: E402


def encode_never_stops(text, merges):
    """Forgets to stop when no pair is a merge: loops forever once none is left."""
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        stats = get_stats(ids)  # noqa: F821 (the lesson file's)
        pair = min(stats, key=lambda p: merges.get(p, float("inf")))
        if pair in merges:
            ids = merge(ids, pair, merges[pair])  # noqa: F821
    return ids


def get_stats_slow(ids, counts=None):
    """Right, and slow: a timeout almost always interrupts it, not the loop that calls it."""
    time.sleep(0.002)  # noqa: F821 (the lesson file imports time)
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def _lesson_file(tmp_path, **definitions):
    """A lesson file defining each exercise name as the source of the function given (default: the
    lesson's design, W.CALLS, on W.get_stats_right and W.merge_right)."""
    chosen = {"get_stats": W.get_stats_right, "merge": W.merge_right, **{n: W.CALLS[n] for n in
              ("encode", "encode_ordinary", "encode_special")}, **definitions}
    parts = ["import time\n\nimport regex\n", inspect.getsource(W._sets)]
    for name, fn in chosen.items():
        parts.append(inspect.getsource(fn).replace(f"def {fn.__name__}(", f"def {name}(", 1))
    path = tmp_path / "bpe.py"
    path.write_text("\n\n".join(parts), encoding="utf-8")
    return path


def _judge(path, exercise, seconds=2):
    lesson = RemoteLesson(path)
    lesson.set_deadline(seconds)
    try:
        getattr(check, exercise)(getattr(lesson, exercise), *(getattr(lesson, n) for n in W.USES[exercise]))
    finally:
        lesson.close()


@pytest.mark.parametrize("exercise", ["encode", "encode_ordinary", "encode_special"])
def test_an_endless_loop_caused_by_get_stats_names_get_stats(tmp_path, exercise):
    with pytest.raises(CheckFailure) as failure:
        _judge(_lesson_file(tmp_path, get_stats=W.get_stats_wrap_around), exercise)
    message = str(failure.value)
    assert message.startswith(exercise), message
    assert "did not finish in time" in message, message
    assert "it uses your `get_stats`, which fails its own check: fix that first" in message, message
    assert "`pytest checks/lesson07 --exercise get_stats` says: get_stats(" in message, message


def test_an_encoders_own_endless_loop_is_reported_where_it_loops(tmp_path):
    with pytest.raises(LearnerError) as error:
        _judge(_lesson_file(tmp_path, encode=encode_never_stops, get_stats=get_stats_slow), "encode")
    assert error.value.type_name == "CheckTimeout"
    assert error.value.frames and error.value.frames[-1][2] == "encode", error.value.frames


def test_the_lessons_design_passes_through_a_probe(tmp_path):
    for exercise in ("encode", "encode_ordinary", "encode_special"):
        _judge(_lesson_file(tmp_path), exercise, seconds=60)


def train_regex_slow(text, vocab_size, pattern):
    """train_regex's way: a count of every chunk's pairs at each merge."""
    chunks = [list(c.encode("utf-8")) for c in regex.findall(pattern, text)]  # noqa: F821
    merges = {}
    for idx in range(256, vocab_size):
        counts = {}
        for ids in chunks:
            for pair in zip(ids, ids[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        pair = max(counts, key=lambda p: (counts[p], p))
        merges[pair] = idx
        chunks = [merge(ids, pair, idx) for ids in chunks]  # noqa: F821
    return merges


def train_fast_stops_its_clock(text, vocab_size, pattern):
    """The slow trainer, with the clocks of its process stopped: the judge reads the probe's CPU time from /proc."""
    time.process_time = time.perf_counter = time.monotonic = lambda: 0.0  # noqa: F821
    return train_regex(text, vocab_size, pattern)  # noqa: F821


def test_train_fast_cannot_fake_its_speed(tmp_path):
    path = _lesson_file(tmp_path, train_regex=train_regex_slow, train_fast=train_fast_stops_its_clock)
    with pytest.raises(CheckFailure) as failure:
        _judge(path, "train_fast", seconds=60)
    assert "that train_regex's way costs here at least" in str(failure.value), failure.value
