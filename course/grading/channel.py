"""The judge's end of one probe: start it from the zygote, send a request, read the answer.

Every receive has a deadline for the whole message (a length prefix and then
silence is a timeout, not a wait), and at most MAX_ANSWER bytes of it are
read, into a buffer that grows only as bytes come. What the probe prints
arrives on a pipe the judge drains while it waits, kept bounded (`Printed`).
A probe that dies or overruns is killed with everything it started, and its
end is worded for the learner (`ProbeCrash`, `ProbeTimeout`).
"""

import os
import select
import signal
import socket
import struct
import time

from . import sandbox, wire
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
