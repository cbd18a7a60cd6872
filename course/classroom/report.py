"""What instructors and learners read after a batch: the report and the not-graded page.

reports/NN_name.csv holds one row per learner (score, what failed, problems,
notes); a learner nbgrader could not run gets a feedback page of the course's
own that says why, in place of nbgrader's.
"""

import csv
import html
import io
from pathlib import Path

REPORT_COLUMNS = ["learner", "status", "score", "max_score", "exercises_failed", "problems", "notes", "seconds"]


def write_report(path, outcomes):
    """reports/NN_name.csv: one row per learner; a partial regrade replaces only its learners' rows."""
    from .seal import write_new

    rows = {}
    if path.is_file():
        with open(path, newline="") as fh:
            rows = {row["learner"]: row for row in csv.DictReader(fh)}
    for o in outcomes.values():
        rows[o.learner] = {
            "learner": o.learner, "status": o.status, "score": f"{o.score:g}", "max_score": f"{o.max_score:g}",
            "exercises_failed": "; ".join(f"{ex}: {state}" for ex, state in o.exercises.items() if state != "pass"),
            "problems": "; ".join(o.problems), "notes": "; ".join(o.notes), "seconds": f"{o.seconds:.1f}"}
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS)
    writer.writeheader()
    writer.writerows(rows[k] for k in sorted(rows))
    write_new(path, out.getvalue())


def not_graded_feedback(course_dir, lesson, outcome):
    """feedback/LEARNER/NN_name/name.html for a learner without nbgrader's feedback: why, and what to do."""
    from .seal import CSP, real_folder, write_new

    real_folder(course_dir, "feedback", outcome.learner, lesson.folder)
    folder = Path(course_dir) / "feedback" / outcome.learner / lesson.folder
    folder.mkdir(parents=True, exist_ok=True)
    items = "".join(f"<li>{html.escape(p)}</li>" for p in outcome.problems + outcome.notes)
    write_new(folder / f"{lesson.name}.html",
        f"<!DOCTYPE html><html><head>{CSP}<meta charset='utf-8'><title>{lesson.folder}: not graded</title></head><body>"
        f"<h1>{html.escape(lesson.title)}</h1><p><b>Your submission could not be graded (score 0).</b></p>"
        f"<ul>{items}</ul><p>Fix it and submit again; `pytest checks/lesson{lesson.number}` shows what "
        f"the grader will find.</p></body></html>\n")
