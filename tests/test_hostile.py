"""Hostile submissions score exactly what their honest work deserves, on both routes.

Each file in tests/hostile/ is appended to the reference lesson 01 (its
definitions replace the reference ones) and graded by `pytest checks/lesson01
--lessons COPY` here, and (all but probe_*, the attacks on this route's judge)
by `course nbgrader grade` in tests/test_hostile_nbgrader.py, the class graded
as root. The verdicts must be those the file's `# expect:` line gives (every
other exercise passes), the run must end with the full table and a non-zero
exit status, nothing the learner code started may outlive its run, and no file
that decides grades may change.
"""

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from course import lessons as registry
from course.cli import parse_summary
from course.grading.integrity import fingerprint
from tests.helpers import exercise_tests
from tests.nbgrader_learners import py_text, solved, write

LESSON = registry.get("01")
HOSTILE = Path(__file__).parent / "hostile"
FILES = sorted(HOSTILE.glob("*.py"))
NB_FILES = [p for p in FILES if not p.name.startswith("probe_")]  # probe_*: attacks on the pytest route's judge
POINTS = {"build_vocab": 1, "count_bigrams": 2, "bigram_probs": 1, "sample_name": 2, "nll": 2,
          "bigram_dataset": 1, "neural_nll": 2, "sgd_step": 2}
MEMORY_GB = "0.5"  # the memory hog asks for 3 GiB
RUN_SECONDS = 90  # one file's run, all 8 exercises (a check times out after 10 s)
JUDGE_MEMORY = 1 << 30  # peak resident memory of the judge (pytest) process; honest runs take ~0.4 GiB
GUARDED = [registry.ROOT / "checks", registry.ROOT / "course"]


def expected(path):
    """{exercise: status} from the file's `# expect:` line; unlisted exercises pass."""
    line = re.search(r"^# expect: (.*)$", path.read_text(), re.M).group(1)
    pairs = dict(item.strip().split("=") for item in line.split(","))
    if "*" in pairs:
        return {ex: pairs["*"] for ex in POINTS}
    return {ex: pairs.get(ex, "pass") for ex in POINTS}


def lines(path, key):
    """The items of the file's optional `# key: a, b` line."""
    found = re.search(rf"^# {key}: (.*)$", path.read_text(), re.M)
    return [item.strip() for item in found.group(1).split(", ")] if found else []


def _high_water(pid, peak, done):
    """Poll the process's own peak resident memory (VmHWM: its address space's, which starts afresh at
    exec) until `done`. Not wait4's ru_maxrss: Linux carries the caller's peak across fork and exec, so
    a test worker grown large by earlier tests would be charged to every judge it starts."""
    while not done.is_set():
        try:
            with open(f"/proc/{pid}/status") as fh:
                peak[0] = max(peak[0], next((int(line.split()[1]) << 10 for line in fh
                                             if line.startswith("VmHWM:")), 0))
        except OSError:
            pass
        done.wait(0.02)


def run_judge(cmd, seconds):
    """(exit status, output, peak resident bytes of the judge process, seconds) of `cmd`."""
    with open(os.devnull) as null, subprocess.Popen(cmd, stdin=null, stdout=subprocess.PIPE,
                                                    stderr=subprocess.STDOUT, cwd=registry.ROOT) as proc:
        out, killer, peak, done = [], threading.Timer(seconds, proc.kill), [0], threading.Event()
        reader = threading.Thread(target=lambda: out.append(proc.stdout.read()))
        watcher = threading.Thread(target=_high_water, args=(proc.pid, peak, done))
        started = time.monotonic()
        killer.start()
        reader.start()
        watcher.start()
        _, status, _ = os.wait4(proc.pid, 0)
        took = time.monotonic() - started
        done.set()
        killer.cancel()
        reader.join()
        watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, out[0].decode("utf-8", errors="replace"), peak[0], took


def submission(path):
    return py_text(solved(LESSON, "all")) + "\n\n# %%\n" + path.read_text()


def lingering(marker):
    """Processes whose command line mentions `marker` (a forked learner process keeps pytest's)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if marker in proc.joinpath("cmdline").read_bytes().decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_every_file_says_what_it_expects():
    assert len(FILES) >= 10
    for path in FILES:
        assert set(expected(path)) == set(POINTS) == set(exercise_tests(LESSON)), path.name


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_pytest_route(tmp_path, path):
    copy = tmp_path / f"copy-{path.stem}"
    write(copy / LESSON.folder, f"{LESSON.name}.py", submission(path))
    before = fingerprint(GUARDED)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lessons", str(copy),
           "--memory-limit", MEMORY_GB, "--check-timeout", "10", "checks/lesson01"]
    code, out, peak, took = run_judge(cmd, 300)
    table = parse_summary(out).get("01")
    assert table == expected(path), out
    assert code == (0 if set(table.values()) == {"pass"} else 1), out
    assert f"{sum(s == 'pass' for s in table.values())} of 8 exercises pass" in out, out
    for text in lines(path, "says"):
        assert text in out, out
    for text in lines(path, "never"):
        assert text not in out, out
    assert not re.search("[\x1b\x80-\x9f]", out), "a terminal escape reached the report"
    assert took < RUN_SECONDS, f"the run took {took:.0f} s"
    assert peak < JUDGE_MEMORY, f"the judge held {peak >> 20} MiB"
    time.sleep(0.3)
    assert lingering(str(copy)) == [], "a process started by learner code outlived the run"
    assert fingerprint(GUARDED) == before, "learner code changed checks/ or course/"


def test_a_change_to_the_checks_stops_the_batch_and_names_the_learner(tmp_path, monkeypatch):
    """Without namespaces or root (COURSE_SANDBOX=none) learner code can write the checks: the guard
    finds it before that learner's verdict is recorded."""
    from course.grading.integrity import Guard, TamperError
    from course.grading.judge import RemoteLesson

    target = tmp_path / "decides-grades.txt"
    target.write_text("the original")
    learner_file = tmp_path / "evil.py"
    learner_file.write_text(f"def f():\n    open({str(target)!r}, 'a').write('changed')\n    return 1\n")
    monkeypatch.setenv("COURSE_SANDBOX", "none")
    guard = Guard([target])
    lesson = RemoteLesson(learner_file)
    lesson.set_deadline(10)
    assert lesson.f() == 1
    lesson.close()
    with pytest.raises(TamperError, match="evil"):
        guard.verify("evil")


def test_learner_code_cannot_write_outside_its_scratch_folder(tmp_path):
    from course.grading.judge import RemoteLesson

    if os.environ.get("COURSE_SANDBOX", "auto") != "auto":
        pytest.skip("containment chosen by hand")
    target = tmp_path / "outside.txt"
    learner_file = tmp_path / "writer.py"
    learner_file.write_text(
        "import os\n"
        f"def f():\n"
        f"    out = []\n"
        f"    for path in ({str(target)!r}, 'here.txt'):\n"
        f"        try:\n"
        f"            open(path, 'w').write('x'); out.append('wrote')\n"
        f"        except OSError as e:\n"
        f"            out.append(type(e).__name__)\n"
        f"    return out\n")
    lesson = RemoteLesson(learner_file)
    lesson.set_deadline(10)
    result = lesson.f()
    lesson.close()
    if result[0] == "wrote":
        pytest.skip("this machine offers neither namespaces nor `nobody` for the probe")
    assert not target.exists() and result == [result[0], "wrote"]
