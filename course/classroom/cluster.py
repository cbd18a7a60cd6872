"""Judge a class on a Dask cluster: `course nbgrader grade NN --cluster local|tcp://HOST:8786`.

For a class that outgrows one machine. Each learner is one Dask task: the
grader sends the text of the learner's collected submission, a worker judges
it with `lesson_judge.judge_file` (so the learner's code runs in a probe
contained exactly as on the grader's machine) and returns plain verdicts. The
grader alone writes the gradebook and grades.csv.

- A task's key names the lesson, the learner and the submission's hash: a
  task that a lost worker was running is run again elsewhere (Dask's own
  rescheduling), and its one result is recorded once.
- A worker refuses to judge unless its checks, course package and reference
  lesson hash to the grader's: every machine grades with the same code.
- `local` starts a LocalCluster of worker processes on loopback (the default
  for trying it, and what the tests use). Workers of a real cluster must be
  started with DASK_DISTRIBUTED__WORKER__DAEMON=False (INSTRUCTORS.md).
"""

import hashlib
import os
import shutil
import tempfile

from .. import lessons as registry


def code_fingerprint(lesson):
    """One sha256 over the files that decide `lesson`'s grades on this machine, by relative path."""
    from ..grading.integrity import fingerprint

    roots = [registry.ROOT / "checks", registry.ROOT / "course", lesson.script(registry.solutions_dir())]
    digest = hashlib.sha256()
    for path, value in sorted(fingerprint(roots).items()):
        digest.update(f"{os.path.relpath(path.rstrip('/'), registry.ROOT)}={value}\n".encode())
    return digest.hexdigest()


_pool = []  # in a worker: one process of its own that judges (torch imported once per worker)


def _judge_here(number, path, shown, seconds, memory_gb, budget=None):
    """In the worker's judging process: it alone is the subreaper of the probes it forks. Messages name
    the file as the grader does (`shown`), not this worker's copy of it."""
    from ..grading import processes
    from ..grading.lesson_judge import grading_calls, judge_file
    from .setup import solution_notebook

    processes.set_subreaper()
    lesson = registry.get(number)
    calls = grading_calls(lesson, solution_notebook(lesson))
    try:
        verdicts = judge_file(lesson, path, calls, seconds=seconds, memory_gb=memory_gb, lenient=True, budget=budget)
    finally:
        processes.kill_descendants()
    here = [os.path.relpath(path), path]

    def named(message):
        for name in here:
            message = message.replace(name, shown)
        return message

    return {ex: (str(status), named(str(message))) for ex, (status, message) in verdicts.items()}


def judge_text(number, name, text, fingerprint, seconds, memory_gb, budget=None):
    """On a worker: the verdicts of one learner's submission, given as text (`name`: its path as the
    grader shows it).

    The judging runs in a process of its own, started once per worker (spawned: a Dask worker has
    threads, and its own helper processes must not be taken for a probe's leftovers)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from ..grading.processes import die_with_parent

    lesson = registry.get(number)
    mine = code_fingerprint(lesson)
    if mine != fingerprint:
        raise RuntimeError(f"this worker's course differs from the grader's ({mine[:12]} vs {fingerprint[:12]}): "
                           f"install the same version of the course on every worker")
    if multiprocessing.current_process().daemon:
        raise RuntimeError("this Dask worker is a daemonic process, which cannot start the judging process: "
                           "start the workers with DASK_DISTRIBUTED__WORKER__DAEMON=False")
    folder = tempfile.mkdtemp(prefix="course-task-")
    try:
        path = os.path.join(folder, os.path.basename(name))
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        for attempt in (1, 2):
            if not _pool:
                # the judging process ends when its worker does (killed, or lost): nothing is left running
                _pool.append(ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=die_with_parent))
            try:
                return _pool[0].submit(_judge_here, number, path, name, seconds, memory_gb, budget).result()
            except BrokenProcessPool:
                _pool.pop().shutdown(wait=False)  # it died (out of memory?): a new one, once
                if attempt == 2:
                    raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def client_for(address, workers=2):
    """A Dask client: a LocalCluster of `workers` processes on loopback for `local`, else the scheduler's."""
    import dask
    from dask.distributed import Client, LocalCluster

    if address in (None, "local"):
        # A worker starts its judging process, so it must not be daemonic; set for good, not for the start
        # only: the nanny reads it again when it restarts a worker that died.
        dask.config.set({"distributed.worker.daemon": False})
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        return Client(cluster)
    return Client(address)


def _shown(path):
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def judge_on_cluster(lesson, submissions, client, seconds, memory_gb=None, sha256s=None, budget=None):
    """Yield (learner, verdicts) for {learner: path of the collected submission}, each learner once.
    `sha256s`: {learner: the hash of the submission as collected}; a file that differs stops the batch."""
    from dask.distributed import as_completed

    fingerprint = code_fingerprint(lesson)
    futures = {}
    for learner, path in submissions.items():
        with open(path, "rb") as fh:
            data = fh.read()
        if sha256s and hashlib.sha256(data).hexdigest() != sha256s[learner]:
            from ..grading.integrity import TamperError

            raise TamperError(f"grading stopped: {path} is not the submission collected (its sha256 changed)")
        text = data.decode("utf-8", errors="replace")
        key = f"judge-{lesson.folder}-{learner}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
        future = client.submit(judge_text, lesson.number, _shown(path), text, fingerprint, seconds,
                               memory_gb, budget, key=key, pure=False)
        futures[future.key] = (learner, future)
    seen = set()
    for future in as_completed([f for _, f in futures.values()]):
        learner = futures[future.key][0]
        if learner in seen:  # never twice, whatever the cluster does
            continue
        seen.add(learner)
        yield learner, future.result()
