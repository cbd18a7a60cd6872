"""The file system learner code sees, built from mounts in its own mount namespace (see `sandbox`).

`plan()` says what becomes of each path, `build()` does it, shallow paths
first, a deeper rule winning inside a shallower one:

    hide      an empty read-only tmpfs over a folder, /dev/null over a file:
              homes, /run, the course folder ($COURSE_HIDE), this repository
              but course/, checks/ and lessons/, and /dev but a few devices;
    show      bound back where something above it is hidden: the Python in
              use and its packages (`needed()`);
    tmpfs     a private writable tmpfs holding a copy of the regular files
              the folder held (links and special files are not copied):
              the scratch folder (HOME...), the working directory, /tmp and
              /dev/shm (these two empty); gone with the namespace;
    writable  bound back writable (the kernel's socket folder).

Then every mount is read-only but the tmpfs and writable ones.
"""

import ctypes
import os
import pwd
import shutil
import stat
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 0x1, 0x2, 0x4, 0x8, 0x1000, 0x4000, 0x40000
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY, SYS_MOUNT_SETATTR = -100, 0x8000, 0x1, 442
SIZES = {"/tmp": "512m", "/dev/shm": "512m"}  # and 512m for the scratch folder and the working directory
COPY_BYTES = 256 << 20  # at most this much is copied into a private working directory
DEVICES = ("null", "zero", "full", "random", "urandom")
# Hidden wherever learner code runs, besides $COURSE_HIDE, the grader's home and this repository.
HIDDEN = ("/home", "/root", "/run", "/var/run", "/var/tmp", "/var/log", "/var/mail", "/var/spool", "/var/backups",
          "/srv", "/mnt", "/media", "/etc/shadow", "/etc/gshadow", "/etc/ssh", "/etc/ssl/private")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO_NEEDED = ("course", "checks", "lessons")  # of this repository; the rest (solutions/, .git, ...) is hidden

_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


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
    paths.update(p for p in sys.path if os.path.isabs(p) and ("site-packages" in p or p.startswith(sys.base_prefix)))
    return sorted(paths)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount(source, target, fstype, flags, data=None):
    enc = (lambda s: s.encode() if isinstance(s, str) else s)
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _set_read_only(path, read_only, recursive):
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0) if read_only else _MountAttr(0, MOUNT_ATTR_RDONLY, 0, 0)
    _check(_libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), AT_RECURSIVE if recursive else 0,
                         ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))), f"mount_setattr {path}")


def copy_tree(src_fd, dst, budget):
    """Regular files and folders of the folder open at `src_fd` into `dst`; links and special files skipped."""
    for entry in os.scandir(src_fd):
        st = os.stat(entry.name, dir_fd=src_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=src_fd)
            os.mkdir(os.path.join(dst, entry.name), 0o755)
            budget = copy_tree(sub, os.path.join(dst, entry.name), budget)
            os.close(sub)
        elif stat.S_ISREG(st.st_mode) and st.st_size <= budget:
            fd = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src_fd)
            with os.fdopen(fd, "rb") as fin, open(os.path.join(dst, entry.name), "wb") as fout:
                budget -= shutil.copyfileobj(fin, fout) or st.st_size
    return budget


def plan(scratch, work, hide, writable):
    """{real path: kind}; kind in hide | show | tmpfs | writable; a deeper path's rule wins inside it."""
    rules = {os.path.realpath(p): "show" for p in needed()}
    rules.update({os.path.realpath(p): "hide" for p in [*hidden(), *hide] if os.path.lexists(p)})
    rules.update({"/dev": "hide", "/tmp": "tmpfs", "/dev/shm": "tmpfs"})
    gpus = tuple(name for name in os.listdir("/dev") if name.startswith("nvidia"))
    rules.update({f"/dev/{name}": "show" for name in DEVICES + gpus})
    rules.update({os.path.realpath(p): "writable" for p in writable})
    rules[os.path.realpath(scratch)] = "tmpfs"
    if work:
        rules[os.path.realpath(work)] = "tmpfs"
    return rules


def build(rules):
    """Apply the rules, shallow paths first, then make everything read-only but the tmpfs and writable
    mounts; returns those (the learner's own folders)."""
    sources = {p: os.open(p, os.O_PATH) for p, kind in rules.items() if kind in ("show", "writable", "tmpfs")
               and os.path.exists(p)}
    null = os.open("/dev/null", os.O_PATH)
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here reaches the host
    applied, open_up = {}, []
    for path in sorted(rules, key=lambda p: (p.count("/"), p)):
        kind = rules[path]
        above = [p for p in applied if path.startswith(p.rstrip("/") + "/")]
        masked = bool(above) and applied[max(above, key=len)] in ("hide", "tmpfs")
        if masked and kind == "hide" or not masked and kind == "show" or (kind != "hide" and path not in sources
                                                                            and not (kind == "tmpfs" and masked)):
            continue
        is_dir = (os.path.isdir(f"/proc/self/fd/{sources[path]}") if path in sources
                  else kind == "tmpfs" or os.path.isdir(path))
        if masked and is_dir:
            os.makedirs(path, 0o755, exist_ok=True)
        elif masked:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
        if kind == "hide" and is_dir:
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
        elif kind == "hide" and os.path.exists(path):
            mount(f"/proc/self/fd/{null}", path, None, MS_BIND)
        elif kind in ("show", "writable"):
            mount(f"/proc/self/fd/{sources[path]}", path, None, MS_BIND | MS_REC)
        elif kind == "tmpfs":
            shared = path in ("/tmp", "/dev/shm")
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV,
                   f"size={SIZES.get(path, '512m')},mode={'1777' if shared else '0700'}")
            if not shared and path in sources:
                src = os.open(f"/proc/self/fd/{sources[path]}", os.O_RDONLY | os.O_DIRECTORY)
                copy_tree(src, path, COPY_BYTES)
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


def supported():
    """Whether this Linux has mount_setattr (5.12+), without which no view is built."""
    if _libc is None:
        return False
    _libc.syscall(SYS_MOUNT_SETATTR, -1, b"", 0, None, ctypes.c_size_t(0))
    return ctypes.get_errno() != 38  # ENOSYS


def own_proc():
    """A read-only /proc of the new PID namespace (run in its first process): only its processes are seen."""
    mount("proc", "/proc", "proc", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
