"""The judge's side: start a probe for a learner's file, call it through handles.

    lesson = RemoteLesson(path)          # nothing runs yet
    check.nll(lesson.nll)                # the check runs here; each call of the
                                         # handle is one request to the probe
    lesson.close()                       # the probe's whole process tree is killed

The judge never imports, unpickles or calls learner code: it reads the
learner's file as text, has the zygote fork a probe (a copy of the judge
after its imports, taken before any check ran: torch is loaded once, and no
oracle value is in it), and from then on only exchanges `wire` messages with
it. Every receive has a deadline for the whole message, and the judge reads
at most MAX_ANSWER bytes of it, into a buffer that grows only as bytes come.
A probe that dies (os._exit, a signal, out of memory) or overruns the time
limit fails the request that was running, is killed with everything it
started, and the next request gets a fresh probe. A probe that dies or hangs
while loading the file makes every request of that file fail the same way.
"""

import os
import select
import signal
import socket
import struct
import time
from pathlib import Path

from . import sandbox, wire
from .handles import Handle, LearnerError, Missing, generators_in, probe_function, references
from .probe import LOAD_SECONDS, send
from .zygote import zygote

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


MAX_ANSWER = 64 << 20  # bytes; the largest honest answer of the seven lessons is 1.3 MB
OUTPUT_HEAD, OUTPUT_TAIL = 4096, 1024  # bytes of what learner code printed kept per check: first, last


class AnswerTooLarge(ProbeCrash):
    """The probe announced or sent more than the judge reads."""


class BudgetExhausted(ProbeTimeout):
    """The learner's time budget (all checks of the file together) is used up."""


class Printed:
    """What learner code printed, bounded: the first and the last bytes, and how many between."""

    def __init__(self, head=OUTPUT_HEAD, tail=OUTPUT_TAIL):
        self.head, self.tail = head, tail
        self.first, self.last, self.dropped = bytearray(), bytearray(), 0

    def write(self, data):
        room = self.head - len(self.first)
        if room > 0:
            self.first += data[:room]
            data = data[room:]
        self.last += data
        if len(self.last) > self.tail:
            self.dropped += len(self.last) - self.tail
            del self.last[:len(self.last) - self.tail]

    def take(self):
        text = self.first.decode("utf-8", errors="replace")
        if self.dropped:
            text += f"\n[... {self.dropped} more bytes not shown ...]\n"
        text += self.last.decode("utf-8", errors="replace")
        self.first, self.last, self.dropped = bytearray(), bytearray(), 0
        return text


class _Frame:
    """One length-prefixed message, read as it arrives into a buffer that never grows past what
    came (an announced size is a claim, not an allocation), refused past the limits."""

    def __init__(self, limit=MAX_ANSWER):
        self.limit, self.head, self.body, self.size = limit, b"", bytearray(), None

    def wanted(self):
        if self.size is None:
            return 8 - len(self.head)
        return min(self.size - len(self.body), 1 << 20)

    def feed(self, chunk):
        """True once the message is complete; AnswerTooLarge past the limits."""
        if self.size is None:
            self.head += chunk
            if len(self.head) == 8:
                (self.size,) = struct.unpack("<Q", self.head)
                if self.size > self.limit:
                    raise AnswerTooLarge(f"announced {_mib(self.size)}")
        else:
            self.body += chunk
            if len(self.body) >= 8 and len(self.body) - len(chunk) < 8:
                (header,) = struct.unpack_from("<Q", self.body, 0)
                if header > wire.MAX_HEADER:
                    raise AnswerTooLarge(f"a header of {_mib(header)} (lists of millions of numbers?)")
        return self.size is not None and len(self.body) == self.size


def _mib(n):
    return f"{n / (1 << 20):.0f} MiB" if n >= 1 << 20 else f"{n} bytes"


class ProbeProcess:
    """One contained probe serving one learner file, forked from the zygote."""

    def __init__(self, path, text, module_name, memory_gb=sandbox.DEFAULT_MEMORY_GB, lenient=False, printed=None):
        self.path, self.text, self.module_name, self.memory_gb = path, text, module_name, memory_gb
        self.lenient = lenient
        self.printed = printed if printed is not None else Printed()
        self.pid = None
        self.loaded = False  # the probe said it got past loading the file

    def start(self):
        parent, child = socket.socketpair()
        self.scratch = sandbox.new_scratch()
        out, out_w = os.pipe()  # the judge drains it while it waits, so a print never blocks for long
        os.set_blocking(out, False)
        probe = {"path": self.path, "text": self.text, "module_name": self.module_name,
                 "memory_gb": self.memory_gb, "scratch": self.scratch, "lenient": self.lenient,
                 "environ": dict(os.environ)}  # contain() builds the probe's environment from it
        try:
            self.pid = zygote.start(probe, [child.fileno(), out_w])
        finally:
            child.close()
            os.close(out_w)
        self.sock, self.out = parent, out

    def _read(self, seconds):
        """The next message, complete within `seconds` (every byte of it), or ProbeTimeout/ProbeCrash."""
        deadline, frame = time.monotonic() + seconds, _Frame()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._drain()
                self.close()
                raise ProbeTimeout(seconds, *(["sent part of an answer, then nothing more"] if frame.head else []))
            ready, _, _ = select.select([self.sock] + ([self.out] if self.out is not None else []), [], [], left)
            if self.out is not None and self.out in ready:
                self._drain()
            if self.sock not in ready:
                continue
            try:
                chunk = self.sock.recv(frame.wanted())
            except OSError:
                chunk = b""
            if not chunk:
                self._drain()
                status = self.close(grace=1.0)
                raise ProbeCrash(_exit_words(status) if status is not None else "ended without answering")
            try:
                done = frame.feed(chunk)
            except AnswerTooLarge as e:
                self.close()
                raise AnswerTooLarge(f"sent back an answer too large: {e.args[0]}, more than the "
                                     f"{_mib(MAX_ANSWER)} the checks read") from None
            if done:
                self._drain()
                return frame.body

    def request(self, payload, seconds):
        if self.pid is None:
            self.start()
        if not self.loaded:
            self._read(LOAD_SECONDS + GRACE)  # the hello: the file is loaded (or its load error is known)
            self.loaded = True
        self.sock.settimeout(seconds + GRACE)  # a probe that stops reading must not stall the judge either
        try:
            send(self.sock, payload)
        except TimeoutError:
            self.close()
            raise ProbeTimeout(seconds, "stopped reading what the judge sent") from None
        except OSError:
            pass  # it died already; the read below says how
        return self._read(seconds + GRACE)

    def _drain(self, most=1 << 20):
        """Move what the probe printed into `printed` (at most `most` bytes a time: a flood waits)."""
        got = 0
        while self.out is not None and got < most:
            try:
                data = os.read(self.out, 1 << 16)
            except BlockingIOError:
                return
            if not data:  # every writer is gone
                os.close(self.out)
                self.out = None
                return
            self.printed.write(data)
            got += len(data)

    def close(self, grace=0.0):
        """Kill the probe with everything it started; its exit status (None if unknown). `grace`:
        seconds it may take to end by itself (it closed its socket: it is exiting)."""
        if self.pid is None:
            return None
        pid, self.pid = self.pid, None
        status = zygote.stop(pid, grace)
        self.sock.close()
        if self.out is not None:
            os.close(self.out)
            self.out = None
        sandbox.remove_scratch(self.scratch)
        return status


class Remote(Handle):
    """A learner definition in a probe process."""

    def __init__(self, lesson, name):
        super().__init__(name)
        self.lesson = lesson

    def run(self, fn, *args, **kwargs):
        return self.lesson.call(self.name, fn, args, kwargs)

    def cpu_seconds(self):
        return self.lesson.cpu_seconds()


def _name(handle):
    return handle.name


class RemoteLesson:
    """The learner's definitions of one lesson file, reached through a probe.

    `deadline` (time.monotonic) bounds every call of the check in progress;
    `set_deadline(seconds)` before each check. `budget` (seconds) bounds the time
    all probes of this file may take together: past it, every call is a timeout
    that says so. The zygote is started here, before any check runs.
    """

    def __init__(self, path, text=None, module_name=None, memory_gb=sandbox.DEFAULT_MEMORY_GB, lenient=False,
                 budget=None):
        self.path = str(Path(path).resolve())
        self.text = text if text is not None else open(path, encoding="utf-8").read()
        self.module_name = module_name or "learner"
        self.memory_gb, self.lenient = memory_gb, lenient
        self.probe = None
        self.load_failure = None  # set once the file is known not to load
        self.deadline = None
        self.printed = Printed()
        self.budget, self.spent = budget, 0.0
        zygote.ensure()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Remote(self, name)

    def set_deadline(self, seconds):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def _out_of_budget(self):
        return BudgetExhausted(f"the time budget of {self.budget:g} s for this file (all its checks together) "
                               f"is used up, so it was not run")

    def call(self, name, fn, args, kwargs):
        if self.load_failure is not None:
            raise self.load_failure
        seconds = max(self.deadline - time.monotonic(), 0.05) if self.deadline else 30.0
        by_budget = False  # the budget, not the check's limit, bounds this call
        if self.budget is not None:
            if self.spent >= self.budget:
                raise self._out_of_budget()
            by_budget = self.budget - self.spent < seconds
            seconds = min(seconds, self.budget - self.spent)
        request = {"name": name, "fn": list(probe_function(fn)) if fn else None, "seconds": seconds,
                   "args": references(list(args), _name), "kwargs": references(dict(kwargs), _name)}
        payload = wire.dumps(request, refs=True)
        if self.probe is None:
            self.probe = ProbeProcess(self.path, self.text, self.module_name, self.memory_gb, self.lenient,
                                      self.printed)
        started = time.monotonic()
        try:
            raw = self.probe.request(payload, seconds)
        except (ProbeTimeout, ProbeCrash) as e:
            self.spent += time.monotonic() - started
            loaded = self.probe.loaded
            self.probe = None
            if isinstance(e, ProbeTimeout) and by_budget:
                self.spent = self.budget
                raise self._out_of_budget() from None
            if not loaded:  # it never got past loading the file: the same would happen every time
                words = ("did not finish loading within the time limit" if isinstance(e, ProbeTimeout)
                         else f"{e} while loading the definitions")
                self.load_failure = ProbeLoadError(f"{self.path}: your file {words}")
                raise self.load_failure from None
            raise
        self.spent += time.monotonic() - started
        try:
            answer = wire.loads(raw)
        except wire.WireError as e:
            raise ProbeCrash(f"sent back a message that is not well formed ({e})") from None
        if not isinstance(answer, dict):
            raise ProbeCrash("answered something that is not an answer")
        if "load_error" in answer:
            self.load_failure = ProbeLoadError(str(answer["load_error"]))
            raise self.load_failure
        if "error" in answer:
            error = _learner_error(answer["error"])
            if by_budget and getattr(error, "type_name", "") == "CheckTimeout":
                self.spent = self.budget
                raise self._out_of_budget()
            raise error
        if "ok" not in answer:
            raise ProbeCrash("answered something that is not an answer")
        for g, state in zip(generators_in((args, kwargs)), answer.get("generators") or []):
            try:
                g.set_state(state)
            except (TypeError, RuntimeError):
                raise ProbeCrash("sent back a generator state that is not one") from None
        return answer["ok"]

    def cpu_seconds(self):
        """CPU seconds used so far by the probe and every process under it (those reaped included), read by
        the judge from /proc: learner code cannot change what the kernel counts. 0.0 before the probe starts."""
        pid = self.probe.pid if self.probe is not None else None
        return sandbox.tree_cpu_seconds(pid) if pid else 0.0

    def take_output(self):
        """What learner code printed since the last call (bounded: the first and last bytes, with a note)."""
        return self.printed.take()

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
