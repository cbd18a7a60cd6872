"""Containment for learner code: a forked process that cannot reach the judge.

`contain()` runs in a freshly forked child, before any learner code. In order:

1. Its own session (so one signal reaches the whole group), stdin from
   /dev/null, stdout and stderr into a file the judge reads, no other
   inherited file descriptors but the judge's socket.
2. Namespaces, where the kernel allows them without root (a user namespace
   owns the rest): a mount namespace in which every mount is read-only except
   a private scratch tmpfs that becomes the working directory; a network
   namespace with no interfaces up; a PID namespace, whose first process is
   the learner's, so that when it ends, every process it started ends too
   and the judge's process id cannot even be named. Then every capability is
   dropped and no new ones can be gained (no_new_privs).
3. Where namespaces are not available: as root, the process becomes `nobody`
   (it can then write none of the course's root-owned files); otherwise it
   keeps the user's rights, and the judge's hashes of the files that decide
   grades (`course.grading.integrity`) are the guard.
4. Resource limits: address space (the memory limit: $COURSE_MEMORY_LIMIT_GB,
   default 4 GiB above what the probe holds after its imports), file size, no
   core dumps.

$COURSE_SANDBOX chooses: `auto` (the default: the best available),
`namespaces` (refuse to run learner code without them), `nobody`, `none`
(the last two exist to test the fallbacks).

The judge sets itself as a child subreaper, so a process that escapes its
parent (double fork, setsid) is re-parented to the judge and killed by
`kill_descendants` after each verdict.
"""

import ctypes
import os
import resource
import shutil
import signal
import sys
import tempfile

DEFAULT_MEMORY_GB = float(os.environ.get("COURSE_MEMORY_LIMIT_GB", "4"))

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_REC, MS_PRIVATE, MS_NOSUID, MS_NODEV = 0x4000, 0x40000, 0x2, 0x4
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER = 1, 38, 24, 36
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = -100, 0x8000, 0x1
SYS_MOUNT_SETATTR, SYS_CAPSET = 442, {"x86_64": 126, "aarch64": 91}.get(os.uname().machine)
NOBODY = 65534

_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def set_subreaper():
    """Orphans of the learner's processes come to this process (Linux); False elsewhere."""
    return bool(_libc) and _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


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


def _write(path, text):
    with open(path, "w") as fh:
        fh.write(text)


def _mount(source, target, fstype, flags, data):
    _check(_libc.mount(source, target, fstype, ctypes.c_ulong(flags), data), f"mount {target}")


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _read_only_everywhere_but(scratch):
    """Every mount read-only (one recursive mount_setattr), then a small writable tmpfs on scratch."""
    _mount(None, b"/", None, MS_REC | MS_PRIVATE, None)  # nothing we do here reaches the host
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    _check(_libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, b"/", AT_RECURSIVE, ctypes.byref(attr),
                         ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr /")
    _mount(b"tmpfs", scratch.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=256m,mode=0700")


def _drop_capabilities():
    for cap in range(64):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last capability: fine
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.syscall(SYS_CAPSET, header, data), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _enter_namespaces(scratch):
    """User, mount, network and PID namespaces; False when the kernel refuses (then nothing changed)."""
    if _libc is None or SYS_CAPSET is None:
        return False
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID) != 0:
        return False
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _read_only_everywhere_but(scratch)
    return True


def _world_reachable(path):
    """True when user `nobody` could read `path` (every directory above it searchable by others)."""
    path = os.path.abspath(path)
    parts = path.split(os.sep)
    for i in range(2, len(parts) + 1):
        try:
            mode = os.stat(os.sep.join(parts[:i]) or os.sep).st_mode
        except OSError:
            return False
        if not mode & 0o001 and i < len(parts) or i == len(parts) and not mode & 0o004:
            return False
    return True


def _become_nobody(scratch):
    needed = [sys.prefix, os.path.dirname(os.__file__), os.path.dirname(os.path.dirname(__file__))]
    if os.getuid() != 0 or not all(_world_reachable(p) for p in needed):
        return False
    os.chown(scratch, NOBODY, NOBODY)
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    return True


def _limit(kind, value):
    soft, hard = resource.getrlimit(kind)
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(kind, (value, value))


def _address_space():
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def contain(keep_fds, output_fd, scratch, memory_gb=DEFAULT_MEMORY_GB):
    """Called in the forked child; returns how it is contained, in words. May fork: the caller
    continues in the learner's process (PID 1 of its namespace) and the other one never returns."""
    os.setsid()
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the judge gone: the probe goes too
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    keep = sorted({0, 1, 2, *keep_fds})
    for low, high in zip(keep, keep[1:] + [os.sysconf("SC_OPEN_MAX")]):
        os.closerange(low + 1, high)
    how, mode = "namespaces", os.environ.get("COURSE_SANDBOX", "auto")
    try:
        isolated = mode in ("auto", "namespaces") and _enter_namespaces(scratch)
    except OSError:
        os._exit(70)  # half isolated: do not run learner code at all
    if mode == "namespaces" and not isolated:
        os._exit(70)
    if isolated:
        pid = os.fork()  # the first process of the new PID namespace runs the learner's code
        if pid:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _, status = os.waitpid(pid, 0)
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # A /proc of its own: the learner's processes see only themselves (best effort).
        _libc.mount(b"proc", b"/proc", b"proc", ctypes.c_ulong(MS_NOSUID | MS_NODEV), None)
        _drop_capabilities()
    elif mode in ("auto", "nobody") and _become_nobody(scratch):
        how = "user nobody"
    else:
        how = "same user (hash checks only)"
    os.chdir(scratch)
    os.environ.update(HOME=scratch, TMPDIR=scratch, MPLCONFIGDIR=scratch)
    tempfile.tempdir = scratch
    if memory_gb:
        _limit(resource.RLIMIT_AS, _address_space() + int(memory_gb * (1 << 30)))
    _limit(resource.RLIMIT_FSIZE, 256 << 20)
    _limit(resource.RLIMIT_CORE, 0)
    return how


def new_scratch():
    return tempfile.mkdtemp(prefix="course-probe-")


def remove_scratch(path):
    shutil.rmtree(path, ignore_errors=True)
