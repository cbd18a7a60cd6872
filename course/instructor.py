"""Grade the course with nbgrader: release, collect, autograde, feedback, grades.

One nbgrader course folder (default `course-nbgrader/` at the top of the
repository, git-ignored) serves every lesson present in solutions/:

    nbgrader_config.py                    kernel, per-cell timeout, stderr filter, missing cells
    jupyter/kernels/llm-from-scratch/     the grading kernel: this environment's python, the repo on PYTHONPATH
    source/NN_name/name.ipynb             from solutions/NN_name/name.py: notebooks only, no jupytext pairing
    release/NN_name/name.ipynb            nbgrader generate_assignment: no solutions, no hidden tests
    submitted/LEARNER/NN_name/name.ipynb  `collect`: each learner's file, checked and repaired
    autograded/ feedback/ gradebook.db grades.csv   nbgrader autograde, generate_feedback, export
    reports/NN_name.csv                   one line per learner: score, outcome, what went wrong
    logs/NN_name/LEARNER.log              nbgrader's own log of each learner's autograde

nbgrader runs in a subprocess (`python -m nbgrader ...`) with this
environment's bin/ first on PATH (it shells out to `alembic`). A watcher
splits autograde's log per learner and stops a learner's kernel past a
wall-clock limit, so one submission can never stop the batch.
"""

import ast
import copy
import csv
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import lessons as registry
from .build import KERNELSPEC, MARKERS, clear, read_solution
from .grading import record, sandbox
from .grading.integrity import Guard, TamperError
from .loader import LoadError, code_fingerprint

DEFAULT_DIR = registry.ROOT / "course-nbgrader"
COURSE_ID = "llm-from-scratch"
KERNEL_NAME = "llm-from-scratch"
CELL_TIMEOUT = 30  # seconds per cell (nbgrader's default); an infinite loop costs one per hanging cell
CHECK_TIMEOUT = 30  # seconds for the judge's check of one exercise (visible and hidden seeds together)
LEARNER_TIMEOUT = 600  # seconds for one learner's whole notebook: many slow cells, each under CELL_TIMEOUT
# stderr that says nothing about correctness. A check's verdict is an exception, never stderr, but nbgrader
# scores any stderr in a graded cell 0: Python warnings (`file:line: SomeWarning: ...`, e.g. a torch
# deprecation triggered by correct code) and matplotlib's first-run font cache notice are dropped.
HARMLESS_STDERR = r"(?m)^\S[^\n]*:\d+: \w*Warning: |^Matplotlib is building the font cache"
LEARNER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")
CHECK_IMPORT = re.compile(r"^from checks\.lesson\d+ import exercises as check\s*$", re.M)
EXIT_GUARD = '''\
# Added by the grader: this notebook killed its kernel (os._exit) when it was first graded.
# os._exit now raises SystemExit instead, so the cell that calls it fails and the rest is graded.
import os as _grader_os


def _grader_no_exit(status=0):
    raise SystemExit(f"os._exit({status}) was called; the grader keeps the kernel alive")


_grader_os._exit = _grader_no_exit
'''


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

# A graded cell missing from a submission is put back and applied.
# `course nbgrader collect` already restores every missing test cell (and
# reports it); this covers notebooks placed in submitted/ by other means.
c.OverwriteCells.add_missing_cells = True
'''


def _kernelspec(repo, course_dir):
    # The kernel starts contained (course.grading.kernel): the repository and this course folder are
    # read-only for the learner's code, except the notebook's own folder.
    return {
        "argv": [sys.executable, "-m", "course.grading.kernel", "-f", "{connection_file}"],
        "display_name": "LLM From Scratch (grading)",
        "language": "python",
        "env": {"PYTHONPATH": str(repo), "COURSE_OUT": "out", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                "COURSE_PROTECT": os.pathsep.join([str(repo), str(Path(course_dir).resolve())])},
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


def nbgrader_env():
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(registry.ROOT), env.get("PYTHONPATH", "")] if p)
    env.pop("NBGRADER_EXECUTION", None)
    env.pop("COURSE_FAST", None)
    return env


def _descendants(pid):
    """Process ids below `pid` (Linux /proc; empty elsewhere)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_nbgrader(course_dir, *args):
    """Run `nbgrader ARGS` in the course folder; (exit code, output)."""
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=nbgrader_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc.returncode, proc.stdout


def _require(course_dir):
    if not (Path(course_dir) / "nbgrader_config.py").is_file():
        raise GradingError(f"{course_dir} is not an nbgrader course folder yet: run `course nbgrader init`")


def check_release(course_dir, lesson, solutions_root=None):
    """Problems of the released lesson: files other than the notebook, solution text, hidden tests."""
    folder = Path(course_dir) / "release" / lesson.folder
    problems = []
    files = [p for p in folder.rglob("*") if p.is_file()]
    extra = [p.name for p in files if p.suffix != ".ipynb"]
    if extra:
        problems.append(f"release/{lesson.folder} holds files that are not notebooks: {extra}")
    secrets = solution_lines(lesson, solutions_root)
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for marker in MARKERS:
            if marker in text:
                problems.append(f"{path.name} contains {marker!r}")
        if path.suffix == ".ipynb":
            import nbformat

            code = "\n".join(c.source for c in nbformat.reads(text, as_version=4).cells)
            leaked = sorted({line for line in code.splitlines() if line.strip() in secrets})
            if leaked:
                problems.append(f"{path.name} contains solution or hidden-test lines: {leaked[:3]}")
    return problems


def solution_lines(lesson, solutions_root=None):
    """Stripped lines that occur only inside solution or hidden-test regions of the lesson's source."""
    nb = solution_notebook(lesson, solutions_root)
    inside, outside = set(), set()
    for cell in nb.cells:
        region = None
        for line in cell.source.splitlines():
            text = line.strip()
            if text.startswith("### BEGIN "):
                region = text
                continue
            if text.startswith("### END "):
                region = None
                continue
            (inside if region else outside).add(text)
    return {line for line in inside - outside if line and not line.startswith("#")}


def release(course_dir=DEFAULT_DIR, lessons=None, log=say):
    """Refresh source/ from solutions/ and run nbgrader generate_assignment; refuse a leaking release."""
    if not (Path(course_dir) / "nbgrader_config.py").is_file():
        write_config(course_dir)
    for lesson in lessons or gradable():
        write_source(course_dir, lesson)
        code, out = run_nbgrader(course_dir, "generate_assignment", lesson.folder, "--force")
        if code != 0:
            raise GradingError(f"nbgrader generate_assignment {lesson.folder} failed:\n{_tail(out)}")
        problems = check_release(course_dir, lesson)
        if problems:
            shutil.rmtree(Path(course_dir) / "release" / lesson.folder)
            raise GradingError(f"release/{lesson.folder} removed, it leaked: " + "; ".join(problems))
        log(f"released {lesson.folder}: release/{lesson.folder}/{lesson.name}.ipynb "
            f"({len(exercises(lesson))} graded exercises, {sum(e.points for e in exercises(lesson)):g} points)")


def _tail(text, lines=15):
    return "\n".join(text.strip().splitlines()[-lines:])


# --------------------------------------------------------------- collecting


@dataclass
class Submission:
    """What `collect` found for one learner."""

    learner: str
    file: str = ""  # the file graded, relative to the learner's folder
    gradable: bool = True
    problems: list = field(default_factory=list)  # why it cannot be graded, or what will cost points
    notes: list = field(default_factory=list)  # what was repaired, what to know


def _candidates(folder, lesson):
    found = [p for p in sorted(folder.rglob("*"))
             if p.is_file() and p.suffix in (".py", ".ipynb") and ".ipynb_checkpoints" not in p.parts
             and ".bak-" not in p.name]
    exact = [p for p in found if p.name in (f"{lesson.name}.py", f"{lesson.name}.ipynb")]
    return exact or found


def pick_file(folder, lesson):
    """The learner's file for `lesson` in `folder`, or LoadError saying why there is none."""
    files = _candidates(folder, lesson)
    if not files:
        raise LoadError(f"no {lesson.name}.py or {lesson.name}.ipynb in the folder")
    py = [p for p in files if p.suffix == ".py"]
    nb = [p for p in files if p.suffix == ".ipynb"]
    if len(py) > 1 or len(nb) > 1:
        raise LoadError(f"several candidate files, submit one: {[str(p.relative_to(folder)) for p in files]}")
    if not nb or not py:
        return files[0]
    py, nb = py[0], nb[0]
    try:
        fp_py = code_fingerprint(py)
    except (LoadError, UnicodeDecodeError):
        return nb  # an unreadable script next to a notebook: grade the notebook
    try:
        fp_nb = code_fingerprint(nb)
    except (LoadError, UnicodeDecodeError):
        return py
    pristine = _pristine_fingerprint(lesson)
    if fp_py == fp_nb or fp_nb == pristine:
        return py  # the same code, or only the .py was edited
    if fp_py == pristine:
        return nb  # only the notebook was edited
    raise LoadError(f"{py.name} and {nb.name} were both edited and differ; submit only the one to grade "
                    f"(`course sync {lesson.number} --keep py|ipynb` makes them agree)")


def _pristine_fingerprint(lesson):
    manifest = registry.ROOT / "lessons" / "MANIFEST.json"
    if manifest.is_file():
        entry = json.loads(manifest.read_text()).get(f"{lesson.folder}/{lesson.name}.py")
        if entry:
            return entry["code"]
    return None


def _markdown_code_lines(text):
    """Line numbers (0-based) in a py:percent text where a markdown cell holds uncommented code:
    the code of a cell whose `# %%` header was deleted."""
    hits, in_markdown = [], False
    for i, line in enumerate(text.splitlines()):
        if line.startswith("# %%"):
            in_markdown = "[markdown]" in line or "[md]" in line
        elif in_markdown and line.strip() and not line.lstrip().startswith("#"):
            hits.append(i)
            in_markdown = False  # the cell is split here: the rest is code
    return hits


def read_learner_file(path, lesson, solution_nb):
    """The learner's file as a notebook, with header repairs: (nb, notes). Raises LoadError if unreadable."""
    import jupytext
    import nbformat

    notes = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise LoadError(f"{path.name} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise LoadError(f"{path.name} cannot be read: {e.strerror}") from None
    if not text.strip():
        raise LoadError(f"{path.name} is empty")
    if path.suffix == ".ipynb":
        try:
            nb = nbformat.reads(text, as_version=4)
        except Exception as e:  # nbformat raises several kinds (JSON, schema, version)
            raise LoadError(f"{path.name} is not a readable notebook: {str(e).splitlines()[0][:200]}") from None
        return nb, notes
    lines = text.splitlines()
    headers = {m["grade_id"]: m for c in solution_nb.cells if (m := c.metadata.get("nbgrader")) and not m.get("grade")}
    for i in reversed(_markdown_code_lines(text)):
        # A deleted header: give the code its cell back (with its exercise's header if it defines one).
        block = "\n".join(lines[i:])
        exercise = next((g for g in headers if re.search(rf"^def {re.escape(g)}\(", block, re.M)), None)
        header = f"# %% nbgrader={json.dumps(headers[exercise], sort_keys=True)}" if exercise else "# %%"
        lines.insert(i, header)
        notes.append(f"line {i + 1}: code inside a markdown cell (a deleted `# %%` header); "
                     f"made it a code cell again{f' (exercise {exercise})' if exercise else ''}")
    try:
        nb = jupytext.reads("\n".join(lines) + "\n", fmt="py:percent")
    except Exception as e:
        raise LoadError(f"{path.name} is not a readable py:percent script: {str(e)[:200]}") from None
    return nb, notes


def _defines(cell, name):
    return cell.cell_type == "code" and re.search(rf"^\s*def {re.escape(name)}\(", cell.source, re.M)


def _strip_magics(src):
    return "\n".join("" if re.match(r"\s*[%!]", line) else line for line in src.splitlines())


def repair(nb, lesson, solution_nb):
    """Check a learner notebook against the lesson's graded cells and make it gradable.

    Returns (notebook, problems, notes). Problems cost points (syntax errors,
    blank exercises); notes are repairs made so that every exercise is graded
    by its original test.
    """
    import nbformat

    released = clear(solution_nb)
    meta = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"] for c in released.cells
            if "nbgrader" in c.metadata}
    released_source = {c.metadata["nbgrader"]["grade_id"]: c.source for c in released.cells if "nbgrader" in c.metadata}
    graded = exercises(lesson, solution_nb)
    problems, notes = [], []
    nb = copy.deepcopy(nb)
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}

    # Duplicated or unknown graded cells: keep the first copy of each, plain cells for the rest.
    seen = Counter()
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is None:
            cell.metadata.pop("nbgrader", None)
            continue
        seen[grade_id] += 1
        if grade_id not in meta:
            notes.append(f"cell {grade_id!r} is not a graded cell of this lesson; graded as a plain cell")
            del cell.metadata["nbgrader"]
        elif seen[grade_id] > 1:
            notes.append(f"cell {grade_id!r} appears {seen[grade_id]} times; the copies after the first run "
                         f"as plain cells")
            del cell.metadata["nbgrader"]
        else:
            if cell.metadata["nbgrader"] != meta[grade_id]:
                notes.append(f"the nbgrader metadata of {grade_id!r} was changed; restored")
            cell.metadata["nbgrader"] = copy.deepcopy(meta[grade_id])
            if meta[grade_id].get("locked") and cell.source.strip() != released_source[grade_id].strip():
                notes.append(f"{grade_id} was edited; nbgrader grades the original test")

    # Missing test cells go back after their exercise (or the cell defining it, or at the end).
    present = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}
    for ex in graded:
        if ex.name not in present:
            where = next((c for c in nb.cells if _defines(c, ex.name)), None)
            notes.append(f"the header of exercise {ex.name}'s cell is missing"
                         + ("; its code still runs" if where is not None else "; no `def " + ex.name
                            + "` found: not attempted"))
        if ex.test in present:
            continue
        anchor = present.get(ex.name) or next((c for c in nb.cells if _defines(c, ex.name)), None)
        cell = nbformat.v4.new_code_cell(released_source[ex.test], metadata={"nbgrader": copy.deepcopy(meta[ex.test])})
        index = nb.cells.index(anchor) + 1 if anchor is not None else len(nb.cells)
        nb.cells.insert(index, cell)
        present[ex.test] = cell
        notes.append(f"{ex.test} was missing (deleted, or its header was); the original test was put back")

    # Every test cell calls `check`: the import must be there.
    imports = CHECK_IMPORT.findall("\n".join(c.source for c in solution_nb.cells if c.cell_type == "code"))
    if imports and not any(CHECK_IMPORT.search(c.source) for c in nb.cells if c.cell_type == "code"):
        first_test = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade"))
        nb.cells.insert(first_test, nbformat.v4.new_code_cell(imports[0].strip()))
        notes.append(f"`{imports[0].strip()}` was missing; added before the first test")

    # What will cost points, said up front.
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            ast.parse(_strip_magics(cell.source))
        except SyntaxError as e:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            problems.append(f"syntax error in cell {i}{f' ({grade_id})' if grade_id else ''}, line {e.lineno}: "
                            f"{e.msg}")
        if re.search(r"\bos\._exit\s*\(", cell.source):
            notes.append(f"cell {i} calls os._exit, which kills the kernel")
    blank = [ex.name for ex in graded if ex.name in present and "NotImplementedError" in present[ex.name].source
             and present[ex.name].source.strip() == released_source[ex.name].strip()]
    if len(blank) == len(graded):
        notes.append("no exercise attempted")
    elif blank:
        notes.append(f"not attempted: {', '.join(blank)}")

    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
        if cell.cell_type == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell.metadata.pop("jupytext", None)
    nbformat.validate(nb)
    return nb, problems, notes


def collect(submissions, lesson, course_dir=DEFAULT_DIR, log=say):
    """Put each learner's file for `lesson` (SUBMISSIONS/LEARNER/...) into submitted/, checked and repaired.

    Returns {learner: Submission}; also written to reports/NN_name-collect.json for `grade`.
    """
    import nbformat

    _require(course_dir)
    submissions, course_dir = Path(submissions), Path(course_dir)
    if not submissions.is_dir():
        raise GradingError(f"{submissions} is not a folder of learner folders")
    solution_nb = solution_notebook(lesson)
    results = {}
    for folder in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        sub = Submission(folder.name)
        results[sub.learner] = sub
        target = course_dir / "submitted" / sub.learner / lesson.folder
        if target.exists():
            shutil.rmtree(target)  # never grade an older submission by mistake
        if not LEARNER_ID.match(sub.learner):
            sub.gradable = False
            sub.problems.append("the folder name is not usable as a learner id (letters, digits, _.@+-)")
            continue
        try:
            path = pick_file(folder, lesson)
            sub.file = str(path.relative_to(folder))
            nb, sub.notes = read_learner_file(path, lesson, solution_nb)
            if not any(c.cell_type == "code" and c.source.strip() for c in nb.cells):
                raise LoadError(f"{path.name} holds no code")
            nb, problems, notes = repair(nb, lesson, solution_nb)
            sub.problems += problems
            sub.notes += notes
        except LoadError as e:
            sub.gradable = False
            sub.problems.append(str(e))
            continue
        except Exception as e:  # whatever else a file can do: this learner is not graded, the others are
            sub.gradable = False
            sub.problems.append(f"could not be processed: {type(e).__name__}: {_first_line(e)}")
            continue
        target.mkdir(parents=True)
        nbformat.write(nb, target / f"{lesson.name}.ipynb")
    report = course_dir / "reports" / f"{lesson.folder}-collect.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(report.read_text()) if report.is_file() else {}
    known.update({k: asdict(v) for k, v in results.items()})  # learners collected earlier stay known
    report.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")
    for sub in results.values():
        state = f"ready ({sub.file})" if sub.gradable else "NOT GRADABLE"
        log(f"{sub.learner:<20} {state}" + "".join(f"\n    ! {p}" for p in sub.problems)
            + "".join(f"\n    - {n}" for n in sub.notes))
    return results


# ------------------------------------------------------------------ grading


@dataclass
class Outcome:
    """One learner's result for one lesson."""

    learner: str
    status: str  # graded | not graded
    score: float = 0.0
    max_score: float = 0.0
    exercises: dict = field(default_factory=dict)  # exercise -> "pass" or why it scored 0
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    seconds: float = 0.0  # time nbgrader took for this learner

    def summary(self):
        took = f" ({self.seconds:.0f} s)" if self.seconds else ""
        lines = [f"{self.learner:<20} {self.score:g}/{self.max_score:g}  {self.status}{took}"]
        lines += [f"    {ex}: {state}" for ex, state in self.exercises.items() if state != "pass"]
        lines += [f"    ! {p}" for p in self.problems] + [f"    - {n}" for n in self.notes]
        return "\n".join(lines)


def _first_line(text, limit=160):
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text)).strip()
    line = text.splitlines()[0] if text else ""
    return line[:limit] + ("..." if len(line) > limit else "")


def cell_verdicts(path, lesson):
    """{exercise: "pass" | why} from the outputs of an autograded notebook's graded cells."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade") or cell.cell_type != "code":
            continue
        name = meta["grade_id"].removeprefix("test_")
        verdict = "pass"
        for o in cell.get("outputs", []):
            if o.output_type == "error":
                if o.ename in ("CellTimeoutError", "KeyboardInterrupt"):  # nbgrader interrupts a cell at its timeout
                    verdict = "timeout: the cell did not finish in time (an infinite loop?)"
                elif o.ename == "NotImplementedError" or (o.ename == "LearnerError"
                                                          and o.evalue.startswith("NotImplementedError")):
                    verdict = "not attempted"
                else:
                    verdict = f"{o.ename}: {_first_line(o.evalue)}"
                break
            if o.output_type == "stream" and o.name == "stderr":
                verdict = f"wrote to stderr: {_first_line(o.text)}"
                break
            if o.output_type == "execute_result":  # nbgrader reads a displayed number as partial credit
                verdict = f"displayed {_first_line(o.get('data', {}).get('text/plain', ''))}"
                break
        out[name] = verdict
    return out


def _gradebook(course_dir):
    from nbgrader.api import Gradebook

    return Gradebook(f"sqlite:///{Path(course_dir).resolve() / 'gradebook.db'}", course_id=COURSE_ID)


def _forget(course_dir, lesson, learner):
    """Remove a learner's earlier autograde of `lesson` (files and gradebook rows)."""
    from nbgrader.api import MissingEntry

    for sub in ("autograded", "feedback"):
        folder = Path(course_dir) / sub / learner / lesson.folder
        if folder.exists():
            shutil.rmtree(folder)
    with _gradebook(course_dir) as gb:
        try:
            gb.remove_submission(lesson.folder, learner)
        except MissingEntry:
            pass


STUDENT_LINE = re.compile(r"Creating/updating student with ID '([^']+)'")
FAILED_LINE = re.compile(r"There was an error processing assignment '[^']+' for student '([^']+)'")


def autograde(course_dir, lesson, learners, learner_timeout=LEARNER_TIMEOUT, student="*", guard=None):
    """One `nbgrader autograde` run over the submitted learners, watched.

    nbgrader grades one learner after the other and carries on past a failure.
    A watcher reads its log as it comes: it splits the log per learner and,
    when one learner's notebook runs longer than `learner_timeout` in all
    (slow cells that add up), kills that kernel, so nbgrader records the
    failure and moves on. Returns {learner: (state, seconds, log)}, state in
    ok | failed | killed | not reached.

    When nbgrader moves on to the next learner, the processes the previous
    learner's notebook left behind are killed and `guard` (an integrity.Guard)
    is verified, so a change is pinned on the learner whose code made it.
    """
    import threading

    cmd = [sys.executable, "-m", "nbgrader", "autograde", lesson.folder, "--force", f"--student={student}"]
    proc = subprocess.Popen(cmd, cwd=course_dir, env=nbgrader_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    logs, started, killed, current = {None: []}, {}, set(), [None]

    def read():
        for line in proc.stdout:
            m = STUDENT_LINE.search(line)
            if m:
                current[0] = m.group(1)
                started[current[0]] = time.time()
                logs[current[0]] = []
            logs[current[0]].append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    previous = None
    while proc.poll() is None:
        learner = current[0]
        if learner != previous and previous is not None:
            _between_learners(proc, guard, previous)
        previous = learner
        if learner and learner not in killed and time.time() - started[learner] > learner_timeout:
            killed.add(learner)
            # The kernel: nbgrader records a dead kernel and goes on with the next learner. Without
            # /proc, nbgrader itself (its kernel then exits too; the learners after are not reached).
            _kill(_descendants(proc.pid) or [proc.pid])
        time.sleep(0.5)
    # Processes the last notebook left behind may hold nbgrader's output pipe open: kill them before
    # waiting for its end (a forked kernel can even deadlock and never exit by itself).
    sandbox.kill_descendants()
    reader.join(timeout=60)
    if previous is not None:
        _between_learners(None, guard, current[0] or previous)
    ended = time.time()
    text = "".join(line for lines in logs.values() for line in lines)
    failed = set(FAILED_LINE.findall(text))
    order = [x for x in logs if x is not None]
    results = {}
    for i, learner in enumerate(order):
        seconds = (started[order[i + 1]] if i + 1 < len(order) else ended) - started[learner]
        autograded = Path(course_dir) / "autograded" / learner / lesson.folder / f"{lesson.name}.ipynb"
        state = "killed" if learner in killed else "failed" if learner in failed or not autograded.is_file() else "ok"
        results[learner] = (state, seconds, "".join(logs[None] + logs[learner]))
    for learner in learners:
        if learner not in results:
            results[learner] = ("not reached", 0.0, text)
    return results


def _between_learners(proc, guard, learner):
    """Kill what `learner`'s notebook left running (orphans re-parented here), then check the files."""
    sandbox.kill_descendants(keep=(proc.pid,) if proc is not None else ())
    if guard is not None:
        try:
            guard.verify(learner)
        except TamperError:
            if proc is not None:
                _kill(_descendants(proc.pid) + [proc.pid])
            raise


def _not_graded_feedback(course_dir, lesson, outcome):
    folder = Path(course_dir) / "feedback" / outcome.learner / lesson.folder
    folder.mkdir(parents=True, exist_ok=True)
    items = "".join(f"<li>{html.escape(p)}</li>" for p in outcome.problems + outcome.notes)
    (folder / f"{lesson.name}.html").write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{lesson.folder}: not graded</title></head><body>"
        f"<h1>{html.escape(lesson.title)}</h1><p><b>Your submission could not be graded (score 0).</b></p>"
        f"<ul>{items}</ul><p>Fix it and submit again; `pytest checks/lesson{lesson.number}` shows what "
        f"the grader will find.</p></body></html>\n")


def protected_paths(course_dir, lesson):
    """The files that decide grades: the checks and the course package, the reference lesson (its
    grading cells name the checks and seeds), and the course folder's configuration, source/ and release/."""
    course_dir = Path(course_dir)
    return [registry.ROOT / "checks", registry.ROOT / "course", lesson.script(registry.solutions_dir()),
            course_dir / "nbgrader_config.py", course_dir / "jupyter", course_dir / "source", course_dir / "release"]


def grade(lesson, course_dir=DEFAULT_DIR, submissions=None, learners=None, learner_timeout=LEARNER_TIMEOUT,
          check_timeout=CHECK_TIMEOUT, memory_gb=None, log=say):
    """Autograde, feedback and export for `lesson`; returns {learner: Outcome} and writes reports/NN_name.csv.

    With `submissions`, collect them first. Every learner collected (or found in
    submitted/) gets an outcome, and a row in grades.csv, even when their file
    could not be graded. nbgrader runs each notebook for the feedback; the points
    are the judge's (course.grading), run on the submitted code in a contained probe.
    """
    _require(course_dir)
    course_dir = Path(course_dir)
    if not (course_dir / "release" / lesson.folder).is_dir():
        raise GradingError(f"{lesson.folder} is not released in {course_dir}: run `course nbgrader release "
                           f"{lesson.number}` first (it records the tests in the gradebook)")
    if submissions is not None:
        collect(submissions, lesson, course_dir, log=log)
    report = course_dir / "reports" / f"{lesson.folder}-collect.json"
    collected = {k: Submission(**v) for k, v in json.loads(report.read_text()).items()} if report.is_file() else {}
    submitted = {p.parent.name for p in (course_dir / "submitted").glob(f"*/{lesson.folder}")}
    everyone = sorted(set(collected) | submitted)
    if learners:
        unknown = sorted(set(learners) - set(everyone))
        if unknown:
            raise GradingError(f"no submission of {', '.join(unknown)} for {lesson.folder}: collect it first")
        everyone = [x for x in everyone if x in set(learners)]
    max_score = sum(e.points for e in exercises(lesson))
    with _gradebook(course_dir) as gb:
        for learner in everyone:
            if LEARNER_ID.match(learner):
                gb.update_or_create_student(learner)

    outcomes, to_grade = {}, []
    for learner in everyone:
        sub = collected.get(learner, Submission(learner))
        outcomes[learner] = Outcome(learner, "not graded", 0.0, max_score, problems=list(sub.problems),
                                    notes=list(sub.notes))
        if LEARNER_ID.match(learner):
            _forget(course_dir, lesson, learner)  # a failed regrade must not leave an older score behind
        notebook = course_dir / "submitted" / learner / lesson.folder / f"{lesson.name}.ipynb"
        if sub.gradable and notebook.is_file():
            to_grade.append(learner)
        elif sub.gradable:
            outcomes[learner].problems.append(f"no {lesson.name}.ipynb in submitted/{learner}/{lesson.folder}")

    logs = course_dir / "logs" / lesson.folder
    logs.mkdir(parents=True, exist_ok=True)
    sandbox.set_subreaper()  # whatever learner code leaves behind comes back here, to be killed
    guard = Guard(protected_paths(course_dir, lesson))
    regraded = {(lesson.folder, learner) for learner in everyone}
    unchanged = {k: v for k, v in record.gradebook_scores(course_dir).items() if k not in regraded}
    results = {}
    if to_grade:
        if learners:
            for learner in to_grade:
                results.update(autograde(course_dir, lesson, [learner], learner_timeout, student=learner,
                                         guard=guard))
        else:
            results = autograde(course_dir, lesson, to_grade, learner_timeout, guard=guard)
    for learner in to_grade:
        state, seconds, text = results[learner]
        outcome = outcomes[learner]
        if state == "failed" and ("DeadKernelError" in text or "Kernel died" in text):
            # Grade the rest: the rerun turns os._exit into an error in the cell that calls it.
            _add_exit_guard(course_dir / "submitted" / learner / lesson.folder / f"{lesson.name}.ipynb")
            outcome.problems.append("the kernel died while grading (os._exit?); graded again with os._exit "
                                    "disabled, so the cell that calls it fails")
            _forget(course_dir, lesson, learner)
            first = text
            state, more, text = autograde(course_dir, lesson, [learner], learner_timeout, student=learner,
                                          guard=guard)[learner]
            seconds += more
            text = f"{first}\n---- graded again with os._exit disabled ----\n{text}"
        (logs / f"{learner}.log").write_text(text)
        autograded = course_dir / "autograded" / learner / lesson.folder / f"{lesson.name}.ipynb"
        notebook_verdicts = {}
        if state == "ok":
            try:
                notebook_verdicts = cell_verdicts(autograded, lesson)
            except Exception as e:  # the judge's verdicts below are the grade anyway
                outcome.notes.append(f"could not read the verdicts in {autograded.name}: {_first_line(e)}")
        else:
            outcome.problems.append(_failure(state, text, learner_timeout).replace(
                "not graded: ", "nbgrader could not run the notebook for the feedback: ", 1))
            _forget(course_dir, lesson, learner)
        outcome.seconds = seconds
        _judge(course_dir, lesson, outcome, notebook_verdicts, guard, check_timeout, memory_gb)

    graded = [learner for learner, o in outcomes.items() if o.status == "graded"]
    with_notebook = [learner for learner in graded if results.get(learner, ("",))[0] == "ok"
                     and (course_dir / "autograded" / learner / lesson.folder / f"{lesson.name}.ipynb").is_file()]
    for student in (with_notebook if learners else ["*"] if with_notebook else []):  # a regrade: its learners
        code, out = run_nbgrader(course_dir, "generate_feedback", lesson.folder, "--force", f"--student={student}")
        if code != 0:
            log(f"generate_feedback reported errors:\n{_tail(out)}")
    for outcome in outcomes.values():
        if LEARNER_ID.match(outcome.learner) and outcome.learner not in with_notebook:
            _not_graded_feedback(course_dir, lesson, outcome)
    code, out = run_nbgrader(course_dir, "export", "--to=grades.csv")
    if code != 0:
        raise GradingError(f"nbgrader export failed:\n{_tail(out)}")
    recorded = {(lesson.folder, o.learner): (o.score, o.max_score) for o in outcomes.values()
                if LEARNER_ID.match(o.learner)}
    record.verify_export(course_dir / "grades.csv", recorded, unchanged)
    write_report(course_dir / "reports" / f"{lesson.folder}.csv", outcomes)
    for outcome in outcomes.values():
        log(outcome.summary())
    log(f"{lesson.folder}: {len(graded)} of {len(outcomes)} learners graded; grades: {course_dir / 'grades.csv'}, "
        f"feedback: {course_dir / 'feedback'}, outcomes: {course_dir / 'reports' / (lesson.folder + '.csv')}")
    return outcomes


def _judge(course_dir, lesson, outcome, notebook_verdicts, guard, check_timeout, memory_gb):
    """The grade of record: the judge's verdict on each exercise of the learner's submitted code, its
    points written into the gradebook, disagreements with the notebook's own graded cells reported."""
    from .grading.lesson_judge import grading_calls, judge_file  # torch: only when grading

    started = time.time()
    notebook = Path(course_dir) / "submitted" / outcome.learner / lesson.folder / f"{lesson.name}.ipynb"
    calls = grading_calls(lesson, solution_notebook(lesson))
    verdicts = judge_file(lesson, notebook, calls, seconds=check_timeout, memory_gb=memory_gb, lenient=True)
    sandbox.kill_descendants()
    guard.verify(outcome.learner)  # before anything of this learner is recorded
    points = {}
    for ex in exercises(lesson):
        status, message = verdicts[ex.name]
        points[ex.test] = ex.points if status == "pass" else 0.0
        outcome.exercises[ex.name] = status if status in ("pass", "not attempted") else \
            f"{status}: {_first_line(message, 300)}"
        in_notebook = notebook_verdicts.get(ex.name)
        # A grading cell that passed, or displayed a value (checks return None), where the judge does not pass.
        if (in_notebook == "pass" or str(in_notebook).startswith("displayed")) and status != "pass":
            outcome.problems.append(f"{ex.test}: check tampered with: the notebook's own cell passed, the judge "
                                    f"found {status}; the judge's 0 counts")
        elif in_notebook is not None and in_notebook != "pass" and status == "pass":
            outcome.notes.append(f"{ex.test}: score disagrees: the notebook's cell gave {_first_line(in_notebook)}, "
                                 f"the judge passed it; the judge's {ex.points:g} counts")
    record.record(course_dir, lesson, outcome.learner, points)
    outcome.score = sum(points.values())
    outcome.status = "graded"
    outcome.seconds += time.time() - started


def _add_exit_guard(path):
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(EXIT_GUARD))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
    nbformat.write(nb, path)


def _failure(state, log, learner_timeout):
    """Why nbgrader could not grade a learner, from its log, in words."""
    if state == "not reached":
        return "not graded: nbgrader stopped before this learner; grade again with --learner"
    if state == "killed":
        return (f"not graded: still running after {learner_timeout} s in all, and stopped (many slow cells, "
                f"each under the per-cell timeout?)")
    if "Timeout waiting for IOPub output" in log:
        return ("not graded: a cell went on running after the per-cell timeout's interrupt (a loop that "
                "catches KeyboardInterrupt, e.g. a bare `except:`?)")
    if "DeadKernelError" in log or "Kernel died" in log:
        return "not graded: the kernel died again (a crash, out of memory?)"
    errors = re.findall(r"^\s*([\w.]*(?:Error|Exception|Exit)): (.*)$", log, re.M)
    if errors:
        return f"not graded: nbgrader failed with {errors[-1][0]}: {_first_line(errors[-1][1])}"
    return "not graded: nbgrader failed (see its log)"


REPORT_COLUMNS = ["learner", "status", "score", "max_score", "exercises_failed", "problems", "notes", "seconds"]


def write_report(path, outcomes):
    """reports/NN_name.csv: one row per learner; a partial regrade replaces only its learners' rows."""
    rows = {}
    if path.is_file():
        with open(path, newline="") as fh:
            rows = {row["learner"]: row for row in csv.DictReader(fh)}
    for o in outcomes.values():
        rows[o.learner] = {
            "learner": o.learner, "status": o.status, "score": f"{o.score:g}", "max_score": f"{o.max_score:g}",
            "exercises_failed": "; ".join(f"{ex}: {state}" for ex, state in o.exercises.items() if state != "pass"),
            "problems": "; ".join(o.problems), "notes": "; ".join(o.notes), "seconds": f"{o.seconds:.1f}"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows[k] for k in sorted(rows))


# --------------------------------------------------------------------- CLI

USAGE = """\
    course nbgrader init [--timeout S]             the course folder: config, grading kernel, source/
    course nbgrader release [LESSON ...]           nbgrader generate_assignment -> release/ (checked for leaks)
    course nbgrader collect LESSON SUBMISSIONS     SUBMISSIONS/LEARNER/<name>.py|.ipynb -> submitted/, checked
    course nbgrader grade LESSON [SUBMISSIONS]     (collect,) autograde, feedback, grades.csv, reports/
    course nbgrader points                         the graded exercises and points of each lesson (Markdown)
All take --dir DIR (default: course-nbgrader/ at the top of the repository)."""


def _lessons(keys):
    return [registry.get(k) for k in keys] if keys else gradable()


def _cmd_init(args):
    init(args.dir, timeout=args.timeout)


def _cmd_release(args):
    release(args.dir, _lessons(args.lessons))


def _cmd_collect(args):
    results = collect(args.submissions, registry.get(args.lesson), args.dir)
    return 0 if all(s.gradable for s in results.values()) else 2


def _cmd_grade(args):
    outcomes = grade(registry.get(args.lesson), args.dir, submissions=args.submissions,
                     learners=args.learner or None, learner_timeout=args.learner_timeout,
                     check_timeout=args.check_timeout, memory_gb=args.memory_limit)
    return 0 if all(o.status == "graded" for o in outcomes.values()) else 2


def _cmd_points(args):
    print(points_table(), end="")


def add_commands(sub):
    """Register `course nbgrader ...` on the course CLI's subparsers."""
    import argparse

    parser = sub.add_parser("nbgrader", help="instructors: release, collect and grade lessons with nbgrader",
                            description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="nbgrader_command", required=True)

    def command(name, run, help):
        p = commands.add_parser(name, help=help)
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the nbgrader course folder")
        p.set_defaults(run=run)
        return p

    p = command("init", _cmd_init, "write the course folder: nbgrader_config.py, grading kernel, source/")
    p.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell (default %(default)s)")
    p = command("release", _cmd_release, "nbgrader generate_assignment for lessons (default: all in solutions/)")
    p.add_argument("lessons", nargs="*", help="lesson numbers or names, e.g. 01")
    p = command("collect", _cmd_collect, "check learners' files and put them into submitted/")
    p.add_argument("lesson", help="lesson number or name, e.g. 01")
    p.add_argument("submissions", type=Path, help="a folder with one subfolder per learner")
    p = command("grade", _cmd_grade, "autograde, feedback and grades.csv for a lesson")
    p.add_argument("lesson", help="lesson number or name, e.g. 01")
    p.add_argument("submissions", type=Path, nargs="?", help="collect this folder first")
    p.add_argument("--learner", action="append", help="grade only this learner (repeatable)")
    p.add_argument("--learner-timeout", type=int, default=LEARNER_TIMEOUT,
                   help="seconds for one learner's whole notebook (default %(default)s)")
    p.add_argument("--check-timeout", type=float, default=CHECK_TIMEOUT,
                   help="seconds for the judge's check of one exercise (default %(default)s)")
    p.add_argument("--memory-limit", type=float, default=None, metavar="GB",
                   help="memory learner code may allocate (default $COURSE_MEMORY_LIMIT_GB or 4)")
    command("points", _cmd_points, "print the table of graded exercises and points")
