"""The GPU path of lesson 06's training, exercised on the CPU: no GPU needed.

extras/benchmarks/lesson06_gpt.py --config gpu --smoke trains the baby GPT (10.8M
parameters) for 3 steps under bf16 autocast, evaluates and samples; torch.compile
that fails at its first call (as it does where no compiler works) is dropped
with a message instead of stopping the run.
"""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def bench():
    spec = importlib.util.spec_from_file_location("lesson06_bench", ROOT / "extras" / "benchmarks" / "lesson06_gpt.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_gpu_configuration_smoke_run_on_cpu(capsys):
    torch.set_num_threads(1)
    (run,) = bench().main(["--config", "gpu", "--smoke", "--compile", "off"])  # one seed in a smoke run
    history = run["history"]
    out = capsys.readouterr().out
    assert "10,792,005 parameters" in out, out  # the baby GPT at the embedded corpus's V = 69
    assert "n_embd=384" in out and "n_layer=6" in out and "bf16 True" in out, out
    assert history["step"] == [0, 2, 3]
    assert all(math.isfinite(v) for v in history["train"] + history["val"])
    assert "SAMPLE" in out


class _BrokenCompile(torch.nn.Module):
    """What torch.compile gives where it cannot work: a module that fails when first called."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *args):
        raise RuntimeError("backend='inductor' raised: no working C++ compiler")


def test_failed_compile_falls_back_to_eager_bf16(monkeypatch):
    b = bench()
    from course.loader import load

    lesson = load(ROOT / "solutions" / "06_gpt" / "gpt.py", "lesson06_reference")
    torch.manual_seed(0)
    model = lesson.GPT(lesson.GPTConfig(vocab_size=65, block_size=16, n_embd=32, n_head=2, n_layer=2))
    x = torch.randint(0, 65, (2, 16), generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(torch, "compile", _BrokenCompile)
    messages = []
    runner, dtype = b.accelerate(model, torch.device("cpu"), (x, x), compile_="on", bf16="on", log=messages.append)
    assert runner is model and dtype is torch.bfloat16
    assert len(messages) == 1 and messages[0].startswith("torch.compile failed (RuntimeError"), messages
    assert all(p.grad is None for p in model.parameters())  # the trial steps leave no gradients behind
    with b.autocast(torch.device("cpu"), dtype):
        logits, loss = runner(x, x)
    assert logits.dtype is torch.bfloat16 and math.isfinite(loss.item())
    # "auto" on a CPU: neither bf16 nor compile, and nothing to report
    messages.clear()
    assert b.accelerate(model, torch.device("cpu"), (x, x), log=messages.append) == (model, None) and not messages
