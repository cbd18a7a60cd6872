"""The grader's process tree: orphans come back to it, and it can count and end what is below it.

Learner code can start processes that outlive the one that ran it. The
grader makes itself their subreaper, so they come back to it rather than to
init, and kills all that is below it when a learner is done; the CPU time a
probe's whole tree used is read from /proc, where learner code cannot change it.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 1, 36, 37

_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def set_subreaper(on=True):
    """Orphans of the learner's processes come to this process (Linux); False elsewhere. `on=False`: to
    init again, for a process started here that must outlive what is killed below it (the zygote)."""
    return bool(_libc) and _libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0


def is_subreaper():
    flag = ctypes.c_int(0)
    return bool(_libc) and _libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0 and bool(flag.value)


def die_with_parent():
    """SIGKILL this process when the thread that started it ends (Linux; nothing elsewhere). setuid clears
    it: set it after. The parent may already be gone: callers compare os.getppid() before and after."""
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _children_of(pid):
    kids = []
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                kids.append(int(name))
    return kids


def tree_cpu_seconds(pid):
    """CPU seconds (user + system) of `pid` and its descendants, with the children they reaped."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime (stat fields 14-17)
        except (OSError, IndexError, ValueError):
            continue
        todo += _children_of(p)
    return total / os.sysconf("SC_CLK_TCK")


def kill_descendants(keep=()):
    """SIGKILL every process below this one except `keep` (and theirs), and reap them."""
    todo, victims = [p for p in _children_of(os.getpid()) if p not in keep], []
    while todo:
        pid = todo.pop()
        victims.append(pid)
        todo.extend(_children_of(pid))
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in victims:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return victims
