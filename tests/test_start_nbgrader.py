"""nbgrader as the course starts it: the same command line, without jsonschema's optional IRI checker,
whose import alone cost 0.9 s of CPU in every nbgrader process."""

import subprocess
import sys

import pytest

pytest.importorskip("nbgrader")

from course import lessons as registry  # noqa: E402
from course.classroom.launch import run  # noqa: E402


def test_nbgrader_runs_as_launched(tmp_path):
    code, out = run(tmp_path, "--version")
    assert code == 0 and "nbgrader version" in out, out


def test_the_iri_checker_is_never_imported_and_notebooks_still_validate():
    proc = subprocess.run([sys.executable, "-s", "-X", "importtime", "-m", "course.classroom.start_nbgrader",
                           "--version"], capture_output=True, text=True, cwd=registry.ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "nbformat" in proc.stderr and "rfc3987_syntax.syntax_helpers" not in proc.stderr  # (its parser)
    check = ("import sys; from course.classroom.start_nbgrader import skip_iri_checker; skip_iri_checker(); "
             "import nbformat; nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1')]); "
             "nbformat.validate(nb); bad = nbformat.v4.new_notebook(); bad['cells'] = [{'cell_type': 'nope'}]; "
             "print(nbformat.validator.isvalid(bad), sys.modules['rfc3987_syntax'])")
    proc = subprocess.run([sys.executable, "-s", "-c", check], capture_output=True, text=True, cwd=registry.ROOT,
                          timeout=120)
    assert proc.stdout.split() == ["False", "None"], proc.stdout + proc.stderr
