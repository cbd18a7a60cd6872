"""Collect learners' files into submitted/, checked and repaired.

Learners hand in a .py or an .ipynb, sometimes both, sometimes with headers,
test cells or the checks' import deleted. Each file is read, repaired so that
every exercise is graded by its original test, and written as the notebook
nbgrader grades; what could not be repaired is said up front, per learner.
"""

import ast
import copy
import json
import re
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import lessons as registry
from ..build import KERNELSPEC, clear
from ..loader import LoadError
from ..source import code_fingerprint
from .seal import snapshot_path, take_snapshot
from .setup import DEFAULT_DIR, GradingError, exercises, first_line, require_folder, say, solution_notebook

# A learner's folder name becomes nbgrader's student id; the checks' import is what every test cell needs.
LEARNER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")
CHECK_IMPORT = re.compile(r"^from checks\.lesson\d+ import exercises as check\s*$", re.M)


@dataclass
class Submission:
    """What `collect` found for one learner."""

    learner: str
    file: str = ""  # the file graded, relative to the learner's folder
    gradable: bool = True
    problems: list = field(default_factory=list)  # why it cannot be graded, or what will cost points
    notes: list = field(default_factory=list)  # what was repaired, what to know
    sha256: str = ""  # of the snapshot taken at collect time: what the judge grades


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


def repair(nb, lesson, solution_nb, released=None):
    """Check a learner notebook against the lesson's graded cells and make it gradable.

    Returns (notebook, problems, notes). Problems cost points (syntax errors,
    blank exercises); notes are repairs made so that every exercise is graded
    by its original test. `released`: clear(solution_nb), when the caller has it (collect: once per batch).
    """
    import nbformat

    released = released if released is not None else clear(solution_nb)
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

    require_folder(course_dir)
    submissions, course_dir = Path(submissions), Path(course_dir)
    if not submissions.is_dir():
        raise GradingError(f"{submissions} is not a folder of learner folders")
    solution_nb = solution_notebook(lesson)
    released = clear(solution_nb)  # nbgrader's release of the reference: the same for every learner
    results = {}
    for folder in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        sub = Submission(folder.name)
        results[sub.learner] = sub
        target = course_dir / "submitted" / sub.learner / lesson.folder
        for old in (target, snapshot_path(course_dir, lesson, sub.learner).parent):
            if old.exists():
                shutil.rmtree(old)  # never grade an older submission by mistake
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
            nb, problems, notes = repair(nb, lesson, solution_nb, released)
            sub.problems += problems
            sub.notes += notes
        except LoadError as e:
            sub.gradable = False
            sub.problems.append(str(e))
            continue
        except Exception as e:  # whatever else a file can do: this learner is not graded, the others are
            sub.gradable = False
            sub.problems.append(f"could not be processed: {type(e).__name__}: {first_line(e)}")
            continue
        target.mkdir(parents=True)
        nbformat.write(nb, target / f"{lesson.name}.ipynb")
        sub.sha256 = take_snapshot(course_dir, lesson, sub.learner)
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
