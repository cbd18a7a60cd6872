"""The kernel that runs a learner's notebook under `nbgrader autograde`, contained.

    python -m course.grading.kernel -f CONNECTION_FILE     (the grading kernelspec's argv)

nbgrader executes the whole notebook, learner code included, to make the
feedback. That run decides no grade (the judge does, `course.grading`), but
it must not be able to change what does. Before ipykernel starts:

- where the kernel allows user namespaces: the folders named in
  $COURSE_PROTECT (the repository with checks/ and course/, and the nbgrader
  course folder with its gradebook, source/ and release/) become read-only,
  except the notebook's own folder (the working directory, where figures go);
  then every capability is dropped, so nothing can make them writable again;
- the memory limit ($COURSE_MEMORY_LIMIT_GB, default 4 GiB above start-up).

The kernel keeps the network (nbgrader talks to it over loopback sockets).
Processes it leaves behind are re-parented to `course nbgrader grade`, which
kills them. Without namespaces only the memory limit applies, and the hashes
of `integrity.Guard`, the gradebook snapshot and the judge's rewrite of every
score are what protect the grades.
"""

import ctypes
import os
import resource
import sys

from . import sandbox


def _protect(paths, writable):
    libc = sandbox._libc
    if libc is None or sandbox.SYS_CAPSET is None:
        return False
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(sandbox.CLONE_NEWUSER | sandbox.CLONE_NEWNS) != 0:
        return False
    sandbox._write("/proc/self/setgroups", "deny")
    sandbox._write("/proc/self/uid_map", f"{uid} {uid} 1")
    sandbox._write("/proc/self/gid_map", f"{gid} {gid} 1")
    sandbox._mount(None, b"/", None, sandbox.MS_REC | sandbox.MS_PRIVATE, None)

    def setattr_(path, set_=0, clear=0, recursive=True):
        attr = sandbox._MountAttr(set_, clear, 0, 0)
        sandbox._check(libc.syscall(sandbox.SYS_MOUNT_SETATTR, sandbox.AT_FDCWD, path.encode(),
                                    sandbox.AT_RECURSIVE if recursive else 0, ctypes.byref(attr),
                                    ctypes.c_size_t(ctypes.sizeof(attr))), f"mount_setattr {path}")

    MS_BIND = 0x1000
    for path in paths:
        sandbox._mount(path.encode(), path.encode(), None, MS_BIND | sandbox.MS_REC, None)
        setattr_(path, set_=sandbox.MOUNT_ATTR_RDONLY)
    for path in writable:
        sandbox._mount(path.encode(), path.encode(), None, MS_BIND, None)
        setattr_(path, clear=sandbox.MOUNT_ATTR_RDONLY, recursive=False)
    sandbox._drop_capabilities()
    return True


def main(argv):
    protect = [p for p in os.environ.get("COURSE_PROTECT", "").split(os.pathsep) if p and os.path.isdir(p)]
    cwd = os.getcwd()
    try:
        contained = _protect([os.path.realpath(p) for p in protect], [os.path.realpath(cwd)]) if protect else False
    except OSError as e:
        sys.stderr.write(f"grading kernel: could not protect the course files ({e}); not running learner code\n")
        os._exit(70)
    os.environ["COURSE_KERNEL_CONTAINED"] = "namespaces" if contained else "none"
    gb = float(os.environ.get("COURSE_MEMORY_LIMIT_GB", sandbox.DEFAULT_MEMORY_GB))
    if gb:
        limit = sandbox._address_space() + int((gb + 2) * (1 << 30))  # + the kernel's own imports (torch)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
