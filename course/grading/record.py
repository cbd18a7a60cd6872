"""The grade of record on the nbgrader route: the judge's points, in nbgrader's gradebook.

nbgrader still runs each notebook (for the feedback) and keeps the gradebook
and the export. The points of every graded cell are then overwritten with
the judge's (`lesson_judge.judge_file` on the learner's submitted code), the
notebook's own verdicts are compared with the judge's, and the exported
grades.csv is read back and checked against what was recorded, row by row,
so a gradebook changed behind the judge's back stops the batch instead of
reaching the grades.
"""

import csv
import warnings

from .integrity import TamperError


def _gradebook(course_dir):
    from ..classroom.setup import gradebook  # the course folder's own (its course id); imported late: no cycle

    return gradebook(course_dir)


def record(course_dir, lesson, learner, points):
    """Write {grade_id: points} as the auto score of each graded cell of the learner's submission
    (created if nbgrader could not make one); manual scores and extra credit are cleared."""
    from nbgrader.api import MissingEntry

    with _gradebook(course_dir) as gb, warnings.catch_warnings():
        # nbgrader's add_submission makes SQLAlchemy warn about autoflush; the rows are written all the same.
        warnings.filterwarnings("ignore", message=".*not in session.*")
        try:
            submission = gb.find_submission(lesson.folder, learner)
        except MissingEntry:
            submission = gb.add_submission(lesson.folder, learner)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score = float(points.get(grade.name, 0.0))
                grade.manual_score = None
                grade.extra_credit = None
                grade.needs_manual_grade = False
        gb.db.commit()


def gradebook_scores(course_dir):
    """{(assignment, learner): (score, max score)} of every submission in the gradebook."""
    out = {}
    with _gradebook(course_dir) as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                out[(assignment.name, submission.student.id)] = (float(submission.score),
                                                                 float(submission.max_score))
    return out


def verify_export(path, recorded, unchanged):
    """grades.csv must hold exactly the judge's scores for this batch (`recorded`), and the other
    submissions' scores as they were before it (`unchanged`)."""
    rows = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            rows[(row["assignment"], row["student_id"])] = (float(row["score"] or 0), float(row["max_score"] or 0))
    wrong = [(key, rows.get(key), want) for key, want in {**unchanged, **recorded}.items()
             if rows.get(key) != want and not (rows.get(key) is None and want == (0.0, 0.0))]
    if wrong:
        (assignment, learner), got, want = wrong[0]
        raise TamperError(f"grading stopped: grades.csv gives {learner} {got[0] if got else 'no score'} for "
                          f"{assignment} where the judge recorded {want[0]}: the gradebook was changed "
                          f"behind the judge's back during this batch ({len(wrong)} rows differ)")
