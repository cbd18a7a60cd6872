"""The pytest front end of the course's checks.

    pytest checks/lesson01                        grade lessons/01_bigram
    pytest checks/lesson01 -k count_bigrams       one exercise
    pytest checks --lessons path/to/copy          grade another folder laid out like
                                                  lessons/ (solutions/, a student's copy);
                                                  $COURSE_LESSONS does the same

Each check module gets the learner's definitions through the `lesson` fixture
(the seam: `lesson.count_bigrams` is the learner's function, loaded without
running the lesson's data or training cells). Failures are reported as one
short message: not attempted, wrong (what differs), an error in the learner's
code (their lines only), a syntax error, or a timeout. A table per lesson
closes the run.
"""

import os
import signal
import traceback
from pathlib import Path

import pytest
import torch

from course import lessons as registry
from course.assertions import CheckFailure
from course.loader import LoadError, load, pick_source

# The checks use tiny tensors: with 2 threads on a busy 2-core machine each op waits
# for the other thread (BatchNorm checks measured 30x slower). One thread for all.
torch.set_num_threads(1)

try:  # property-based checks must not fail slow-but-correct code for its speed
    from hypothesis import settings

    settings.register_profile("course", deadline=None, max_examples=25, derandomize=True)
    settings.load_profile("course")
except ImportError:  # pragma: no cover
    pass


def pytest_addoption(parser):
    group = parser.getgroup("course")
    group.addoption("--lessons", default=None, metavar="DIR",
                    help="folder laid out like lessons/ to grade (default: $COURSE_LESSONS or lessons/)")
    group.addoption("--check-timeout", type=float, default=30.0, metavar="SECONDS",
                    help="time limit of one check, so an infinite loop fails alone (default 30)")


def _lessons_root(config):
    option = config.getoption("--lessons")
    return Path(option).resolve() if option else registry.lessons_dir()


def _display(path):
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


class Missing(LoadError):
    pass


class CheckTimeout(Exception):
    pass


class Learner:
    """The learner's definitions for one lesson; a missing name fails clearly."""

    def __init__(self, lesson, path=None, module=None, error=None):
        self._lesson, self._path, self._module, self._error = lesson, path, module, error

    def __getattr__(self, name):
        if self._error is not None:
            raise self._error
        try:
            return getattr(self._module, name)
        except AttributeError:
            raise Missing(f"{name} is not defined in {_display(self._path)}: was it renamed or deleted?") from None


_loaded = {}


@pytest.fixture
def lesson(request):
    """The learner's lesson named by the check folder (checks/lesson01 -> 01_bigram)."""
    number = Path(str(request.node.fspath)).parent.name.removeprefix("lesson")
    key = (number, str(_lessons_root(request.config)))
    if key not in _loaded:
        info = registry.get(number)
        try:
            path = pick_source(info, key[1])
            _loaded[key] = Learner(info, path, load(path, f"learner_{info.folder}"))
        except LoadError as e:
            _loaded[key] = Learner(info, error=e)
    request.node.learner = _loaded[key]
    return _loaded[key]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    seconds = item.config.getoption("--check-timeout")
    if not hasattr(signal, "SIGALRM") or not seconds:  # Windows: no per-check time limit
        yield
        return

    def stop(signum, frame):
        raise CheckTimeout(f"did not finish within {seconds:g} s: an infinite loop? "
                           f"(a `while` whose condition never changes, a sampler that never samples '.')")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _learner_frames(tb, path):
    """Frames of the traceback in the learner's file (or its notebook cells), each
    named by its qualified name (`BatchNorm1d.__init__`, not `__init__`)."""
    frames = []
    for frame, lineno in traceback.walk_tb(tb):
        if path and frame.f_code.co_filename.startswith(str(path)):
            summary = traceback.FrameSummary(frame.f_code.co_filename, lineno, frame.f_code.co_qualname)
            frames.append(summary)
    return frames


def _part_of(name, exercise):
    return name == exercise or name.startswith(exercise + ".")


def _where(frame):
    return f"{_display(frame.filename.split(' (cell')[0])}" + (
        f" (cell{frame.filename.split(' (cell')[1]}" if " (cell" in frame.filename else ""
    ) + f":{frame.lineno}"


def describe(exercise, excinfo, learner):
    """One short message for a failed check, or None to keep pytest's report."""
    e, tb = excinfo.value, excinfo.tb
    path = getattr(learner, "_path", None)
    if isinstance(e, NotImplementedError):
        frames = _learner_frames(tb, path)
        if not frames:
            return None
        f = frames[-1]
        if _part_of(f.name, exercise):
            return ("not attempted", f"{exercise}: not attempted yet ({_where(f)})")
        return ("not attempted", f"{exercise}: not attempted yet: it needs {f.name}, still blank at {_where(f)}")
    if isinstance(e, CheckFailure):
        return ("wrong", str(e))
    if isinstance(e, LoadError):
        return ("cannot load", str(e))
    if isinstance(e, CheckTimeout):
        frames = _learner_frames(tb, path)
        where = f" (stopped in {frames[-1].name} at {_where(frames[-1])})" if frames else ""
        return ("timeout", f"{exercise}: {e}{where}")
    frames = _learner_frames(tb, path)
    if not frames:
        return None  # not from the learner's code: a harness problem, keep the full report
    lines = [f"{exercise}: your code raised {type(e).__name__}: {e}"]
    for f in frames[-3:]:
        lines.append(f"  {_where(f)} in {f.name}\n      {f.line}")
    return ("error", "\n".join(lines))


_outcomes = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    learner = getattr(item, "learner", None)
    if learner is None or report.when != "call":
        return
    exercise = item.name.removeprefix("test_").split("[")[0]
    status = "pass" if report.passed else "skipped" if report.skipped else "wrong"
    if report.failed and call.excinfo is not None:
        described = describe(exercise, call.excinfo, learner)
        if described:
            status, report.longrepr = described
    table = _outcomes.setdefault(learner._lesson, {})
    table[exercise] = status if table.get(exercise, "pass") == "pass" else table[exercise]
    source = getattr(learner, "_path", None)
    _outcomes.setdefault("_paths", {})[learner._lesson] = _display(source) if source else "(not loaded)"


def pytest_terminal_summary(terminalreporter):
    paths = _outcomes.get("_paths", {})
    for lesson, table in _outcomes.items():
        if lesson == "_paths":
            continue
        tr = terminalreporter
        tr.section(f"lesson {lesson.number} {lesson.name}: {paths.get(lesson)}", sep="-")
        for exercise, status in table.items():
            tr.write_line(f"  {exercise:<28} {status}")
        done = sum(s == "pass" for s in table.values())
        tr.write_line(f"  {done} of {len(table)} exercises pass")
