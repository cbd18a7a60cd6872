"""Feedback without running the notebook: `course nbgrader grade --feedback verdicts`.

nbgrader's feedback is the learner's notebook executed again, outputs and
plots included; that costs a kernel and the whole lesson's run per learner.
This page costs neither: the learner's submitted notebook as they wrote it
(code and prose as text, none of the outputs they saved), and under each
graded cell the judge's verdict, the same lines `pytest --exercise` prints,
with the points. It is plain HTML: nothing a learner wrote is rendered as
markup, and the page runs no script.
"""

import html
from pathlib import Path

from .seal import write_new

STYLE = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
         "pre{background:#f6f6f6;padding:.6em;overflow-x:auto;margin:.2em 0}pre.md{background:#fff;"
         "border-left:3px solid #ddd;white-space:pre-wrap}.v{padding:.4em .6em;margin:.2em 0 1.2em;"
         "border-radius:4px;white-space:pre-wrap;font-family:monospace}.pass{background:#e6f4ea}"
         ".fail{background:#fdecea}.n{color:#888;font-size:80%}")


def page(lesson, learner, nb, verdicts, points):
    """The feedback page (HTML text) for `nb` (the submitted notebook), `verdicts` {exercise: (status,
    message)} and `points` {exercise: points}."""
    e = html.escape
    score = sum(p for ex, p in points.items() if verdicts.get(ex, ("",))[0] == "pass")
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><meta http-equiv='Content-Security-Policy' "
             f"content=\"default-src 'none'; style-src 'unsafe-inline'\"><title>{e(lesson.folder)}: {e(learner)}"
             f"</title><style>{STYLE}</style></head><body><h1>{e(lesson.title)}</h1>",
             f"<p><b>{e(learner)}</b>: {score:g} of {sum(points.values()):g} points. Under each graded cell: "
             f"what the grader found, as <code>pytest checks/lesson{e(lesson.number)} --exercise NAME</code> "
             f"says it.</p>"]
    shown = set()
    for i, cell in enumerate(nb.cells, 1):
        source = str(cell.get("source", ""))
        kind = "md" if cell.get("cell_type") == "markdown" else "code"
        parts.append(f"<div class='n'>cell {i}</div><pre class='{kind}'>{e(source)}</pre>")
        meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell.get("metadata"), dict) else {}
        meta = meta if isinstance(meta, dict) else {}
        exercise = str(meta.get("grade_id", "")).removeprefix("test_")
        if meta.get("grade") and exercise in verdicts:
            shown.add(exercise)
            status, message = verdicts[exercise]
            parts.append(_verdict(exercise, status, message, points))
    missing = [ex for ex in verdicts if ex not in shown]
    if missing:  # a graded cell the learner deleted or renamed: its verdict still shows
        parts.append("<h2>Exercises whose graded cell is not in your notebook</h2>")
        parts += [_verdict(ex, *verdicts[ex], points) for ex in missing]
    parts.append("</body></html>\n")
    return "".join(parts)


def _verdict(exercise, status, message, points):
    from ..grading.report import render

    worth = points.get(exercise, 0.0)
    text = render(exercise, status, message, points=worth)
    if status != "pass":
        text += f"\n(0 of {worth:g} point{'' if worth == 1 else 's'})"
    return f"<div class='v {'pass' if status == 'pass' else 'fail'}'>{html.escape(text)}</div>"


def write_page(course_dir, lesson, learner, nb, verdicts, points):
    """feedback/LEARNER/NN_name/name.html, where nbgrader's feedback would be."""
    folder = Path(course_dir) / "feedback" / learner / lesson.folder
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{lesson.name}.html"
    write_new(path, page(lesson, learner, nb, verdicts, points))  # never through a link left there
    return path
