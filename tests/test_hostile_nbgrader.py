"""Hostile submissions on the nbgrader route, graded as root and as an ordinary instructor user.

A class: an honest learner (the reference solution), a blank friend, and one attacker per file
tests/hostile/nb_*.py (the reference solution with a blank nll, plus one class of attack run by
nbgrader's kernel); as root, every other file of tests/hostile/ too (but the judge's own, probe_*),
each exercise with the verdict its `# expect:` line gives. `course nbgrader collect` and `grade` run as the instructor would run them, in a
subprocess, with SECRET_TOKEN in the environment and a HOME of their own (holding `.hostile-target`,
the only kind of HOME the attack files write to). Asserted after the batch:

- every learner scores exactly its honest points, and the batch finishes within BOUND;
- no other learner's submission changed, and no other learner's feedback shows anything of an attacker;
- no secret of the grader's environment, no byte of the gradebook in any output file or on the console;
- no link, hard link, FIFO or copy of the gradebook in autograded/ or feedback/;
- no planted config, startup file or .pth ever ran; no script left live in a feedback page;
- nothing left in /tmp, /dev/shm or HOME, and no process of the batch still running.

Without user namespaces (COURSE_SANDBOX=none, as an ordinary user) learner code runs as the
instructor: it can read what the instructor can (the grade command's environment too) and leave
files behind (not asserted there), but the grades, the other learners' work and feedback, and what
the grader's own processes load stay as they are.
"""

import csv
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course import lessons as registry
from course.classroom.mistakes import verdicts_path
from course.grading.integrity import fingerprint
from tests.nbgrader_learners import py_text, solved, write
from tests.test_hostile import GUARDED, MEMORY_GB, NB_FILES, POINTS, expected, submission

pytest.importorskip("nbgrader")
# One worker under xdist: the batches share an instructor user, and /tmp is checked for what they leave.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hostile_nbgrader")]

LESSON = registry.get("01")
HOSTILE = Path(__file__).parent / "hostile"
ATTACKS = sorted(HOSTILE.glob("nb_*.py"))
SECRET = "s3cret-" + hashlib.sha256(os.urandom(16)).hexdigest()[:24]
USER = f"course-grader-{os.getpid()}"  # its own per run: two runs at once never share (or remove) one
BOUND = 60  # seconds per learner: a lesson 01 notebook (6 s) and its judge (3 s) take 45 s on a 2-core machine at load 8
ROOT_DIR = registry.ROOT


def honest_points(path):
    return sum(POINTS[ex] for ex, status in expected(path).items() if status == "pass")


def make_class(submissions, attacks):
    """{learner: honest points}; the attackers sort first, so what they plant reaches the learners after."""
    want = {}
    for path in attacks:
        learner = path.stem.replace("_", "-")
        write(submissions / learner, f"{LESSON.name}.py", submission(path))
        want[learner] = honest_points(path)
    write(submissions / "victim-blank", f"{LESSON.name}.py", LESSON.script(registry.lessons_dir()).read_bytes())
    want["victim-blank"] = 0
    write(submissions / "victim-honest", f"{LESSON.name}.py", py_text(solved(LESSON, "all")))
    want["victim-honest"] = 13
    return want


# ------------------------------------------------------------------ running as root or as a user


def _world_reachable(path):
    parts = Path(path).resolve().parts
    return all(os.stat(os.path.join(*parts[:i])).st_mode & 0o001 for i in range(1, len(parts)))


@pytest.fixture(scope="module")
def user():
    """An ordinary user with a home of its own (created, and removed afterwards)."""
    if os.getuid() != 0 or not shutil.which("useradd") or not shutil.which("runuser"):
        pytest.skip("needs root, useradd and runuser to make an ordinary instructor user")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True)
    entry = pwd.getpwnam(USER)
    yield entry
    _kill_user(entry.pw_uid)
    subprocess.run(["userdel", "-r", USER], capture_output=True)


def _user_pids(uid):
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if proc.stat().st_uid == uid and proc.joinpath("cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _kill_user(uid):
    for pid in _user_pids(uid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def command(args, home, user=None, sandbox="auto"):
    """`python -m course ARGS` as the instructor runs it: their environment (with a secret), their HOME.
    As `user`: through runuser; when this interpreter lies under a folder the user cannot enter (pyenv in
    /root), /root is replaced, in a mount namespace of the command's own, by an empty folder holding
    only the interpreter's tree."""
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_SANDBOX", "PYTHONPATH")}
    env.update(HOME=str(home), SECRET_TOKEN=SECRET, COURSE_SANDBOX=sandbox, PYTHONPATH=str(ROOT_DIR),
               COURSE_MEMORY_LIMIT_GB=MEMORY_GB)
    cmd = [sys.executable, "-m", "course", *args]
    if user is None:
        return cmd, env
    env["USER"] = env["LOGNAME"] = user.pw_name
    assigned = [f"{k}={v}" for k, v in env.items()]
    cmd = ["runuser", "-u", user.pw_name, "--", "env", "-i", *assigned, *cmd]
    real = Path(sys.executable).resolve()
    if not _world_reachable(real) and real.is_relative_to("/root"):
        tree = Path("/root", real.relative_to("/root").parts[0])
        script = ('set -e; mount --bind "$1" "$2"; mount -t tmpfs -o mode=755 tmpfs /root; mkdir "$1"; '
                  'mount --bind "$2" "$1"; shift 2; exec "$@"')
        mnt = Path(home).parent / "mnt"
        mnt.mkdir(exist_ok=True)
        cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(tree), str(mnt), *cmd]
    return cmd, env


def run_course(args, home, user=None, sandbox="auto", timeout=900):
    cmd, env = command(args, home, user, sandbox)
    started = time.time()
    proc = subprocess.run(cmd, env=env, cwd=ROOT_DIR, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr, time.time() - started


# ------------------------------------------------------------------ the batch and what it left


def tmp_entries(uid=None):
    """Entries of /tmp and /dev/shm: those the attackers name, and all of `uid`'s."""
    out = set()
    for place in (Path("/tmp"), Path("/dev/shm")):
        for p in place.iterdir():
            try:
                if "hostile-left" in p.name or (uid is not None and p.lstat().st_uid == uid):
                    out.add(str(p))
            except OSError:
                continue
    return out


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def submitted_hashes(course_dir):
    return {str(p.relative_to(course_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (course_dir / "submitted").glob(f"*/{LESSON.folder}/*")}


def grade_class(released_course, base, attacks, user=None, sandbox="auto", jobs=None):
    """Init, release, collect and grade a class under `base` (as `user`; `jobs`: the CLI's default, the number
    of cores, else --jobs JOBS); returns what the checks need."""
    home, course_dir, submissions = base / "home", base / "course", base / "submissions"
    home.mkdir(parents=True)
    (home / ".hostile-target").write_text("the attack files write only into a HOME holding this file\n")
    want = make_class(submissions, attacks)
    released_course(course_dir, [LESSON], timeout=20)
    if user is not None:
        subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(base)], check=True)
    uid = user.pw_uid if user is not None else None
    before_tmp, before_home = tmp_entries(uid), listing(home)
    code, out, _ = run_course(["nbgrader", "collect", "01", str(submissions), "--dir", str(course_dir)], home, user,
                              sandbox)
    assert code == 0, out
    hashes = submitted_hashes(course_dir)
    gradebook_mode = (course_dir / "gradebook.db").stat().st_mode
    jobs = ["--jobs", str(jobs)] if jobs else []
    code, out, seconds = run_course(["nbgrader", "grade", "01", "--dir", str(course_dir), "--check-timeout", "10",
                                     "--learner-timeout", "120", *jobs], home, user, sandbox)
    time.sleep(1.0)  # a detached writer, had it survived, would have written by now
    return dict(course_dir=course_dir, home=home, want=want, code=code, out=out, seconds=seconds, hashes=hashes,
                gradebook_mode=gradebook_mode, before_tmp=before_tmp, before_home=before_home, uid=uid)


def scores(course_dir):
    with open(course_dir / "grades.csv", newline="") as fh:
        grades = {row["student_id"]: float(row["score"]) for row in csv.DictReader(fh)}
    with open(course_dir / "reports" / f"{LESSON.folder}.csv", newline="") as fh:
        report = {row["learner"]: row for row in csv.DictReader(fh)}
    return grades, report


def output_files(course_dir):
    return [p for p in course_dir.rglob("*") if p.is_file() and not p.is_symlink()]


def check_batch(b, contained=True):
    course_dir, want = b["course_dir"], b["want"]
    assert b["code"] in (0, 2) and "learners graded" in b["out"], b["out"][-3000:]
    assert b["seconds"] < BOUND * len(want), f"{b['seconds']:.0f} s for {len(want)} learners"
    grades, report = scores(course_dir)
    assert grades == {k: float(v) for k, v in want.items()}, (grades, b["out"][-3000:])
    assert {k: r["status"] for k, r in report.items()} == {k: "graded" for k in want}, report
    # No other learner's submission changed; nothing of an attacker in another learner's output.
    assert submitted_hashes(course_dir) == b["hashes"]
    for victim in ("victim-honest", "victim-blank"):
        for sub in ("autograded", "feedback"):
            for f in (course_dir / sub / victim).rglob("*.*"):
                assert "HOSTILE" not in f.read_text(errors="replace"), f
    # Only the notebook and its feedback page, as plain files; the gradebook as it was.
    for sub, suffix in (("autograded", ".ipynb"), ("feedback", ".html")):
        for f in (course_dir / sub).rglob("*"):
            st = f.lstat()
            assert f.is_dir() and not f.is_symlink() or (f.suffix == suffix and f.is_file() and not f.is_symlink()
                                                         and st.st_nlink == 1), f
    assert (course_dir / "gradebook.db").stat().st_mode == b["gradebook_mode"]
    # No secret anywhere, no planted code ran, no live script in feedback.
    if contained:  # else learner code can read /proc/PID/environ of the grade command (the same user)
        for f in output_files(course_dir):
            data = f.read_bytes()
            assert SECRET.encode() not in data, f
            assert f.name == "gradebook.db" or b"SQLite format 3" not in data, f"the gradebook was read into {f}"
        assert SECRET not in b["out"]
    assert not list(b["home"].rglob("HOSTILE-RAN")), [p.read_text() for p in b["home"].rglob("HOSTILE-RAN")]
    for page in (course_dir / "feedback").rglob("*.html"):
        text = page.read_text()
        assert "Content-Security-Policy" in text.split("</head>")[0], page
        assert not re.search(r"<script[^>]*>[^<]*HOSTILE|<[^>]*\sonerror\s*=", text), page
    # Nothing left behind, nothing still running.
    if b["uid"] is not None:
        assert _user_pids(b["uid"]) == [], "a process of the batch is still running"
    if contained:
        assert tmp_entries(b["uid"]) - b["before_tmp"] == set()
        assert listing(b["home"]) == b["before_home"]


@pytest.fixture
def cleanup():
    yield
    for p in tmp_entries():
        try:
            os.unlink(p)
        except OSError:
            pass


def test_every_attack_file_says_what_it_expects():
    assert {p.stem for p in ATTACKS} >= {"nb_symlinks", "nb_home_config", "nb_kill_grader", "nb_secrets",
                                         "nb_leftovers", "nb_live_html"}
    for path in ATTACKS:
        assert set(expected(path)) == set(POINTS), path.name


def test_a_class_graded_as_root(tmp_path, cleanup, released_course):
    """Every file of tests/hostile/ but probe_* (the nb_* attacks and those on the judge that the kernel runs
    too), graded through the shards (--jobs: the number of cores): on top of the class's checks, each
    exercise gets the verdict its file's `# expect:` line gives, a learner that reassigns the checks in its
    notebook is named for it, and checks/ and course/ are unchanged."""
    if os.getuid() != 0:
        pytest.skip("runs as root; test_a_class_graded_as_an_ordinary_user covers the rest")
    before = fingerprint(GUARDED)
    b = grade_class(released_course, tmp_path, NB_FILES)
    check_batch(b)
    saved = json.loads(verdicts_path(b["course_dir"], LESSON).read_text())
    for path in NB_FILES:
        learner = path.stem.replace("_", "-")
        got = {ex: status for ex, (status, _) in saved[learner]["verdicts"].items()}
        assert got == expected(path), (learner, saved[learner])
    assert fingerprint(GUARDED) == before, "learner code changed checks/ or course/"
    reassign = scores(b["course_dir"])[1]["reassign-checks"]
    assert "check tampered with" in reassign["problems"], reassign


def test_a_class_graded_as_an_ordinary_user(user, cleanup, released_course):
    """In one stream (--jobs 1): the other classes go through the shards."""
    base = Path(user.pw_dir) / "batch-ns"
    check_batch(grade_class(released_course, base, ATTACKS, user, jobs=1))


def test_without_user_namespaces_grades_and_the_grader_hold(user, cleanup, released_course):
    """COURSE_SANDBOX=none: learner code runs as the instructor. It can read their files (and the grade
    command's environment) and leave some behind; it cannot change a grade, another learner's work or
    feedback, or what the grader's processes load."""
    base = Path(user.pw_dir) / "batch-none"
    attacks = [p for p in ATTACKS if p.stem not in ("nb_kill_grader", "nb_leftovers")]
    check_batch(grade_class(released_course, base, attacks, user, sandbox="none"), contained=False)


def test_without_user_namespaces_a_killed_grader_leaves_nothing_running(user, cleanup, released_course):
    """The kernel can SIGKILL the grade command when it runs as the same user without a PID namespace:
    that batch ends without grades, but nbgrader and every kernel die with it."""
    base = Path(user.pw_dir) / "batch-kill"
    b = grade_class(released_course, base, [HOSTILE / "nb_kill_grader.py"], user, sandbox="none")
    time.sleep(3)
    assert _user_pids(b["uid"]) == [], "nbgrader or a kernel outlived the killed grade command"
    assert b["seconds"] < BOUND * len(b["want"])


def test_nbgrader_gets_no_secret_and_no_user_code(tmp_path, monkeypatch):
    from course.classroom.launch import environ

    monkeypatch.setenv("SECRET_TOKEN", SECRET)
    monkeypatch.setenv("PYTHONSTARTUP", str(tmp_path / "startup.py"))
    env = environ(tmp_path, str(tmp_path / "home"))
    assert SECRET not in str(env) and "PYTHONSTARTUP" not in env
    assert env["PYTHONNOUSERSITE"] == "1" and env["HOME"] == str(tmp_path / "home")
    for key in ("JUPYTER_CONFIG_DIR", "IPYTHONDIR", "JUPYTER_RUNTIME_DIR"):
        assert env[key].startswith(env["HOME"]), key
