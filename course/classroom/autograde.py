"""Run nbgrader autograde over the submitted learners, watched.

nbgrader grades one learner after the other, in one process, and a single
notebook can stall it (slow cells that add up) or leave processes behind. The
watcher here gives each learner a wall-clock limit and its own log, cleans up
between learners, and words why a notebook could not be run. nbgrader's run
gives the feedback; the points are the judge's (`grade`). With --jobs N,
shards.py runs N of these side by side, each over its share of the learners.
"""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from ..grading import processes
from ..grading.integrity import TamperError
from .launch import nbgrader
from .seal import LOG_PREFIX
from .setup import first_line

LEARNER_TIMEOUT = 600  # seconds for one learner's whole notebook: many slow cells, each under CELL_TIMEOUT

# The first cell of the rerun of a notebook that killed its kernel: the rest of it is graded.
EXIT_GUARD = '''\
# Added by the grader: this notebook killed its kernel (os._exit) when it was first graded.
# os._exit now raises SystemExit instead, so the cell that calls it fails and the rest is graded.
import os as _grader_os

_grader_exit, _grader_forked = _grader_os._exit, []
_grader_os.register_at_fork(after_in_child=lambda: _grader_forked.append(True))


def _grader_no_exit(status=0):
    if _grader_forked:  # a process forked in the notebook (a check's probe) exits as asked
        _grader_exit(status)
    raise SystemExit(f"os._exit({status}) was called; the grader keeps the kernel alive")


_grader_os._exit = _grader_no_exit
'''

# nbgrader's log lines that start a learner, and that say a learner failed.
STUDENT_LINE = re.compile(r"Creating/updating student with ID '([^']+)'")
FAILED_LINE = re.compile(r"There was an error processing assignment '[^']+' for student '([^']+)'")


def autograde(course_dir, lesson, learners, learner_timeout=LEARNER_TIMEOUT, student="*", guard=None):
    """One `nbgrader autograde` run over the submitted learners, watched.

    nbgrader grades one learner after the other and carries on past a failure.
    A watcher reads its log as it comes: it splits the log per learner and,
    when one learner's notebook runs longer than `learner_timeout` in all
    (slow cells that add up), kills that kernel, so nbgrader records the
    failure and moves on. Returns {learner: (state, seconds, log)}, state in
    ok | failed | killed | not reached.

    When nbgrader moves on to the next learner, the processes the previous
    learner's notebook left behind are killed and `guard` (an integrity.Guard)
    is verified, so a change is pinned on the learner whose code made it.
    """
    with nbgrader(course_dir, "autograde", lesson.folder, "--force", f"--student={student}",
                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        logs, started, killed, current, previous = _watch(proc, guard, learner_timeout)
    if previous is not None:  # nbgrader and all it started are gone: the last learner's files, checked
        _between_learners(None, guard, current[0] or previous)
    ended = time.time()
    text = "".join(line for lines in logs.values() for line in lines)
    failed = set(FAILED_LINE.findall(text))
    order = [x for x in logs if x is not None]
    results = {}
    for i, learner in enumerate(order):
        seconds = (started[order[i + 1]] if i + 1 < len(order) else ended) - started[learner]
        autograded = Path(course_dir) / "autograded" / learner / lesson.folder / f"{lesson.name}.ipynb"
        state = "killed" if learner in killed else "failed" if learner in failed or not autograded.is_file() else "ok"
        results[learner] = (state, seconds, "".join(logs[None] + logs[learner]))
    for learner in learners:
        if learner not in results:
            results[learner] = ("not reached", 0.0, text)
    return results


def _watch(proc, guard, learner_timeout):
    """Read nbgrader's log as it comes, per learner; stop a learner's kernel past its limit."""
    import threading

    logs, started, killed, current = {None: []}, {}, set(), [None]

    def read():
        for line in proc.stdout:
            m = STUDENT_LINE.search(line)
            if m:
                current[0] = m.group(1)
                started[current[0]] = time.time()
                logs[current[0]] = []
            logs[current[0]].append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    previous = None
    while proc.poll() is None:
        learner = current[0]
        if learner != previous and previous is not None:
            _between_learners(proc, guard, previous)
        previous = learner
        if learner and learner not in killed and time.time() - started[learner] > learner_timeout:
            killed.add(learner)
            # The kernel: nbgrader records a dead kernel and goes on with the next learner. Without
            # /proc, nbgrader itself (its kernel then exits too; the learners after are not reached).
            _kill(_descendants(proc.pid) or [proc.pid])
        time.sleep(0.5)
    # Processes the last notebook left behind may hold nbgrader's output pipe open: kill them before
    # waiting for its end (a forked kernel can even deadlock and never exit by itself).
    processes.kill_descendants()
    reader.join(timeout=60)
    return logs, started, killed, current, previous


def seal_notes(text):
    """What the Seal inside nbgrader removed or killed after a notebook ran, from its log lines."""
    return [line.split(LOG_PREFIX, 1)[1].split(": ", 1)[-1].strip() for line in text.splitlines()
            if LOG_PREFIX in line and "outputs kept as text" not in line]


def _between_learners(proc, guard, learner):
    """Kill what `learner`'s notebook left running (orphans re-parented here), then check the files."""
    processes.kill_descendants(keep=(proc.pid,) if proc is not None else ())
    if guard is not None:
        try:
            guard.verify(learner)
        except TamperError:
            if proc is not None:
                _kill(_descendants(proc.pid) + [proc.pid])
            raise


def _descendants(pid):
    """Process ids below `pid` (Linux /proc; empty elsewhere)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _add_exit_guard(path):
    """Put EXIT_GUARD first in the submitted notebook at `path`, for its second autograde."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(EXIT_GUARD))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
    nbformat.write(nb, path)


def autograde_without_exit(course_dir, lesson, learner, learner_timeout, guard, snapshot, first_log):
    """Autograde `learner` again with os._exit disabled (the cell that calls it fails, the rest is graded),
    then put back the submission as collected (`snapshot`). Returns (state, seconds, both runs' log)."""
    submitted = Path(course_dir) / "submitted" / learner / lesson.folder / f"{lesson.name}.ipynb"
    _add_exit_guard(submitted)
    guard.allow(submitted)
    state, seconds, text = autograde(course_dir, lesson, [learner], learner_timeout, student=learner,
                                     guard=guard)[learner]
    guard.verify(learner)
    submitted.unlink()
    shutil.copyfile(snapshot, submitted)
    guard.allow(submitted)
    return state, seconds, f"{first_log}\n---- graded again with os._exit disabled ----\n{text}"


def describe_failure(state, log, learner_timeout):
    """Why nbgrader could not grade a learner, from its log, in words."""
    if state == "not reached":
        return "not graded: nbgrader stopped before this learner; grade again with --learner"
    if state == "killed":
        return (f"not graded: still running after {learner_timeout} s in all, and stopped (many slow cells, "
                f"each under the per-cell timeout?)")
    if "Timeout waiting for IOPub output" in log:
        return ("not graded: a cell went on running after the per-cell timeout's interrupt (a loop that "
                "catches KeyboardInterrupt, e.g. a bare `except:`?)")
    if "DeadKernelError" in log or "Kernel died" in log:
        return "not graded: the kernel died again (a crash, out of memory?)"
    errors = re.findall(r"^\s*([\w.]*(?:Error|Exception|Exit)): (.*)$", log, re.M)
    if errors:
        return f"not graded: nbgrader failed with {errors[-1][0]}: {first_line(errors[-1][1])}"
    return "not graded: nbgrader failed (see its log)"


def cell_verdicts(path, lesson):
    """{exercise: "pass" | why} from the outputs of an autograded notebook's graded cells."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade") or cell.cell_type != "code":
            continue
        name = meta["grade_id"].removeprefix("test_")
        verdict = "pass"
        for o in cell.get("outputs", []):
            if o.output_type == "error":
                if o.ename == "CheckFailed":  # a check cell's verdict (course.grading.notebook), in one line
                    verdict = first_line(o.evalue)
                elif o.ename in ("CellTimeoutError", "KeyboardInterrupt"):  # nbgrader interrupts a cell at its timeout
                    verdict = "timeout: the cell did not finish in time (an infinite loop?)"
                elif o.ename == "NotImplementedError" or (o.ename == "LearnerError"
                                                          and o.evalue.startswith("NotImplementedError")):
                    verdict = "not attempted"
                else:
                    verdict = f"{o.ename}: {first_line(o.evalue)}"
                break
            if o.output_type == "stream" and o.name == "stderr":
                verdict = f"wrote to stderr: {first_line(o.text)}"
                break
            if o.output_type == "execute_result":  # nbgrader reads a displayed number as partial credit
                verdict = f"displayed {first_line(o.get('data', {}).get('text/plain', ''))}"
                break
        out[name] = verdict
    return out
