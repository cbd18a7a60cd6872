"""The class's mistakes at a glance: `course nbgrader report NN`.

The checks already say which mistake a learner made: a wrong answer's message
ends with a hint ("hint: divide by the number of bigrams: the mean, not the
sum"), an error names the exception. Grading keeps every verdict in
reports/NN_name-verdicts.json; this module groups them, per exercise, by the
mistake the check named, and writes reports/NN_name-mistakes.html (bar chart
per exercise, score histogram, each mistake with its learners) and
reports/NN_name-mistakes.csv (one row per exercise and mistake).

A mistake's key is the check's hint, or for an error the exception and its
message, with what varies between learners taken out: lists of numbers become
`[...]` and decimals `#` (so "rows must sum to 1, yours sum to [0.668, 0.7]"
and "... [1.2, 3.0]" are one mistake, while code in a hint such as
`sum(dim=1)` stays); in an error message every number goes (shapes, sizes).
"""

import base64
import csv
import html
import io
import json
import re
from pathlib import Path

from .seal import write_new

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?"
NUMBER = re.compile(rf"(?<![\w.]){_NUM}(?!\w)", re.I)
DECIMAL = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+(?:\.\d*)?e[-+]?\d+)(?!\w)", re.I)
NUMBER_LIST = re.compile(rf"\[\s*{_NUM}(?:\s*,\s*{_NUM})*(?:\s*,\s*\.\.\.)?\s*,?\s*(?:\]|\.\.\.|$)", re.I)
SIZES = re.compile(r"\b\d+(?:x\d+)+\b")  # 40x24: shapes in torch's messages


def verdicts_path(course_dir, lesson):
    return Path(course_dir) / "reports" / f"{lesson.folder}-verdicts.json"


def save_verdicts(course_dir, lesson, outcomes):
    """Keep every learner's full verdicts (status, message) of `lesson`; a regrade replaces only its learners."""
    path = verdicts_path(course_dir, lesson)
    saved = json.loads(path.read_text()) if path.is_file() else {}
    for o in outcomes.values():
        saved[o.learner] = {"score": o.score, "max_score": o.max_score, "status": o.status,
                            "verdicts": {ex: list(v) for ex, v in o.verdicts.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_new(path, json.dumps(saved, indent=1, sort_keys=True))


def _normalise(text, every_number):
    text = NUMBER_LIST.sub("[...]", text)
    if every_number:
        text = NUMBER.sub("#", SIZES.sub(lambda m: "x".join("#" * (m.group().count("x") + 1)), text))
    else:  # decimals are values; small integers in a hint are code (`sum(dim=1)`, "'.' is 0")
        text = DECIMAL.sub("#", text)
    return re.sub(r"\s+", " ", text).strip()


def mistake_of(status, message):
    """The mistake a verdict names, with the learner's own values taken out; None for a pass."""
    if status == "pass":
        return None
    if status in ("not attempted", "timeout", "cannot load"):
        return status
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    hint = next((line for line in lines if line.startswith("hint:")), None)
    if status == "wrong" and hint:
        return "wrong: " + _normalise(hint.removeprefix("hint:").strip(), every_number=False)
    head = lines[0] if lines else ""
    head = head.split(": ", 1)[1] if ": " in head else head  # drop the "exercise(args)" prefix
    return f"{status}: " + _normalise(head, every_number=True)


def summarise(saved, exercises):
    """{exercise: {"passed": n, "graded": n, "mistakes": {key: [(learner, first line), ...]}}} in the
    order of `exercises` (name, points) and of the learners' names."""
    table = {name: {"passed": 0, "graded": 0, "mistakes": {}} for name, _ in exercises}
    for learner in sorted(saved):
        verdicts = saved[learner].get("verdicts", {})
        for name, _ in exercises:
            if name not in verdicts:
                continue
            status, message = verdicts[name]
            row = table[name]
            row["graded"] += 1
            key = mistake_of(status, message)
            if key is None:
                row["passed"] += 1
            else:
                first = str(message).strip().splitlines()[0] if str(message).strip() else status
                row["mistakes"].setdefault(key, []).append((learner, first))
    for row in table.values():  # the commonest mistake first
        row["mistakes"] = dict(sorted(row["mistakes"].items(), key=lambda kv: (-len(kv[1]), kv[0])))
    return table


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _charts(table, scores, max_score):
    """Two PNG data URIs: passes and failures per exercise; the histogram of scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table)
    passed = [table[n]["passed"] for n in names]
    failed = [table[n]["graded"] - table[n]["passed"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    ax.barh(names, passed, color="#2a9d8f", label="passed")
    ax.barh(names, failed, left=passed, color="#e76f51", label="failed")
    ax.invert_yaxis()
    ax.set_xlabel("learners")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title("Each exercise: learners who passed and failed")
    bars = _png(fig)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist(scores, bins=min(20, max(int(max_score), 1)), range=(0, max_score or 1), color="#264653")
    ax.set_xlabel(f"score (out of {max_score:g})")
    ax.set_ylabel("learners")
    ax.set_title("Scores")
    hist = _png(fig)
    plt.close(fig)
    return bars, hist


def write(course_dir, lesson, exercises):
    """reports/NN_name-mistakes.html and .csv from the saved verdicts; returns the HTML path."""
    path = verdicts_path(course_dir, lesson)
    if not path.is_file():
        raise FileNotFoundError(f"no verdicts for {lesson.folder} in {path.parent}: grade it first "
                                f"(`course nbgrader grade {lesson.number}`)")
    saved = json.loads(path.read_text())
    table = summarise(saved, exercises)
    max_score = sum(points for _, points in exercises)
    scores = [float(v.get("score", 0)) for v in saved.values()]
    stem = Path(course_dir) / "reports" / f"{lesson.folder}-mistakes"
    rows = io.StringIO(newline="")
    out = csv.writer(rows)
    out.writerow(["exercise", "passed", "graded", "mistake", "learners", "count"])
    for name, row in table.items():
        for key, who in row["mistakes"].items():
            out.writerow([name, row["passed"], row["graded"], key, " ".join(w for w, _ in who), len(who)])
    write_new(f"{stem}.csv", rows.getvalue())
    bars, hist = _charts(table, scores, max_score)
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
             f"<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
             f"style-src 'unsafe-inline'\"><title>{e(lesson.folder)}: the class's mistakes</title><style>"
             "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;"
             "vertical-align:top;text-align:left}code{font-size:90%}.n{text-align:right}</style></head><body>",
             f"<h1>{e(lesson.title)}: the class's mistakes</h1>",
             f"<p>{len(saved)} learners; mean score {sum(scores) / max(len(scores), 1):.2f} of {max_score:g}. "
             f"Failures are grouped by the mistake the check named (learners' own values taken out).</p>",
             f"<img alt='passes and failures per exercise' src='{bars}'><img alt='histogram of scores' src='{hist}'>"]
    for (name, points), row in zip(exercises, table.values()):
        parts.append(f"<h2 id='{e(name)}'>{e(name)} ({points:g} point{'' if points == 1 else 's'}): "
                     f"{row['passed']} of {row['graded']} passed</h2>")
        if not row["mistakes"]:
            continue
        parts.append("<table><tr><th>mistake</th><th class='n'>learners</th><th>who (first line of their "
                     "verdict)</th></tr>")
        for key, who in row["mistakes"].items():
            names = "<br>".join(f"<b>{e(w)}</b>: <code>{e(first[:200])}</code>" for w, first in who)
            parts.append(f"<tr><td>{e(key)}</td><td class='n'>{len(who)}</td><td>{names}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    write_new(f"{stem}.html", "".join(parts))
    return Path(f"{stem}.html")

