"""Judge many learners at once: `--jobs N` on this machine, `--cluster` on a Dask cluster.

The judge of one learner (`lesson_judge.judge_file`) runs no learner code
itself: it forks contained probes. So judges can run side by side. On one
machine they are processes forked from the grader after its imports (torch
and the checks loaded once, not once per learner); across machines they are
Dask tasks. Either way a judge only sends back plain verdicts, and the one
grader process that started them records the grades.

A judge process that dies (the out-of-memory killer, a crash of torch) loses
no learner: whoever it had not finished is judged again, here, in the grader.
"""

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

_job = {}  # the judge function of the pool being run: inherited by the forked workers, never pickled


def _run(learner):
    from ..grading import processes

    processes.set_subreaper()  # orphans of this worker's probes come back to it, to be killed
    return learner, _job["judge"](learner)


def default_jobs():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def judge_all(learners, judge, jobs=1, log=None):
    """Yield (learner, judge(learner)) for every learner, each exactly once, `jobs` at a time.

    `judge` is called in forked workers (jobs > 1) or here (jobs == 1); it must return plain data.
    """
    learners = list(dict.fromkeys(learners))
    if jobs <= 1 or len(learners) <= 1:
        for learner in learners:
            yield learner, judge(learner)
        return
    import multiprocessing

    _job["judge"] = judge
    done = set()
    try:
        with ProcessPoolExecutor(min(jobs, len(learners)), mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(_run, learner) for learner in learners]
            for future in as_completed(futures):
                try:
                    learner, verdicts = future.result()
                except BrokenProcessPool:
                    break  # a worker died: the learners not done yet are judged again below
                done.add(learner)
                yield learner, verdicts
    finally:
        _job.clear()
    rest = [x for x in learners if x not in done]
    if rest and log:
        log(f"a judge process died; judging {len(rest)} learner(s) again in the grader")
    for learner in rest:
        yield learner, judge(learner)
