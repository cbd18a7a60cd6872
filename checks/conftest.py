"""The pytest front end of the course's checks.

    pytest checks/lesson01                        grade lessons/01_bigram
    pytest checks/lesson01 -k count_bigrams       exercises whose name contains count_bigrams
    pytest checks/lesson01 --exercise nll         exactly one exercise (-k nll also picks neural_nll)
    pytest checks --lessons path/to/copy          grade another folder laid out like
                                                  lessons/ (solutions/, a student's copy);
                                                  $COURSE_LESSONS does the same

This process is the judge: it never imports or calls the learner's code.
Each check module gets the learner's definitions through the `lesson`
fixture, a `course.grading.judge.RemoteLesson`: `lesson.count_bigrams` is a
handle, and calling it runs the learner's function in a contained probe
process (forked from a zygote that was forked from here after torch and the
checks were imported, before any check ran) and brings the result back as
plain data. What the learner's code printed is shown under "your code
printed" (in the report of a failure; as it comes with -s). The check computes its oracle values here and
compares. Failures are reported as one short message: not attempted, wrong
(what differs), an error in the learner's code (their lines only), a syntax
error, or a timeout. A file that cannot be loaded (a syntax error, .py and
.ipynb in conflict) is explained once, at the first exercise; the others say
"see above". A table per lesson closes the run, whatever the learner's code
did (with --tb=no, as `course status` runs it, the reason a lesson cannot
load stands under its table instead).
"""

import gc
import sys
from pathlib import Path

import pytest
import torch

from course import lessons as registry
from course.grading import processes, quick_exit, sandbox
from course.grading.integrity import Guard, TamperError
from course.grading.channel import ProbeLoadError
from course.grading.judge import RemoteLesson
from course.grading.report import points, printed_lines, relative, render
from course.grading.verdict import describe, display, strip_escapes
from course.grading.zygote import zygote
from course.loader import LoadError
from course.source import pick_source

# The checks use tiny tensors: with 2 threads on a busy 2-core machine each op waits
# for the other thread (BatchNorm checks measured 30x slower). One thread, set before the probes fork.
torch.set_num_threads(1)
processes.set_subreaper()  # orphans of learner processes come back here, to be killed
# What is imported by now lives as long as the run: the collector need not walk it again (torch is
# 170,000 objects; walking them at exit alone costs a third of importing torch).
gc.freeze()


def pytest_addoption(parser):
    group = parser.getgroup("course")
    group.addoption("--lessons", default=None, metavar="DIR",
                    help="folder laid out like lessons/ to grade (default: $COURSE_LESSONS or lessons/)")
    group.addoption("--exercise", action="append", default=[], metavar="NAME",
                    help="run exactly this exercise (repeat for more); -k matches parts of names")
    group.addoption("--check-timeout", type=float, default=30.0, metavar="SECONDS",
                    help="time limit of one check, so an infinite loop fails alone (default 30)")
    group.addoption("--memory-limit", type=float, default=sandbox.DEFAULT_MEMORY_GB, metavar="GB",
                    help="memory the learner's code may allocate (default $COURSE_MEMORY_LIMIT_GB or 4)")


def pytest_configure(config):
    # The table per lesson closes the run; pytest's short summary would repeat each message once more.
    if config.option.reportchars in ("fE", "fEw"):
        config.option.reportchars = "N"


def pytest_collection_finish(session):
    _before_probes(session.items)
    # Property-based checks must not fail slow-but-correct code for its speed. Hypothesis is loaded
    # only by the lessons that use it (importing it costs a sixth of importing torch); their PROPERTY
    # settings name every field this profile sets, and a @given inside a check takes it from here.
    if "hypothesis" in sys.modules:
        from hypothesis import settings

        settings.register_profile("course", deadline=None, max_examples=25, derandomize=True)
        settings.load_profile("course")
    gc.freeze()  # the checks and what they imported, too (hypothesis walks every object on its first run)


def _exercise(item):
    return item.name.removeprefix("test_").split("[")[0]


def _before_probes(items):
    """Each check module's `before_probes(exercises)`, if it has one, with its exercises about to run,
    before the first probe: what it reads there once (lesson 07's vocabularies) the zygote, forked at
    the first check, holds for every probe. Inputs only: the zygote holds no expected value."""
    wanted = {}
    for item in items:
        module = sys.modules.get(f"checks.{Path(str(item.fspath)).parent.name}.exercises")
        wanted.setdefault(module, []).append(_exercise(item))
    for module, exercises in wanted.items():
        if hasattr(module, "before_probes"):
            module.before_probes(exercises)


def pytest_collection_modifyitems(config, items):
    wanted = set(config.getoption("--exercise"))
    if not wanted:
        return
    unknown = wanted - {_exercise(item) for item in items}
    if unknown:
        raise pytest.UsageError(f"no exercise named {', '.join(sorted(unknown))} here; the exercises are "
                                f"{', '.join(dict.fromkeys(_exercise(item) for item in items))}")
    keep = [item for item in items if _exercise(item) in wanted]
    config.hook.pytest_deselected(items=[item for item in items if _exercise(item) not in wanted])
    items[:] = keep


def _lessons_root(config):
    option = config.getoption("--lessons")
    return Path(option).resolve() if option else registry.lessons_dir()


class Unloadable:
    """A lesson whose file cannot even be picked (missing, or .py and .ipynb in conflict)."""

    def __init__(self, error):
        self.error, self.path = error, None

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise self.error

    def set_deadline(self, seconds):
        pass

    def take_output(self):
        return ""

    def close(self):
        pass


_loaded = {}


@pytest.fixture
def lesson(request):
    """The learner's lesson named by the check folder (checks/lesson01 -> 01_bigram), as handles."""
    number = Path(str(request.node.fspath)).parent.name.removeprefix("lesson")
    key = (number, str(_lessons_root(request.config)))
    if key not in _loaded:
        info = registry.get(number)
        try:
            path = pick_source(info, key[1])
            _loaded[key] = RemoteLesson(path, path.read_text(encoding="utf-8"), f"learner_{info.folder}",
                                        memory_gb=request.config.getoption("--memory-limit"))
        except (LoadError, OSError, UnicodeDecodeError) as e:
            _loaded[key] = Unloadable(e if isinstance(e, LoadError) else LoadError(f"cannot read the lesson: {e}"))
        _loaded[key].info = info
    request.node.learner = _loaded[key]
    _loaded[key].set_deadline(request.config.getoption("--check-timeout"))
    return _loaded[key]


_guard, _sessions = [], []


def pytest_sessionstart(session):
    _sessions.append(session)
    # The checks and the course package decide the verdicts: a change during the run is learner code
    # writing where it must not (possible only where the probe has no namespaces and no `nobody`).
    _guard.append(Guard([registry.ROOT / "checks", registry.ROOT / "course"]))


def pytest_sessionfinish(session):
    gc.freeze()  # the collection at exit would only walk what the run is about to drop anyway
    for learner in _loaded.values():
        learner.close()
    zygote.close()
    processes.kill_descendants()
    try:
        _guard[0].verify("the graded lesson")
    except TamperError as e:
        message = str(e)  # `e` is unbound once the except clause ends, before the cleanup runs
        session.config.add_cleanup(lambda: print(f"\n{message}", file=sys.stderr))
        session.exitstatus = 3


def pytest_unconfigure(config):
    if _sessions:  # the interpreter's teardown would free torch's objects one by one: ended after atexit instead
        quick_exit.end_with_pytest(config.invocation_params.args, int(_sessions[0].exitstatus))


_outcomes = {}
_shown = []  # the verdicts of passed exercises shown above the tables: those that printed, or --exercise
_unloadable = {}  # lesson -> (first exercise that reported it, the reason in one line)


def _one_line(message, path, limit=160):
    """The reason under a lesson's table (and in `course status`): file, line, first words. The file by
    its name: the table's heading (and status's row) say which lesson, and a long path would crowd out
    the words."""
    if path:
        message = str(message).replace(display(path) + ":", Path(path).name + ":")
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    text = " | ".join(lines[:2])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _relative(message, learner):
    # The judge knows the file by its absolute path; the learner reads it relative to where they are.
    return relative(message, learner.path)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    learner = getattr(item, "learner", None)
    if learner is None or report.when != "call":
        return
    exercise = _exercise(item)
    printed = learner.take_output()  # bounded by the judge, with a note where it cut
    if printed and item.config.getoption("capture") == "no":  # -s: shown as it comes, pass or fail
        writer = item.config.get_terminal_writer()
        writer.line(f"\n---- {exercise}: your code printed ----\n" + "\n".join(printed_lines(printed)[1:]))
        printed = ""
    status = "pass" if report.passed else "skipped" if report.skipped else "wrong"
    if report.failed and call.excinfo is not None:
        error = call.excinfo.value
        described = describe(exercise, error, item.config.getoption("--check-timeout"))
        if described:
            status, report.longrepr = described
        else:  # a problem of the checks themselves: pytest's full report stays, as text
            status, report.longrepr = "error", strip_escapes(report.longrepr)
        if isinstance(error, (LoadError, ProbeLoadError)):  # the whole file: one message per run
            message = _relative(report.longrepr, learner)
            first = _unloadable.setdefault(learner.info, (exercise, _one_line(message, learner.path)))[0]
            report.longrepr = message if first == exercise else f"{exercise}: cannot load, like {first} above"
        if described:  # the lines a notebook's check cell shows too (course.grading.report)
            report.longrepr = render(exercise, status, _relative(report.longrepr, learner), printed)
        elif printed:
            report.sections.append(("your code printed", "\n".join(printed_lines(printed)[1:])))
    if report.passed and (printed or item.config.getoption("--exercise")):
        _shown.append(render(exercise, "pass", printed=printed, points=points(learner.info.number, exercise)))
    table = _outcomes.setdefault(learner.info, {})
    table[exercise] = status if table.get(exercise, "pass") == "pass" else table[exercise]
    _outcomes.setdefault("_paths", {})[learner.info] = display(learner.path) if learner.path else "(not loaded)"


def pytest_terminal_summary(terminalreporter):
    paths = _outcomes.get("_paths", {})
    for text in _shown:
        terminalreporter.write_line(text)
    for lesson, table in _outcomes.items():
        if lesson == "_paths":
            continue
        tr = terminalreporter
        tr.section(f"lesson {lesson.number} {lesson.name}: {paths.get(lesson)}", sep="-")
        for exercise, status in table.items():
            tr.write_line(f"  {exercise:<28} {status}")
        done = sum(s == "pass" for s in table.values())
        tr.write_line(f"  {done} of {len(table)} exercises pass")
        if lesson in _unloadable and tr.config.option.tbstyle == "no":  # else it was explained above
            tr.write_line(f"  cannot load: {_unloadable[lesson][1]}")
