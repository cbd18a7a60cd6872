"""A notebook's check cell says what `pytest checks/lessonNN --exercise nll` says.

In a Jupyter kernel, `check.nll(nll)` does not call the learner's `nll` here.
It takes the definitions the kernel has run (the source of its executed cells,
in the order they ran, so an edit that is run but not yet saved counts), loads
them in a contained probe (`judge.RemoteLesson`, lenient like nbgrader's judge:
a cell with a syntax error costs only what it defines) and runs the check
against that probe with pytest's limits: `--check-timeout`'s 30 s
($COURSE_CHECK_TIMEOUT) and the probe's memory limit. The verdict is written by
`report.render`, as in pytest's report:

- pass: one line, with the points, printed;
- otherwise the verdict's lines are the cell's error (`CheckFailed`, whose
  `_render_traceback_` IPython shows instead of a traceback), so nbgrader
  still scores the cell 0 and its feedback shows the same lines. An
  interrupt (the stop button, nbgrader's per-cell timeout) stops the probe
  and says so in one line.

Places in the learner's code are given as `bigram.ipynb, cell N, line M`, N
counted as Jupyter shows cells (from 1, markdown included): an executed cell
is found in the notebook on disk by the id JupyterLab sends with it, else by
its source; one found in neither is named by its execution count, `In [7]`.
"""

import atexit
import json
import os
import re
import sys
from pathlib import Path

from .. import lessons as registry
from ..cells import clean_source
from .judge import RemoteLesson
from .report import points, relative, render
from .verdict import describe

DEFAULT_TIMEOUT = 30.0  # seconds, as pytest's --check-timeout


class CheckFailed(Exception):
    """A check cell's verdict other than pass. str(): one line for nbgrader's reports; shown: the verdict."""

    def __init__(self, status, text, summary):
        super().__init__(summary)
        self.status, self.text = status, text

    def _render_traceback_(self):  # IPython shows these lines instead of a traceback
        return self.text.splitlines()


def shell():
    """The IPython shell this process runs, if any (without importing IPython)."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


_cell_ids = {}  # place in the kernel's input history -> the cell id the front end sent (JupyterLab; not nbclient)


def _remember_cell(info):
    ip = shell()
    if ip is not None and info.store_history and getattr(info, "cell_id", None):
        _cell_ids[len(ip.history_manager.input_hist_raw)] = info.cell_id  # where the cell is stored next


def watch():
    """Record the cell id of each cell the kernel runs from now on (called when the checks are imported)."""
    ip = shell()
    if ip is not None and _remember_cell not in ip.events.callbacks.get("pre_run_cell", []):
        ip.events.register("pre_run_cell", _remember_cell)


def timeout():
    try:
        return float(os.environ.get("COURSE_CHECK_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def notebook_path(lesson):
    """The notebook the kernel runs: Jupyter's session path, else name.ipynb in the working directory."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session.endswith(".ipynb") and Path(session).name == f"{lesson.name}.ipynb" and Path(session).is_file():
        return Path(session).resolve()
    return (Path.cwd() / f"{lesson.name}.ipynb").resolve()


def _cells_on_disk(path):
    """({cell id: number}, {source: number}) of the notebook at `path`; numbers from 1, markdown included."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return {}, {}
    by_id, by_source = {}, {}
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = source if isinstance(source, str) else "".join(source)
        if cell.get("id"):
            by_id.setdefault(cell["id"], number)
        by_source.setdefault(clean_source(source), number)
    return by_id, by_source


def definitions(ip, path):
    """(the kernel's executed cells as a notebook's JSON text, {position in it: the cell's place})."""
    by_id, by_source = _cells_on_disk(path)
    cells, places = [], {}
    for count, source in enumerate(ip.history_manager.input_hist_raw):
        if not source.strip():
            continue
        number = by_id.get(_cell_ids.get(count)) or by_source.get(clean_source(source))
        cells.append({"cell_type": "code", "metadata": {}, "source": source})
        places[len(cells)] = f"{path} (cell {number})" if number else f"In [{count}]"
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), places


def _relabel(e, path, places):
    """Give the places in an exception from the probe as the notebook's cells (or In [n])."""
    def place(position):
        return places.get(int(position), "In [?]")

    cell = re.compile(re.escape(str(path)) + r" \(cell (\d+)\)")
    frames = getattr(e, "frames", None)
    if isinstance(frames, list):
        e.frames = [(cell.sub(lambda m: place(m.group(1)), f[0]), *f[1:]) for f in frames]
    in_text = re.compile(re.escape(str(path)) + r", cell (\d+), line (\d+)")

    def spelled(m):  # "path, cell N, line M", as the loader words a failed definition
        where = place(m.group(1))
        return (where.replace(" (cell", ", cell").rstrip(")") + f", line {m.group(2)}" if " (cell" in where
                else f"{where}:{m.group(2)}")

    if e.args and isinstance(e.args[0], str):
        e.args = (in_text.sub(spelled, e.args[0]), *e.args[1:])


_probe = {}  # the probe of the last check: reused while the kernel has run nothing new


def _learner(lesson, path, text):
    if _probe.get("text") != text or _probe.get("path") != str(path):
        close()
        _probe.update(text=text, path=str(path),
                      lesson=RemoteLesson(path, text, f"learner_{lesson.folder}", lenient=True))
    return _probe["lesson"]


def close():
    if "lesson" in _probe:
        _probe.pop("lesson").close()
    _probe.clear()


atexit.register(close)


def _name_of(obj, caller_globals):
    """The name the learner's definition has in the kernel (what the probe looks up)."""
    name = getattr(obj, "__name__", None)
    if name and caller_globals.get(name) is obj:
        return name
    return next((k for k, v in caller_globals.items() if v is obj and not k.startswith("_")), name or repr(obj))


def check_cell(check, learner, options, caller_globals):
    """Run `check` (an @exercise) on the kernel's definitions in a probe; print a pass, raise anything else."""
    ip = shell()
    exercise = check.__name__
    lesson = registry.get(check.__module__.split(".")[1])  # checks.lessonNN.exercises
    path = notebook_path(lesson)
    text, places = definitions(ip, path)
    seconds = timeout()
    remote = _learner(lesson, path, text)
    remote.set_deadline(seconds)
    try:
        check(*[getattr(remote, _name_of(obj, caller_globals)) for obj in learner], **options)
        status, message = "pass", ""
    except Exception as e:  # noqa: BLE001 - each failure becomes a verdict, as in pytest's report
        _relabel(e, remote.path, places)
        described = describe(exercise, e, seconds)
        if described is None:  # a problem of the checks themselves: their own traceback, as pytest keeps it
            raise
        status, message = described
    except KeyboardInterrupt:  # the stop button, or nbgrader's per-cell timeout: the probe may be mid-answer
        close()
        text = f"{exercise}: interrupted before the check finished"
        raise CheckFailed("interrupted", text, f"timeout: {text}") from None
    printed = remote.take_output()
    text = render(exercise, status, relative(message, remote.path), printed, points(lesson.number, exercise))
    if status == "pass":
        print(text)
        return None
    first = (relative(message, remote.path).splitlines() or [""])[0]
    raise CheckFailed(status, text, status if status == "not attempted" else f"{status}: {first}")
