"""The judge's side: start a probe for a learner's file, call it through handles.

    lesson = RemoteLesson(path)          # nothing runs yet
    check.nll(lesson.nll)                # the check runs here; each call of the
                                         # handle is one request to the probe
    lesson.close()                       # the probe's whole process tree is killed

The judge never imports, unpickles or calls learner code: it reads the
learner's file as text, has the zygote fork a probe (a copy of the judge
after its imports, taken before any check ran: torch is loaded once, and no
oracle value is in it), and from then on only exchanges `wire` messages with
it (`channel`: every receive has a deadline and a size limit). A probe that dies (os._exit, a signal, out of memory) or overruns the time
limit fails the request that was running, is killed with everything it
started, and the next request gets a fresh probe. A probe that dies or hangs
while loading the file makes every request of that file fail the same way.
"""

import time
from pathlib import Path

from . import processes, sandbox, wire
from .channel import BudgetExhausted, Printed, ProbeCrash, ProbeLoadError, ProbeProcess, ProbeTimeout
from .handles import Handle, LearnerError, Missing, generators_in, probe_function, references
from .zygote import zygote


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
        return processes.tree_cpu_seconds(pid) if pid else 0.0

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
