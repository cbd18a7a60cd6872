"""Loading learner code: the right file, only definitions, clear reports for every kind of failure."""

import json
import shutil

import pytest

from course import lessons as registry
from course.loader import LoadError, load
from course.source import SourceConflict, pick_source
from tests.helpers import run_checks, summary_table

ROOT = registry.ROOT
BIGRAM = registry.get("01")
SOLVED_VOCAB = '''    chars = sorted(set("".join(words)))
    stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    return stoi, {i: c for c, i in stoi.items()}'''


@pytest.fixture
def copy(tmp_path):
    """A learner's copy of lessons/ (manifest included) to edit."""
    dst = tmp_path / "lessons"
    shutil.copytree(ROOT / "lessons", dst)
    return dst


def edit_py(root, old, new):
    path = BIGRAM.script(root)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def edit_ipynb(root, old, new):
    path = BIGRAM.notebook(root)
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if old in "".join(c["source"]))
    cell["source"] = "".join(cell["source"]).replace(old, new, 1)
    path.write_text(json.dumps(nb, indent=1))


STUB = "    # YOUR CODE HERE\n    raise NotImplementedError()"
FIRST_STUB = '''itos is the inverse of stoi.
    """
''' + STUB


def solve_vocab(edit, root):
    edit(root, FIRST_STUB, FIRST_STUB.replace(STUB, SOLVED_VOCAB))


def test_untouched_copy_grades_the_script(copy):
    assert pick_source(BIGRAM, copy) == BIGRAM.script(copy)


def test_only_the_script_edited(copy):
    solve_vocab(edit_py, copy)
    assert pick_source(BIGRAM, copy) == BIGRAM.script(copy)


def test_only_the_notebook_edited(copy):
    solve_vocab(edit_ipynb, copy)
    assert pick_source(BIGRAM, copy) == BIGRAM.notebook(copy)
    module = load(pick_source(BIGRAM, copy))
    assert module.build_vocab(["ba"])[0] == {".": 0, "a": 1, "b": 2}


def test_both_edited_alike_is_no_conflict(copy):
    solve_vocab(edit_py, copy)
    solve_vocab(edit_ipynb, copy)
    assert pick_source(BIGRAM, copy) == BIGRAM.script(copy)


def test_both_edited_differently_is_a_conflict(copy):
    solve_vocab(edit_py, copy)
    edit_ipynb(copy, "    raise NotImplementedError()", "    return None")
    with pytest.raises(SourceConflict, match="course sync 01 --keep py"):
        pick_source(BIGRAM, copy)


def test_conflict_stops_grading_with_the_fix(copy):
    solve_vocab(edit_py, copy)
    edit_ipynb(copy, "    raise NotImplementedError()", "    return None")
    code, out = run_checks(BIGRAM, copy)
    assert code == 1
    assert set(summary_table(out).values()) == {"cannot load"}, out
    assert "differ in build_vocab, and both changed" in out and "Traceback" not in out
    assert out.count("course sync 01") == 1, "the conflict is explained once per run"


def test_load_keeps_definitions_only():
    module = load(BIGRAM.script(registry.solutions_dir()))
    assert callable(module.count_bigrams)
    assert not hasattr(module, "words"), "data cells must not run"
    assert not hasattr(module, "losses"), "training cells must not run"


def test_notebook_magics_are_ignored(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": "%matplotlib inline\n!ls\ndef f():\n    return 1\n",
                     "metadata": {}, "outputs": []}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    assert load(path).f() == 1


def test_syntax_error_names_file_line_and_code(copy):
    edit_py(copy, STUB, "    return [x for x in ]")
    with pytest.raises(LoadError) as error:
        load(BIGRAM.script(copy))
    message = str(error.value)
    assert "bigram.py:" in message and "return [x for x in ]" in message
    code, out = run_checks(BIGRAM, copy)
    assert set(summary_table(out).values()) == {"cannot load"}
    assert "SyntaxError in" in out and "Traceback" not in out


def test_infinite_loop_times_out_and_the_rest_still_runs(copy):
    edit_py(copy, FIRST_STUB, FIRST_STUB.replace(STUB, "    while True:\n        pass"))
    code, out = run_checks(BIGRAM, copy, "--check-timeout", "2")
    table = summary_table(out)
    assert table["build_vocab"] == "timeout", out
    assert "did not finish within 2 s" in out and "bigram.py:" in out
    assert table["count_bigrams"] == "not attempted", "the other checks must still run"


def test_wrong_answer_reports_what_differs(copy):
    edit_py(copy, FIRST_STUB, FIRST_STUB.replace(STUB, SOLVED_VOCAB.replace('".": 0', '".": 27')))
    code, out = run_checks(BIGRAM, copy, "-k", "build_vocab")
    assert summary_table(out) == {"build_vocab": "wrong"}
    assert "build_vocab(words) stoi" in out and "hint:" in out and "Traceback" not in out


def test_error_in_learner_code_shows_their_line_only(copy):
    edit_py(copy, FIRST_STUB, FIRST_STUB.replace(STUB, "    return words[1000]"))
    code, out = run_checks(BIGRAM, copy, "-k", "build_vocab")
    assert summary_table(out) == {"build_vocab": "error"}
    assert "your code raised IndexError" in out and "return words[1000]" in out
    assert "exercises.py" not in out, "harness frames must not be shown"


def test_renamed_function_is_reported(copy):
    edit_py(copy, "def build_vocab(words):", "def make_vocab(words):")
    code, out = run_checks(BIGRAM, copy, "-k", "build_vocab")
    assert "build_vocab is not defined" in out and "renamed or deleted" in out


def test_sync_keeps_one_side_and_backs_up_the_other(copy, monkeypatch):
    from course import cli

    monkeypatch.setenv("COURSE_LESSONS", str(copy))
    solve_vocab(edit_py, copy)
    edit_ipynb(copy, "    raise NotImplementedError()", "    return None")
    notebook_before = BIGRAM.notebook(copy).read_text()
    assert cli.main(["sync", "01", "--keep", "py"]) == 0
    backups = list(BIGRAM.notebook(copy).parent.glob("bigram.ipynb.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == notebook_before
    assert pick_source(BIGRAM, copy) == BIGRAM.script(copy), "after sync the two files agree"
    assert load(BIGRAM.notebook(copy)).build_vocab(["ab"])[0] == {".": 0, "a": 1, "b": 2}


def test_only_plain_constants_are_kept(tmp_path):
    path = tmp_path / "x.py"
    path.write_text("BLOCK = 3\nmodel.training = False\nitems[0] = 1\nNAME: str = 'a'\nwords = load()\n")
    module = load(path)
    assert (module.BLOCK, module.NAME) == (3, "a")
    assert not hasattr(module, "words")


DEFERRED_LESSON = '''import matplotlib.pyplot as plt
import matplotlib.colors
import torch

LIMIT = 3


def red():
    return matplotlib.colors.to_hex((1, 0, 0)), plt.figure.__name__
'''


def test_plotting_imports_wait_for_their_first_use(tmp_path):
    # A fresh interpreter: this one may have imported matplotlib already.
    import subprocess
    import sys

    lesson = tmp_path / "lesson.py"
    lesson.write_text(DEFERRED_LESSON)
    code = (f"import sys; from course.loader import load; m = load({str(lesson)!r}); "
            "print('matplotlib' in sys.modules, 'torch' in sys.modules, m.LIMIT); "
            "print(m.red(), 'matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.splitlines() == ["False True 3", "('#ff0000', 'figure') True"]


def test_a_deferred_module_that_is_not_installed_fails_the_load_as_before(tmp_path, monkeypatch):
    from course import loader

    monkeypatch.setattr(loader, "DEFERRED", loader.DEFERRED | {"no_such_plotting_module"})
    lesson = tmp_path / "lesson.py"
    lesson.write_text("import no_such_plotting_module as p\n\n\ndef f():\n    return 1\n")
    with pytest.raises(LoadError, match="ModuleNotFoundError"):
        load(lesson)
