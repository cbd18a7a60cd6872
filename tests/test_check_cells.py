"""A notebook's check cell says what `pytest checks/lesson01 --exercise nll` says, line for line.

One real kernel (nbclient) runs lesson 01's notebook: for each answer to the
`nll` exercise (blank, wrong, raising, printing, looping, right) the answer is
saved in the notebook, its cell and its check cell are run, and the check
cell's output is compared with pytest's verdict on the same file, run from the
notebook's folder (so both name places as `bigram.ipynb, cell 22, line M`).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from course import lessons as registry

LESSON = registry.get("01")
TIMEOUT = 3  # seconds: the looping answer's limit, on both routes ($COURSE_CHECK_TIMEOUT, --check-timeout)
RIGHT = '''def nll(P, words, stoi):
    """The reference."""
    total, n = 0.0, 0
    for w in words:
        chs = ["."] + list(w) + ["."]
        for a, b in zip(chs, chs[1:]):
            total -= float(P[stoi[a], stoi[b]].log())
            n += 1
    return total / n
'''
ANSWERS = {  # name: (the nll cell's source, None: as generated; what the verdict must say)
    "blank": (None, "nll: not attempted yet (bigram.ipynb, cell 22, line "),
    "wrong": ("def nll(P, words, stoi):\n    return 1.0\n", "nll: wrong\nnll(P, words, stoi): expected "),
    "raises": ("def nll(P, words, stoi):\n    n = len(words) - len(words)\n    return 1.0 / n\n",
               "nll: your code raised ZeroDivisionError: float division by zero\n"
               "  bigram.ipynb, cell 22, line 3 in nll\n      return 1.0 / n"),
    "prints": (RIGHT.replace('    return total / n', '    print("debug:", n, "bigrams")\n    return total / n'),
               "nll: pass (2 points)\nyour code printed:\n  | debug:"),
    "loops": ("def nll(P, words, stoi):\n    while True:\n        pass\n",
              f"nll: did not finish within {TIMEOUT} s"),
    "right": (RIGHT, "nll: pass (2 points)"),
}


def _cell_output(cell):
    """(the check cell's shown lines, whether it failed) from its outputs."""
    shown, failed = [], False
    for o in cell.outputs:
        if o.output_type == "error":
            shown.extend(o.traceback)
            failed = True
        elif o.output_type == "stream":
            assert o.name == "stdout", f"a check cell writes to stdout only (nbgrader scores stderr 0): {o.text}"
            shown.extend(o.text.splitlines())
    return "\n".join(shown), failed


def _pytest_verdict(out, exercise):
    """pytest's lines on `exercise`: its failure report, or the pass lines above the lesson's table."""
    lines = out.splitlines()
    header = [i for i, line in enumerate(lines) if re.fullmatch(rf"_+ test_{exercise} _+", line)]
    if header:
        block = []
        for line in lines[header[0] + 1:]:
            if re.match(r"(-{3,}|={3,}|_{3,})", line):
                break
            block.append(line)
        return "\n".join(block).strip("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{exercise}: pass"))
    block = [lines[start]]
    for line in lines[start + 1:]:
        if line != "your code printed:" and not line.startswith("  | "):
            break
        block.append(line)
    return "\n".join(block)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernel in a copy of lesson 01, with the notebook's first code cell (the imports) run."""
    import nbformat
    from nbclient import NotebookClient

    root = tmp_path_factory.mktemp("lessons")
    folder = root / LESSON.folder
    shutil.copytree(registry.ROOT / "lessons" / LESSON.folder, folder)
    path = LESSON.notebook(root)
    LESSON.script(root).unlink()  # pytest grades the notebook (as it does the file that changed), in cells
    nb = nbformat.read(path, as_version=4)
    env = {"PYTHONPATH": str(registry.ROOT), "COURSE_CHECK_TIMEOUT": str(TIMEOUT)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(folder)}})
    index = {cell.get("id"): i for i, cell in enumerate(nb.cells)}
    try:
        with client.setup_kernel():
            client.execute_cell(nb.cells[index["bigram-001"]], index["bigram-001"])
            yield root, path, nb, index, client
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def _run(kernel, source):
    """Save `source` as the nll cell, run it and its check cell; (check cell, seconds of the check)."""
    import nbformat

    root, path, nb, index, client = kernel
    if source is not None:
        nb.cells[index["nll"]].source = source
    nbformat.write(nb, path)
    client.execute_cell(nb.cells[index["nll"]], index["nll"])
    started = time.perf_counter()
    client.execute_cell(nb.cells[index["test_nll"]], index["test_nll"])
    return nb.cells[index["test_nll"]], time.perf_counter() - started


def _pytest(root, folder):
    proc = subprocess.run([sys.executable, "-m", "pytest", str(registry.ROOT / "checks" / "lesson01"), "--exercise",
                           "nll", "--lessons", str(root), "--check-timeout", str(TIMEOUT), "-p", "no:cacheprovider"],
                          cwd=folder, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(registry.ROOT)})
    return proc.stdout + proc.stderr


CHECK_SOURCE = [line.strip() for line in (registry.ROOT / "checks" / "lesson01" / "exercises.py").read_text().splitlines()
                if len(line.strip()) > 25 and not line.strip().startswith(("#", '"""', "def "))]


@pytest.mark.slow
@pytest.mark.parametrize("answer", list(ANSWERS))
def test_check_cell_says_what_pytest_says(kernel, answer):
    from nbgrader.utils import determine_grade

    from course.classroom.autograde import cell_verdicts

    source, says = ANSWERS[answer]
    cell, seconds = _run(kernel, source)
    shown, failed = _cell_output(cell)
    root, path = kernel[0], kernel[1]
    out = _pytest(root, path.parent)
    assert shown == _pytest_verdict(out, "nll"), f"check cell:\n{shown}\n\npytest:\n{out}"
    assert shown.startswith(says) or says in shown, shown
    assert len(shown.splitlines()) <= 6, shown
    for leak in ("course/grading", "checks/", "Traceback", "exercises.py", "site-packages"):
        assert leak not in shown, shown
    assert not [line for line in CHECK_SOURCE if line in shown], "the check's own source is never shown"
    assert failed == (not answer.startswith(("right", "prints")))
    # nbgrader scores the cell from its outputs: an error is 0 of its 2 points, a pass all of them
    assert determine_grade(cell) == ((0, 2.0) if failed else (2.0, 2.0))
    import nbformat

    nbformat.write(kernel[2], path)
    expected = {"blank": "not attempted", "wrong": "wrong: nll(P, words, stoi): expected",
                "raises": "error: nll: your code raised ZeroDivisionError", "loops": "timeout: nll: did not finish",
                "prints": "pass", "right": "pass"}[answer]
    assert cell_verdicts(path, LESSON)["nll"].startswith(expected)
    assert seconds < TIMEOUT + 5 if answer == "loops" else seconds < 30


@pytest.mark.slow
def test_an_unsaved_edit_is_placed_by_the_cell_id_jupyterlab_sends(kernel):
    """JupyterLab sends each cell's id with its code: a run but unsaved edit is still `cell 22`."""
    from jupyter_client import BlockingKernelClient

    root, path, nb, index, client = kernel
    _run(kernel, None)  # the saved notebook holds another nll
    lab = BlockingKernelClient()
    lab.load_connection_info(client.km.get_connection_info())
    lab.start_channels()
    try:
        msg = lab.session.msg("execute_request", {"code": "def nll(P, words, stoi):\n    return {}[0]\n",
                                                  "silent": False, "store_history": True, "user_expressions": {},
                                                  "allow_stdin": False, "stop_on_error": True})
        msg["metadata"]["cellId"] = "nll"
        lab.shell_channel.send(msg)
        assert lab.get_shell_msg(timeout=60)["content"]["status"] == "ok"
    finally:
        lab.stop_channels()
    client.execute_cell(nb.cells[index["test_nll"]], index["test_nll"])
    shown, failed = _cell_output(nb.cells[index["test_nll"]])
    assert failed and shown == ("nll: your code raised KeyError: 0\n"
                                "  bigram.ipynb, cell 22, line 2 in nll\n      return {}[0]"), shown


@pytest.mark.slow
def test_an_interrupted_check_cell_says_so_in_one_line(kernel):
    """The stop button while a check runs: one line, no traceback through the course's code."""
    import threading

    root, path, nb, index, client = kernel
    nb.cells[index["nll"]].source = ANSWERS["loops"][0]
    client.execute_cell(nb.cells[index["nll"]], index["nll"])
    pid = client.km.provisioner.process.pid  # what Jupyter's interrupt does to an ipykernel: SIGINT
    timer = threading.Timer(1.0, os.kill, (pid, signal.SIGINT))  # within the 3 s limit of the check
    timer.start()
    try:
        client.execute_cell(nb.cells[index["test_nll"]], index["test_nll"])
    finally:
        timer.cancel()
    shown, failed = _cell_output(nb.cells[index["test_nll"]])
    assert failed and shown == "nll: interrupted before the check finished", shown
    cell, _ = _run(kernel, RIGHT)  # the next check gets a fresh probe
    assert _cell_output(cell) == ("nll: pass (2 points)", False)


@pytest.mark.slow
def test_check_cell_in_nbgrader_grading_kernel(tmp_path, monkeypatch):
    """nbgrader runs the notebook in the course's contained grading kernel: its check cells say the same."""
    import json

    import nbformat
    from nbclient import NotebookClient

    from course.classroom.setup import _kernelspec

    spec = tmp_path / "jupyter" / "kernels" / "course-grading-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps(_kernelspec(registry.ROOT, tmp_path / "course")))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    folder = tmp_path / LESSON.folder
    shutil.copytree(registry.ROOT / "lessons" / LESSON.folder, folder)
    nb = nbformat.read(LESSON.notebook(tmp_path), as_version=4)
    index = {cell.get("id"): i for i, cell in enumerate(nb.cells)}
    client = NotebookClient(nb, timeout=120, kernel_name="course-grading-test", allow_errors=True,
                            resources={"metadata": {"path": str(folder)}})
    with client.setup_kernel():
        for cell_id in ("bigram-001", "nll", "test_nll"):
            client.execute_cell(nb.cells[index[cell_id]], index[cell_id])
    shown, failed = _cell_output(nb.cells[index["test_nll"]])
    assert failed and shown.startswith("nll: not attempted yet (bigram.ipynb, cell 22, line "), shown
