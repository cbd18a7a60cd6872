"""Collect learners' files into submitted/, checked and repaired.

Learners hand in a .py or an .ipynb, sometimes both, sometimes with headers,
test cells or the checks' import deleted. Each file is read, repaired (repair.py) so that
every exercise is graded by its original test, and written as the notebook
nbgrader grades; what could not be repaired is said up front, per learner.
"""

import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import lessons as registry
from ..build import clear
from ..loader import LoadError
from ..source import code_fingerprint, generated_fingerprint
from .repair import repair
from .seal import snapshot_path, take_snapshot
from .setup import DEFAULT_DIR, GradingError, first_line, require_folder, say, solution_notebook

# A learner's folder name becomes nbgrader's student id.
LEARNER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")


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
    pristine = generated_fingerprint(registry.ROOT / "lessons", f"{lesson.folder}/{lesson.name}.py")
    if fp_py == fp_nb or fp_nb == pristine:
        return py  # the same code, or only the .py was edited
    if fp_py == pristine:
        return nb  # only the notebook was edited
    raise LoadError(f"{py.name} and {nb.name} were both edited and differ; submit only the one to grade "
                    f"(`course sync {lesson.number} --keep py|ipynb` makes them agree)")


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
