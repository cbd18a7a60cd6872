"""`course nbgrader grade --feedback verdicts --jobs 2`: no notebook is run, learners are judged side by
side, and every learner gets the score and the outcome of the full route, a feedback page with the judge's
verdict under each graded cell, and a row in grades.csv."""

import csv
import html

import pytest

pytest.importorskip("nbgrader")

from course import lessons as registry  # noqa: E402
from course.classroom.grade import grade  # noqa: E402
from tests.nbgrader_learners import lesson01_submissions  # noqa: E402

pytestmark = pytest.mark.slow
LESSON = registry.get("01")


@pytest.fixture(scope="module")
def batch(tmp_path_factory, released_course):
    course_dir = released_course(tmp_path_factory.mktemp("batch") / "course", [LESSON], timeout=20)
    submissions = tmp_path_factory.mktemp("submissions")
    expected = lesson01_submissions(submissions)
    outcomes = grade(LESSON, course_dir, submissions=submissions, check_timeout=10, jobs=2, feedback="verdicts")
    return course_dir, expected, outcomes


def test_scores_are_those_of_the_full_route(batch):
    course_dir, expected, outcomes = batch
    assert sorted(outcomes) == sorted(expected)
    for learner, (score, status) in expected.items():
        assert (outcomes[learner].score, outcomes[learner].status) == (score, status), outcomes[learner].summary()
    with open(course_dir / "grades.csv", newline="") as fh:
        rows = {r["student_id"]: float(r["score"]) for r in csv.DictReader(fh) if r["assignment"] == LESSON.folder}
    assert rows == {learner: outcomes[learner].score for learner in expected}


def test_no_notebook_was_run(batch):
    course_dir = batch[0]
    assert not list((course_dir / "autograded").glob(f"*/{LESSON.folder}/*.ipynb"))


def test_feedback_page_has_each_verdict_and_no_script(batch):
    course_dir, _, outcomes = batch
    page = (course_dir / "feedback" / "partial" / LESSON.folder / f"{LESSON.name}.html").read_text()
    assert "<script" not in page and "default-src 'none'" in page
    for exercise, (status, message) in outcomes["partial"].verdicts.items():
        said = f"{exercise}: pass (" if status == "pass" else html.escape(message.splitlines()[0])
        assert said in page, exercise
    assert f"{outcomes['partial'].score:g} of 13 points" in page
    blank = (course_dir / "feedback" / "blank" / LESSON.folder / f"{LESSON.name}.html").read_text()
    assert "nll: not attempted yet" in blank and "0 of 13 points" in blank


def test_the_grader_forgets_the_instructors_secrets_before_any_probe(monkeypatch):
    """grade() trims its own environment before the zygote forks: a token exported by the instructor is in
    no probe's memory; what grading reads (PATH, the course's settings) stays."""
    import os

    from course.classroom.launch import forget_secrets

    monkeypatch.setenv("SECRET_TOKEN", "s3cr3t")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "k")
    monkeypatch.setenv("COURSE_MEMORY_LIMIT_GB", "2")
    before = dict(os.environ)
    try:
        forget_secrets()
        assert "SECRET_TOKEN" not in os.environ and "AWS_SECRET_ACCESS_KEY" not in os.environ
        assert os.environ["COURSE_MEMORY_LIMIT_GB"] == "2" and os.environ["PATH"]
    finally:
        os.environ.update(before)  # this process goes on running the other tests
