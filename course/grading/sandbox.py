"""Containment for every process that runs learner code: the probe and the grading kernel.

`contain()` runs in the process that is about to run learner code (a forked
probe, or `course.grading.kernel` before it becomes ipykernel). In order:

1. Its own session; stdin from /dev/null; stdout and stderr into `output_fd`
   when given; no inherited file descriptors but `keep_fds`.
2. Namespaces (as root: mount, network and PID; otherwise with a user
   namespace that owns them). The file system becomes the view `mounts`
   builds: read-only, with private tmpfs for `scratch` (HOME, TMPDIR,
   IPYTHONDIR, JUPYTER_*, MPLCONFIGDIR), `work` (the working directory, a
   copy), /tmp and /dev/shm, all gone when the namespace ends; homes, the
   course folder ($COURSE_HIDE, `hide`) and most of /dev hidden; `writable`
   folders (the kernel's sockets) writable. No network interface is up
   (`network=True` keeps the host's). The first process of the new PID
   namespace runs the learner's code: it can name no process outside, and
   when it ends all it started ends. The caller's process stays outside,
   passes signals on to the learner's process group (nbgrader's interrupt)
   and exits with its status. As root, the learner's process then becomes
   `nobody` when it can still read the Python it needs; every capability is
   dropped and none can be gained (no_new_privs).
3. Without namespaces: as root, `nobody`; otherwise the user's own rights;
   the working directory is still a copy (in `scratch`, removed afterwards by
   the waiting process). Not protected then:
   /tmp and /dev/shm are shared (and what is left there stays), the network
   is open, the grader's processes can be signalled, and (unless `nobody`)
   everything the user may read or write is reachable; the judge's hashes
   (`integrity`) are the guard.
4. An environment built from an allow-list (`clean_environ`), never a copy of
   the grader's (the one the process started with is zeroed in its memory);
   limits on address space (the memory limit), file size, core dumps.

$COURSE_SANDBOX chooses: `auto` (the default: the best available),
`namespaces` (exit 70, NOT_CONTAINED, rather than run learner code without
them), `nobody`, `none` (the last two exist to test the fallbacks).
"""

import ctypes
import os
import resource
import select
import shutil
import signal
import sys
import tempfile

from . import mounts, processes

DEFAULT_MEMORY_GB = float(os.environ.get("COURSE_MEMORY_LIMIT_GB", "4"))
NOT_CONTAINED = 70  # exit status when learner code was not run because it could not be contained

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 4, 24, 38
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(os.uname().machine)
NOBODY = 65534
# What learner code gets from the grader's environment (everything else is dropped).
PASSED = ("PATH", "LANG", "LANGUAGE", "TZ", "PYTHONPATH", "PYTHONHASHSEED", "NBGRADER_EXECUTION", "MPLBACKEND",
          "COURSE_OUT", "COURSE_FAST", "COURSE_MEMORY_LIMIT_GB", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
          "CUDA_VISIBLE_DEVICES", "COURSE_KERNEL_CONTAINED")

_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def clean_environ(scratch, environ=None):
    """The learner's whole environment: PASSED and LC_* from `environ`, every home-like folder in `scratch`."""
    environ = os.environ if environ is None else environ
    env = {k: v for k, v in environ.items() if k in PASSED or k.startswith("LC_")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    data = os.path.join(scratch, ".local", "share")
    env.update(HOME=scratch, TMPDIR=scratch, IPYTHONDIR=os.path.join(scratch, ".ipython"),
               JUPYTER_CONFIG_DIR=os.path.join(scratch, ".jupyter"), JUPYTER_DATA_DIR=os.path.join(data, "jupyter"),
               JUPYTER_RUNTIME_DIR=os.path.join(data, "jupyter", "runtime"),
               MPLCONFIGDIR=os.path.join(scratch, ".config", "matplotlib"),
               XDG_CONFIG_HOME=os.path.join(scratch, ".config"),
               XDG_CACHE_HOME=os.path.join(scratch, ".cache"), XDG_DATA_HOME=data, PYTHONNOUSERSITE="1",
               PYTHONDONTWRITEBYTECODE="1")
    return env


# ------------------------------------------------------- namespaces, users


def _nobody_can_read():
    """As root: could user `nobody` read the Python this process needs? (Tried with the effective uid.)"""
    if os.getuid() != 0:
        return False
    try:
        os.setresgid(-1, NOBODY, -1)
        os.setresuid(-1, NOBODY, -1)
        for path in [os.path.dirname(os.__file__), *mounts.needed()]:
            if os.path.isdir(path):
                os.listdir(path)
        return True
    except OSError:  # unreadable, or no `nobody` (a user namespace that maps only root)
        return False
    finally:
        os.setresuid(-1, 0, -1)
        os.setresgid(-1, 0, -1)


def _give(paths, owner):
    for path in paths:
        for root, dirs, files in os.walk(path):
            for name in [root, *(os.path.join(root, f) for f in dirs + files)]:
                os.lchown(name, owner, owner)


def _unshare(network):
    """New namespaces: "root" (no user namespace), "user" (one that maps only this user), or None."""
    if _libc is None or SYS_CAPSET is None or not mounts.supported():
        return None
    flags = CLONE_NEWNS | CLONE_NEWPID | (0 if network else CLONE_NEWNET)
    if os.getuid() == 0 and _libc.unshare(flags) == 0:
        return "root"
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(flags | CLONE_NEWUSER) != 0:
        return None
    for name, text in [("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")]:
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)
    return "user"


def _drop_privileges(owner):
    """Become `owner` (nobody) if given; no capabilities, none to be gained; killed with the forwarder."""
    for cap in range(64):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last capability: fine
    if owner is not None:
        os.setgroups([])
        os.setresgid(owner, owner, owner)
        os.setresuid(owner, owner, owner)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    _check(_libc.syscall(SYS_CAPSET, header, (ctypes.c_uint32 * 6)()), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # its own /proc/self stays its own after setuid


def _forward_and_wait(child, parent, scratch):
    """In the caller's process: pass signals on to the learner's process group, kill it when `parent` (nbgrader,
    the judge) is gone, remove `scratch` (if given) when it ends, and exit with its status."""
    def forward(signum, frame):
        try:
            os.killpg(child, signal.SIGKILL if signum == signal.SIGTERM else signum)
        except OSError:
            pass
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)
    try:
        ended = os.pidfd_open(child)  # readable when the child ends
    except (AttributeError, OSError):
        ended = None
    while True:
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
        if os.getppid() != parent:
            forward(signal.SIGTERM, None)
        select.select([ended] if ended is not None else [], [], [], 1.0 if ended is not None else 0.1)


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


def _forget_initial_environment():
    """Zero the environment this process was started with (a forked probe still holds the grader's, which
    /proc/self/environ shows); a kernel is exec'd afterwards anyway."""
    try:
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end
    except (OSError, IndexError, ValueError):
        return
    if 0 < start < end:
        ctypes.memset(start, 0, end - start)


def refuse(why):
    """Exit NOT_CONTAINED with a message on stderr: learner code is not run."""
    os.write(2, f"course sandbox: {why}; learner code was not run (COURSE_SANDBOX="
                f"{os.environ.get('COURSE_SANDBOX', 'auto')})\n".encode())
    os._exit(NOT_CONTAINED)


def contain(keep_fds, output_fd, scratch, memory_gb=DEFAULT_MEMORY_GB, *, work=None, hide=(), writable=(),
            network=False, environ=None):
    """Contain this process (see the module's docstring); returns how, in words.

    Forks: the caller continues in the learner's process (with namespaces, PID 1 of its namespace), in `work`
    or `scratch`; the other process forwards signals, waits, and never returns."""
    parent = os.getppid()
    if os.getsid(0) != os.getpid():
        os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    if output_fd is not None:
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
    keep = sorted({0, 1, 2, *keep_fds})
    for low, high in zip(keep, keep[1:] + [os.sysconf("SC_OPEN_MAX")]):
        os.closerange(low + 1, high)
    env = clean_environ(scratch, environ)
    mode = os.environ.get("COURSE_SANDBOX", "auto")
    # A probe that a notebook's check cell starts inside the contained grading kernel is inside its namespaces
    # already (and could not make its own: /proc is read-only there). Set in that kernel by kernel.py.
    inside = os.environ.get("COURSE_KERNEL_CONTAINED", "").startswith("namespaces")
    isolated = _unshare(network) if mode in ("auto", "namespaces") and not inside else None
    if mode == "namespaces" and not isolated and not inside:
        refuse("this machine does not allow the namespaces the sandbox needs")
    if isolated:
        try:
            own = mounts.build(mounts.plan(scratch, work, hide, writable))
        except OSError as e:
            refuse(f"the sandbox could not be set up ({e})")  # half isolated: run nothing
    else:
        os.makedirs(scratch, 0o700, exist_ok=True)
    r, w = os.pipe()
    pid = os.fork()  # with namespaces, the first process of the new PID namespace
    if pid:
        os.close(r)
        _forward_and_wait(pid, parent, None if isolated else scratch)
    os.close(w)
    os.setpgid(0, 0)  # a group of its own: the forwarder's signals reach it and all it starts, once
    if isolated:
        owner = NOBODY if mode == "auto" and isolated == "root" and _nobody_can_read() else None
        try:
            mounts.own_proc()
            _give(own if owner is not None else [], owner)
            _drop_privileges(owner)
        except OSError as e:
            refuse(f"the sandbox could not be set up ({e})")
        how = "namespaces" + (", user nobody" if owner is not None else "")
    else:
        if work:  # a copy of the working directory: nothing it writes reaches the real one
            src = os.open(work, os.O_RDONLY | os.O_DIRECTORY)
            work = os.path.join(scratch, os.path.basename(os.path.normpath(work)) or "work")
            os.makedirs(work, exist_ok=True)
            mounts.copy_tree(src, work, mounts.COPY_BYTES)
            os.close(src)
        if mode in ("auto", "nobody") and _nobody_can_read():
            _give([scratch, *writable], NOBODY)
            _drop_privileges(NOBODY)
            how = "user nobody (no namespaces)"
        else:
            how = "inside the contained grading kernel" if inside else "same user (no namespaces: hash checks only)"
    processes.die_with_parent()  # after any setuid, which clears it
    if select.select([r], [], [], 0)[0]:  # the forwarder died before PDEATHSIG was set
        os._exit(NOT_CONTAINED)
    os.close(r)
    os.chdir(work or scratch)
    os.environ.clear()
    os.environ.update(env)
    _forget_initial_environment()
    for key in ("IPYTHONDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "MPLCONFIGDIR"):
        os.makedirs(env[key], exist_ok=True)
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
