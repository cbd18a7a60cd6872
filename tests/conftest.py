"""Fixtures shared by the repository's tests, and how `make test` splits them over pytest-xdist workers.

`make test` runs the suite in TEST_JOBS worker processes (`-n 3 --dist loadgroup` by default). What is
costly to make is made once per run, whichever worker asks first, in a folder every worker sees
(`shared_dir`), under a file lock: the fast-mode run of each solution (`fast_runs`) and each released
nbgrader course folder (`released_course`, copied into the test's own folder, since tests change it). A
test that uses a module-scoped fixture of its own module runs on the worker that made it: its module is
one xdist group.
"""

import fcntl
import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from course import lessons as registry


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory):
    """A folder of this run that every xdist worker sees (the workers' own temp folders lie in it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def locked(path):
    """Hold an exclusive lock on `path` (created): one worker makes a shared thing, the other waits for it."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class FastRuns:
    """Each solution run once per test run as a script, in fast mode, in a folder of its own:
    `get(lesson)` gives (process, folder), the process with its return code, stdout and stderr."""

    def __init__(self, root):
        self.root, self.runs = root, {}

    def get(self, lesson):
        if lesson.folder not in self.runs:
            out, saved = self.root / f"fast_{lesson.folder}", self.root / f"fast_{lesson.folder}.json"
            with locked(self.root / f"fast_{lesson.folder}.lock"):
                if not saved.exists():
                    shutil.rmtree(out, ignore_errors=True)  # a run that died half-way
                    out.mkdir()
                    proc = self._run(lesson, out)
                    saved.write_text(json.dumps([proc.args, proc.returncode, proc.stdout, proc.stderr]))
            proc = subprocess.CompletedProcess(*json.loads(saved.read_text()))
            self.runs[lesson.folder] = proc, out
        return self.runs[lesson.folder]

    @staticmethod
    def _run(lesson, out):
        env = {**os.environ, "COURSE_FAST": "1", "COURSE_OUT": str(out), "MPLBACKEND": "Agg",
               "PYTHONPATH": str(registry.ROOT)}
        env.pop("NBGRADER_EXECUTION", None)
        return subprocess.run([sys.executable, str(lesson.script(registry.solutions_dir()))], cwd=out,
                              capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="session")
def fast_runs(shared_dir):
    """The fast-mode runs of the solutions, shared by every test that reads their output."""
    return FastRuns(shared_dir)


@pytest.fixture(scope="session")
def released_course(shared_dir):
    """`released_course(dest, lessons, timeout)`: at `dest`, the course folder that `course nbgrader init`
    and `release` make for `lessons` (a list; None: every gradable lesson) with that per-cell timeout
    (None: the default of `course nbgrader init`).

    nbgrader's generate_assignment takes seconds of CPU per lesson, so each set of lessons is released
    once per run and copied; write_config then writes the copy's own settings (the kernelspec names the
    folder it hides). The copy equals a fresh init and release but for the gradebook's random ids."""
    def make(dest, lessons=None, timeout=None):
        from course.classroom.release import release  # nbgrader: only in the instructor's environment
        from course.classroom.setup import CELL_TIMEOUT, gradable, init, write_config

        lessons = list(lessons or gradable())
        name = "released_" + "_".join(lesson.folder for lesson in lessons)
        template = shared_dir / name
        with locked(shared_dir / f"{name}.lock"):
            if not (template / ".complete").exists():
                shutil.rmtree(template, ignore_errors=True)
                init(template, lessons=lessons, log=lambda m: None)
                release(template, lessons, log=lambda m: None)
                (template / ".complete").touch()
        shutil.copytree(template, dest, symlinks=True, ignore=shutil.ignore_patterns(".complete"))
        write_config(dest, CELL_TIMEOUT if timeout is None else timeout)
        return Path(dest)

    return make


def _module_fixture(item):
    """Whether `item` uses a module- or class-scoped fixture defined in its own test module."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    module = item.nodeid.split("::")[0]
    for name in info.names_closure:
        for fixturedef in info.name2fixturedefs.get(name, ()):
            if fixturedef.scope in ("module", "class") and fixturedef.baseid.startswith(module):
                return True
    return False


def _group(item):
    """The xdist group of `item`: that of its xdist_group mark, else its module's when it uses a module-
    or class-scoped fixture of its own module (a graded batch, a course folder), else None."""
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
    return item.nodeid.split("::")[0] if _module_fixture(item) else None


GROUPS = "xdist-groups.json"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """On an xdist worker: write {test: group} where the controller's scheduler reads it (next hook).
    xdist's own `loadgroup` renames each grouped test `test@group`, which pytest 9.2 no longer honours
    (pytest-dev/pytest-xdist#1386): its tests are then split at random between the workers."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not config.option.basetemp:
        return
    groups = {item.nodeid: group for item in items if (group := _group(item)) is not None}
    _slow_first(items, groups)
    path = Path(config.option.basetemp).parent / GROUPS
    partial = path.with_name(f"{GROUPS}.{worker}")
    partial.write_text(json.dumps(groups, indent=0))
    os.replace(partial, path)  # every worker collects the same tests: the last one written is whole


def _slow_first(items, groups):
    """Order a worker's tests (every worker the same way) as the scheduler hands them out: units (a
    group, or one test) that hold a slow test first, the largest first, then the rest, the largest first.
    So no worker starts a long nbgrader batch while the others are finishing their last fast tests."""
    units = {}
    for item in items:
        units.setdefault(groups.get(item.nodeid, item.nodeid), []).append(item)
    order = sorted(units.values(), key=lambda unit: (not any(i.get_closest_marker("slow") for i in unit), -len(unit)))
    items[:] = [item for unit in order for item in unit]


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadgroup`: the tests of a group are sent, together, to one worker; the others one by one,
    in the order the workers collected them (see _slow_first)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    config.option.loadscopereorder = False  # the workers' order already is the one wanted
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        groups = None

        def _split_scope(self, nodeid):
            if self.groups is None:
                path = config._tmp_path_factory.getbasetemp() / GROUPS
                self.groups = json.loads(path.read_text()) if path.exists() else {}
            return self.groups.get(nodeid, nodeid)

    return GroupScheduling(config, log)
