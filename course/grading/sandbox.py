"""Containment for every process that runs learner code: the probe and the grading kernel.

`contain()` runs in the process that is about to run learner code (a forked
probe, or `course.grading.kernel` before it becomes ipykernel). In order:

1. Its own session; stdin from /dev/null; stdout and stderr into `output_fd`
   when given; no inherited file descriptors but `keep_fds`.
2. Namespaces (as root: mount, network and PID; otherwise with a user
   namespace that owns them). The file system becomes a read-only view in
   which only private tmpfs mounts are writable: `scratch` (HOME, TMPDIR,
   IPYTHONDIR, JUPYTER_*, MPLCONFIGDIR), /tmp, /dev/shm, and `work` (the
   working directory); each starts with a copy of the regular files its
   folder held, and is gone when the last process of the namespace ends. The
   folders in `hide` (homes, /run, the course folder: see `hidden()`) are
   empty, and /dev holds only null, zero, full, random, urandom (and GPUs).
   `writable` folders (the kernel's socket folder) stay writable. The network
   namespace has no interface up (`network=True` keeps the host's). The first
   process of the new PID namespace runs the learner's code: it cannot name
   any process outside, and when it ends everything it started ends. The
   caller's process stays outside, forwards signals (an interrupt reaches the
   learner's process group) and exits with its status. Then, as root, the
   learner's process becomes `nobody` where it can still read the Python it
   needs; every capability is dropped and none can be gained (no_new_privs).
3. Without namespaces: as root, `nobody`; otherwise the user's own rights.
   Not protected then: /tmp and /dev/shm are shared, the network is open,
   the grader's processes can be signalled, and (unless `nobody`) everything
   the user can read or write is reachable; the judge's hashes
   (`integrity`) are the guard.
4. An environment built from an allow-list (`clean_environ`), never a copy of
   the grader's; limits on address space (the memory limit), file size, cores.

$COURSE_SANDBOX chooses: `auto` (the default: the best available),
`namespaces` (exit 70 rather than run learner code without them), `nobody`,
`none` (the last two exist to test the fallbacks).
"""

import ctypes
import os
import pwd
import resource
import shutil
import signal
import stat
import sys
import tempfile

DEFAULT_MEMORY_GB = float(os.environ.get("COURSE_MEMORY_LIMIT_GB", "4"))
NOT_CONTAINED = 70  # exit status when learner code was not run because it could not be contained

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 0x1, 0x2, 0x4, 0x8, 0x1000, 0x4000, 0x40000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 36, 38
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = -100, 0x8000, 0x1
SYS_MOUNT_SETATTR, SYS_CAPSET = 442, {"x86_64": 126, "aarch64": 91}.get(os.uname().machine)
NOBODY = 65534
SIZES = {"scratch": "512m", "work": "512m", "/tmp": "512m", "/dev/shm": "512m"}
DEVICES = ("null", "zero", "full", "random", "urandom")
# Hidden wherever learner code runs, besides $COURSE_HIDE and the grader's home.
HIDDEN = ("/home", "/root", "/run", "/var/run", "/var/tmp", "/var/log", "/var/mail", "/var/spool", "/var/backups",
          "/srv", "/mnt", "/media", "/etc/shadow", "/etc/gshadow", "/etc/ssh", "/etc/ssl/private")
# What learner code gets from the grader's environment (everything else is dropped).
PASSED = ("PATH", "LANG", "LANGUAGE", "TZ", "PYTHONPATH", "PYTHONHASHSEED", "NBGRADER_EXECUTION", "MPLBACKEND",
          "COURSE_OUT", "COURSE_FAST", "COURSE_MEMORY_LIMIT_GB", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
          "CUDA_VISIBLE_DEVICES")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO_NEEDED = ("course", "checks", "lessons")  # of this repository, the rest (solutions/, .git, ...) is hidden

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


def clean_environ(scratch, environ=None):
    """The learner's whole environment: PASSED and LC_* from `environ`, every home-like folder in `scratch`."""
    environ = os.environ if environ is None else environ
    env = {k: v for k, v in environ.items() if k in PASSED or k.startswith("LC_")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    data = os.path.join(scratch, ".local", "share")
    env.update(HOME=scratch, TMPDIR=scratch, IPYTHONDIR=os.path.join(scratch, ".ipython"),
               JUPYTER_CONFIG_DIR=os.path.join(scratch, ".jupyter"), JUPYTER_DATA_DIR=os.path.join(data, "jupyter"),
               JUPYTER_RUNTIME_DIR=os.path.join(data, "jupyter", "runtime"),
               MPLCONFIGDIR=os.path.join(scratch, ".config", "matplotlib"), XDG_CONFIG_HOME=os.path.join(scratch, ".config"),
               XDG_CACHE_HOME=os.path.join(scratch, ".cache"), XDG_DATA_HOME=data, PYTHONNOUSERSITE="1",
               PYTHONDONTWRITEBYTECODE="1")
    return env


def hidden(extra=()):
    """What learner code must not read: HIDDEN, the grader's home, this repository (but `needed()`),
    $COURSE_HIDE (os.pathsep-separated), `extra`."""
    homes = [os.path.expanduser("~"), REPO]
    try:
        homes.append(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        pass
    listed = [p for p in os.environ.get("COURSE_HIDE", "").split(os.pathsep) if p]
    return [*HIDDEN, *homes, *listed, *extra]


def needed():
    """Folders learner code must read (Python, its packages, this repository), even inside a hidden one."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             *(os.path.join(REPO, name) for name in REPO_NEEDED)}
    paths.update(p for p in sys.path if p and os.path.isabs(p) and ("site-packages" in p or p.startswith(sys.base_prefix)))
    return sorted(paths)


# ---------------------------------------------------------------- the mounts


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _mount(source, target, fstype, flags, data=None):
    enc = (lambda s: s.encode() if isinstance(s, str) else s)
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _set_read_only(path, read_only, recursive):
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0) if read_only else _MountAttr(0, MOUNT_ATTR_RDONLY, 0, 0)
    _check(_libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), AT_RECURSIVE if recursive else 0,
                         ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))), f"mount_setattr {path}")


def _copy_tree(src_fd, dst, budget):
    """Regular files and folders of the folder open at `src_fd` into `dst`; links and special files skipped."""
    for entry in os.scandir(src_fd):
        st = os.stat(entry.name, dir_fd=src_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=src_fd)
            os.mkdir(os.path.join(dst, entry.name), 0o755)
            budget = _copy_tree(sub, os.path.join(dst, entry.name), budget)
            os.close(sub)
        elif stat.S_ISREG(st.st_mode) and st.st_size <= budget:
            fd = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src_fd)
            with os.fdopen(fd, "rb") as fin, open(os.path.join(dst, entry.name), "wb") as fout:
                budget -= shutil.copyfileobj(fin, fout) or st.st_size
    return budget


def _plan(scratch, work, hide, writable):
    """{real path: kind}; kind in hide | show | tmpfs | writable; a deeper path's rule wins inside it."""
    rules = {os.path.realpath(p): "show" for p in needed()}
    rules.update({os.path.realpath(p): "hide" for p in [*hidden(), *hide] if os.path.lexists(p)})
    rules.update({"/dev": "hide", "/tmp": "tmpfs", "/dev/shm": "tmpfs"})
    rules.update({f"/dev/{d}": "show" for d in DEVICES + tuple(n for n in os.listdir("/dev") if n.startswith("nvidia"))})
    rules.update({os.path.realpath(p): "writable" for p in writable})
    rules[os.path.realpath(scratch)] = "tmpfs"
    if work:
        rules[os.path.realpath(work)] = "tmpfs"
    return rules


def _build_view(rules):
    """Apply the rules, shallow paths first, then make everything read-only but the tmpfs and writable
    mounts; returns those (the learner's own folders)."""
    sources = {p: os.open(p, os.O_PATH) for p, kind in rules.items() if kind in ("show", "writable", "tmpfs")
               and os.path.exists(p)}
    null = os.open("/dev/null", os.O_PATH)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here reaches the host
    applied, open_up = {}, []
    for path in sorted(rules, key=lambda p: (p.count("/"), p)):
        kind = rules[path]
        above = [p for p in applied if path.startswith(p.rstrip("/") + "/")]
        masked = bool(above) and applied[max(above, key=len)] in ("hide", "tmpfs")
        if masked and kind == "hide" or not masked and kind == "show" or (kind != "hide" and path not in sources
                                                                            and not (kind == "tmpfs" and masked)):
            continue
        is_dir = os.path.isdir(f"/proc/self/fd/{sources[path]}") if path in sources else kind == "tmpfs" or os.path.isdir(path)
        if masked and is_dir:
            os.makedirs(path, 0o755, exist_ok=True)
        elif masked:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
        if kind == "hide" and is_dir:
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
        elif kind == "hide" and os.path.exists(path):
            _mount(f"/proc/self/fd/{null}", path, None, MS_BIND)
        elif kind in ("show", "writable"):
            _mount(f"/proc/self/fd/{sources[path]}", path, None, MS_BIND | MS_REC)
        elif kind == "tmpfs":
            shared = path in ("/tmp", "/dev/shm")
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV,
                   f"size={SIZES.get(path, SIZES['work'])},mode={'1777' if shared else '0700'}")
            if not shared and path in sources:
                src = os.open(f"/proc/self/fd/{sources[path]}", os.O_RDONLY | os.O_DIRECTORY)
                _copy_tree(src, path, 256 << 20)
                os.close(src)
        applied[path] = kind
        if kind == "writable" or kind == "tmpfs" and path not in ("/tmp", "/dev/shm"):
            open_up.append(path)
    for name, target in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")]:
        if not os.path.lexists(f"/dev/{name}"):
            os.symlink(target, f"/dev/{name}")
    for fd in [*sources.values(), null]:
        os.close(fd)
    _set_read_only("/", True, recursive=True)
    for path in open_up + ["/tmp", "/dev/shm"]:
        _set_read_only(path, False, recursive=False)
    return open_up


# ------------------------------------------------------- namespaces, users


def _nobody_can_read():
    """As root: could user `nobody` read the Python this process needs? (Tried with the effective uid.)"""
    if os.getuid() != 0:
        return False
    os.setresgid(-1, NOBODY, -1)
    os.setresuid(-1, NOBODY, -1)
    try:
        for path in [os.path.dirname(os.__file__), *needed()]:
            if os.path.isdir(path):
                os.listdir(path)
        return True
    except OSError:
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
    if _libc is None or SYS_CAPSET is None:
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


def _forward_and_wait(child):
    """In the caller's process: pass signals on to the learner's process group; exit with its status."""
    def forward(signum, frame):
        try:
            os.killpg(child, signal.SIGKILL if signum == signal.SIGTERM else signum)
        except OSError:
            pass
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)
    _, status = os.waitpid(child, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


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


def refuse(why):
    """Exit NOT_CONTAINED with a message on stderr: learner code is not run."""
    os.write(2, f"course sandbox: {why}; learner code was not run (COURSE_SANDBOX="
                f"{os.environ.get('COURSE_SANDBOX', 'auto')})\n".encode())
    os._exit(NOT_CONTAINED)


def contain(keep_fds, output_fd, scratch, memory_gb=DEFAULT_MEMORY_GB, *, work=None, hide=(), writable=(),
            network=False, environ=None):
    """Contain this process (see the module's docstring); returns how, in words.

    Forks when namespaces are used: the caller continues in the learner's process (PID 1 of its
    namespace, in `work` or `scratch`) and the other process never returns."""
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
    isolated = _unshare(network) if mode in ("auto", "namespaces") else None
    if mode == "namespaces" and not isolated:
        refuse("this machine does not allow the namespaces the sandbox needs")
    if isolated:
        try:
            own = _build_view(_plan(scratch, work, hide, writable))
        except OSError as e:
            refuse(f"the sandbox could not be set up ({e})")  # half isolated: run nothing
        r, w = os.pipe()
        pid = os.fork()
        if pid:
            os.close(r)
            _forward_and_wait(pid)
        os.close(w)
        os.setpgid(0, 0)  # a group of its own: the forwarder's signals reach it and all it starts, once
        owner = NOBODY if mode == "auto" and isolated == "root" and _nobody_can_read() else None
        try:
            _mount("proc", "/proc", "proc", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
            _give(own if owner is not None else [], owner)
            _drop_privileges(owner)
        except OSError as e:
            refuse(f"the sandbox could not be set up ({e})")
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        import select
        if select.select([r], [], [], 0)[0]:  # the forwarder died before PDEATHSIG was set
            os._exit(NOT_CONTAINED)
        os.close(r)
        how = "namespaces" + (", user nobody" if owner is not None else "")
    else:
        os.makedirs(scratch, 0o700, exist_ok=True)
        if work:  # a copy of the working directory: nothing it writes reaches the real one
            src = os.open(work, os.O_RDONLY | os.O_DIRECTORY)
            work = os.path.join(scratch, os.path.basename(os.path.normpath(work)) or "work")
            os.makedirs(work, exist_ok=True)
            _copy_tree(src, work, 256 << 20)
            os.close(src)
        if mode in ("auto", "nobody") and _nobody_can_read():
            _give([scratch, *writable], NOBODY)
            _drop_privileges(NOBODY)
            how = "user nobody (no namespaces)"
        else:
            how = "same user (no namespaces: hash checks only)"
        if _libc is not None:
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.chdir(work or scratch)
    os.environ.clear()
    os.environ.update(env)
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
