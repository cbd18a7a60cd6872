"""Fixtures shared by the repository's tests."""

import os
import subprocess
import sys

import pytest

from course import lessons as registry


class FastRuns:
    """Each solution run once per session as a script, in fast mode, in a folder of its own:
    `get(lesson)` gives (process, folder), the process with its stdout and stderr."""

    def __init__(self, tmp_path_factory):
        self.factory, self.runs = tmp_path_factory, {}

    def get(self, lesson):
        if lesson.folder not in self.runs:
            out = self.factory.mktemp(f"fast_{lesson.folder}")
            env = {**os.environ, "COURSE_FAST": "1", "COURSE_OUT": str(out), "MPLBACKEND": "Agg",
                   "PYTHONPATH": str(registry.ROOT)}
            env.pop("NBGRADER_EXECUTION", None)
            proc = subprocess.run([sys.executable, str(lesson.script(registry.solutions_dir()))], cwd=out,
                                  capture_output=True, text=True, env=env, timeout=600)
            self.runs[lesson.folder] = proc, out
        return self.runs[lesson.folder]


@pytest.fixture(scope="session")
def fast_runs(tmp_path_factory):
    """The fast-mode runs of the solutions, shared by every test that reads their output."""
    return FastRuns(tmp_path_factory)
