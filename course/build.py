"""Generate `lessons/` from `solutions/`: the one way learner files are made.

For each lesson script in solutions/ the build reads it with jupytext, runs
nbgrader's own preprocessors on it (CheckCellMetadata, ClearSolutions,
ClearHiddenTests, ClearMarkScheme: exactly what `nbgrader generate_assignment`
does to a notebook), and writes

    lessons/NN_name/name.py      the learner script (py:percent, nbgrader headers kept)
    lessons/NN_name/name.ipynb   its paired notebook: no outputs, fixed cell ids
    lessons/MANIFEST.json        sha256 of each generated file and of its code

Building twice gives identical bytes. A learner file that differs from what
the build last wrote (the learner's work) is never overwritten unless
`force=True`, and then a timestamped backup is made first.
"""

import copy
import hashlib
import json
import shutil
import time
from pathlib import Path

from . import lessons as registry
from .source import MANIFEST, code_fingerprint

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
           "BEGIN MARK SCHEME", "END MARK SCHEME")


class BuildError(Exception):
    pass


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def read_solution(path):
    """The solution script as a notebook object (jupytext)."""
    import jupytext

    return jupytext.read(path, fmt="py:percent")


def clear(nb):
    """Apply nbgrader's release preprocessors to a copy of `nb`."""
    from nbgrader.preprocessors import CheckCellMetadata, ClearHiddenTests, ClearMarkScheme, ClearSolutions

    nb = copy.deepcopy(nb)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    resources = {}
    for pre in (CheckCellMetadata(), ClearSolutions(), ClearHiddenTests(), ClearMarkScheme()):
        nb, resources = pre.preprocess(nb, resources)
    return nb


def notebook_metadata():
    """The metadata of a learner notebook: a Python 3 kernel, and jupytext's pairing with the .py
    (so that a save in Jupyter writes both files; the .py keeps only nbgrader's cell metadata)."""
    return {
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
        "jupytext": {"formats": "ipynb,py:percent", "notebook_metadata_filter": "-all",
                     "cell_metadata_filter": "nbgrader,-all"},
    }


def backup_path(target):
    """A new, unused name for a backup of `target`: name.bak-YYYYmmdd-HHMMSS[-N]."""
    stem = f"{target.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}"
    backup, n = target.with_name(stem), 1
    while backup.exists():
        n += 1
        backup = target.with_name(f"{stem}-{n}")
    return backup


def render(lesson, solutions_root):
    """The learner files of one lesson: {relative path: bytes}."""
    import jupytext

    src = lesson.script(solutions_root)
    nb = clear(read_solution(src))
    py_text = jupytext.writes(nb, fmt="py:percent")

    ipynb = copy.deepcopy(nb)
    ipynb.metadata = notebook_metadata()
    for i, cell in enumerate(ipynb.cells):
        cell["id"] = cell.metadata.get("nbgrader", {}).get("grade_id") or f"{lesson.name}-{i:03d}"
        if cell.cell_type == "code":
            cell["outputs"], cell["execution_count"] = [], None
    ipynb_text = jupytext.writes(ipynb, fmt="ipynb")
    if not ipynb_text.endswith("\n"):
        ipynb_text += "\n"

    files = {
        f"{lesson.folder}/{src.name}": py_text.encode(),
        f"{lesson.folder}/{lesson.name}.ipynb": ipynb_text.encode(),
    }
    # Other files of the lesson (helpers, configs) are copied as they are.
    for extra in sorted(src.parent.iterdir()):
        if extra.is_file() and extra != src and extra.suffix in (".py", ".md", ".txt", ".json", ".yaml"):
            files[f"{lesson.folder}/{extra.name}"] = extra.read_bytes()
    for rel, data in files.items():
        leaked = [m for m in MARKERS if m.encode() in data]
        if leaked:
            raise BuildError(f"{rel} would contain {leaked[0]!r}: keep solution regions inside solution cells")
    return files


def render_all(solutions_root=None):
    """All learner files and the manifest that records them."""
    solutions_root = Path(solutions_root or registry.solutions_dir())
    files, manifest = {}, {}
    for lesson in registry.available(solutions_root):
        lesson_files = render(lesson, solutions_root)
        files.update(lesson_files)
        for rel, data in lesson_files.items():
            manifest[rel] = {"sha256": _sha(data)}
            if rel.endswith((f"/{lesson.name}.py", f"/{lesson.name}.ipynb")):
                manifest[rel]["code"] = code_fingerprint(rel, data.decode())
    files[MANIFEST] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    return files


def _read_manifest(path, log):
    """The manifest the build last wrote; {} when absent or unreadable (e.g. a merge conflict)."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        log(f"{path.name} is unreadable (a merge conflict?): it will be written anew")
        return {}


def build(lessons_root=None, solutions_root=None, check=False, force=False, log=print):
    """Write (or with check=True, compare) the generated learner files.

    Returns the list of stale or refused paths; empty means all is well.
    """
    lessons_root = Path(lessons_root or registry.ROOT / "lessons")
    files = render_all(solutions_root)

    old = _read_manifest(lessons_root / MANIFEST, log)
    problems = []
    for rel, data in files.items():
        target = lessons_root / rel
        current = target.read_bytes() if target.exists() else None
        if current == data:
            continue
        if check:
            problems.append(rel)
            log(f"stale: lessons/{rel}")
            continue
        generated_before = rel == MANIFEST or (current is not None and old.get(rel, {}).get("sha256") == _sha(current))
        if current is not None and not generated_before:
            if not force:
                problems.append(rel)
                log(f"kept: lessons/{rel} has changes of its own (a learner's work?); "
                    f"rerun with --force to replace it (a backup is made first)")
                continue
            backup = backup_path(target)
            shutil.copy2(target, backup)
            log(f"backed up lessons/{rel} -> {backup.name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        log(f"wrote lessons/{rel}")
    return problems
