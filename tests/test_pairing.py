"""Working in the .py, the .ipynb or both: the checks grade the file the learner changed, a conflict
happens only when both changed differently, and it is solved once for good."""

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

from course import cli
from course import lessons as registry
from course.loader import SourceConflict, agreed_file, pick_source
from tests.helpers import run_checks, summary_table
from tests.test_loader import FIRST_STUB, SOLVED_VOCAB, STUB, edit_ipynb, edit_py, solve_vocab

ROOT = registry.ROOT
BIGRAM = registry.get("01")
NLL_STUB = '''    """
    # YOUR CODE HERE
    raise NotImplementedError()'''


@pytest.fixture
def copy(tmp_path, monkeypatch):
    dst = tmp_path / "lessons"
    shutil.copytree(ROOT / "lessons", dst, ignore=shutil.ignore_patterns("*.bak-*", ".*.agreed"))
    monkeypatch.setenv("COURSE_LESSONS", str(dst))
    return dst


def conflict(root):
    solve_vocab(edit_py, root)
    edit_ipynb(root, "    raise NotImplementedError()", "    return None")


def test_conflict_names_every_exercise_that_differs(copy):
    conflict(copy)
    edit_py(copy, "def nll(", "def nll(  ")  # a second exercise, changed in the .py only
    with pytest.raises(SourceConflict) as error:
        pick_source(BIGRAM, copy)
    assert "differ in build_vocab, nll," in str(error.value)
    assert "course sync 01 --keep py" in str(error.value)


@pytest.mark.parametrize("keep", ["py", "ipynb"])
def test_after_a_sync_either_file_can_be_edited_again(copy, keep, capsys):
    conflict(copy)
    assert cli.main(["sync", "01", "--keep", keep]) == 0
    assert pick_source(BIGRAM, copy) == BIGRAM.script(copy)
    # The next save of either file alone is graded, with no new conflict.
    edit_ipynb(copy, "def nll(", "def nll(  ")
    assert pick_source(BIGRAM, copy) == BIGRAM.notebook(copy)
    edit_py(copy, "def nll(", "def nll(  ")  # now both changed alike: they agree again
    assert pick_source(BIGRAM, copy) == BIGRAM.script(copy)
    edit_py(copy, "def sgd_step(", "def sgd_step(  ")
    assert pick_source(BIGRAM, copy) == BIGRAM.script(copy)


def test_files_that_agree_become_the_baseline(copy):
    solve_vocab(edit_py, copy)
    solve_vocab(edit_ipynb, copy)  # e.g. an editor that saves both, or a copy by hand
    assert pick_source(BIGRAM, copy) == BIGRAM.script(copy)
    assert agreed_file(BIGRAM, copy).exists()
    edit_ipynb(copy, "def nll(", "def nll(  ")
    assert pick_source(BIGRAM, copy) == BIGRAM.notebook(copy), "only the notebook changed since they agreed"


def test_a_pristine_copy_records_nothing(copy):
    assert pick_source(BIGRAM, copy) == BIGRAM.script(copy)
    assert not agreed_file(BIGRAM, copy).exists()


def test_sync_says_what_it_replaced_and_where_the_backup_is(copy, capsys):
    conflict(copy)
    notebook_before = BIGRAM.notebook(copy).read_text()
    assert cli.main(["sync", "01", "--keep", "py"]) == 0
    out = capsys.readouterr().out
    backup = next(BIGRAM.notebook(copy).parent.glob("bigram.ipynb.bak-*"))
    assert backup.read_text() == notebook_before
    assert "bigram.ipynb had code that is not in bigram.py (in build_vocab)" in out
    assert backup.name in out
    # The rewritten notebook keeps its pairing, so Jupyter keeps both files in step from now on.
    meta = json.loads(BIGRAM.notebook(copy).read_text())["metadata"]
    assert meta["jupytext"]["formats"] == "ipynb,py:percent" and meta["kernelspec"]["name"] == "python3"
    # A second sync in the same second keeps the first backup.
    assert cli.main(["sync", "01", "--keep", "py"]) == 0
    assert len(list(BIGRAM.notebook(copy).parent.glob("bigram.ipynb.bak-*"))) == 2
    assert "had no code that bigram.py lacks" in capsys.readouterr().out


def test_sync_keeps_the_notebook_outputs_of_unchanged_cells(copy):
    nb = json.loads(BIGRAM.notebook(copy).read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "kept\n"}]
    BIGRAM.notebook(copy).write_text(json.dumps(nb, indent=1))
    solve_vocab(edit_py, copy)
    assert cli.main(["sync", "01", "--keep", "py"]) == 0
    cells = json.loads(BIGRAM.notebook(copy).read_text())["cells"]
    assert next(c for c in cells if c["cell_type"] == "code")["outputs"][0]["text"] in ("kept\n", ["kept\n"])


def _jupyter_save(root, grade_id, old, new):
    """What a save in JupyterLab does: jupytext's contents manager (the one its server extension
    installs) writes the notebook and its paired .py."""
    cm_module = pytest.importorskip("jupytext.async_contentsmanager")
    cm = cm_module.AsyncTextFileContentsManager(root_dir=str(root))
    path = f"{BIGRAM.folder}/{BIGRAM.name}.ipynb"

    async def save():
        model = await cm.get(path)
        cell = next(c for c in model["content"].cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
        assert old in cell.source
        cell.source = cell.source.replace(old, new, 1)
        await cm.save(model, path)

    asyncio.run(save())


def test_jupyter_pairing_is_enabled_by_the_install():
    config = Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.d" / "jupytext.json"
    assert config.exists(), "jupytext's server extension (the pairing) must be installed with the course"
    assert json.loads(config.read_text())["ServerApp"]["jpserver_extensions"]["jupyterlab_jupytext"]


def test_working_in_jupyter_then_the_py_then_jupyter_never_conflicts(copy):
    _jupyter_save(copy, "build_vocab", STUB, SOLVED_VOCAB)
    assert SOLVED_VOCAB in BIGRAM.script(copy).read_text(), "a save in Jupyter writes the paired .py"
    assert pick_source(BIGRAM, copy) == BIGRAM.script(copy)
    edit_py(copy, "def nll(", "def nll(  ")  # once in an editor
    assert pick_source(BIGRAM, copy) == BIGRAM.script(copy)
    _jupyter_save(copy, "sgd_step", "def sgd_step(", "def sgd_step(  ")  # and back in Jupyter
    text = BIGRAM.script(copy).read_text()
    assert "def nll(  " in text and "def sgd_step(  " in text, "Jupyter read the newer .py, lost nothing"
    assert pick_source(BIGRAM, copy) == BIGRAM.script(copy)
    code, out = run_checks(BIGRAM, copy, "--exercise", "build_vocab")
    assert summary_table(out) == {"build_vocab": "pass"}, out
