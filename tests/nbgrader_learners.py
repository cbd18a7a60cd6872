"""Learner submissions for the nbgrader tests, made from a lesson's own files.

    python -m tests.nbgrader_learners DIR     writes the lesson 01 batch into DIR (a demo for instructors)

A submission starts from the learner's copy in lessons/ and takes the
reference code of some exercises from solutions/, so it is what a learner
who solved those exercises would hand in. The bad submissions of lesson 01
each break one thing the way learners do.
"""

import copy
import json
from pathlib import Path

import jupytext

from course import lessons as registry


def _cells(nb):
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


def solved(lesson, exercises):
    """The learner notebook of `lesson` with `exercises` solved as in the reference (a set, or "all")."""
    learner = jupytext.read(lesson.script(registry.lessons_dir()), fmt="py:percent")
    reference = _cells(jupytext.read(lesson.script(registry.solutions_dir()), fmt="py:percent"))
    for grade_id, cell in _cells(learner).items():
        meta = cell.metadata["nbgrader"]
        if meta.get("solution") and (exercises == "all" or grade_id in exercises):
            cell.source = reference[grade_id].source
    return learner


def py_text(nb):
    return jupytext.writes(nb, fmt="py:percent")


def edit(nb, grade_id, old, new):
    """Replace `old` by `new` in the cell `grade_id` (it must be there)."""
    cell = _cells(nb)[grade_id]
    assert old in cell.source, f"{old!r} not in {grade_id}"
    cell.source = cell.source.replace(old, new, 1)
    return nb


def write(folder, name, data):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def header_line(nb, grade_id):
    meta = _cells(nb)[grade_id].metadata["nbgrader"]
    return f"# %% nbgrader={json.dumps(meta, sort_keys=True)}"


def lesson01_submissions(root):
    """One folder per learner under `root`; returns {learner: (expected score, expected outcome)}.

    Lesson 01 points: build_vocab 1, count_bigrams 2, bigram_probs 1, sample_name 2, nll 2,
    bigram_dataset 1, neural_nll 2, sgd_step 2 (13 in all).
    """
    lesson = registry.get("01")
    root = Path(root)
    expected = {}

    write(root / "full", "bigram.py", py_text(solved(lesson, "all")))
    expected["full"] = (13, "graded")

    write(root / "full_ipynb", "bigram.ipynb", jupytext.writes(solved(lesson, "all"), fmt="ipynb"))
    expected["full_ipynb"] = (13, "graded")

    write(root / "blank", "bigram.py", lesson.script(registry.lessons_dir()).read_bytes())
    # A learner who kept the paired notebook untouched next to the edited script: the script is graded.
    write(root / "blank", "bigram.ipynb", lesson.notebook(registry.lessons_dir()).read_bytes())
    expected["blank"] = (0, "graded")

    write(root / "partial", "bigram.py", py_text(solved(lesson, {"build_vocab", "bigram_probs", "nll"})))
    expected["partial"] = (1 + 1 + 2, "graded")

    # A syntax error in count_bigrams' cell: that exercise is lost, the others are graded.
    nb = edit(solved(lesson, "all"), "count_bigrams", "for w in words:", "for w in words")
    write(root / "syntax_error", "bigram.py", py_text(nb))
    expected["syntax_error"] = (13 - 2, "graded")

    # sgd_step never returns: its test and the training cell each hit the per-cell timeout. (It sleeps in
    # its loop: every limit on these routes is wall-clock, the same for a loop that burns a core, and a
    # busy loop would only take CPU from the suite's other tests; tests/test_loader.py stops a busy one.)
    nb = edit(solved(lesson, "all"), "sgd_step", "    W.grad = None\n",
              "    import time\n    while True:\n        time.sleep(0.05)\n        W.grad = None\n")
    write(root / "infinite_loop", "bigram.py", py_text(nb))
    expected["infinite_loop"] = (13 - 2, "graded")

    # A wrong nll and its test edited away: the original test is restored and fails.
    nb = edit(solved(lesson, "all"), "nll", "return -P[xs, ys].log().mean().item()", "return 0.0")
    _cells(nb)["test_nll"].source = "pass  # the test was here"
    write(root / "edited_test", "bigram.py", py_text(nb))
    expected["edited_test"] = (13 - 2, "graded")

    # A correct bigram_probs whose test cell was deleted: the test is put back and passes.
    nb = solved(lesson, "all")
    nb.cells.remove(_cells(nb)["test_bigram_probs"])
    write(root / "deleted_test", "bigram.py", py_text(nb))
    expected["deleted_test"] = (13, "graded")

    # Two `# %%` headers deleted: test_count_bigrams's (its test merges into the exercise cell) and
    # nll's (its code lands in the markdown cell above and would silently not run).
    nb = solved(lesson, "all")
    text = py_text(nb)
    for grade_id in ("test_count_bigrams", "nll"):
        line = header_line(nb, grade_id) + "\n"
        assert line in text, grade_id
        text = text.replace(line, "", 1)
    write(root / "deleted_header", "bigram.py", text)
    expected["deleted_header"] = (13, "graded")

    # nll kills the kernel: graded again with os._exit disabled, only nll is lost.
    nb = edit(solved(lesson, "all"), "nll", "    xs, ys = [], []\n", "    import os\n    os._exit(1)\n    xs, ys = [], []\n")
    write(root / "os_exit", "bigram.py", py_text(nb))
    expected["os_exit"] = (13 - 2, "graded")

    # The test cell of build_vocab pasted twice (with its header).
    nb = solved(lesson, "all")
    test = _cells(nb)["test_build_vocab"]
    nb.cells.insert(nb.cells.index(test) + 1, copy.deepcopy(test))
    write(root / "duplicated_cell", "bigram.py", py_text(nb))
    expected["duplicated_cell"] = (13, "graded")

    # Correct code that emits a warning inside a graded cell still earns the points.
    nb = edit(solved(lesson, "all"), "build_vocab", "    chars = sorted",
              "    import warnings\n    warnings.warn('harmless', UserWarning)\n    chars = sorted")
    write(root / "warning", "bigram.py", py_text(nb))
    expected["warning"] = (13, "graded")

    # A loop that swallows the per-cell timeout's interrupt (sleeping, as above): nbgrader gives up on this
    # notebook; the judge's probe is killed at its time limit, so only build_vocab is lost.
    nb = edit(solved(lesson, "all"), "build_vocab", "    chars = sorted",
              "    import time\n    while True:\n        try:\n            while True:\n                time.sleep(0.05)\n"
              "        except BaseException:\n            pass\n    chars = sorted")
    write(root / "ignores_interrupt", "bigram.py", py_text(nb))
    expected["ignores_interrupt"] = (13 - 1, "graded")

    write(root / "empty", "bigram.py", "")
    expected["empty"] = (0, "not graded")

    full = jupytext.writes(solved(lesson, "all"), fmt="ipynb")
    write(root / "unreadable", "bigram.ipynb", full[: len(full) // 2])
    expected["unreadable"] = (0, "not graded")

    write(root / "conflict", "bigram.py", py_text(solved(lesson, {"build_vocab"})))
    write(root / "conflict", "bigram.ipynb", jupytext.writes(solved(lesson, {"nll"}), fmt="ipynb"))
    expected["conflict"] = (0, "not graded")

    write(root / "no_file", "notes.txt", "I could not find the lesson file")
    expected["no_file"] = (0, "not graded")
    return expected



if __name__ == "__main__":
    import sys

    for learner, (score, status) in lesson01_submissions(sys.argv[1]).items():
        print(f"{learner:<20} expected: {score}/13 {status}")
