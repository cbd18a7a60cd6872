"""Run one benchmark under several seeds and report the mean and the spread.

One seed's final loss is one draw. Another seed lands a few thousandths away,
and so does the same seed on another CPU, whose vector units round
differently; the trajectories part within the first few thousand steps. A
figure that holds on any machine is therefore a mean with its spread, never
one seed's digits (issue 15). The benchmarks call `add_arguments` and
`run_seeds`; each seed runs in its own process, `--jobs` of them at a time,
one torch thread each.
"""

import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor


def add_arguments(parser, default_seeds):
    parser.add_argument("--seeds", type=int, nargs="+", default=list(default_seeds),
                        help=f"generator seeds, one run each (default: {' '.join(map(str, default_seeds))})")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, one process each (default 1)")


def _timed(run, args, seed):
    wall, cpu = time.perf_counter(), time.process_time()
    result = run(args, seed)
    return {**result, "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def run_seeds(run, args):
    """[run(args, seed) + its wall and CPU seconds, for each of args.seeds]; prints the summary.

    `run` must be a top-level function of the benchmark (a child process imports it) that
    returns a dict of named numbers (other values, such as a loss history, are kept but not
    summarised), the same names for every seed."""
    seeds = args.seeds
    if args.jobs > 1 and len(seeds) > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_timed, [run] * len(seeds), [args] * len(seeds), seeds))
    else:
        results = [_timed(run, args, seed) for seed in seeds]
    print(summary(results, seeds))
    return results


def summary(results, seeds):
    """One line per measure: mean ± sample standard deviation, the range, and each seed's value."""
    lines = [f"SUMMARY over {len(seeds)} seed(s) {', '.join(map(str, seeds))}"]
    for key in (k for k, v in results[0].items() if isinstance(v, (int, float))):
        values = [r[key] for r in results]
        digits = 1 if key.endswith("_s") else 4
        each = " ".join(f"{v:.{digits}f}" for v in values)
        if len(values) > 1:
            lines.append(f"  {key:<12} {statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f} "
                         f"(range {min(values):.{digits}f}-{max(values):.{digits}f}; seeds: {each})")
        else:
            lines.append(f"  {key:<12} {each}")
    return "\n".join(lines)
