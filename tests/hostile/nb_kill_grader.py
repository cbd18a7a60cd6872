# A blank nll. Top-level code (run only by nbgrader's kernel) SIGKILLs every process above its
# kernel that is `nbgrader autograde` or the grade command, so that the batch would end with no
# grades and nbgrader, orphaned, would go on running learner code unsupervised.
# expect: nll=not attempted
import os
import signal


def _kill_grader():
    pid = os.getpid()
    for _ in range(12):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                pid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except (OSError, ValueError, IndexError):
            return
        if pid <= 1:
            return
        if b"nbgrader\0autograde" in cmdline or b"nbgrader\0grade" in cmdline:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


_kill_grader()


def nll(P, words, stoi):
    raise NotImplementedError()
