"""Judging a class on a real Dask cluster (a LocalCluster of 2 worker processes on loopback): the
verdicts of the grader's own judge, each learner once, and a worker killed mid-batch loses no learner."""

import os
import signal
import time

import pytest

pytest.importorskip("distributed")

from course import lessons as registry  # noqa: E402
from course.classroom.cluster import client_for, code_fingerprint, judge_on_cluster, judge_text  # noqa: E402
from course.classroom.setup import solution_notebook  # noqa: E402
from course.grading.lesson_judge import grading_calls, judge_file  # noqa: E402
from tests.nbgrader_learners import py_text, solved, write  # noqa: E402

LESSON = registry.get("01")
SOLVED = {"full": "all", "blank": set(), "vocab": {"build_vocab"}, "counts": {"count_bigrams", "bigram_probs"},
          "nll": {"nll"}, "dataset": {"bigram_dataset"}}


@pytest.fixture(scope="module")
def here(learners):
    """The grader's own verdicts, before the cluster starts (a judge kills whatever it finds below it)."""
    calls = grading_calls(LESSON, solution_notebook(LESSON))
    return {name: judge_file(LESSON, path, calls, seconds=10, lenient=True) for name, path in learners.items()}


@pytest.fixture(scope="module")
def client(here):
    c = client_for("local", workers=2)
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def learners(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    return {name: write(root / name, "bigram.py", py_text(solved(LESSON, which))) for name, which in SOLVED.items()}


def _passed(verdicts):
    return {ex for ex, (status, _) in verdicts.items() if status == "pass"}


def test_cluster_gives_the_graders_verdicts(client, learners, here):
    there = list(judge_on_cluster(LESSON, learners, client, seconds=10))
    assert sorted(name for name, _ in there) == sorted(learners)
    assert dict(there) == here
    assert len(_passed(dict(there)["full"])) == 8 and not _passed(dict(there)["blank"])


def test_a_worker_killed_mid_batch_loses_and_duplicates_no_learner(client, learners):
    pids = client.run(os.getpid)
    results = []
    for learner, verdicts in judge_on_cluster(LESSON, learners, client, seconds=10):
        results.append((learner, verdicts))
        if len(results) == 1:  # one learner back, the others still queued or running: kill a worker
            victim = sorted(pids.values())[0]
            os.kill(victim, signal.SIGKILL)
    assert sorted(name for name, _ in results) == sorted(learners)
    for name, verdicts in results:
        expected = {"build_vocab", "count_bigrams", "bigram_probs", "sample_name", "nll", "bigram_dataset",
                    "neural_nll", "sgd_step"} if SOLVED[name] == "all" else set(SOLVED[name])
        assert _passed(verdicts) == expected, (name, verdicts)
    deadline = time.time() + 60
    while len(client.scheduler_info()["workers"]) < 2 and time.time() < deadline:
        time.sleep(0.5)  # the nanny restarts the killed worker
    assert not any(client.run(_daemonic).values()), "a restarted worker could not start its judging process"


def _daemonic():
    import multiprocessing

    return multiprocessing.current_process().daemon


def test_a_worker_with_other_code_refuses(learners):
    text = learners["full"].read_text()
    with pytest.raises(RuntimeError, match="differs from the grader's"):
        judge_text("01", "bigram.py", text, "0" * 64, 10, None)
    assert len(code_fingerprint(LESSON)) == 64
