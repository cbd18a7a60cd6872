"""Judging learners side by side (`--jobs`): the same verdicts as one at a time, each learner once,
and a judge process that dies loses no learner."""

import os
import signal

import pytest

from course import lessons as registry
from course.classroom.parallel import judge_all
from course.classroom.setup import solution_notebook
from course.grading.lesson_judge import grading_calls, judge_file
from tests.nbgrader_learners import py_text, solved, write

LESSON = registry.get("01")


@pytest.fixture(scope="module")
def learners(tmp_path_factory):
    root = tmp_path_factory.mktemp("learners")
    files = {"full": solved(LESSON, "all"), "blank": solved(LESSON, set()),
             "partial": solved(LESSON, {"build_vocab", "nll"}), "half": solved(LESSON, {"count_bigrams", "bigram_probs"})}
    return {name: write(root / name, "bigram.py", py_text(nb)) for name, nb in files.items()}


def _judge(paths):
    calls = grading_calls(LESSON, solution_notebook(LESSON))
    return lambda learner: judge_file(LESSON, paths[learner], calls, seconds=10)


def test_jobs_give_the_verdicts_of_one_at_a_time(learners):
    judge = _judge(learners)
    alone = dict(judge_all(learners, judge, jobs=1))
    side_by_side = list(judge_all(learners, judge, jobs=2))
    assert sorted(name for name, _ in side_by_side) == sorted(learners)  # each learner exactly once
    assert dict(side_by_side) == alone
    assert {s for s, _ in alone["full"].values()} == {"pass"}
    assert {s for s, _ in alone["blank"].values()} == {"not attempted"}
    assert {ex for ex, (s, _) in alone["partial"].items() if s == "pass"} == {"build_vocab", "nll"}


def test_a_judge_process_that_dies_loses_no_learner(learners):
    grader = os.getpid()
    judge = _judge(learners)
    said = []

    def dies_on_half(learner):
        if learner == "half" and os.getpid() != grader:
            os.kill(os.getpid(), signal.SIGKILL)  # the out-of-memory killer, say
        return judge(learner)

    results = list(judge_all(learners, dies_on_half, jobs=2, log=said.append))
    assert sorted(name for name, _ in results) == sorted(learners)
    assert {ex for ex, (s, _) in dict(results)["half"].items() if s == "pass"} == {"count_bigrams", "bigram_probs"}
    assert said and "judging" in said[0]
