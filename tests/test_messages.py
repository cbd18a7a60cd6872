"""One message per real problem, pointing at the learner's own line: in the .py by line, in the
notebook by cell as Jupyter counts them (from 1, markdown cells included) and line."""

import json
import shutil

import pytest

from course import cli
from course import lessons as registry
from tests.helpers import run_checks, summary_table
from tests.test_loader import FIRST_STUB, STUB, edit_ipynb, edit_py

ROOT = registry.ROOT
BIGRAM = registry.get("01")


@pytest.fixture
def copy(tmp_path, monkeypatch):
    dst = tmp_path / "lessons"
    shutil.copytree(ROOT / "lessons", dst, ignore=shutil.ignore_patterns("*.bak-*", ".*.agreed"))
    monkeypatch.setenv("COURSE_LESSONS", str(dst))
    return dst


def jupyter_cell(root, grade_id):
    """The number Jupyter shows for the cell `grade_id` (1 = the first cell)."""
    cells = json.loads(BIGRAM.notebook(root).read_text())["cells"]
    return next(i for i, c in enumerate(cells, start=1) if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                == grade_id)


def line_in_cell(root, grade_id, needle):
    cells = json.loads(BIGRAM.notebook(root).read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                  == grade_id)
    return next(i for i, line in enumerate(source.splitlines(), start=1) if needle in line)


def test_a_syntax_error_in_the_notebook_is_reported_once_with_cell_line_and_code(copy):
    edit_ipynb(copy, STUB, "    return [x for x in ]")
    code, out = run_checks(BIGRAM, copy)
    assert set(summary_table(out).values()) == {"cannot load"}
    cell, line = jupyter_cell(copy, "build_vocab"), line_in_cell(copy, "build_vocab", "for x in ]")
    assert f"bigram.ipynb, cell {cell}, line {line}: invalid syntax" in out, out
    assert out.count("SyntaxError in") == 1 and out.count("return [x for x in ]") == 1, "once per run"
    assert "count_bigrams: cannot load, like build_vocab above" in out
    assert "Traceback" not in out


def test_an_error_in_notebook_code_shows_cell_line_and_the_line_itself(copy):
    edit_ipynb(copy, STUB, "    return words[1000]")
    code, out = run_checks(BIGRAM, copy, "--exercise", "build_vocab")
    assert summary_table(out) == {"build_vocab": "error"}
    cell, line = jupyter_cell(copy, "build_vocab"), line_in_cell(copy, "build_vocab", "words[1000]")
    assert f"bigram.ipynb, cell {cell}, line {line} in build_vocab\n" in out, out
    assert "      return words[1000]" in out


def test_a_definition_time_error_in_the_notebook_shows_the_line(copy):
    edit_ipynb(copy, "def build_vocab(words):", "def build_vocab(words=undefined_words):")
    code, out = run_checks(BIGRAM, copy)
    cell = jupyter_cell(copy, "build_vocab")
    assert f"loading the definitions failed at lessons/01_bigram/bigram.ipynb, cell {cell}, line 1" in out \
        or f"bigram.ipynb, cell {cell}, line 1\n" in out, out
    assert "def build_vocab(words=undefined_words):" in out
    assert "NameError: name 'undefined_words' is not defined" in out
    assert out.count("NameError") == 1


def test_status_says_why_a_lesson_cannot_load(copy, capsys):
    edit_py(copy, STUB, "    return [x for x in ]")
    assert cli.main(["status"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("01_bigram"))
    # the start of the line of code at least: a long path to the copy (an xdist worker's) leaves less room
    assert "cannot load: SyntaxError in" in row and "bigram.py:" in row and "| return [x for x" in row, row


def test_status_says_why_for_a_conflict(copy, capsys):
    edit_py(copy, FIRST_STUB, FIRST_STUB.replace(STUB, "    return 1"))
    edit_ipynb(copy, STUB, "    return 2")
    assert cli.main(["status"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("01_bigram"))
    assert "cannot load: bigram.py and bigram.ipynb differ in build_vocab" in row, row
