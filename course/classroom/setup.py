"""The nbgrader course folder: its settings, grading kernel and source/ notebooks.

Also what every later stage shares: the lessons' graded exercises and points,
running nbgrader in the folder, opening its gradebook, and the small helpers
that word what happened. Nothing here touches a learner's submission.
"""

import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import lessons as registry
from ..build import KERNELSPEC, read_solution

DEFAULT_DIR = registry.ROOT / "course-nbgrader"
COURSE_ID = "llm-from-scratch"
KERNEL_NAME = "llm-from-scratch"
CELL_TIMEOUT = 30  # seconds per cell (nbgrader's default); an infinite loop costs one per hanging cell
# stderr that says nothing about correctness. A check's verdict is an exception, never stderr, but nbgrader
# scores any stderr in a graded cell 0: Python warnings (`file:line: SomeWarning: ...`, e.g. a torch
# deprecation triggered by correct code) and matplotlib's first-run font cache notice are dropped.
HARMLESS_STDERR = r"(?m)^\S[^\n]*:\d+: \w*Warning: |^Matplotlib is building the font cache"


def say(message):
    print(message, flush=True)


class GradingError(Exception):
    """A problem of the course folder (not of a learner's submission)."""


# ------------------------------------------------------------------ lessons


@dataclass(frozen=True)
class Exercise:
    name: str  # the solution cell's grade_id, the check's name
    test: str  # the graded cell's grade_id: test_<name>
    points: float


def gradable(solutions_root=None):
    """The lessons of solutions/ (each becomes an nbgrader assignment NN_name)."""
    return registry.available(solutions_root or registry.solutions_dir())


def solution_notebook(lesson, solutions_root=None):
    return read_solution(lesson.script(solutions_root or registry.solutions_dir()))


def exercises(lesson, nb=None):
    """The graded cells of a lesson, in order, read from its solution's metadata."""
    nb = nb if nb is not None else solution_notebook(lesson)
    out = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and cell.cell_type == "code":
            out.append(Exercise(meta["grade_id"].removeprefix("test_"), meta["grade_id"], float(meta["points"])))
    return out


def points_table(solutions_root=None):
    """Markdown: each lesson's graded exercises and their points."""
    lines = ["| lesson | exercise (graded cell) | points |", "|---|---|---:|"]
    for lesson in gradable(solutions_root):
        total = 0.0
        for ex in exercises(lesson, solution_notebook(lesson, solutions_root)):
            lines.append(f"| {lesson.folder} | `{ex.name}` (`{ex.test}`) | {ex.points:g} |")
            total += ex.points
        lines.append(f"| {lesson.folder} | **total** | **{total:g}** |")
    return "\n".join(lines) + "\n"


def _finish(nb, lesson):
    """Notebook metadata and cell ids as the course writes them (stable across builds)."""
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    for i, cell in enumerate(nb.cells):
        cell["id"] = cell.metadata.get("nbgrader", {}).get("grade_id") or f"{lesson.name}-{i:03d}"
        if cell.cell_type == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def source_notebook(lesson, solutions_root=None):
    """nbgrader's source: the solution as a plain notebook, jupytext metadata stripped."""
    return _finish(solution_notebook(lesson, solutions_root), lesson)


# ----------------------------------------------------------- course folder


CONFIG = '''\
"""nbgrader configuration of the LLM From Scratch course.

Written by `course nbgrader init` (rerun it to change the settings); used by
`course nbgrader ...` and by nbgrader run by hand in this folder.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
c = get_config()  # noqa: F821 (nbgrader provides it)

c.CourseDirectory.root = HERE
c.CourseDirectory.course_id = {course_id!r}

# nbgrader shells out to `alembic` (the gradebook) and starts kernels: the
# environment it was installed in comes first on PATH.
os.environ["PATH"] = os.pathsep.join([{bin!r}, os.environ.get("PATH", "")])

# The kernel that grades is the course's own kernelspec in jupyter/kernels/,
# not whichever "python3" the machine has: it names this environment's
# interpreter ({python}) and puts the repository ({repo}) on
# PYTHONPATH, so `from checks.lessonNN import exercises as check` finds the
# checks this folder was built from.
os.environ["JUPYTER_PATH"] = os.pathsep.join([os.path.join(HERE, "jupyter"), os.environ.get("JUPYTER_PATH", "")])
c.Execute.kernel_name = {kernel!r}

# The grading kernel has no network (course/grading/kernel.py): nbgrader talks
# to it over Unix sockets, in a folder of their own made for this run (the one
# host folder the kernel may write) and removed when nbgrader ends.
import atexit, shutil, tempfile  # noqa: E401,E402
_sockets = tempfile.mkdtemp(prefix="course-kernel-")
atexit.register(shutil.rmtree, _sockets, True)
c.KernelManager.transport = "ipc"
c.KernelManager.ip = os.path.join(_sockets, "kernel")

# Per-cell time limit in seconds. A hanging cell (an infinite loop) is
# interrupted, scores 0, and grading goes on with the next cell. Fast mode
# (NBGRADER_EXECUTION is set) keeps every training cell far below it.
c.Execute.timeout = {timeout}
c.Execute.interrupt_on_timeout = True

# nbgrader scores a graded cell 0 as soon as it writes to stderr. A check's
# verdict is an exception; these known harmless messages are dropped first
# (Python warnings, matplotlib's first-run font cache notice).
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = {pattern!r}

# Nothing learner code wrote is followed: right after a notebook ran, the
# processes it left are killed and its folder is emptied (the executed
# notebook is then written as a new file); links and special files are
# removed wherever nbgrader writes; outputs are kept as text and images only.
from course.classroom.seal import become_subreaper
become_subreaper()
c.Autograde.autograde_preprocessors = [
    "nbgrader.preprocessors.Execute", "course.classroom.seal.Seal", "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor", "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades", "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata"]
# Feedback pages show learner Markdown and output without running scripts: unsafe HTML escaped.
c.GenerateFeedback.preprocessors = ["nbgrader.preprocessors.GetGrades",
                                    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
                                    "nbconvert.preprocessors.sanitize.SanitizeHTML"]
c.SanitizeHTML.enabled = True
c.HTMLExporter.sanitize_html = True

# A graded cell missing from a submission is put back and applied.
# `course nbgrader collect` already restores every missing test cell (and
# reports it); this covers notebooks placed in submitted/ by other means.
c.OverwriteCells.add_missing_cells = True
'''


def _kernelspec(repo, course_dir):
    # The kernel starts contained (course.grading.kernel): this course folder is hidden from the learner's
    # code (COURSE_HIDE), the notebook's own folder is a private copy.
    return {
        "argv": [sys.executable, "-s", "-m", "course.grading.kernel", "-f", "{connection_file}"],
        "display_name": "LLM From Scratch (grading)",
        "language": "python",
        "env": {"PYTHONPATH": str(repo), "COURSE_OUT": "out", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                "COURSE_HIDE": str(Path(course_dir).resolve())},
    }


def write_config(course_dir, timeout=CELL_TIMEOUT):
    course_dir = Path(course_dir)
    course_dir.mkdir(parents=True, exist_ok=True)
    bin_dir = str(Path(sys.executable).parent)
    (course_dir / "nbgrader_config.py").write_text(CONFIG.format(
        course_id=COURSE_ID, bin=bin_dir, python=sys.executable, repo=registry.ROOT, kernel=KERNEL_NAME,
        timeout=int(timeout), pattern=HARMLESS_STDERR))
    kernel_dir = course_dir / "jupyter" / "kernels" / KERNEL_NAME
    kernel_dir.mkdir(parents=True, exist_ok=True)
    (kernel_dir / "kernel.json").write_text(json.dumps(_kernelspec(registry.ROOT, course_dir), indent=1) + "\n")


def write_source(course_dir, lesson, solutions_root=None):
    """source/NN_name/ holds the lesson's notebook and nothing else (anything else leaks into release/)."""
    import nbformat

    folder = Path(course_dir) / "source" / lesson.folder
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    path = folder / f"{lesson.name}.ipynb"
    nbformat.write(source_notebook(lesson, solutions_root), path)
    return path


def init(course_dir=DEFAULT_DIR, timeout=CELL_TIMEOUT, lessons=None, log=say):
    """Write the course folder's configuration, grading kernel and source/ notebooks."""
    write_config(course_dir, timeout)
    for lesson in lessons or gradable():
        write_source(course_dir, lesson)
    log(f"nbgrader course folder ready: {course_dir} (per-cell timeout {int(timeout)} s)")


# ------------------------------------------- nbgrader, shared by the stages


def run_nbgrader(course_dir, *args):
    """Run `nbgrader ARGS` in the course folder (see launch.py: how); (exit code, output)."""
    from .launch import run

    return run(course_dir, *args)


def require_folder(course_dir):
    """GradingError unless `course nbgrader init` made `course_dir`."""
    if not (Path(course_dir) / "nbgrader_config.py").is_file():
        raise GradingError(f"{course_dir} is not an nbgrader course folder yet: run `course nbgrader init`")


def tail(text, lines=15):
    """The end of nbgrader's output, where its error is."""
    return "\n".join(text.strip().splitlines()[-lines:])


def first_line(text, limit=160):
    """The first line of a message, colours stripped and cut at `limit`: one line per problem in reports."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text)).strip()
    line = text.splitlines()[0] if text else ""
    return line[:limit] + ("..." if len(line) > limit else "")


def gradebook(course_dir):
    """nbgrader's gradebook of the course folder (a context manager)."""
    from nbgrader.api import Gradebook

    return Gradebook(f"sqlite:///{Path(course_dir).resolve() / 'gradebook.db'}", course_id=COURSE_ID)
