"""Judging learners side by side (`--jobs`): the same verdicts as one at a time, each learner once,
and a judge process that dies loses no learner. nbgrader's runs side by side (shards): one shard
never kills another's processes, a tamper in one stops them all, a shard that dies loses no learner."""

import os
import signal
import subprocess
import time

import pytest

from course import lessons as registry
from course.classroom import shards
from course.classroom.parallel import judge_all
from course.classroom.setup import solution_notebook
from course.grading import processes
from course.grading.integrity import Guard, TamperError
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


def _wait_for(path, seconds=60):
    deadline = time.time() + seconds
    while not path.exists() and time.time() < deadline:
        time.sleep(0.05)


def test_a_shard_kills_only_its_own_processes(monkeypatch, tmp_path):
    """`autograde` kills every process below the one that runs it (after each learner): in a shard's
    child, those are its own shard's, never the other shard's nbgrader or kernel."""
    def fake_autograde(folder, lesson, learners, learner_timeout, guard=None):
        mine = subprocess.Popen(["sleep", "60"])  # this shard's nbgrader and kernel, say
        if learners == ["a"]:
            processes.kill_descendants()  # as `autograde` does when its learner is done
            (tmp_path / "a-killed").touch()
        else:
            _wait_for(tmp_path / "a-killed")
        alive = mine.poll() is None
        processes.kill_descendants()
        return {learners[0]: ("ok" if alive else "killed", 0.0, f"{mine.pid}\n")}

    monkeypatch.setattr(shards, "autograde", fake_autograde)
    results = shards.run_shards(LESSON, [(tmp_path / "0", ["a"]), (tmp_path / "1", ["b"])], 10, None)
    assert results["a"][0] == "killed" and results["b"][0] == "ok", results
    for _, _, pid in results.values():
        assert not os.path.exists(f"/proc/{pid.strip()}")


def test_a_tamper_in_one_shard_stops_the_others(monkeypatch, tmp_path):
    decisive = tmp_path / "checks.py"
    decisive.write_text("the checks\n")
    watched = shards.SharedGuard(Guard([decisive]), [])

    def fake_autograde(folder, lesson, learners, learner_timeout, guard=None):
        if learners == ["a"]:
            decisive.write_text("changed by a learner\n")
            guard.verify("a")
        time.sleep(120)

    monkeypatch.setattr(shards, "autograde", fake_autograde)
    started = time.time()
    with pytest.raises(TamperError, match=r"while a \(or a learner autograded at the same time\)'s code ran"):
        shards.run_shards(LESSON, [(tmp_path / "0", ["a"]), (tmp_path / "1", ["b"])], 10, watched)
    assert time.time() - started < 60


def test_a_shard_that_dies_loses_no_learner(monkeypatch, tmp_path):
    def fake_autograde(folder, lesson, learners, learner_timeout, guard=None):
        if learners == ["a", "c"]:
            os.kill(os.getpid(), signal.SIGKILL)  # the out-of-memory killer, say
        return {learner: ("ok", 1.0, f"{learner}'s log\n") for learner in learners}

    monkeypatch.setattr(shards, "autograde", fake_autograde)
    results = shards.run_shards(LESSON, [(tmp_path / "0", ["a", "c"]), (tmp_path / "1", ["b"])], 10, None)
    assert results["b"] == ("ok", 1.0, "b's log\n")
    assert results["a"][0] == results["c"][0] == "not reached" and "ended without a result" in results["a"][2]
