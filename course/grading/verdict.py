"""From what happened in a check to one status and one short message.

Statuses: pass, not attempted, wrong, error, timeout, cannot load. The same
words in pytest's table, `course status` and the nbgrader reports.
"""

import os
import re

# Terminal escape sequences, whole (not only their ESC, which leaves "[31m" behind): CSI (colours,
# cursor moves, clearing the screen), OSC (window titles, hyperlinks, clipboard), DCS/SOS/PM/APC
# strings, two-character escapes, and their 8-bit forms.
_ESCAPES = re.compile(r"""
      \x1b\[ [0-?]* [ -/]* [@-~]?
    | \x9b [0-?]* [ -/]* [@-~]?
    | \x1b\] [^\x07\x1b\x9c\n]* (?:\x07|\x1b\\|\x9c)?
    | \x9d [^\x07\x1b\x9c\n]* (?:\x07|\x1b\\|\x9c)?
    | \x1b [PX^_] [^\x1b\x9c\n]* (?:\x1b\\|\x9c)?
    | [\x90\x98\x9e\x9f] [^\x1b\x9c\n]* (?:\x1b\\|\x9c)?
    | \x1b [ -/]* [0-~]?
""", re.X)
# What is left of control characters (but tab and newline), C1 controls, and the bidirectional
# overrides that make a line read otherwise than it is.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strip_escapes(text):
    """`text` with no terminal escape sequence and no control character but tab and newline."""
    return _CONTROL.sub("", _ESCAPES.sub("", str(text)))


def learner_text(text, limit=2000):
    """Text from the learner's side, made safe to print in a report: no escape sequences or control
    characters, and every line after the first indented, so that it can never pass for a line of
    the results table or a section header. `limit`: characters kept (None: all)."""
    text = str(text)
    lines = strip_escapes(text if limit is None else text[:limit]).splitlines() or [""]
    return "\n".join([lines[0]] + [f"    {line}" for line in lines[1:]])

from ..assertions import CheckFailure
from ..loader import LoadError
from .handles import LearnerError, Missing
from .channel import AnswerTooLarge, BudgetExhausted, ProbeCrash, ProbeLoadError, ProbeTimeout


def display(path):
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def where(frame):
    filename, lineno = frame[0], frame[1]  # learner code can name its own frames: shown as text
    if " (cell" in filename:
        path, cell = filename.split(" (cell", 1)  # a notebook cell, numbered as Jupyter shows it
        return learner_text(f"{display(path)}, cell {cell.strip(' )')}, line {lineno}", 300)
    return learner_text(f"{display(filename)}:{lineno}", 300)


def _part_of(name, exercise):
    return name == exercise or name.startswith(exercise + ".")


def describe(exercise, e, seconds=None):
    """(status, message) for the exception `e` that ended the check of `exercise`; None if it is
    not about the learner's work (a harness problem: keep the full report)."""
    if isinstance(e, CheckFailure):
        return "wrong", learner_text(e)  # it may quote learner values (strings, type names)
    if isinstance(e, (LoadError, ProbeLoadError)):
        return "cannot load", learner_text(e)
    if isinstance(e, Missing):
        return "cannot load", learner_text(e.message)
    if isinstance(e, BudgetExhausted):
        return "timeout", f"{exercise}: {e}"
    if isinstance(e, AnswerTooLarge):
        return "error", (f"{exercise}: answer too large: your code {e} (a tensor far larger than the "
                         f"docstring's shape?)")
    if isinstance(e, ProbeTimeout) and len(e.args) > 1:  # e.g. learner code wrote on the probe's socket
        return "timeout", f"{exercise}: your code {e.args[1]} within {seconds or e.args[0]:g} s, so it was stopped"
    if isinstance(e, ProbeTimeout):
        return "timeout", (f"{exercise}: did not finish within {seconds or e.args[0]:g} s and ignored the "
                           f"interrupt, so it was stopped (an infinite loop inside `try: ... except: pass`?)")
    if isinstance(e, ProbeCrash):
        return "error", f"{exercise}: your code {e}"
    if not isinstance(e, LearnerError):
        return _unusable(exercise, e)
    frames = e.frames
    # Only the blank's own `raise NotImplementedError()` means "not attempted"; torch raises it too
    # (a kernel not implemented for a dtype), and that is an error of the learner's call.
    if e.type_name == "NotImplementedError" and frames and (not frames[-1][3] or "NotImplementedError" in frames[-1][3]):
        f = frames[-1]
        if _part_of(f[2], exercise):
            return "not attempted", f"{exercise}: not attempted yet ({where(f)})"
        return "not attempted", (f"{exercise}: not attempted yet: it needs {learner_text(f[2], 200)}, still "
                                 f"blank at {where(f)}")
    if e.type_name == "CheckTimeout":
        stopped = f" (stopped in {learner_text(frames[-1][2], 200)} at {where(frames[-1])})" if frames else ""
        limit = f"{seconds:g} s" if seconds else "the time limit"
        return "timeout", (f"{exercise}: did not finish within {limit}: an infinite loop? (a `while` whose "
                           f"condition never changes, a sampler that never samples '.'){stopped}")
    lines = [f"{exercise}: your code raised {learner_text(e.type_name, 80)}: {learner_text(e.message)}"]
    if e.type_name in ("MemoryError",) or "can't allocate memory" in e.message:
        lines[0] += " (the probe's memory limit is $COURSE_MEMORY_LIMIT_GB, default 4 GiB)"
    for f in frames[-3:]:
        lines.append(f"  {where(f)} in {learner_text(f[2], 200)}\n      {learner_text(f[3], 300)}")
    return "error", "\n".join(lines)


# A check that breaks on what learner code returned (a None where a tuple was due, a float where a
# tensor was) is the learner's mistake, said in one line; other exceptions are the checks' own bugs.
_UNUSABLE = (TypeError, ValueError, AttributeError, IndexError, KeyError, RuntimeError)


def _unusable(exercise, e):
    if not isinstance(e, _UNUSABLE):
        return None
    return "wrong", (f"{exercise}: what your code returned cannot be used as the docstring says "
                     f"({type(e).__name__}: {learner_text(e, 200)})\n  hint: check the type, the number of "
                     f"values returned (a missing `return` gives None) and the shapes against the docstring")
