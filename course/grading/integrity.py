"""The files that decide grades, hashed before a batch and verified before each verdict.

Learner code runs where it cannot write them (read-only mounts, or user
`nobody`); where the machine offers neither, this is the guard that remains:
a change is found before the verdict of the learner whose run made it is
recorded, and the batch stops naming that learner.
"""

import hashlib
import os
from pathlib import Path


class TamperError(Exception):
    """A file that decides grades changed while learner code ran."""


def _files(path):
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.rglob("*") if (p.is_symlink() or p.is_file()) and "__pycache__" not in p.parts)


def sha256(path):
    """The sha256 of the regular file at `path` (a link is refused, not followed)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def fingerprint(paths):
    """{file: sha256} of every file under `paths` (a missing path counts, as absent)."""
    out = {}
    for root in paths:
        out[f"{root}/"] = "present" if Path(root).exists() else "absent"
        for f in _files(root):
            try:
                out[str(f)] = f"link to {os.readlink(f)}" if f.is_symlink() else sha256(f)
            except OSError as e:
                out[str(f)] = f"unreadable: {e.strerror}"
    return out


def copy_regular(source, target):
    """Copy the regular file `source` (a link is refused) to a new read-only `target`; returns its sha256."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read()
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(target):
        os.unlink(target)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


class Guard:
    """Remembers the files under `paths`; `verify(who)` raises TamperError when any changed."""

    def __init__(self, paths):
        self.paths = [Path(p) for p in paths]
        self.known = fingerprint(self.paths)

    def including(self, paths):
        """A Guard over `paths` too (fingerprinted now), that keeps what this one knows."""
        wider = Guard([])
        wider.paths, wider.known = self.paths + [Path(p) for p in paths], {**self.known, **fingerprint(paths)}
        return wider

    def allow(self, path):
        """`path` was changed on purpose by the grader (no learner code running): its new state is the known one."""
        self.known.update({k: v for k, v in fingerprint([path]).items() if not k.endswith("/")})

    def changes(self):
        now = fingerprint(self.paths)
        changed = [f for f in sorted(set(self.known) | set(now)) if self.known.get(f) != now.get(f)]
        return changed

    def verify(self, who):
        changed = self.changes()
        if changed:
            shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
            raise TamperError(f"grading stopped: while {who}'s code ran, files that decide grades changed: "
                              f"{shown}. Restore them (git checkout / course nbgrader init) and grade again; "
                              f"no verdict of {who} was recorded.")
