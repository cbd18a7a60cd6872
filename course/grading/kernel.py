"""The kernel that runs a learner's notebook under `nbgrader autograde`, contained.

    python -m course.grading.kernel -f CONNECTION_FILE [ipykernel options]   (the grading kernelspec's argv)

nbgrader executes the whole notebook, learner code included, to make the
feedback. That run decides no grade (the judge does), but it must not be able
to change what does, read what it must not, or leave anything behind. So the
kernel is contained by `sandbox.contain`, like the judge's probe, before
ipykernel starts:

- its working directory (autograded/LEARNER/NN_name/) is a private tmpfs
  holding a copy of the folder's regular files: nothing the notebook writes
  there (a symlink, a hard link, a config file) reaches the real folder that
  nbgrader writes into afterwards; figures reach the feedback inline, as
  outputs;
- HOME, IPYTHONDIR, JUPYTER_*, MPLCONFIGDIR, /tmp and /dev/shm are private
  and gone when the kernel ends; the course folder ($COURSE_HIDE: gradebook,
  source/, submitted/, other learners, feedback/), homes and the rest of the
  repository but course/, checks/ and lessons/ are hidden; all else is
  read-only; the environment is an allow-list (no secret of the grader's);
- its own PID namespace: the kernel cannot signal nbgrader or the grade
  command, and all it starts ends with it. The process nbgrader started stays
  outside and passes nbgrader's interrupts (the cell timeout) on;
- no network: nbgrader talks to it over Unix sockets (the course's
  nbgrader_config.py sets `KernelManager.transport = "ipc"` and puts the
  sockets in a folder of their own, the only host folder it may write). With
  the tcp transport (the kernelspec used from JupyterLab) it keeps the host's
  network, the rest of the containment unchanged.

Where namespaces are not available, see `sandbox`: the working directory is
still a copy and the environment still scrubbed. COURSE_SANDBOX=namespaces
makes the kernel exit 70 instead (nbgrader records the learner as failed).
"""

import json
import os
import secrets
import shutil
import stat
import sys

from . import sandbox

SOCKET_FOLDER = "course-kernel-"  # the prefix of the socket folder nbgrader_config.py makes for the ipc transport


def socket_folder(info):
    """The folder of the kernel's ipc sockets, checked to be the course's own (and emptied); None for tcp."""
    if info.get("transport", "tcp") != "ipc":
        return None
    folder = os.path.dirname(os.path.abspath(info["ip"]))
    st = os.lstat(folder)
    if (not os.path.basename(folder).startswith(SOCKET_FOLDER) or not stat.S_ISDIR(st.st_mode)
            or st.st_uid not in (os.getuid(), sandbox.NOBODY if os.getuid() == 0 else -1) or st.st_mode & 0o077):
        sandbox.refuse(f"the ipc socket folder {folder} is not the course's own (made by its nbgrader_config.py)")
    for name in os.listdir(folder):  # left by an earlier kernel: nobody follows them, but start clean
        path = os.path.join(folder, name)
        shutil.rmtree(path) if stat.S_ISDIR(os.lstat(path).st_mode) else os.unlink(path)
    return folder


def main(argv):
    i = argv.index("-f") + 1
    with open(argv[i]) as fh:
        info = json.load(fh)
    sockets = socket_folder(info)
    scratch = os.path.join("/tmp", "course-learner-" + secrets.token_hex(8))
    gb = float(os.environ.get("COURSE_MEMORY_LIMIT_GB", sandbox.DEFAULT_MEMORY_GB))
    # + the kernel's own imports: torch, and pyarrow's allocator, which reserves 1 GiB when it fits
    how = sandbox.contain([], None, scratch, gb + 3 if gb else 0,
                          work=os.getcwd(), writable=[sockets] if sockets else [], network=sockets is None)
    argv[i] = os.path.join(scratch, "kernel.json")
    with open(os.open(argv[i], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
        json.dump(info, fh)
    os.environ["COURSE_KERNEL_CONTAINED"] = how
    os.environ["JPY_PARENT_PID"] = "1"  # no parent poller: the kernel dies with its forwarder (PDEATHSIG)
    os.execv(sys.executable, [sys.executable, "-s", "-m", "ipykernel_launcher", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
