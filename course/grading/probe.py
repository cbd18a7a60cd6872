"""The probe: the only process in which learner code runs.

Forked from the zygote (a copy of the judge after its imports, taken before
any check ran), contained by `sandbox.contain`, it loads the learner's
definitions and then answers requests on a socket, one at a time:

    hello    {"loaded": true}  once, when the definitions are loaded (or failed to)
    request  {"name": "nll", "fn": null | [module, qualname], "args": [...], "kwargs": {...}, "seconds": 30}
    answer   {"ok": value, "generators": [state, ...]}  |  {"error": {...}}  |  {"load_error": "..."}

Both directions are `wire` messages: plain data, no pickle. Whatever learner
code does here (patch the checks, read the stack, exit, loop, fork, allocate)
changes only what this process answers, and the judge trusts no answer
beyond comparing it with its own oracle values.
"""

import io
import os
import signal
import struct
import sys

from . import sandbox, wire
from .handles import Missing, call, describe_exception, generators_in, resolve_probe_function


LOAD_SECONDS = 20


class CheckTimeout(Exception):
    pass


def send(sock, payload):
    sock.sendall(struct.pack("<Q", len(payload)) + payload)


def receive(sock, limit=wire.MAX_BYTES):
    head = _exactly(sock, 8)
    if head is None:
        return None
    (size,) = struct.unpack("<Q", head)
    if size > limit:
        raise wire.WireError("message too large")
    return _exactly(sock, size)


def _exactly(sock, n):
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _error_answer(e, filename):
    err = describe_exception(e, filename)
    return {"error": {"type": err.type_name, "message": err.message, "frames": err.frames, "mro": list(err.mro),
                      "missing": isinstance(err, Missing)}}


def serve(sock, path, text, module_name, memory_gb, output_fd, scratch, lenient=False):
    """Runs in the forked child; never returns."""
    status = 0
    try:
        sandbox.contain([sock.fileno(), output_fd], output_fd, scratch, memory_gb)
        _print_to_output()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        from ..loader import LoadError, load

        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, LOAD_SECONDS)
        try:
            module, load_error = load(path, module_name, text=text, lenient=lenient), None
        except LoadError as e:
            module, load_error = None, str(e)
        except CheckTimeout:
            module, load_error = None, (f"loading the definitions of {path} did not finish within {LOAD_SECONDS} s: "
                                        f"a loop in a default argument, a decorator or a class body?")
        except BaseException as e:  # definition-time code that exits or raises something odd
            module, load_error = None, f"loading the definitions of {path} failed: {type(e).__name__}: {e}"
        signal.setitimer(signal.ITIMER_REAL, 0)
        _flush()
        send(sock, wire.dumps({"loaded": load_error is None}))  # the judge tells a hung load from a hung check

        def lookup(name):
            try:
                return getattr(module, name)
            except AttributeError:
                raise Missing("NameError", f"{name} is not defined in {path}: was it renamed or deleted?") from None

        while True:
            message = receive(sock)
            if message is None:
                break
            if load_error is not None:
                send(sock, wire.dumps({"load_error": load_error}))
                continue
            answer = _answer(message, lookup, path)
            _flush()  # what it printed is in the pipe before the answer is on the socket
            send(sock, answer)
    except BaseException:
        status = 71
    finally:
        os._exit(status)


def _print_to_output():
    """sys.stdout and sys.stderr write to fd 1 and 2, which contain() pointed at the judge's output
    pipe: the objects inherited from the judge (pytest's capture) wrote to descriptors now closed."""
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                                  line_buffering=True)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
        _streams.append(stream)


_streams = []


def _flush():
    for stream in _streams:  # ours, not whatever learner code put in sys.stdout
        try:
            stream.flush()
        except BaseException:  # closed by learner code: what it held is lost, not the answer
            pass


def _alarm(signum, frame):
    raise CheckTimeout("did not finish in time")


def _answer(message, lookup, path):
    """The encoded answer to one request."""
    try:
        request = wire.loads(message, refs=lookup)
        target = lookup(request["name"])
        fn = resolve_probe_function(*request["fn"]) if request["fn"] else None
        args, kwargs = request["args"], request["kwargs"]
    except BaseException as e:  # a missing name, or learner code run by a lookup: the learner's error
        return wire.dumps(_error_answer(e, path))
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, max(float(request.get("seconds") or 0), 0.001))
    try:
        value = call(target, fn, args, kwargs)
        # Encoding is part of the call: what cannot be encoded is the learner's error, reported as such.
        answer = wire.dumps({"ok": value, "generators": [g.get_state() for g in generators_in((args, kwargs))]})
        signal.setitimer(signal.ITIMER_REAL, 0)
        return answer
    except BaseException as e:  # SystemExit and KeyboardInterrupt too: they end this call only
        signal.setitimer(signal.ITIMER_REAL, 0)
        return wire.dumps(_error_answer(e, path))
