"""nbgrader's notebook runs for the feedback, `--jobs` at a time: the learners split into shards.

One `nbgrader autograde` runs one notebook after the other. With `jobs` > 1
the learners are split into that many shards, and each shard is autograded
by its own watched `nbgrader autograde` (`autograde.autograde`, unchanged) in
a course folder of its own that the grader makes inside the course folder
(.autograde-shards/K/: the configuration, the grading kernelspec, a copy of
the gradebook and the shard's submissions), so the kernel's COURSE_HIDE,
the course folder, hides every shard. Each shard has its own gradebook (no
two nbgrader processes write one SQLite file).

Each shard runs in a child forked from the grader that is the subreaper of
its nbgrader: what it kills after a learner (`processes.kill_descendants`) is
its own shard's processes, never another's. It dies with the grader. It sends
its results back as JSON; a TamperError in a shard stops the other shards and
is raised here. Afterwards the grader moves each learner's autograded folder
into the course folder (links and special files left out, nothing followed),
copies the rows nbgrader wrote into the course's gradebook, and removes the
shards.
"""

import json
import os
import selectors
import shutil
import signal
import stat
import sys
import traceback
from pathlib import Path

from ..grading import processes
from ..grading.integrity import TamperError
from .autograde import autograde
from .seal import clean_tree, real_folder
from .setup import GradingError, gradebook

SHARDS = ".autograde-shards"  # inside the course folder: hidden from learner code with it


def autograde_all(course_dir, lesson, learners, learner_timeout, guard, jobs):
    """`autograde` over `learners`, `jobs` shards side by side (one stream when jobs <= 1);
    the same {learner: (state, seconds, log)}, the autograded notebooks in the course folder."""
    learners = list(learners)
    if jobs <= 1 or len(learners) <= 1:
        return autograde(course_dir, lesson, learners, learner_timeout, guard=guard)
    course_dir = Path(course_dir)
    root = fresh_folder(course_dir, SHARDS)
    groups = [learners[k::jobs] for k in range(min(jobs, len(learners)))]  # balanced, each learner once
    try:
        folders = [make_shard(course_dir, root / str(k), lesson, group) for k, group in enumerate(groups)]
        watched = SharedGuard(guard, [p for f in folders for p in (f / "nbgrader_config.py", f / "jupyter",
                                                                  f / "submitted")]) if guard else None
        results = run_shards(lesson, list(zip(folders, groups)), learner_timeout, watched)
        for folder, group in zip(folders, groups):
            for learner in group:
                take_back(folder, course_dir, lesson, learner)
            copy_rows(folder, course_dir, lesson, group)
    finally:
        processes.kill_descendants()  # what a shard that died left (re-parented here)
        shutil.rmtree(root, ignore_errors=True)
    return results


def fresh_folder(course_dir, name):
    """An empty real folder course_dir/name (whatever was there, link or not, removed unfollowed)."""
    real_folder(course_dir, name)
    path = Path(course_dir) / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir()
    return path


def copy_plain(source, target):
    """Copy the folders and regular files under `source` to `target`; links and special files are left out."""
    for dirpath, _, filenames in os.walk(source):  # os.walk does not descend into linked folders
        here = Path(target) / os.path.relpath(dirpath, source)
        here.mkdir(parents=True, exist_ok=True)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                shutil.copy2(path, here / name)


def make_shard(course_dir, folder, lesson, learners):
    """A course folder for `learners`' autograde: the course's configuration and kernelspec (its
    COURSE_HIDE stays the course folder), a copy of its gradebook, their submissions only."""
    folder.mkdir()
    shutil.copy2(course_dir / "nbgrader_config.py", folder / "nbgrader_config.py")
    shutil.copy2(course_dir / "gradebook.db", folder / "gradebook.db")
    copy_plain(course_dir / "jupyter", folder / "jupyter")
    for learner in learners:
        copy_plain(course_dir / "submitted" / learner / lesson.folder, folder / "submitted" / learner / lesson.folder)
    return folder


class SharedGuard:
    """The batch's Guard, also over the shards' configuration, kernelspecs and submissions (fingerprinted
    before any shard starts); a change is pinned on the learner just run and those run at the same time."""

    def __init__(self, guard, paths):
        self.guard = guard.including(paths)

    def verify(self, who):
        self.guard.verify(f"{who} (or a learner autograded at the same time)")


def run_shards(lesson, shards, learner_timeout, guard):
    """Run `autograde` on each (folder, learners) in a forked child, all at once; their merged results."""
    sys.stdout.flush()
    sys.stderr.flush()
    children = {}  # read end of the child's pipe -> (pid, learners)
    for folder, learners in shards:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            _child(w, folder, lesson, learners, learner_timeout, guard)
        os.close(w)
        children[r] = (pid, learners)
    replies = _gather(children)
    results, tampered, errors = {}, [], []
    for fd, (pid, learners) in children.items():
        _, status = os.waitpid(pid, 0)
        reply = replies.get(fd) or {}
        tampered += [reply["tamper"]] if "tamper" in reply else []
        errors += [reply["error"]] if "error" in reply else []
        got = {k: tuple(v) for k, v in reply.get("results", {}).items()}
        for learner in learners:
            results[learner] = got.get(learner) or ("not reached", 0.0, f"the process that ran nbgrader for "
                                                    f"this learner ended without a result (status {status})\n")
    if tampered:
        raise TamperError(tampered[0])
    if errors:
        raise GradingError(f"nbgrader's run of a shard failed:\n{errors[0]}")
    return results


def _gather(children):
    """{read end: reply} of every child; when one reports a tamper, the others are stopped at once."""
    selector, data, replies = selectors.DefaultSelector(), {fd: b"" for fd in children}, {}
    for fd in children:
        selector.register(fd, selectors.EVENT_READ)
    while selector.get_map():
        for key, _ in selector.select():
            chunk = os.read(key.fd, 1 << 16)
            if chunk:
                data[key.fd] += chunk
                continue
            selector.unregister(key.fd)
            os.close(key.fd)
            try:
                replies[key.fd] = json.loads(data[key.fd]) if data[key.fd] else {}
            except ValueError:
                replies[key.fd] = {}
            if "tamper" in replies[key.fd]:
                for fd in selector.get_map():
                    _stop(children[fd][0])
    selector.close()
    return replies


def _stop(pid):
    try:
        os.kill(pid, signal.SIGKILL)  # its nbgrader dies with it (PDEATHSIG); the rest comes back here
    except ProcessLookupError:
        pass


def _child(fd, folder, lesson, learners, learner_timeout, guard):
    """In the forked child: this shard's autograde, its own processes' subreaper; never returns."""
    try:
        parent = os.getppid()
        processes.die_with_parent()
        if os.getppid() != parent:
            os._exit(1)
        processes.set_subreaper()
        try:
            reply = {"results": autograde(folder, lesson, learners, learner_timeout, guard=guard)}
        except TamperError as e:
            reply = {"tamper": str(e)}
        except BaseException:
            reply = {"error": traceback.format_exc()}
        with os.fdopen(fd, "wb") as fh:
            fh.write(json.dumps(reply).encode())
    finally:
        os._exit(0)


def take_back(folder, course_dir, lesson, learner):
    """Move the shard's autograded/LEARNER/NN_name/ into the course folder, replacing an older one;
    links and special files in it removed, none followed."""
    real_folder(folder, "autograded", learner, lesson.folder)
    source = folder / "autograded" / learner / lesson.folder
    if not source.is_dir():
        return
    clean_tree(source)
    real_folder(course_dir, "autograded", learner, lesson.folder)
    target = course_dir / "autograded" / learner / lesson.folder
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(source, target)


def copy_rows(folder, course_dir, lesson, learners):
    """The rows nbgrader's run wrote in the shard's gradebook (the submission's time, each cell's scores
    and comments, the late penalty) into the course's, where generate_feedback and export read them."""
    import warnings

    from nbgrader.api import MissingEntry

    with gradebook(folder) as src, gradebook(course_dir) as dst, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not in session.*")
        for learner in learners:
            try:
                sub = src.find_submission(lesson.folder, learner)
            except MissingEntry:
                continue
            dst.update_or_create_submission(lesson.folder, learner, timestamp=sub.timestamp, extension=sub.extension)
            for nb in sub.notebooks:
                into = dst.find_submission_notebook(nb.notebook.name, lesson.folder, learner)
                into.flagged, into.late_submission_penalty = nb.flagged, nb.late_submission_penalty
                for grade in nb.grades:
                    row = dst.find_grade(grade.cell.name, nb.notebook.name, lesson.folder, learner)
                    for name in ("auto_score", "manual_score", "extra_credit", "needs_manual_grade"):
                        setattr(row, name, getattr(grade, name))
                for comment in nb.comments:
                    row = dst.find_comment(comment.cell.name, nb.notebook.name, lesson.folder, learner)
                    row.auto_comment, row.manual_comment = comment.auto_comment, comment.manual_comment
        dst.db.commit()
