"""Each generated lesson notebook runs in a real Jupyter kernel (nbclient, headless), in fast mode,
once its exercises are filled in with the reference solutions: the notebook a learner opens works
top to bottom, grading cells included."""

import shutil

import pytest

from course import lessons as registry
from course.build import read_solution

LESSONS = [l for l in registry.available(registry.solutions_dir()) if l.notebook(registry.ROOT / "lessons").exists()]


def solved_notebook(lesson):
    """lessons/NN/name.ipynb with every solution cell replaced by the reference's."""
    import nbformat

    nb = nbformat.read(lesson.notebook(registry.ROOT / "lessons"), as_version=4)
    reference = {c.metadata["nbgrader"]["grade_id"]: c.source for c in read_solution(lesson.script(registry.solutions_dir())).cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    filled = 0
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in reference:
            cell.source = "\n".join(line for line in reference[grade_id].splitlines()
                                    if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
            filled += 1
    assert filled == len(reference), "every solution cell of the reference is in the generated notebook"
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=[l.folder for l in LESSONS])
def test_generated_notebook_runs_in_a_kernel(lesson, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    folder = tmp_path / lesson.folder
    shutil.copytree(registry.ROOT / "lessons" / lesson.folder, folder)
    nb = solved_notebook(lesson)
    for key, value in {"COURSE_FAST": "1", "COURSE_OUT": str(tmp_path / "out"),
                       "PYTHONPATH": str(registry.ROOT)}.items():
        monkeypatch.setenv(key, value)  # the kernel inherits this process's environment
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's own (inline) backend, as in Jupyter
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on the first failure
    assert list((tmp_path / "out").glob("*.png")), "the lesson saves its figures"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    for cell in nb.cells:  # each check cell ran the check in a probe and says so as pytest would
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            exercise, points = meta["grade_id"].removeprefix("test_"), meta["points"]
            shown = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            assert shown == f"{exercise}: pass ({points:g} point{'' if points == 1 else 's'})\n", shown


def test_the_install_has_jupyterlab_and_a_python_kernel():
    import subprocess
    import sys
    from pathlib import Path

    bin_dir = Path(sys.executable).parent
    proc = subprocess.run([str(bin_dir / "jupyter-lab"), "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().startswith("4."), proc.stderr
    from jupyter_client.kernelspec import KernelSpecManager

    assert "python3" in KernelSpecManager().find_kernel_specs()
