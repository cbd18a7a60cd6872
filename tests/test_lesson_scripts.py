"""Each solution runs top to bottom as a script, in fast mode, and saves its figures."""

import os
import subprocess
import sys

import pytest

from course import lessons as registry

LESSONS = registry.available(registry.solutions_dir())


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=[l.folder for l in LESSONS])
def test_solution_runs_in_fast_mode(lesson, tmp_path):
    env = {**os.environ, "COURSE_FAST": "1", "COURSE_OUT": str(tmp_path), "MPLBACKEND": "Agg",
           "PYTHONPATH": str(registry.ROOT)}
    proc = subprocess.run([sys.executable, str(lesson.script(registry.solutions_dir()))], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert list(tmp_path.glob("*.png")), "a lesson saves at least one figure"
