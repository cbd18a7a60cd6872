"""Start nbgrader's own processes: no user-writable code loaded, nothing left running.

nbgrader is not contained (it writes the gradebook and the feedback), so it
must load nothing that learner code, or anyone but the course folder, could
have written: no `~/.jupyter` config, no `~/.ipython` startup file, no
user-site `.pth`. Each run gets

- `python -s` and PYTHONNOUSERSITE=1 (its children too: alembic, the kernel);
- a fresh, empty, private HOME (removed afterwards) holding its
  JUPYTER_CONFIG_DIR, IPYTHONDIR and runtime folder: the only configuration
  it reads is the course folder's nbgrader_config.py, and kernelspecs come
  from the course folder's jupyter/ (JUPYTER_DATA_DIR; both hashed by the
  grade command) or the system's;
- an environment built from an allow-list, never a copy of the grader's, so
  no secret of the instructor's environment reaches nbgrader or its kernel;
- closed to ptrace and to reads of its /proc/PID/environ and memory by the
  user's other processes (`shield`; not the grade command itself: the
  probes it forks must write their own /proc/self/uid_map);
- its own process group, killed when the grade command dies
  (PR_SET_PDEATHSIG: set from the main thread, as the grade command does);
  when it ends, its group and every process re-parented to the grade command
  (a subreaper) are killed before anything it wrote is read.
"""

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .. import lessons as registry
from ..grading import processes, sandbox

# Passed on from the grader's environment: locale, and the course's own settings for learner code.
PASSED = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "COURSE_SANDBOX", "COURSE_MEMORY_LIMIT_GB")


GRADER_NEEDS = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "TERM", "VIRTUAL_ENV", "MPLBACKEND",
                "MPLCONFIGDIR")


def forget_secrets():
    """Keep of this process's environment only what grading reads (the course's own COURSE_*, Python's,
    Jupyter's and Dask's settings, the locale): tokens and keys the instructor exported are gone."""
    keep = ("COURSE_", "PYTHON", "JUPYTER", "LC_", "XDG_", "DASK_", "PYTEST_")
    for name in list(os.environ):
        if name not in GRADER_NEEDS and not name.startswith(keep):
            del os.environ[name]


def environ(course_dir, home):
    """nbgrader's whole environment (the kernel's starts from it, plus its kernelspec's)."""
    jupyter = Path(course_dir).resolve() / "jupyter"
    env = {k: os.environ[k] for k in PASSED if k in os.environ}
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        PYTHONPATH=str(registry.ROOT), PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1",
        HOME=home, TMPDIR=home, MPLCONFIGDIR=home, JUPYTER_RUNTIME_DIR=os.path.join(home, "runtime"),
        JUPYTER_CONFIG_DIR=os.path.join(home, "config"), IPYTHONDIR=os.path.join(home, "ipython"),
        JUPYTER_DATA_DIR=str(jupyter))
    return env


def shield():
    """Close this process to the others of the same user: no ptrace, no /proc/PID/environ or mem
    (PR_SET_DUMPABLE 0). What runs learner code without namespaces runs as the same user (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(sandbox.PR_SET_DUMPABLE, 0, 0, 0, 0)


@contextmanager
def nbgrader(course_dir, *args, **popen):
    """nbgrader ARGS (`start_nbgrader`) in the course folder, as a Popen; on leaving, it and all it started are gone."""
    home = tempfile.mkdtemp(prefix="course-nbgrader-")
    linux = sys.platform.startswith("linux")
    proc = subprocess.Popen([sys.executable, "-s", "-m", "course.classroom.start_nbgrader", *args], cwd=course_dir,
                            env=environ(course_dir, home), start_new_session=True,
                            preexec_fn=processes.die_with_parent if linux else None, **popen)
    try:
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        processes.kill_descendants()
        shutil.rmtree(home, ignore_errors=True)


def run(course_dir, *args):
    """Run `nbgrader ARGS` in the course folder to its end; (exit code, output)."""
    with nbgrader(course_dir, *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        out = proc.communicate()[0]
    return proc.returncode, out
