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
from course.source import SourceConflict, agreed_file, pick_source
from tests.helpers import run_checks, summary_table
from tests.test_loader import SOLVED_VOCAB, STUB, edit_ipynb, edit_py, solve_vocab

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


NOTEBOOK = f"{BIGRAM.folder}/{BIGRAM.name}.ipynb"


def _edit_cell(model, grade_id, old, new):
    cell = next(c for c in model["content"].cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    assert old in cell.source
    cell.source = cell.source.replace(old, new, 1)


def _jupyter_save(root, grade_id, old, new):
    """What a save in JupyterLab does: the course's contents manager (jupytext's, which writes the
    notebook and its paired .py, as `jupyter lab` from the course's .venv uses it)."""
    from course.pairing import ContentsManager

    cm = ContentsManager(root_dir=str(root))

    async def save():
        model = await cm.get(NOTEBOOK)
        _edit_cell(model, grade_id, old, new)
        await cm.save(model, NOTEBOOK)

    asyncio.run(save())


def test_jupyter_pairing_is_enabled_by_the_install():
    etc = Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.d"
    config = etc / "jupytext.json"
    assert config.exists(), "jupytext's server extension (the pairing) must be installed with the course"
    assert json.loads(config.read_text())["ServerApp"]["jpserver_extensions"]["jupyterlab_jupytext"]
    # `make start` / `make test` install the course's own settings (python -m course.pairing).
    ours = json.loads((etc / "llm-from-scratch.json").read_text())
    assert ours["ServerApp"]["jpserver_extensions"] == {"course.pairing": True}
    lab = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.d" / "llm-from-scratch.json"
    assert json.loads(lab.read_text())["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    assert (Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "llm-from-scratch" / "package.json").exists()


def test_the_server_extension_installs_the_contents_manager():
    from course import pairing

    class App:
        contents_manager_class = None

    app = App()
    pairing._link_jupyter_server_extension(app)
    assert app.contents_manager_class is pairing.ContentsManager
    assert hasattr(pairing.ContentsManager, "formats"), "jupytext's server extension then keeps it"


def test_a_py_edited_while_the_notebook_is_open_is_kept_when_jupyter_overwrites_it(copy):
    """The "File Changed" case: the notebook is open in JupyterLab, an editor changes the .py,
    and the learner saves the notebook (Overwrite): the editor's version goes to a backup."""
    from course.pairing import ContentsManager

    cm, py = ContentsManager(root_dir=str(copy)), BIGRAM.script(copy)

    async def session():
        model = await cm.get(NOTEBOOK)  # opened in JupyterLab
        solve_vocab(edit_py, copy)  # meanwhile, in an editor
        editor = py.read_text()
        _edit_cell(model, "nll", "def nll(", "def nll(  ")  # typed in the notebook
        saved = await cm.save(model, NOTEBOOK)
        return editor, saved

    editor, saved = asyncio.run(session())
    backups = list(py.parent.glob("bigram.py.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == editor, "the editor's version is kept"
    assert "def nll(  " in py.read_text() and SOLVED_VOCAB not in py.read_text(), "the notebook's version won"
    assert saved["message"] == (f"bigram.py was changed outside JupyterLab since this notebook was opened or saved: "
                                f"that version is kept in {backups[0].name}")
    assert not list(py.parent.glob("bigram.ipynb.bak-*")), "the notebook itself did not change behind its back"


def test_no_backup_when_nothing_changed_behind_the_notebooks_back(copy):
    from course.pairing import ContentsManager

    cm, py = ContentsManager(root_dir=str(copy)), BIGRAM.script(copy)

    async def session():
        model = await cm.get(NOTEBOOK)
        _edit_cell(model, "nll", "def nll(", "def nll(  ")
        first = await cm.save(model, NOTEBOOK)
        solve_vocab(edit_py, copy)  # the editor, then the notebook read again (a reload) before saving
        model = await cm.get(NOTEBOOK)
        _edit_cell(model, "sgd_step", "def sgd_step(", "def sgd_step(  ")
        second = await cm.save(model, NOTEBOOK)
        return first, second

    first, second = asyncio.run(session())
    assert "message" not in first and "message" not in second
    assert not list(py.parent.glob("*.bak-*"))
    assert SOLVED_VOCAB in py.read_text() and "def sgd_step(  " in py.read_text()


def test_a_renamed_notebook_is_still_known(copy):
    from course.pairing import ContentsManager

    cm = ContentsManager(root_dir=str(copy))
    renamed = f"{BIGRAM.folder}/mine.ipynb"

    async def session():
        model = await cm.get(NOTEBOOK)
        await cm.rename_file(NOTEBOOK, renamed)  # File > Rename in JupyterLab: both files follow
        _edit_cell(model, "nll", "def nll(", "def nll(  ")
        return await cm.save(model, renamed)

    assert "message" not in asyncio.run(session())
    assert "def nll(  " in (copy / BIGRAM.folder / "mine.py").read_text()
    assert not list((copy / BIGRAM.folder).glob("*.bak-*"))


def test_opening_a_lesson_changes_nothing_and_trusts_it(copy, caplog):
    """JupyterLab marks a notebook modified when its kernel reports a kernelspec or language_info
    that differs from the notebook's; the server logs "not trusted" for an unsigned notebook."""
    import logging

    from jupytext.async_contentsmanager import AsyncTextFileContentsManager

    from course.pairing import ContentsManager

    built = json.loads(BIGRAM.notebook(copy).read_text())["metadata"]
    assert "version" not in built["language_info"], "the built lesson names no Python version"

    def opened(cm_class):
        cm = cm_class(root_dir=str(copy))
        cm.log = logging.getLogger("contents")
        with caplog.at_level(logging.WARNING, "contents"):
            caplog.clear()
            model = asyncio.run(cm.get(NOTEBOOK))
            return model["content"], [r.getMessage() for r in caplog.records]

    nb, warnings = opened(AsyncTextFileContentsManager)
    assert any("is not trusted" in w for w in warnings), "jupytext's own manager warns (the baseline)"
    nb, warnings = opened(ContentsManager)
    assert not warnings
    assert all(c.metadata.get("trusted") for c in nb.cells if c.cell_type == "code")
    from ipykernel.ipkernel import IPythonKernel

    assert nb.metadata["language_info"] == IPythonKernel.language_info
    assert nb.metadata["language_info"]["version"] == sys.version.split()[0]
    assert nb.metadata["kernelspec"] == {"display_name": "Python 3 (ipykernel)", "language": "python",
                                         "name": "python3"}


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
