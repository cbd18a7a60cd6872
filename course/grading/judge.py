"""The judge's side: start a probe for a learner's file, call it through handles.

    lesson = RemoteLesson(path)          # nothing runs yet
    check.nll(lesson.nll)                # the check runs here; each call of the
                                         # handle is one request to the probe
    lesson.close()                       # the probe's whole process tree is killed

The judge never imports, unpickles or calls learner code: it reads the
learner's file as text, forks the probe (after its own imports, so torch is
loaded once), and from then on only exchanges `wire` messages with it.
A probe that dies (os._exit, a signal, out of memory) or overruns the time
limit fails the request that was running, is killed with everything it
started, and the next request gets a fresh probe. A probe that dies or hangs
while loading the file makes every request of that file fail the same way.
"""

import os
import select
import signal
import socket
import time
from pathlib import Path

from . import sandbox, wire
from .handles import Handle, LearnerError, Missing, generators_in, probe_function, references
from .probe import LOAD_SECONDS, receive, send, serve

GRACE = 2.0  # seconds past a check's limit before the probe is killed (it first raises in learner code)


class ProbeCrash(Exception):
    """The probe process ended while learner code ran."""


class ProbeTimeout(Exception):
    """The probe did not answer within the check's limit."""


class ProbeLoadError(Exception):
    """The learner's file could not be loaded (syntax error, definition-time failure)."""


def _exit_words(status):
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        hint = " (out of memory?)" if sig == signal.SIGKILL else ""
        return f"was killed by signal {name}{hint}"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    if code == 70:
        return "could not be contained (the sandbox failed), so it was not run"
    return f"ended the process with exit status {code} (os._exit, or a crash)"


_live = set()  # pids of the probes alive in this judge: closing one must not kill another


class ProbeProcess:
    """One forked, contained probe serving one learner file."""

    def __init__(self, path, text, module_name, memory_gb=sandbox.DEFAULT_MEMORY_GB, lenient=False):
        self.path, self.text, self.module_name, self.memory_gb = path, text, module_name, memory_gb
        self.lenient = lenient
        self.pid = None
        self.loaded = False  # the probe said it got past loading the file
        self.output = b""

    def start(self):
        parent, child = socket.socketpair()
        self.scratch = sandbox.new_scratch()
        out = os.open(os.path.join(self.scratch, ".output"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.unlink(os.path.join(self.scratch, ".output"))
        pid = os.fork()
        if pid == 0:  # the probe: never returns
            parent.close()
            serve(child, self.path, self.text, self.module_name, self.memory_gb, out, self.scratch, self.lenient)
        child.close()
        self.pid, self.sock, self.out, self.read_at = pid, parent, out, 0
        _live.add(pid)

    def _read(self, seconds):
        ready, _, _ = select.select([self.sock], [], [], seconds)
        if not ready:
            self._collect_output()
            self.close()
            raise ProbeTimeout(seconds)
        try:
            answer = receive(self.sock)
        except (OSError, wire.WireError):
            answer = None
        self._collect_output()
        if answer is None:
            status = self.close()
            raise ProbeCrash(_exit_words(status) if status is not None else "ended without answering")
        return answer

    def request(self, payload, seconds):
        if self.pid is None:
            self.start()
        if not self.loaded:
            self._read(LOAD_SECONDS + GRACE)  # the hello: the file is loaded (or its load error is known)
            self.loaded = True
        try:
            send(self.sock, payload)
        except OSError:
            pass  # it died already; the read below says how
        return self._read(seconds + GRACE)

    def _collect_output(self):
        size = os.fstat(self.out).st_size
        if size > self.read_at:
            self.output = os.pread(self.out, min(size - self.read_at, 1 << 16), self.read_at)
            self.read_at = size
        else:
            self.output = b""

    def close(self):
        """Kill the probe's whole process group (and any orphan it left); its exit status."""
        if self.pid is None:
            return None
        pid, self.pid = self.pid, None
        _live.discard(pid)
        status = None
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done:
                status = None
        except ChildProcessError:
            pass
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                target()
            except (ProcessLookupError, PermissionError):
                pass
        if status is None:
            try:
                status = os.waitpid(pid, 0)[1]
            except ChildProcessError:
                pass
        sandbox.kill_descendants(keep=_live)  # orphans it left (re-parented here), not the other probes
        self.sock.close()
        os.close(self.out)
        sandbox.remove_scratch(self.scratch)
        return status


class Remote(Handle):
    """A learner definition in a probe process."""

    def __init__(self, lesson, name):
        super().__init__(name)
        self.lesson = lesson

    def run(self, fn, *args, **kwargs):
        return self.lesson.call(self.name, fn, args, kwargs)


def _name(handle):
    return handle.name


class RemoteLesson:
    """The learner's definitions of one lesson file, reached through a probe.

    `deadline` (time.monotonic) bounds every call of the check in progress;
    `set_deadline(seconds)` before each check.
    """

    def __init__(self, path, text=None, module_name=None, memory_gb=sandbox.DEFAULT_MEMORY_GB, lenient=False):
        self.path = str(Path(path).resolve())
        self.text = text if text is not None else open(path, encoding="utf-8").read()
        self.module_name = module_name or "learner"
        self.memory_gb, self.lenient = memory_gb, lenient
        self.probe = None
        self.load_failure = None  # set once the file is known not to load
        self.deadline = None
        self.output = b""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Remote(self, name)

    def set_deadline(self, seconds):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def call(self, name, fn, args, kwargs):
        if self.load_failure is not None:
            raise self.load_failure
        seconds = max(self.deadline - time.monotonic(), 0.05) if self.deadline else 30.0
        request = {"name": name, "fn": list(probe_function(fn)) if fn else None, "seconds": seconds,
                   "args": references(list(args), _name), "kwargs": references(dict(kwargs), _name)}
        payload = wire.dumps(request, refs=True)
        if self.probe is None:
            self.probe = ProbeProcess(self.path, self.text, self.module_name, self.memory_gb, self.lenient)
        try:
            raw = self.probe.request(payload, seconds)
        except (ProbeTimeout, ProbeCrash) as e:
            loaded = self.probe.loaded
            self.output += self.probe.output
            self.probe = None
            if not loaded:  # it never got past loading the file: the same would happen every time
                words = ("did not finish loading within the time limit" if isinstance(e, ProbeTimeout)
                         else f"{e} while loading the definitions")
                self.load_failure = ProbeLoadError(f"{self.path}: your file {words}")
                raise self.load_failure from None
            raise
        self.output += self.probe.output
        answer = wire.loads(raw)
        if not isinstance(answer, dict):
            raise ProbeCrash("answered something that is not an answer")
        if "load_error" in answer:
            self.load_failure = ProbeLoadError(str(answer["load_error"]))
            raise self.load_failure
        if "error" in answer:
            raise _learner_error(answer["error"])
        if "ok" not in answer:
            raise ProbeCrash("answered something that is not an answer")
        for g, state in zip(generators_in((args, kwargs)), answer.get("generators") or []):
            try:
                g.set_state(state)
            except (TypeError, RuntimeError):
                raise ProbeCrash("sent back a generator state that is not one") from None
        return answer["ok"]

    def take_output(self):
        out, self.output = self.output, b""
        return out.decode("utf-8", errors="replace")

    def close(self):
        if self.probe is not None:
            self.probe.close()
            self.probe = None


def _learner_error(info):
    if not isinstance(info, dict):
        return ProbeCrash("answered something that is not an answer")
    frames = [f for f in info.get("frames") or [] if isinstance(f, (list, tuple)) and len(f) == 4]
    cls = Missing if info.get("missing") else LearnerError
    mro = [str(m) for m in info.get("mro") or []]
    return cls(str(info.get("type", "Exception")), str(info.get("message", "")),
               [(str(a), int(b) if isinstance(b, int) else 0, str(c), str(d)) for a, b, c, d in frames], mro)
