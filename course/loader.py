"""Load a learner's definitions from a lesson script or notebook, cheaply.

The checks need the learner's functions and classes, not the lesson's data or
training cells. `load` keeps only imports, `def`s, `class`es and constant
assignments (`BLOCK_SIZE = 3`) from each code cell, executes them in a fresh
module, and keeps the file's own line numbers in every traceback. Which file
of a lesson to load (its .py or .ipynb) is `course.source`'s decision.
"""

import ast
import importlib
import importlib.util
import linecache
import sys
import traceback
import types
from pathlib import Path

from .cells import ipynb_code_cells, strip_magics


class LoadError(Exception):
    """The learner file cannot be loaded; the message says where and why."""


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
            chunks = [(f"{path} (cell {i})", i, strip_magics(src)) for i, src in ipynb_code_cells(text)]
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
