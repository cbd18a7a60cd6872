"""Load a learner's definitions from a lesson script or notebook, cheaply.

The checks need the learner's functions and classes, not the lesson's data or
training cells. `load` keeps only imports, `def`s, `class`es and constant
assignments (`BLOCK_SIZE = 3`) from each code cell, executes them in a fresh
module, and keeps the file's own line numbers in every traceback.

A learner may work in `name.py` or in its paired `name.ipynb`. `pick_source`
decides which one to grade: the one that was edited, judged against the
generated original recorded in `lessons/MANIFEST.json`. When both were edited
and disagree it refuses (SourceConflict) instead of guessing.
"""

import ast
import hashlib
import json
import re
import sys
import traceback
import types
from pathlib import Path

MANIFEST = "MANIFEST.json"
CELL_MARKER = re.compile(r"^# %%(.*)$")


class LoadError(Exception):
    """The learner file cannot be loaded; the message says where and why."""


class SourceConflict(LoadError):
    """Both the .py and the .ipynb were edited and they disagree."""


# ------------------------------------------------------------------ cells


def py_code_cells(text):
    """Code cells of a py:percent script as (first line number, source)."""
    cells, start, kind, lines = [], 1, "code", []

    def close():
        if kind == "code":
            cells.append((start, "\n".join(lines)))

    for number, line in enumerate(text.splitlines(), start=1):
        marker = CELL_MARKER.match(line)
        if marker:
            close()
            kind = "markdown" if "[markdown]" in marker.group(1) or "[md]" in marker.group(1) else "code"
            start, lines = number + 1, []
        else:
            lines.append(line)
    close()
    return cells


def ipynb_code_cells(text):
    """Code cells of a notebook's JSON as (cell index, source)."""
    nb = json.loads(text)
    return [
        (i, c["source"] if isinstance(c["source"], str) else "".join(c["source"]))
        for i, c in enumerate(nb.get("cells", []))
        if c.get("cell_type") == "code"
    ]


def _normal(cells):
    # What both formats agree on: non-empty code, without trailing blanks.
    out = []
    for _, src in cells:
        src = "\n".join(line.rstrip() for line in src.strip("\n").splitlines())
        if src:
            out.append(src)
    return out


def code_fingerprint(path, text=None):
    """A hash of a lesson file's code cells, the same for a .py and its .ipynb."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    try:
        cells = ipynb_code_cells(text) if path.suffix == ".ipynb" else py_code_cells(text)
    except (ValueError, KeyError) as e:
        raise LoadError(f"{path}: cannot read this notebook ({e}); is it valid JSON?") from None
    return hashlib.sha256("\n\0\n".join(_normal(cells)).encode()).hexdigest()


# --------------------------------------------------------- which file


def _pristine(lesson_root, rel):
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


def pick_source(lesson, lesson_root):
    """The file to grade for `lesson` under `lesson_root`: its .py or .ipynb."""
    py, nb = lesson.script(lesson_root), lesson.notebook(lesson_root)
    if not py.exists() and not nb.exists():
        raise LoadError(f"{py} not found (nor {nb.name}): is --lessons pointing at the right folder?")
    if not nb.exists():
        return py
    if not py.exists():
        return nb
    fp_py, fp_nb = code_fingerprint(py), code_fingerprint(nb)
    if fp_py == fp_nb:
        return py
    original = _pristine(lesson_root, f"{lesson.folder}/{py.name}")
    if fp_nb == original:
        return py  # only the .py was edited
    if fp_py == original:
        return nb  # only the notebook was edited
    raise SourceConflict(
        f"{py.name} and {nb.name} in {py.parent} were both edited and now differ, so it is not "
        f"clear which one to grade. Keep the one you want with\n"
        f"    course sync {lesson.number} --keep py      (or --keep ipynb)\n"
        f"which rewrites the other from it and backs the other up first."
    )


# -------------------------------------------------------------- loading


def _is_constant(node):
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def _keep(node):
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, ast.Assign):  # NAME = constant, not obj.attr = constant
        return all(isinstance(t, ast.Name) for t in node.targets) and _is_constant(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.value is not None and _is_constant(node.value)
    return False


def _strip_magics(src):
    # Notebook cells may hold IPython magics or shell escapes: not Python.
    return "\n".join("" if re.match(r"\s*[%!]", line) else line for line in src.splitlines())


def _syntax_message(path, e, cell=None):
    where = f"{path}" + (f" (cell {cell})" if cell is not None else "") + f":{e.lineno}"
    line = (e.text or "").rstrip("\n")
    return f"SyntaxError in {where}: {e.msg}\n    {line}"


def load(path, module_name=None, text=None):
    """Execute the definitions of a lesson .py or .ipynb (read from `path` unless `text` is given)."""
    path = Path(path).resolve()
    text = path.read_text(encoding="utf-8") if text is None else text
    if path.suffix == ".ipynb":
        try:
            chunks = [(f"{path} (cell {i})", i, 1, _strip_magics(src)) for i, src in ipynb_code_cells(text)]
        except (ValueError, KeyError) as e:
            raise LoadError(f"{path}: cannot read this notebook ({e}); is it valid JSON?") from None
    else:
        chunks = [(str(path), None, 1, text)]  # one chunk: exact line numbers
    module_name = module_name or f"learner_{path.stem}"
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    sys.modules[module_name] = module  # dataclasses and pickling look it up
    for filename, cell, _, src in chunks:
        try:
            tree = ast.parse(src, filename=filename)
        except SyntaxError as e:
            raise LoadError(_syntax_message(path, e, cell)) from None
        tree.body = [node for node in tree.body if _keep(node)]
        try:
            exec(compile(tree, filename, "exec"), module.__dict__)
        except Exception as e:
            frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == filename]
            where = f"{filename}:{frames[-1].lineno}\n    {frames[-1].line}" if frames else filename
            raise LoadError(f"loading the definitions failed at {where}\n  {type(e).__name__}: {e}") from None
    return module
