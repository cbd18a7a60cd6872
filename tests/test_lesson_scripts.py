"""Each solution runs top to bottom as a script, in fast mode, and saves its figures."""

import pytest

from course import lessons as registry

LESSONS = registry.available(registry.solutions_dir())


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=[l.folder for l in LESSONS])
def test_solution_runs_in_fast_mode(lesson, fast_runs):
    proc, out = fast_runs.get(lesson)  # run once; tests/test_prose_figures.py reads the same output
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert list(out.glob("*.png")), "a lesson saves at least one figure"
