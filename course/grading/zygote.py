"""The zygote: a clean process from which every probe is forked.

A probe forked from the judge in the middle of a check would inherit the
check's frames, with its expected values in them: learner code could read
them. So the judge forks one zygote before any check runs (at the first
`RemoteLesson`), after its imports (torch, the checks' modules), and every
probe, the first or one re-forked after a crash or a timeout, is forked from
the zygote, which never runs a check. It holds no oracle value, no other
learner's verdict, no file descriptor of the judge.

The zygote is detached (a double fork, with the judge's subreaper flag off
meanwhile), so that `processes.kill_descendants()` in the judge, run between
learners, does not kill it. It is itself the subreaper of its probes: a
process a probe starts and leaves behind comes back to the zygote, which
kills it when the judge stops that probe. It ends, with everything under it,
when the judge's end of its socket closes (the judge exited or was killed).
If it is gone anyway (something with the grader's rights killed it), the next
one is a fresh interpreter (exec), never a fork of the judge as it is then.

Requests, one at a time, `wire` messages on a Unix socket:
    {"op": "start", "probe": {...}} + two fds (probe socket, output pipe)  ->  {"pid": pid}
    {"op": "stop", "pid": pid, "grace": s}  ->  {"status": wait status or None}
"""

import atexit
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path

from . import processes, wire

REPLY_SECONDS = 30.0  # the zygote answers in milliseconds; a silent one is killed

def _send(sock, value, fds=()):
    payload = wire.dumps(value)
    data = struct.pack("<Q", len(payload)) + payload
    sent = socket.send_fds(sock, [data], list(fds)) if fds else 0
    sock.sendall(data[sent:])


def _receive(sock, maxfds=0):
    """(value, fds); (None, []) at end of file."""
    head, fds = b"", []
    while len(head) < 8:
        if maxfds and not head:
            chunk, got, _, _ = socket.recv_fds(sock, 8, maxfds)
            fds += got
        else:
            chunk = sock.recv(8 - len(head))
        if not chunk:
            return None, fds
        head += chunk
    (size,) = struct.unpack("<Q", head)
    body = bytearray()
    while len(body) < size:
        chunk = sock.recv(min(size - len(body), 1 << 20))
        if not chunk:
            return None, fds
        body += chunk
    return wire.loads(body), fds


# ---------------------------------------------------------------- the zygote's side


def _serve(sock):
    """The zygote's loop; never returns."""
    processes.set_subreaper()
    live = set()
    try:
        while True:
            request, fds = _receive(sock, maxfds=2)
            if request is None:
                break
            if request["op"] == "start":
                pid = os.fork()
                if pid == 0:  # the probe: it must not reach the zygote's socket
                    try:
                        sock.close()
                        _become_probe(request["probe"], *fds)
                    finally:
                        os._exit(71)
                for fd in fds:
                    os.close(fd)
                live.add(pid)
                _send(sock, {"pid": pid})
            elif request["op"] == "stop":
                pid = request["pid"]
                status = _stop(pid, request.get("grace") or 0.0) if pid in live else None
                live.discard(pid)
                processes.kill_descendants(keep=live)  # what it left behind came back here
                _send(sock, {"status": status})
    finally:
        processes.kill_descendants()
        os._exit(0)


def _become_probe(probe, sock_fd, output_fd):
    from .probe import serve

    os.environ.clear()  # the judge's environment now, not the one it had when the zygote was forked
    os.environ.update(probe["environ"])
    serve(socket.socket(fileno=sock_fd), probe["path"], probe["text"], probe["module_name"], probe["memory_gb"],
          output_fd, probe["scratch"], probe["lenient"])


def _stop(pid, grace):
    """Its wait status: what it ended with by itself within `grace` seconds, else SIGKILL."""
    until = time.monotonic() + grace
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done or time.monotonic() >= until:
            break
        time.sleep(0.005)
    if not done:
        for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                kill()
            except (ProcessLookupError, PermissionError):
                pass
        status = os.waitpid(pid, 0)[1]
    return status


def _detach(zygote_end):
    """In the judge's fork: the zygote's setup; never returns."""
    try:
        os.setsid()  # Ctrl-C in the terminal reaches the judge only; the zygote follows its socket
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        fd = zygote_end.fileno()
        os.closerange(3, fd)
        os.closerange(fd + 1, os.sysconf("SC_OPEN_MAX"))
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        _send(zygote_end, {"pid": os.getpid()})
        _serve(zygote_end)
    finally:
        os._exit(1)


def main():
    """A fresh zygote (exec): `python -c ... fd modules-as-json`."""
    fd, modules = int(sys.argv[1]), json.loads(sys.argv[2])
    import importlib

    import torch

    torch.set_num_threads(1)
    for name in modules:
        importlib.import_module(name)
    _detach(socket.socket(fileno=fd))


# ---------------------------------------------------------------- the judge's side


class Zygote:
    def __init__(self):
        self.sock = self.pid = self.owner = None
        self.started = 0
        self.lock = threading.Lock()

    def _start(self):
        judge_end, zygote_end = socket.socketpair()
        fresh = self.started > 0  # a fork of the judge now could hold oracle values: exec instead
        modules = [m for m in sys.modules if (m == "checks" or m.startswith("checks."))
                   and not m.rpartition(".")[2].startswith(("test_", "conftest"))]  # what checks run, not pytest's
        reaper = processes.is_subreaper()
        if reaper:
            processes.set_subreaper(False)  # the zygote goes to init, not here
        try:
            middle = os.fork()
            if middle == 0:
                try:
                    judge_end.close()
                    if os.fork() == 0:
                        if fresh:
                            os.set_inheritable(zygote_end.fileno(), True)
                            root = str(Path(__file__).resolve().parents[2])
                            os.execv(sys.executable, [sys.executable, "-c", "import sys; sys.path.insert(0, "
                                                      f"{root!r}); from course.grading.zygote import main; main()",
                                                      str(zygote_end.fileno()), json.dumps(modules)])
                        _detach(zygote_end)
                finally:
                    os._exit(0)
            os.waitpid(middle, 0)
        finally:
            if reaper:
                processes.set_subreaper()
        zygote_end.close()
        self.sock, self.owner = judge_end, os.getpid()
        self.sock.settimeout(REPLY_SECONDS + (60 if fresh else 0))  # a fresh one imports torch first
        hello, _ = _receive(self.sock)
        if not isinstance(hello, dict) or not isinstance(hello.get("pid"), int):
            raise OSError("the zygote did not start")
        self.pid, self.started = hello["pid"], self.started + 1
        self.sock.settimeout(REPLY_SECONDS)

    def ensure(self):
        """Start the zygote if there is none (call before any check runs)."""
        with self.lock:
            if self.sock is None or self.owner != os.getpid():
                self._start()

    def _ask(self, request, fds=()):
        try:
            _send(self.sock, request, fds)
            reply, _ = _receive(self.sock)
        except (OSError, wire.WireError):
            reply = None
        except BaseException:  # interrupted between a request and its reply: the next reply would be this one's
            self._drop()
            raise
        if reply is None:
            self._drop()
        return reply

    def start(self, probe, fds):
        """The pid of a new probe forked from the zygote, serving `probe` (a dict of plain values)."""
        with self.lock:
            for attempt in range(2):  # a zygote found dead is replaced once
                if self.sock is None or self.owner != os.getpid():
                    self._start()
                reply = self._ask({"op": "start", "probe": probe}, fds)
                if reply is not None:
                    return reply["pid"]
            raise OSError("the zygote cannot start probes")

    def stop(self, pid, grace=0.0):
        """Kill probe `pid` with everything it started; its wait status (None if unknown)."""
        with self.lock:
            if self.sock is None or self.owner != os.getpid():
                return None  # its zygote is gone, and the probe with it (its parent-death signal)
            reply = self._ask({"op": "stop", "pid": pid, "grace": grace})
            return reply.get("status") if reply else None

    def _drop(self):
        """Forget a zygote that stopped answering (killed if it still runs)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            if self.pid:
                try:
                    os.kill(self.pid, signal.SIGKILL)  # not our child: by pid, while its socket said alive
                except (ProcessLookupError, PermissionError):
                    pass

    def close(self):
        """End the zygote and every probe under it; waits until it is gone."""
        with self.lock:
            if self.sock is None or self.owner != os.getpid():
                return
            try:
                self.sock.shutdown(socket.SHUT_WR)  # end of file: it kills its probes and exits
                self.sock.settimeout(5.0)
                while self.sock.recv(1 << 16):
                    pass
            except OSError:  # no end of file in time: killed
                self._drop()
            else:  # its end closed: it is gone
                self.sock.close()
                self.sock = None


zygote = Zygote()
atexit.register(zygote.close)


def prepare(modules=()):
    """Import torch (on one thread) and `modules`, then start the zygote. The nbgrader route calls it
    before it reads anything of any learner, so that no probe is a copy of a process that held
    another learner's work or verdicts."""
    import importlib

    import torch

    torch.set_num_threads(1)
    for name in modules:
        importlib.import_module(name)
    zygote.ensure()
