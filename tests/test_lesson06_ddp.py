"""extras/lesson06_ddp.py under `torchrun --nproc_per_node 2` on the CPU (gloo).

Two processes with gradient accumulation must train lesson 06's GPT to the same
parameters as one process that accumulates the whole global batch itself (the
reference loop below, written without torch.distributed); the evaluation must be
the mean over the ranks; and a run stopped and resumed from its checkpoint must
end bit for bit where an uninterrupted run ends.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course.data import load_shakespeare

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "extras" / "lesson06_ddp.py"
ITERS, STOP, BATCH, MICRO = 8, 4, 8, 2  # 4 micro-batches a step: 2 ranks x 2 accumulated
TOL = dict(rtol=1e-5, atol=1e-6)  # measured: 1.2e-7 apart; half the batch: 1.8e-2

pytestmark = pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                                reason="torchrun is not installed")


def script_module():
    spec = importlib.util.spec_from_file_location("lesson06_ddp", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def torchrun(nproc, *args):
    exe = Path(sys.executable).parent / "torchrun"
    cmd = [str(exe) if exe.exists() else "torchrun", "--standalone", "--nproc_per_node", str(nproc), str(SCRIPT), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def reference(ddp, lesson, train_data, val_data, config, tc, streams, record):
    """One process, no torch.distributed: accumulate `streams` micro-batches a step."""
    torch.manual_seed(tc.seed)
    model = lesson.GPT(config)
    opt = lesson.make_optimizer(model, tc)
    params = {}
    for step in range(tc.max_iters):
        for group in opt.param_groups:
            group["lr"] = lesson.lr_at(step, tc)
        for j in range(streams):
            g = torch.Generator().manual_seed(ddp.seed_for(tc.seed, step, j))
            _, loss = model(*lesson.get_batch(train_data, config.block_size, MICRO, g))
            (loss / streams).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step + 1 in record:
            params[step + 1] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.eval()
    with torch.no_grad():  # what 2 ranks report at the end: the mean of their own estimates
        val = sum(_val_estimate(lesson, model, train_data, val_data, config, tc,
                                ddp.eval_seed_for(tc.seed, tc.max_iters, rank)) for rank in range(2)) / 2
    return params, val


def _val_estimate(lesson, model, train_data, val_data, config, tc, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(tc.eval_iters):  # the train split comes first and uses the generator
        lesson.get_batch(train_data, config.block_size, MICRO, g)
    losses = [model(*lesson.get_batch(val_data, config.block_size, MICRO, g))[1].item() for _ in range(tc.eval_iters)]
    return sum(losses) / len(losses)


def assert_same(a, b, what, **tol):
    assert a.keys() == b.keys()
    for k in a:
        if tol:
            torch.testing.assert_close(a[k], b[k], **tol, msg=lambda m: f"{what}: {k}: {m}")
        else:
            assert torch.equal(a[k], b[k]), f"{what}: {k} differs by {(a[k] - b[k]).abs().max().item():.3g}"


def max_diff(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.mark.slow
def test_two_processes_equal_gradient_accumulation_and_resume_exactly(tmp_path):
    text_file = tmp_path / "shakespeare.txt"
    text_file.write_text(load_shakespeare("embedded")[:40_000], encoding="utf-8")
    common = ["--config", "tiny", "--text-file", str(text_file), "--iters", str(ITERS), "--batch-size", str(BATCH),
              "--micro-batch", str(MICRO), "--sample", "0"]
    stopped, whole = tmp_path / "stopped", tmp_path / "whole"
    log1 = torchrun(2, *common, "--out", str(stopped), "--stop-at", str(STOP))
    at_stop = torch.load(stopped / "ckpt.pt", weights_only=False)
    log2 = torchrun(2, *common, "--out", str(stopped), "--resume")
    resumed = torch.load(stopped / "ckpt.pt", weights_only=False)
    torchrun(2, *common, "--out", str(whole))
    uninterrupted = torch.load(whole / "ckpt.pt", weights_only=False)
    assert "2 process(es), gloo" in log1 and "batch 8 = 2 x 2 x 2" in log1, log1
    assert f"resumed from {stopped / 'ckpt.pt'} at step {STOP}" in log2, log2
    assert at_stop["step"] == STOP and resumed["step"] == uninterrupted["step"] == ITERS

    ddp = script_module()
    lesson = ddp.lesson06()
    chars, train_data, val_data = ddp.encode_text(text_file.read_text(encoding="utf-8"))
    config, tc = ddp.recipes(lesson, len(chars))["tiny"]
    tc.max_iters, tc.batch_size = ITERS, BATCH
    want, want_val = reference(ddp, lesson, train_data, val_data, config, tc, BATCH // MICRO, {STOP, ITERS})

    print(f"max |2 processes - 1 process|: step {STOP} {max_diff(at_stop['model'], want[STOP]):.3g}, "
          f"step {ITERS} {max_diff(uninterrupted['model'], want[ITERS]):.3g}")
    # 2 ranks x 2 accumulated micro-batches == 1 process accumulating all 4, step for step
    assert_same(at_stop["model"], want[STOP], f"2 processes, step {STOP}, vs 1 process", **TOL)
    assert_same(uninterrupted["model"], want[ITERS], f"2 processes, step {ITERS}, vs 1 process", **TOL)
    # the tolerance is far below what a real difference makes: rank 0's half of the batch alone
    half, _ = reference(ddp, lesson, train_data, val_data, config, tc, BATCH // MICRO // 2, {ITERS})
    print(f"max |half the batch - whole batch|: {max_diff(half[ITERS], want[ITERS]):.3g}")
    assert max_diff(half[ITERS], want[ITERS]) > 1e3 * TOL["atol"]
    # the evaluation is the mean of the two ranks' estimates
    assert abs(uninterrupted["history"]["val"][-1] - want_val) < 1e-5
    # stopped at STOP and resumed == never stopped, bit for bit; the history carries over
    assert_same(resumed["model"], uninterrupted["model"], "resumed vs uninterrupted")
    for i, state in uninterrupted["optimizer"]["state"].items():
        assert_same(resumed["optimizer"]["state"][i], state, f"AdamW state of parameter {i}")
    assert resumed["history"] == uninterrupted["history"]


def test_plain_python_launch_says_how_to_start_it():
    out = subprocess.run([sys.executable, str(SCRIPT), "--out", "unused"], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")},
                         timeout=120, cwd=ROOT)
    assert out.returncode != 0
    assert "must be started by torchrun" in out.stderr and "torchrun --nproc_per_node N" in out.stderr, out.stderr
