"""Which file to grade: a lesson's .py or its paired .ipynb.

A learner may work in `name.py` or in its paired `name.ipynb`. `pick_source`
decides which one to grade: the one that was edited, judged against the
state the two files last agreed on (the generated original recorded in
`lessons/MANIFEST.json`, then whatever both held at a `course sync` or at any
run that found them equal). When both changed and disagree it refuses
(SourceConflict), naming the exercises that differ, instead of guessing.
"""

import hashlib
import json
from pathlib import Path

from .cells import clean_source, differing, ipynb_code_cells, py_code_cells
from .loader import LoadError

MANIFEST = "MANIFEST.json"


class SourceConflict(LoadError):
    """Both the .py and the .ipynb were edited and they disagree."""


def _normal(cells):
    return [s for s in (clean_source(src) for _, src in cells) if s]


def code_fingerprint(path, text=None):
    """A hash of a lesson file's code cells, the same for a .py and its .ipynb."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    try:
        cells = ipynb_code_cells(text) if path.suffix == ".ipynb" else py_code_cells(text)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise LoadError(f"{path}: cannot read this notebook ({e}); is it valid JSON?") from None
    return hashlib.sha256("\n\0\n".join(_normal(cells)).encode()).hexdigest()


def generated_fingerprint(lesson_root, rel):
    """The fingerprint of the generated original of `rel`, if recorded."""
    from .lessons import ROOT

    for manifest in (Path(lesson_root) / MANIFEST, ROOT / "lessons" / MANIFEST):
        try:
            entry = json.loads(manifest.read_text()).get(rel)
        except (OSError, ValueError):
            continue
        if entry:
            return entry["code"]
    return None


def agreed_file(lesson, lesson_root):
    """Where the code the .py and .ipynb last agreed on is recorded (a hidden file beside them)."""
    return Path(lesson_root) / lesson.folder / f".{lesson.name}.agreed"


def baseline(lesson, lesson_root):
    """The fingerprint of the code both files last agreed on: recorded, else the generated original."""
    try:
        return agreed_file(lesson, lesson_root).read_text().split()[0]
    except (OSError, IndexError):
        return generated_fingerprint(lesson_root, f"{lesson.folder}/{lesson.name}.py")


def remember_agreement(lesson, lesson_root, fingerprint):
    """Record `fingerprint` as the state both files agree on; quietly skipped on a read-only copy."""
    if fingerprint == baseline(lesson, lesson_root):
        return
    try:
        agreed_file(lesson, lesson_root).write_text(
            f"{fingerprint}\n# the code {lesson.name}.py and {lesson.name}.ipynb last agreed on "
            f"(written by the course; deleting it is harmless)\n")
    except OSError:
        pass


def _names(names, limit=6):
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def pick_source(lesson, lesson_root, remember=True):
    """The file to grade for `lesson` under `lesson_root`: its .py or .ipynb.

    The one that changed since the two last agreed (at build, at `course sync`, or whenever a run
    found them equal, as after every save in Jupyter with jupytext's pairing). When both files agree,
    that becomes the new baseline (`remember`), so one conflict never turns into a conflict per save."""
    py, nb = lesson.script(lesson_root), lesson.notebook(lesson_root)
    if not py.exists() and not nb.exists():
        raise LoadError(f"{py} not found (nor {nb.name}): is --lessons pointing at the right folder?")
    if not nb.exists():
        return py
    if not py.exists():
        return nb
    fp_py, fp_nb = code_fingerprint(py), code_fingerprint(nb)
    if fp_py == fp_nb:
        if remember:
            remember_agreement(lesson, lesson_root, fp_py)
        return py
    agreed = baseline(lesson, lesson_root)
    if fp_nb == agreed:
        return py  # only the .py changed since they last agreed
    if fp_py == agreed:
        return nb  # only the notebook changed
    raise SourceConflict(
        f"{py.name} and {nb.name} differ in {_names(differing(py, nb)) or 'their code'}, and both changed since "
        f"they last agreed, so it is not clear which one to grade ({py.parent}). Keep one with\n"
        f"    course sync {lesson.number} --keep py      (or --keep ipynb)\n"
        f"which backs up the other and rewrites it from the one you keep."
    )
