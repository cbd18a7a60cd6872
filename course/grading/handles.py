"""The seam between a check and the learner's code: handles.

A check in `checks/lessonNN/exercises.py` never holds the learner's function
or class. It holds a *handle*, and learner code runs only through it:

    value = nll(P, words, stoi)         # the learner's nll on copies of the
                                        # arguments; the result comes back as
                                        # plain data (tensors, numbers, str, ...)
    out = GPT.run(_probe_forward, cfg)  # _probe_forward(the learner's GPT, cfg)
                                        # runs beside the learner's code and
                                        # returns plain data

`run` is for everything that needs the learner's objects alive: autograd
through learner code, instantiating a learner class and calling its methods,
training a few steps, in-place updates, thousands of calls in a loop. Its
function must be defined at the top level of a `checks` module (the probe
process imports it by name). Handles passed as arguments arrive as the
learner's definitions. A `torch.Generator` argument advances as it would in a
local call; every other argument is a copy, so an in-place change is seen only
where a `run` function returns it.

Under `pytest checks/...` and `course nbgrader grade` the handle is remote:
the learner's code runs in a separate, contained probe process
(`course.grading.judge`), and the check's oracle values never leave the judge.
In a notebook's grading cell (`check.nll(nll)`, run by a Jupyter kernel) the
`@exercise` decorator hands the check to `course.grading.notebook`: the
kernel's executed cells are loaded in a probe and the check runs against it,
as under pytest, and its verdict is printed as pytest's report prints it.
Called with the learner's own function anywhere else (the repository's tests,
`python lesson.py`), it is wrapped in a `Local` handle: the same check code,
the same round trip through the wire format, in this process.

Rule for check authors: compute expected values in the check, never in a
`run` function, and never pass them to one. What comes back is only data to
compare; it decides nothing by itself.
"""

import functools
import importlib
import sys
import time
import traceback

import torch

from . import wire


class LearnerError(Exception):
    """Learner code raised: the exception's type names, message and the learner's frames."""

    def __init__(self, type_name, message, frames=(), mro=(), exercise=None):
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message = type_name, message
        self.frames = [tuple(f) for f in frames]  # (file, line, qualified name, source line), learner's only
        self.mro = tuple(mro) or (type_name,)

    def is_a(self, name):
        """True when the learner's exception is (a subclass of) the builtin exception called `name`."""
        return name in self.mro


class Missing(LearnerError):
    """The lesson file does not define the name a check asked for."""


class Handle:
    """One learner definition (function or class), reached through a probe."""

    def __init__(self, name):
        self.name = name

    def __call__(self, *args, **kwargs):
        return self.run(None, *args, **kwargs)

    def run(self, fn, *args, **kwargs):
        raise NotImplementedError

    def cpu_seconds(self):
        """CPU seconds used so far by the process that runs this definition (here: this process)."""
        return time.process_time()

    def __repr__(self):
        return f"<learner's {self.name}>"


def probe_function(fn):
    """(module, qualified name) of a check's probe function, refusing what cannot be imported by name."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or not (module == "checks" or module.startswith("checks.")) or "<" in qualname:
        raise TypeError(f"{qualname or fn!r}: a probe function must be defined at the top level of a checks module")
    return module, qualname


def resolve_probe_function(module, qualname):
    if not (module == "checks" or module.startswith("checks.")) or "<" in qualname:
        raise TypeError(f"not a probe function: {module}.{qualname}")
    target = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def learner_frames(tb, filename):
    """(file, line, qualified name, source line) of the traceback's frames in the learner's file."""
    frames = []
    for frame, lineno in traceback.walk_tb(tb):
        code = frame.f_code
        if filename and code.co_filename.startswith(str(filename)):
            line = traceback.FrameSummary(code.co_filename, lineno, code.co_name).line or ""
            frames.append((code.co_filename, lineno, getattr(code, "co_qualname", code.co_name), line))
    return frames


def describe_exception(e, filename):
    """A LearnerError for an exception raised while learner code ran (on the learner's side)."""
    if isinstance(e, LearnerError):
        return e
    mro = tuple(c.__name__ for c in type(e).__mro__ if c.__module__ == "builtins")
    try:
        message = str(e)
    except BaseException:  # a learner exception whose __str__ raises
        message = "(its message could not be shown)"
    return LearnerError(type(e).__name__, message[:2000], learner_frames(e.__traceback__, filename), mro)


def call(target, fn, args, kwargs):
    """What a handle's call does on the learner's side."""
    if fn is None:
        return target(*args, **kwargs)
    return fn(target, *args, **kwargs)


def generators_in(value, found=None):
    """The torch.Generator objects among arguments (their state goes back to the caller)."""
    found = [] if found is None else found
    if isinstance(value, torch.Generator):
        found.append(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            generators_in(v, found)
    elif isinstance(value, dict):
        for v in value.values():
            generators_in(v, found)
    return found


def _source_file(target):
    """The file a learner function or class was compiled from (its methods' file, for a class)."""
    code = getattr(target, "__code__", None)
    if code is None and isinstance(target, type):
        code = next((v.__code__ for v in vars(target).values() if hasattr(v, "__code__")), None)
    return code.co_filename if code is not None else None


class Local(Handle):
    """A learner definition in this very process (a notebook's grading cell, the repository's tests).

    Arguments and results make the same round trip through the wire format as
    with a remote probe, so a check sees the same values on both routes.
    """

    def __init__(self, target, name=None):
        super().__init__(name or getattr(target, "__qualname__", getattr(target, "__name__", "?")))
        self.target = target

    def run(self, fn, *args, **kwargs):
        if fn is not None:
            fn = resolve_probe_function(*probe_function(fn))
        table = {}

        def name_of(handle):  # a Local handle stands for its own target
            table[str(len(table))] = handle.target
            return str(len(table) - 1)

        sent = wire.loads(wire.dumps(references((args, kwargs), name_of), refs=True), refs=lambda name: table[name])
        originals = generators_in((args, kwargs))
        try:
            result = wire.loads(wire.dumps(call(self.target, fn, *sent)))
        except Exception as e:  # the learner's error (their exception, or a value that cannot cross)
            raise describe_exception(e, _source_file(self.target)) from e
        for g, new in zip(originals, generators_in(sent)):
            g.set_state(new.get_state())
        return result


def references(value, name_of):
    """`value` with every handle in it (in lists, tuples, dict values) replaced by a wire.Reference
    named `name_of(handle)`: the learner's side swaps the reference for the definition."""
    if isinstance(value, Handle):
        return wire.Reference(name_of(value))
    if isinstance(value, list):
        return [references(v, name_of) for v in value]
    if isinstance(value, tuple):
        return tuple(references(v, name_of) for v in value)
    if isinstance(value, dict):
        return {k: references(v, name_of) for k, v in value.items()}
    return value


def exercise(check):
    """Mark a check function: its learner arguments become handles, and it runs on one thread.

    `check.nll(nll)` in a notebook passes the learner's function itself (wrapped
    in a Local handle here); pytest and the nbgrader judge pass Remote handles.
    Tensors in checks are tiny: a second thread on a busy 2-core machine only
    adds waiting (measured several times slower), so one thread, restored after.
    """

    @functools.wraps(check)
    def wrapper(*learner, **options):
        if not all(isinstance(h, Handle) for h in learner) and _kernel_cell(sys._getframe(1).f_globals):
            from . import notebook  # a check cell: the learner's code runs in a probe, as under pytest

            return notebook.check_cell(wrapper, learner, options, sys._getframe(1).f_globals)
        handles = [h if isinstance(h, Handle) else Local(h) for h in learner]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            if handles and isinstance(handles[0], Local) and _script(sys._getframe(1).f_globals):
                return _script_check(check, handles, options)
            return check(*handles, **options)
        finally:
            torch.set_num_threads(threads)

    wrapper.is_exercise_check = True
    if _kernel_cell(None):
        from . import notebook

        notebook.watch()  # from the cell that imports the checks on: the cell id of each cell run
    return wrapper


def _script(caller_globals):
    """True when the caller is a lesson file run as a script (`python bigram.py`)."""
    return caller_globals.get("__name__") == "__main__" and bool(caller_globals.get("__file__"))


def _script_check(check, handles, options):
    """`python bigram.py`: the verdict as pytest words it, not a traceback through the checks (which
    would show their source); a failure ends the script, since what follows builds on the exercise."""
    from .. import lessons as registry
    from .report import points, render
    from .verdict import describe

    exercise = check.__name__
    try:
        result = check(*handles, **options)
    except Exception as e:  # noqa: BLE001 - each failure becomes a verdict, as in pytest's report
        described = describe(exercise, e)
        if described is None:  # a problem of the checks themselves: their own traceback
            raise
        print(render(exercise, *described), file=sys.stderr)
        raise SystemExit(1) from None
    lesson = check.__module__.split(".")[1]  # checks.lessonNN.exercises
    print(render(exercise, "pass", points=points(registry.get(lesson).number, exercise)))
    return result


def _kernel_cell(caller_globals):
    """In an IPython kernel: True when `caller_globals` are its cells' globals (None: any globals)."""
    ipython = sys.modules.get("IPython")
    ip = ipython.get_ipython() if ipython is not None else None
    return ip is not None and (caller_globals is None or caller_globals is ip.user_ns)
