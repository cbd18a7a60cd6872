"""Grading lesson 01 with the real nbgrader and its SQLite gradebook, end to end.

One batch of learners, as `course nbgrader grade` runs it: the reference
solution, a blank and a partial file, and every kind of bad submission. Each
gets its expected score and a clear outcome, and the batch completes with
grades.csv and feedback for everyone.
"""

import csv
import time

import pytest

pytest.importorskip("nbgrader")

import nbformat  # noqa: E402

from course import lessons as registry  # noqa: E402
from course.classroom.collect import collect  # noqa: E402
from course.classroom.grade import grade  # noqa: E402
from course.classroom.setup import exercises, gradable  # noqa: E402
from course.classroom.shards import SHARDS  # noqa: E402
from tests.nbgrader_learners import lesson01_submissions, py_text, solved, write  # noqa: E402

pytestmark = pytest.mark.slow
LESSON = registry.get("01")
CELL_TIMEOUT = 20  # seconds: above lesson 01's slowest fast-mode cell on a loaded 2-core machine
CHECK_TIMEOUT = 10  # seconds for the judge's check of one exercise: lesson 01's take well under 1 s


@pytest.fixture(scope="module")
def batch(tmp_path_factory, released_course):
    course_dir = released_course(tmp_path_factory.mktemp("batch") / "course", [LESSON], CELL_TIMEOUT)
    submissions = tmp_path_factory.mktemp("submissions")
    expected = lesson01_submissions(submissions)
    started = time.time()
    # --jobs 2: the judges and nbgrader's runs side by side (two shards); the hostile class graded as an
    # ordinary user and the later lessons' batches grade with one stream
    outcomes = grade(LESSON, course_dir, submissions=submissions, check_timeout=CHECK_TIMEOUT, jobs=2)
    seconds = time.time() - started
    print(f"\ngraded {len(outcomes)} learners in {seconds:.0f} s")
    return course_dir, submissions, expected, outcomes


def test_every_learner_gets_an_outcome(batch):
    _, _, expected, outcomes = batch
    assert sorted(outcomes) == sorted(expected)
    for learner, (score, status) in expected.items():
        outcome = outcomes[learner]
        assert (outcome.score, outcome.status) == (score, status), outcome.summary()
        assert outcome.max_score == 13
        if status == "not graded":
            assert outcome.problems, f"{learner}: not graded must say why"


def test_reference_solution_full_marks_as_script_and_notebook(batch):
    course_dir, outcomes = batch[0], batch[3]
    for learner in ("full", "full_ipynb"):
        assert set(outcomes[learner].exercises.values()) == {"pass"}, outcomes[learner].summary()
        assert len(outcomes[learner].exercises) == 8
        # Graded cells print their pass line (as `pytest --exercise` does), write nothing to stderr and
        # display no value (nbgrader would read a displayed number as partial credit).
        nb = nbformat.read(course_dir / "autograded" / learner / LESSON.folder / "bigram.ipynb", as_version=4)
        graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert len(graded) == 8
        for cell in graded:
            name = cell.metadata["nbgrader"]["grade_id"].removeprefix("test_")
            # (stdout only; ipykernel sends what a cell prints in one message per 0.2 s, so a cell that
            # checks twice can show as two)
            assert {(o.output_type, o.get("name")) for o in cell.outputs} == {("stream", "stdout")}, cell.outputs
            # (the points come from solutions/, which the contained grading kernel cannot read)
            # (one line per check call: a cell with a hidden seed passes twice)
            text = "".join(o.text for o in cell.outputs)
            lines = text.splitlines()
            assert lines and all(line.split(" (")[0] == f"{name}: pass" for line in lines), text


def test_blank_scores_zero_every_exercise_not_attempted(batch):
    outcome = batch[3]["blank"]
    assert set(outcome.exercises.values()) == {"not attempted"}
    assert "no exercise attempted" in outcome.notes


def test_partial_scores_exactly_the_solved_exercises(batch):
    outcome = batch[3]["partial"]
    passed = {ex for ex, verdict in outcome.exercises.items() if verdict == "pass"}
    assert passed == {"build_vocab", "bigram_probs", "nll"}
    points = {ex.name: ex.points for ex in exercises(LESSON)}
    assert outcome.score == sum(points[ex] for ex in passed) == 4


# learner -> (exercise, start of its verdict) and text that the learner's outcome must contain
BAD = {
    "syntax_error": ("count_bigrams", "cannot load", "syntax error in cell"),
    "infinite_loop": ("sgd_step", "timeout", None),
    "edited_test": ("nll", "wrong", "test_nll was edited"),
    "deleted_test": ("bigram_probs", "pass", "test_bigram_probs was missing"),
    "deleted_header": ("nll", "pass", "deleted `# %%` header"),
    "os_exit": ("nll", "error", "kernel died"),
    "duplicated_cell": ("build_vocab", "pass", "appears 2 times"),
    "warning": ("build_vocab", "pass", None),
    "ignores_interrupt": ("build_vocab", "timeout", "catches KeyboardInterrupt"),
    "empty": (None, None, "is empty"),
    "unreadable": (None, None, "not a readable notebook"),
    "conflict": (None, None, "both edited"),
    "no_file": (None, None, "no bigram.py or bigram.ipynb"),
}


@pytest.mark.parametrize("learner", sorted(BAD))
def test_bad_submission_outcome(batch, learner):
    outcome = batch[3][learner]
    exercise, verdict, message = BAD[learner]
    if exercise:
        assert outcome.exercises[exercise].startswith(verdict), outcome.summary()
        others = [v for ex, v in outcome.exercises.items() if ex != exercise]
        assert set(others) == {"pass"}, outcome.summary()
    if message:
        assert any(message in line for line in outcome.problems + outcome.notes), outcome.summary()


def test_deleted_header_restores_both_cells(batch):
    notes = " | ".join(batch[3]["deleted_header"].notes)
    assert "exercise nll" in notes and "test_count_bigrams was missing" in notes


def test_grades_csv_feedback_and_report_for_everyone(batch):
    course_dir, _, expected, outcomes = batch
    with open(course_dir / "grades.csv", newline="") as fh:
        rows = {row["student_id"]: row for row in csv.DictReader(fh) if row["assignment"] == LESSON.folder}
    assert sorted(rows) == sorted(expected)
    for learner, row in rows.items():
        assert float(row["score"]) == outcomes[learner].score and float(row["max_score"]) == 13
        feedback = course_dir / "feedback" / learner / LESSON.folder / f"{LESSON.name}.html"
        assert feedback.is_file(), learner
    assert "could not be graded" in (course_dir / "feedback" / "empty" / LESSON.folder / "bigram.html").read_text()
    with open(course_dir / "reports" / f"{LESSON.folder}.csv", newline="") as fh:
        report = {row["learner"]: row for row in csv.DictReader(fh)}
    assert sorted(report) == sorted(expected)
    assert "sgd_step: timeout" in report["infinite_loop"]["exercises_failed"]


def test_report_of_the_class_mistakes(batch):
    """`course nbgrader report 01`: each exercise's passes, the blank learner under `not attempted`,
    the infinite loop under `timeout`, from the verdicts grading kept."""
    import subprocess
    import sys

    course_dir, _, expected, outcomes = batch
    run = subprocess.run([sys.executable, "-m", "course", "nbgrader", "report", "01", "--dir", str(course_dir)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    with open(course_dir / "reports" / f"{LESSON.folder}-mistakes.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    who = {(r["exercise"], r["mistake"]): r["learners"].split() for r in rows}
    assert "blank" in who[("nll", "not attempted")] and "infinite_loop" in who[("sgd_step", "timeout")]
    passed = sum(o.exercises.get("nll") == "pass" for o in outcomes.values())
    assert f"nll                      {passed:>4} of" in run.stdout, run.stdout
    page = (course_dir / "reports" / f"{LESSON.folder}-mistakes.html").read_text()
    assert "infinite_loop" in page and page.count("data:image/png;base64,") == 2


def test_notebooks_run_in_two_shards_that_leave_nothing(batch):
    """nbgrader ran the notebooks in two shard folders side by side: each shard's learners have their
    executed notebook and feedback in the course folder, and the shards are gone."""
    course_dir, _, _, outcomes = batch
    assert not (course_dir / SHARDS).exists()
    ran = {}
    for learner in outcomes:
        log = course_dir / "logs" / LESSON.folder / f"{learner}.log"
        for k in ("0", "1"):
            if log.is_file() and f"{SHARDS}/{k}/submitted/{learner}/" in log.read_text():
                ran.setdefault(k, []).append(learner)
    assert set(ran) == {"0", "1"}, ran
    for learners in ran.values():
        done = [x for x in learners if (course_dir / "autograded" / x / LESSON.folder / "bigram.ipynb").is_file()]
        assert done, learners
        for learner in done:
            assert (course_dir / "feedback" / learner / LESSON.folder / "bigram.html").is_file(), learner


def test_grading_one_learner_is_quick(batch):
    # Fast mode (NBGRADER_EXECUTION) keeps a whole lesson 01 notebook, kernel start included, well
    # under a minute even on a shared, loaded machine.
    full = batch[3]["full"]
    assert 0 < full.seconds < 60, full.seconds


def test_learner_limit_stops_a_notebook_that_is_slow_in_all(batch, tmp_path):
    """Cells each under the per-cell timeout can still add up: the per-learner limit stops the notebook,
    the learner gets a clear outcome, and the other learners' grades stay."""
    course_dir = batch[0]
    nb = solved(LESSON, "all")
    for _ in range(4):
        nb.cells.insert(3, nbformat.v4.new_code_cell(f"import time\ntime.sleep({CELL_TIMEOUT - 5})"))
    write(tmp_path / "slow", "bigram.py", py_text(nb))
    collect(tmp_path, LESSON, course_dir)
    outcome = grade(LESSON, course_dir, learners=["slow"], learner_timeout=30,
                    check_timeout=CHECK_TIMEOUT)["slow"]
    # nbgrader's run (the feedback) is stopped; the judge still grades the code: it is all correct.
    assert outcome.status == "graded" and outcome.score == 13, outcome.summary()
    assert any("still running after 30 s" in p for p in outcome.problems), outcome.summary()
    assert outcome.seconds < 90
    with open(course_dir / "grades.csv", newline="") as fh:
        rows = {row["student_id"]: row for row in csv.DictReader(fh)}
    assert float(rows["slow"]["score"]) == 13 and float(rows["full"]["score"]) == 13


OTHERS = [lesson for lesson in gradable() if lesson.number != "01"]


@pytest.mark.parametrize("lesson", OTHERS, ids=[lesson.folder for lesson in OTHERS])
def test_every_later_lesson_grades_reference_full_and_blank_zero(tmp_path, lesson, released_course):
    course_dir, submissions = tmp_path / "course", tmp_path / "submissions"
    write(submissions / "full", f"{lesson.name}.py", py_text(solved(lesson, "all")))
    write(submissions / "blank", f"{lesson.name}.py", lesson.script(registry.lessons_dir()).read_bytes())
    released_course(course_dir, [lesson])
    outcomes = grade(lesson, course_dir, submissions=submissions)
    total = sum(ex.points for ex in exercises(lesson))
    assert outcomes["full"].score == total, outcomes["full"].summary()
    assert outcomes["blank"].score == 0 and outcomes["blank"].status == "graded", outcomes["blank"].summary()
    assert outcomes["full"].seconds < 60, "fast mode should keep grading one learner under a minute"
