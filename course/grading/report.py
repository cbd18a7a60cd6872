"""One verdict, as the learner reads it: the same lines in pytest's report and in a notebook's check cell.

    nll: pass (2 points)

    nll: not attempted yet (bigram.ipynb, cell 22, line 12)

    nll: wrong
    nll(P, words, stoi): expected a Python float, got Tensor
      hint: ...
    your code printed:
      | debug

A message that already starts with the exercise's name (not attempted, error,
timeout: `verdict.describe` words them so) is the first line itself; any other
(a wrong answer, a file that cannot load) gets a line `exercise: status` above it.
"""

import re
from pathlib import Path

from .. import lessons as registry
from ..cells import GRADE_ID, py_cells
from .verdict import display, strip_escapes

POINTS = re.compile(r'"points":\s*([0-9.]+)')


def points(lesson_number, exercise, solutions_root=None):
    """The points of `exercise` in the reference lesson's grading cell (nbgrader metadata); None if unknown."""
    try:
        lesson = registry.get(lesson_number)
        text = lesson.script(solutions_root or registry.solutions_dir()).read_text(encoding="utf-8")
    except (KeyError, OSError):
        return None
    for kind, _, header, _ in py_cells(text):
        grade_id, value = GRADE_ID.search(header), POINTS.search(header)
        if kind == "code" and grade_id and value and grade_id.group(1) == f"test_{exercise}":
            return float(value.group(1))
    return None


def relative(message, path):
    """`message` with the graded file's absolute path as the learner reads it (relative to where they
    are) and the course's own files relative to the repository."""
    message = str(message)
    if path:
        message = message.replace(str(path), display(path))
    return message.replace(str(Path(registry.ROOT)) + "/", "")


def printed_lines(printed):
    """What learner code printed (bounded by the judge, with its note), under a heading, each line
    marked `  | `, with no escape sequence or control character."""
    if not printed:
        return []
    return ["your code printed:"] + [f"  | {line}" for line in strip_escapes(printed).splitlines()]


def render(exercise, status, message="", printed="", points=None):
    """The verdict on `exercise` as text: its lines, then what the learner's code printed."""
    if status == "pass":
        worth = "" if points is None else f" ({points:g} point{'' if points == 1 else 's'})"
        lines = [f"{exercise}: pass{worth}"]
    else:
        message = str(message)
        lines = [] if message.startswith(f"{exercise}:") else [f"{exercise}: {status}"]
        lines += message.splitlines()
    return "\n".join(lines + printed_lines(printed))
