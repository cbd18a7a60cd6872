"""Load a learner's definitions from a lesson script or notebook, cheaply.

The checks need the learner's functions and classes, not the lesson's data or
training cells. `load` keeps only imports, `def`s, `class`es and constant
assignments (`BLOCK_SIZE = 3`) from each code cell, executes them in a fresh
module, and keeps the file's own line numbers in every traceback.

A learner may work in `name.py` or in its paired `name.ipynb`. `pick_source`
decides which one to grade: the one that was edited, judged against the
state the two files last agreed on (the generated original recorded in
`lessons/MANIFEST.json`, then whatever both held at a `course sync` or at any
run that found them equal). When both changed and disagree it refuses
(SourceConflict), naming the exercises that differ, instead of guessing.
"""

import ast
import hashlib
import importlib
import importlib.util
import json
import linecache
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

GRADE_ID = re.compile(r'"grade_id":\s*"([^"]*)"')


def py_cells(text):
    """All cells of a py:percent script as (kind, first line number, header, source); blank text
    before the first `# %%` is no cell."""
    cells, start, kind, header, lines = [], 1, "code", "", []

    def close():
        if cells or kind != "code" or any(line.strip() for line in lines):
            cells.append((kind, start, header, "\n".join(lines)))

    for number, line in enumerate(text.splitlines(), start=1):
        marker = CELL_MARKER.match(line)
        if marker:
            close()
            header = marker.group(1)
            kind = "markdown" if "[markdown]" in header or "[md]" in header else "code"
            start, lines = number + 1, []
        else:
            lines.append(line)
    close()
    return cells


def py_code_cells(text):
    """Code cells of a py:percent script as (first line number, source)."""
    return [(start, src) for kind, start, _, src in py_cells(text) if kind == "code"]


def ipynb_code_cells(text):
    """Code cells of a notebook's JSON as (cell number as Jupyter counts them: from 1, markdown
    cells included, source)."""
    nb = json.loads(text)
    return [
        (i, c["source"] if isinstance(c["source"], str) else "".join(c["source"]))
        for i, c in enumerate(nb.get("cells", []), start=1)
        if c.get("cell_type") == "code"
    ]


def _clean(src):
    # What both formats agree on: no surrounding blank lines, no trailing blanks.
    return "\n".join(line.rstrip() for line in src.strip("\n").splitlines())


def _normal(cells):
    return [s for s in (_clean(src) for _, src in cells) if s]


def _cell_name(grade_id, src, number):
    """What a learner calls a cell: its exercise (nbgrader grade_id), else what it defines."""
    if grade_id:
        return grade_id
    names = re.findall(r"^(?:def|class)\s+(\w+)", src, re.M)
    return ", ".join(names) if names else f"cell {number}"


def named_code(path, text=None):
    """{name: code} of a lesson file's non-empty code cells (see `_cell_name`), for either format."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    found = {}
    if path.suffix == ".ipynb":
        cells = json.loads(text).get("cells", [])
        items = [(((c.get("metadata") or {}).get("nbgrader") or {}).get("grade_id"),
                  c["source"] if isinstance(c["source"], str) else "".join(c["source"]))
                 for c in cells if c.get("cell_type") == "code"]
    else:
        items = [((GRADE_ID.search(header) or [None, None])[1], src)
                 for kind, _, header, src in py_cells(text) if kind == "code"]
    number = 0
    for grade_id, src in items:
        src = _clean(src)
        if src:
            number += 1
            name = _cell_name(grade_id, src, number)
            while name in found:
                name += "'"
            found[name] = src
    return found


def differing(a, b, text_a=None, text_b=None):
    """The names (exercises first) of the code cells in which two lesson files differ."""
    ca, cb = named_code(a, text_a), named_code(b, text_b)
    names = [n for n in dict.fromkeys([*ca, *cb]) if ca.get(n) != cb.get(n)]
    return names


def code_fingerprint(path, text=None):
    """A hash of a lesson file's code cells, the same for a .py and its .ipynb."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    try:
        cells = ipynb_code_cells(text) if path.suffix == ".ipynb" else py_code_cells(text)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
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


def agreed_file(lesson, lesson_root):
    """Where the code the .py and .ipynb last agreed on is recorded (a hidden file beside them)."""
    return Path(lesson_root) / lesson.folder / f".{lesson.name}.agreed"


def baseline(lesson, lesson_root):
    """The fingerprint of the code both files last agreed on: recorded, else the generated original."""
    try:
        return agreed_file(lesson, lesson_root).read_text().split()[0]
    except (OSError, IndexError):
        return _pristine(lesson_root, f"{lesson.folder}/{lesson.name}.py")


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
    names = differing(py, nb)
    raise SourceConflict(
        f"{py.name} and {nb.name} differ in {_names(differing(py, nb)) or 'their code'}, and both changed since "
        f"they last agreed, so it is not clear which one to grade ({py.parent}). Keep one with\n"
        f"    course sync {lesson.number} --keep py      (or --keep ipynb)\n"
        f"which backs up the other and rewrites it from the one you keep."
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


# Plotting and data-frame libraries a lesson imports for its own cells, never for a graded definition
# at load time: importing matplotlib.pyplot costs as much CPU as a whole check, in every probe. Their
# `import` binds a stand-in that imports the module at its first use (inside the probe, as before).
DEFERRED = {"matplotlib", "pandas", "seaborn", "scipy", "sklearn", "IPython", "plotly", "tqdm"}


class DeferredModule(types.ModuleType):
    """A module imported at the first attribute looked up on it: `import matplotlib.pyplot as plt`
    binds `plt` to DeferredModule("matplotlib.pyplot"), `import matplotlib.pyplot` binds `matplotlib`
    to DeferredModule("matplotlib.pyplot", "matplotlib")."""

    def __init__(self, full, bound=None):
        super().__init__(bound or full)
        object.__setattr__(self, "_deferred", (full, bound or full))

    def _module(self):
        full, bound = object.__getattribute__(self, "_deferred")
        importlib.import_module(full)
        return sys.modules[bound]

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(self._module(), name)

    def __setattr__(self, name, value):
        setattr(self._module(), name, value)

    def __dir__(self):
        return dir(self._module())

    def __repr__(self):
        return f"<module {object.__getattribute__(self, '_deferred')[0]!r} (imported at first use)>"


def _deferrable(node):
    """True for `import a.b [as c], ...` of modules in DEFERRED that are installed and not yet imported."""
    if not isinstance(node, ast.Import):
        return False
    for alias in node.names:
        top = alias.name.split(".")[0]
        if top not in DEFERRED or alias.name in sys.modules:
            return False
        try:
            if importlib.util.find_spec(top) is None:
                return False  # not installed: the real import reports it, as before
        except (ImportError, ValueError):
            return False
    return True


def _defer_imports(tree, helper):
    """`tree` with each deferrable import replaced by assignments of DeferredModule stand-ins."""
    body = []
    for node in tree.body:
        if not _deferrable(node):
            body.append(node)
            continue
        for alias in node.names:
            bound = alias.asname or alias.name.split(".")[0]
            args = [ast.Constant(alias.name)] + ([] if alias.asname else [ast.Constant(bound)])
            call = ast.Call(ast.Name(helper, ast.Load()), args, [])
            body.append(ast.copy_location(ast.Assign([ast.Name(bound, ast.Store())], call), node))
    tree.body = body
    return ast.fix_missing_locations(tree)


def _strip_magics(src):
    # Notebook cells may hold IPython magics or shell escapes: not Python.
    return "\n".join("" if re.match(r"\s*[%!]", line) else line for line in src.splitlines())


def _where(path, cell, lineno):
    if cell is None:
        return f"{path}:{lineno}"
    return f"{path}, cell {cell}, line {lineno}"


def _syntax_message(path, e, cell=None):
    line = (e.text or "").rstrip("\n")
    return f"SyntaxError in {_where(path, cell, e.lineno)}: {e.msg}\n    {line.strip()}"


def load(path, module_name=None, text=None, lenient=False):
    """Execute the definitions of a lesson .py or .ipynb (read from `path` unless `text` is given).

    A notebook cell is compiled under the name `path (cell N)`, N counted as Jupyter shows cells
    (from 1, markdown included), and its source is put in `linecache`, so tracebacks of learner
    code show the line itself. `lenient` (the nbgrader judge): a notebook cell with a syntax error
    is left out, so it costs only what it defines, as when nbgrader runs the notebook cell by cell."""
    path = Path(path).resolve()
    text = path.read_text(encoding="utf-8") if text is None else text
    if path.suffix == ".ipynb":
        try:
            chunks = [(f"{path} (cell {i})", i, _strip_magics(src)) for i, src in ipynb_code_cells(text)]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise LoadError(f"{path}: cannot read this notebook ({e}); is it valid JSON?") from None
        for filename, _, src in chunks:
            lines = src.splitlines(keepends=True)
            linecache.cache[filename] = (len(src), None, lines, filename)  # mtime None: never dropped
    else:
        chunks = [(str(path), None, text)]  # one chunk: exact line numbers
    module_name = module_name or f"learner_{path.stem}"
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    sys.modules[module_name] = module  # dataclasses and pickling look it up
    for filename, cell, src in chunks:
        # The text graded is the text quoted, even where the probe cannot read the file itself.
        linecache.cache[filename] = (len(src), None, src.splitlines(keepends=True), filename)
        try:
            tree = ast.parse(src, filename=filename)
        except SyntaxError as e:
            if lenient and cell is not None:
                continue
            raise LoadError(_syntax_message(path, e, cell)) from None
        tree.body = [node for node in tree.body if _keep(node)]
        helper = "__course_deferred_module__"
        module.__dict__[helper] = DeferredModule
        try:
            exec(compile(_defer_imports(tree, helper), filename, "exec"), module.__dict__)
        except Exception as e:
            frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == filename]
            where = (f"{_where(path, cell, frames[-1].lineno)}\n    {(frames[-1].line or '').strip()}"
                     if frames else str(path))
            raise LoadError(f"loading the definitions failed at {where}\n  {type(e).__name__}: {e}") from None
        finally:
            module.__dict__.pop(helper, None)
    return module
