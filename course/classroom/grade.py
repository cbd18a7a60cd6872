"""Grade a lesson: autograde for the feedback, the judge's points as the grade of record.

`grade` runs the whole batch: collect (optionally), nbgrader autograde, the
judge on each learner's submitted code in a contained probe, the points into
the gradebook, feedback, the export read back and checked, and the report.
Every learner gets an outcome, even one whose file could not be graded.
"""

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import lessons as registry
from ..grading import processes, record
from ..grading.integrity import Guard
from .autograde import (LEARNER_TIMEOUT, autograde, autograde_without_exit, cell_verdicts, describe_failure,
                        seal_notes)
from .collect import LEARNER_ID, Submission, collect
from .feedback import write_page
from .mistakes import save_verdicts
from .parallel import judge_all
from .report import not_graded_feedback, write_report
from .shards import autograde_all
from .launch import forget_secrets
from .seal import before_nbgrader, checked_snapshot, clean_course, protect_page, snapshot_path, write_new
from .setup import (DEFAULT_DIR, GradingError, exercises, first_line, gradebook, require_folder, run_nbgrader, say,
                    solution_notebook, tail)

CHECK_TIMEOUT = 30  # seconds for the judge's check of one exercise (visible and hidden seeds together)
JUDGE_BUDGET = 300  # seconds for all of one learner's checks: past it, the remaining exercises are `timeout`


@dataclass
class Outcome:
    """One learner's result for one lesson."""

    learner: str
    status: str  # graded | not graded
    score: float = 0.0
    max_score: float = 0.0
    exercises: dict = field(default_factory=dict)  # exercise -> "pass" or why it scored 0
    verdicts: dict = field(default_factory=dict)  # exercise -> (status, the judge's whole message)
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    seconds: float = 0.0  # time nbgrader took for this learner

    def summary(self):
        took = f" ({self.seconds:.0f} s)" if self.seconds else ""
        lines = [f"{self.learner:<20} {self.score:g}/{self.max_score:g}  {self.status}{took}"]
        lines += [f"    {ex}: {state}" for ex, state in self.exercises.items() if state != "pass"]
        lines += [f"    ! {p}" for p in self.problems] + [f"    - {n}" for n in self.notes]
        return "\n".join(lines)


def protected_paths(course_dir, lesson):
    """The files that decide grades: the checks and the course package, the reference lesson (its
    grading cells name the checks and seeds), the course folder's configuration, source/ and release/,
    and every learner's submission and the snapshots the judge grades."""
    course_dir = Path(course_dir)
    return [registry.ROOT / "checks", registry.ROOT / "course", lesson.script(registry.solutions_dir()),
            course_dir / "nbgrader_config.py", course_dir / "jupyter", course_dir / "source", course_dir / "release",
            course_dir / "submitted", course_dir / "snapshots" / lesson.folder]


def grade(lesson, course_dir=DEFAULT_DIR, submissions=None, learners=None, learner_timeout=LEARNER_TIMEOUT,
          check_timeout=CHECK_TIMEOUT, memory_gb=None, log=say, jobs=1, feedback="full", cluster=None,
          budget=JUDGE_BUDGET):
    """Autograde, feedback and export for `lesson`; returns {learner: Outcome} and writes reports/NN_name.csv.

    With `submissions`, collect them first. Every learner collected (or found in
    submitted/) gets an outcome, and a row in grades.csv, even when their file
    could not be graded. The points are the judge's (course.grading), run on the
    submitted code in a contained probe: `jobs` judges side by side, or on a Dask
    `cluster` ("local" or a scheduler's address). `feedback`: "full" (nbgrader runs
    each notebook: outputs and plots; `jobs` nbgrader runs side by side, shards.py)
    or "verdicts" (no run: the notebook as text with the judge's verdict under each
    graded cell).
    """
    if feedback not in ("full", "verdicts"):
        raise GradingError(f"--feedback is full or verdicts, not {feedback!r}")
    require_folder(course_dir)
    from ..grading.zygote import prepare  # torch: only when grading

    forget_secrets()  # before the zygote forks: no copy of the instructor's environment reaches a probe
    prepare([f"checks.lesson{lesson.number}.exercises"])  # probes fork from it: before any learner's data is read
    course_dir = Path(course_dir)
    if not (course_dir / "release" / lesson.folder).is_dir():
        raise GradingError(f"{lesson.folder} is not released in {course_dir}: run `course nbgrader release "
                           f"{lesson.number}` first (it records the tests in the gradebook)")
    if submissions is not None:
        collect(submissions, lesson, course_dir, log=log)
    report = course_dir / "reports" / f"{lesson.folder}-collect.json"
    collected = {k: Submission(**v) for k, v in json.loads(report.read_text()).items()} if report.is_file() else {}
    submitted = {p.parent.name for p in (course_dir / "submitted").glob(f"*/{lesson.folder}")}
    everyone = sorted(set(collected) | submitted)
    if learners:
        unknown = sorted(set(learners) - set(everyone))
        if unknown:
            raise GradingError(f"no submission of {', '.join(unknown)} for {lesson.folder}: collect it first")
        everyone = [x for x in everyone if x in set(learners)]
    solution_nb = solution_notebook(lesson)  # read once per batch (before any learner code runs), not per learner
    cells = exercises(lesson, solution_nb)  # the graded cells
    max_score = sum(e.points for e in cells)
    with gradebook(course_dir) as gb:
        for learner in everyone:
            if LEARNER_ID.match(learner):
                gb.update_or_create_student(learner)

    for path in clean_course(course_dir):  # left by an earlier batch: nothing of it is followed now
        log(f"removed {path}: a link or special file where nbgrader writes")
    outcomes, to_grade, hashes = {}, [], {}
    for learner in everyone:
        sub = collected.get(learner, Submission(learner))
        outcomes[learner] = Outcome(learner, "not graded", 0.0, max_score, problems=list(sub.problems),
                                    notes=list(sub.notes))
        if LEARNER_ID.match(learner):
            _forget(course_dir, lesson, learner)  # a failed regrade must not leave an older score behind
        notebook = course_dir / "submitted" / learner / lesson.folder / f"{lesson.name}.ipynb"
        if sub.gradable and notebook.is_file():
            to_grade.append(learner)
            hashes[learner] = checked_snapshot(course_dir, lesson, sub, outcomes[learner])
        elif sub.gradable:
            outcomes[learner].problems.append(f"no {lesson.name}.ipynb in submitted/{learner}/{lesson.folder}")

    logs = course_dir / "logs" / lesson.folder
    logs.mkdir(parents=True, exist_ok=True)
    processes.set_subreaper()  # whatever learner code leaves behind comes back here, to be killed
    guard = Guard(protected_paths(course_dir, lesson))
    regraded = {(lesson.folder, learner) for learner in everyone}
    unchanged = {k: v for k, v in record.gradebook_scores(course_dir).items() if k not in regraded}
    verdicts = _judge_all(course_dir, lesson, to_grade, hashes, guard, (check_timeout, budget), memory_gb, jobs,
                          cluster, log, solution_nb)
    results = {learner: ("verdicts", 0.0, "feedback: the judge's verdicts only (no notebook run)\n")
               for learner in to_grade} if feedback == "verdicts" else {}
    if to_grade and feedback == "full":
        if learners:
            for learner in to_grade:
                results.update(autograde(course_dir, lesson, [learner], learner_timeout, student=learner,
                                         guard=guard))
        else:
            results = autograde_all(course_dir, lesson, to_grade, learner_timeout, guard, jobs)
    for learner in to_grade:
        state, seconds, text = results[learner]
        outcome = outcomes[learner]
        if state == "verdicts":
            _judge(course_dir, lesson, outcome, {}, verdicts[learner], cells)
            write_page(course_dir, lesson, learner, _read_notebook(snapshot_path(course_dir, lesson, learner)),
                       verdicts[learner], {ex.name: ex.points for ex in cells})
            continue
        if state == "failed" and ("DeadKernelError" in text or "Kernel died" in text):
            outcome.problems.append("the kernel died while grading (os._exit?); graded again with os._exit "
                                    "disabled, so the cell that calls it fails")
            _forget(course_dir, lesson, learner)
            state, more, text = autograde_without_exit(course_dir, lesson, learner, learner_timeout, guard,
                                                       snapshot_path(course_dir, lesson, learner), text)
            seconds += more
        outcome.problems += [f"nbgrader's run: {n}" for n in seal_notes(text)]
        write_new(logs / f"{learner}.log", text)
        autograded = course_dir / "autograded" / learner / lesson.folder / f"{lesson.name}.ipynb"
        notebook_verdicts = {}
        if state == "ok":
            try:
                notebook_verdicts = cell_verdicts(autograded, lesson)
            except Exception as e:  # the judge's verdicts below are the grade anyway
                outcome.notes.append(f"could not read the verdicts in {autograded.name}: {first_line(e)}")
        else:
            outcome.problems.append(describe_failure(state, text, learner_timeout).replace(
                "not graded: ", "nbgrader could not run the notebook for the feedback: ", 1))
            _forget(course_dir, lesson, learner)
        outcome.seconds = seconds
        _judge(course_dir, lesson, outcome, notebook_verdicts, verdicts[learner], cells)

    graded = [learner for learner, o in outcomes.items() if o.status == "graded"]
    with_notebook = [learner for learner in graded if results.get(learner, ("",))[0] == "ok"
                     and (course_dir / "autograded" / learner / lesson.folder / f"{lesson.name}.ipynb").is_file()]
    before_nbgrader(course_dir, guard, log)
    for student in (with_notebook if learners else ["*"] if with_notebook else []):  # a regrade: its learners
        code, out = run_nbgrader(course_dir, "generate_feedback", lesson.folder, "--force", f"--student={student}")
        if code != 0:
            log(f"generate_feedback reported errors:\n{tail(out)}")
    before_nbgrader(course_dir, guard, log)
    for learner in with_notebook:
        page = course_dir / "feedback" / learner / lesson.folder / f"{lesson.name}.html"
        if page.is_file():
            protect_page(page)
    for outcome in outcomes.values():
        if LEARNER_ID.match(outcome.learner) and outcome.learner not in with_notebook and not \
                (feedback == "verdicts" and outcome.status == "graded"):
            not_graded_feedback(course_dir, lesson, outcome)
    before_nbgrader(course_dir, guard, log)
    code, out = run_nbgrader(course_dir, "export", "--to=grades.csv")  # returns when it and all it started are gone
    if code != 0:
        raise GradingError(f"nbgrader export failed:\n{tail(out)}")
    recorded = {(lesson.folder, o.learner): (o.score, o.max_score) for o in outcomes.values()
                if LEARNER_ID.match(o.learner)}
    record.verify_export(course_dir / "grades.csv", recorded, unchanged)
    write_report(course_dir / "reports" / f"{lesson.folder}.csv", outcomes)
    save_verdicts(course_dir, lesson, outcomes)
    for outcome in outcomes.values():
        log(outcome.summary())
    log(f"{lesson.folder}: {len(graded)} of {len(outcomes)} learners graded; grades: {course_dir / 'grades.csv'}, "
        f"feedback: {course_dir / 'feedback'}, outcomes: {course_dir / 'reports' / (lesson.folder + '.csv')}")
    return outcomes


def _judge_all(course_dir, lesson, to_grade, hashes, guard, limits, memory_gb, jobs, cluster, log, solution_nb):
    """{learner: verdicts}: the judge on each learner's code as collected (its snapshot, checked against
    its sha256), `jobs` at a time or on a Dask cluster; the files that decide grades verified after each."""
    from ..grading.lesson_judge import grading_calls, judge_file  # torch: only when grading

    check_timeout, budget = limits
    calls = grading_calls(lesson, solution_nb)
    snapshots = {learner: snapshot_path(course_dir, lesson, learner) for learner in to_grade}

    def judge(learner):
        verdicts = judge_file(lesson, snapshots[learner], calls, seconds=check_timeout, memory_gb=memory_gb,
                              lenient=True, sha256=hashes[learner], budget=budget)
        processes.kill_descendants()
        return verdicts

    if cluster:
        from .cluster import client_for, judge_on_cluster

        client = client_for(cluster)
        try:
            done = judge_on_cluster(lesson, snapshots, client, check_timeout, memory_gb, sha256s=hashes,
                                    budget=budget)
            verdicts = dict(done)
        finally:
            client.close()
            if getattr(client, "cluster", None) is not None and cluster == "local":
                client.cluster.close()
        guard.verify("this batch (judged on the cluster)")
        return verdicts
    verdicts = {}
    for learner, found in judge_all(to_grade, judge, jobs, log):
        guard.verify(learner if jobs <= 1 else f"{learner} (or a learner judged at the same time)")
        verdicts[learner] = found
    return verdicts


def _read_notebook(path):
    import nbformat

    return nbformat.read(str(path), as_version=4)


def _judge(course_dir, lesson, outcome, notebook_verdicts, verdicts, cells):
    """The grade of record: the judge's verdict on each exercise, its points written into the gradebook,
    disagreements with the notebook's own graded cells reported."""
    started = time.time()
    points = {}
    outcome.verdicts = dict(verdicts)
    for ex in cells:
        status, message = verdicts[ex.name]
        points[ex.test] = ex.points if status == "pass" else 0.0
        outcome.exercises[ex.name] = status if status in ("pass", "not attempted") else \
            f"{status}: {first_line(message, 300)}"
        in_notebook = notebook_verdicts.get(ex.name)
        # A grading cell that passed, or displayed a value (checks return None), where the judge does not pass.
        if (in_notebook == "pass" or str(in_notebook).startswith("displayed")) and status != "pass":
            outcome.problems.append(f"{ex.test}: check tampered with: the notebook's own cell passed, the judge "
                                    f"found {status}; the judge's 0 counts")
        elif in_notebook is not None and in_notebook != "pass" and status == "pass":
            outcome.notes.append(f"{ex.test}: score disagrees: the notebook's cell gave {first_line(in_notebook)}, "
                                 f"the judge passed it; the judge's {ex.points:g} counts")
    record.record(course_dir, lesson, outcome.learner, points)
    outcome.score = sum(points.values())
    outcome.status = "graded"
    outcome.seconds += time.time() - started


def _forget(course_dir, lesson, learner):
    """Remove a learner's earlier autograde of `lesson` (files and gradebook rows)."""
    from nbgrader.api import MissingEntry

    for sub in ("autograded", "feedback"):
        folder = Path(course_dir) / sub / learner / lesson.folder
        if folder.exists():
            shutil.rmtree(folder)
    with gradebook(course_dir) as gb:
        try:
            gb.remove_submission(lesson.folder, learner)
        except MissingEntry:
            pass
