"""Train lesson 06's GPT at full size and record loss, time and a sample.

    python extras/benchmarks/lesson06_gpt.py --jobs 2              # CPU model, embedded corpus, 3 seeds
    python extras/benchmarks/lesson06_gpt.py --data classic        # tiny shakespeare (download, sha256)
    python extras/benchmarks/lesson06_gpt.py --data /path/to/tinyshakespeare.txt
    python extras/benchmarks/lesson06_gpt.py --config gpu          # the baby GPT; needs CUDA
    python extras/benchmarks/lesson06_gpt.py --config gpu --smoke  # the GPU config, a few steps, any device

The model, the batches and the training loop are the reference solution's own
(solutions/06_gpt/gpt.py, loaded without running its cells), so the numbers
recorded in lesson06.md are the lesson's numbers. Three seeds by default
(1337, 1, 2; one with --smoke), summarised as mean ± spread.

- cpu: 4 layers, 4 heads, n_embd 128, block 64, batch 16, 1650 steps, no dropout,
  AdamW 2e-3 with warm-up and cosine decay to 2e-4; one thread (faster on small CPUs).
  On this machine a step of batch 16 costs about what one of batch 12 does (about
  0.14 s), one of batch 24 half as much again. nanoGPT's CPU recipe (batch 12,
  lr 1e-3, 2000 steps) ends at val 1.86 here: see lesson06.md.
- cpu-fast: the same model with a global batch of 32, lr 3e-3 (cosine to 3e-4), 1500 steps, meant for
  two processes: torchrun --nproc_per_node 2 extras/lesson06_ddp.py --config cpu-fast (here it runs
  in one process, batch 32 at once).
- gpu: the published "baby GPT": 6 layers, 6 heads, n_embd 384, block 256, batch 64,
  dropout 0.2, AdamW 3e-4, 5000 steps. bf16 autocast and torch.compile are used
  on CUDA, each checked on one step first and dropped with a message if it fails
  (accelerate(); --compile/--bf16 on|off|auto). --smoke also turns bf16 on on a CPU,
  so that the CPU test exercises the GPU path.
"""

import argparse
import contextlib
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # seeds.py, also when imported by path

from course.data import load_shakespeare  # noqa: E402
from course.loader import load  # noqa: E402
from seeds import add_arguments, run_seeds  # noqa: E402


def configs(lesson, vocab_size):
    G, T = lesson.GPTConfig, lesson.TrainConfig
    return {
        "cpu": (G(vocab_size=vocab_size, block_size=64, n_embd=128, n_head=4, n_layer=4, dropout=0.0),
                T(max_iters=1650, batch_size=16, lr=2e-3, min_lr=2e-4, warmup_iters=100, eval_interval=330,
                  eval_iters=30)),
        # the same model on two cores: torchrun --nproc_per_node 2 extras/lesson06_ddp.py --config cpu-fast
        "cpu-fast": (G(vocab_size=vocab_size, block_size=64, n_embd=128, n_head=4, n_layer=4, dropout=0.0),
                     T(max_iters=1500, batch_size=32, lr=3e-3, min_lr=3e-4, warmup_iters=100, eval_interval=300,
                       eval_iters=20)),
        "gpu": (G(vocab_size=vocab_size, block_size=256, n_embd=384, n_head=6, n_layer=6, dropout=0.2),
                T(max_iters=5000, batch_size=64, lr=3e-4, min_lr=3e-5, warmup_iters=100, eval_interval=500,
                  eval_iters=200)),
    }


def autocast(device, dtype):
    """bf16 autocast on `device` (a torch.device), or nothing when dtype is None."""
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype else contextlib.nullcontext()


def trial_step(runner, sample, device, dtype):
    with autocast(device, dtype):
        _, loss = runner(*sample)
    loss.backward()
    if not math.isfinite(loss.item()):
        raise FloatingPointError(f"loss {loss.item()}")


def _why(e):
    return f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"


def accelerate(model, device, sample, compile_="auto", bf16="auto", log=print):
    """(runner, autocast dtype or None): bf16 autocast and torch.compile where they work.

    "auto" means: on CUDA only (bf16 if the GPU supports it). Each is tried on one
    forward and backward of `sample` (the batch shape training uses; torch.compile
    fails at the first call, not when it is asked); a failure is reported and the
    run goes on without it, in float32 or eagerly.
    """
    dtype = None
    if bf16 == "on" or (bf16 == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()):
        try:
            trial_step(model, sample, device, torch.bfloat16)
            dtype = torch.bfloat16
        except Exception as e:
            log(f"bf16 autocast failed ({_why(e)}); using float32")
    runner = model
    if compile_ == "on" or (compile_ == "auto" and device.type == "cuda"):
        try:
            runner = torch.compile(model)
            trial_step(runner, sample, device, dtype)
        except Exception as e:  # compile is an optimisation, never a requirement
            log(f"torch.compile failed ({_why(e)}); running eagerly")
            runner = model
    model.zero_grad(set_to_none=True)
    return runner, dtype


def run(args, seed):
    lesson = load(ROOT / "solutions" / "06_gpt" / "gpt.py", "lesson06_reference")
    text = load_shakespeare(args.data)
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n = int(0.9 * len(data))
    train_data, val_data = data[:n], data[n:]

    config, tc = configs(lesson, len(chars))[args.config]
    tc.seed = seed
    if args.iters is not None:
        tc.max_iters = args.iters
    if args.smoke:
        tc.max_iters, tc.eval_interval, tc.eval_iters, tc.batch_size = 3, 2, 2, 2

    cuda = torch.cuda.is_available()
    if args.config == "gpu" and not cuda and not args.smoke:
        sys.exit("the gpu configuration needs CUDA (use --smoke to try it for a few steps on the CPU)")
    device = torch.device("cuda" if cuda and args.config == "gpu" else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    bf16 = "on" if args.smoke and args.bf16 == "auto" else args.bf16  # the smoke test exercises the GPU path

    torch.manual_seed(tc.seed)
    model = lesson.GPT(config).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    sample = lesson.get_batch(train_data, config.block_size, tc.batch_size, torch.Generator().manual_seed(0), device)
    compiled, autocast_dtype = accelerate(model, device, sample, args.compile, bf16)
    torch.manual_seed(tc.seed)  # the trial steps drew from the generator (dropout): start again
    compiled.config = config  # train() reads model.config
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} thread(s)"
    say = lambda text: print(f"[seed {seed}] {text}", flush=True)  # noqa: E731
    say(f"data {args.data}: {len(text):,} chars, vocab {len(chars)}; train {len(train_data):,} val {len(val_data):,}")
    say(f"config {args.config}: {config}; {n_params:,} parameters; {where}; bf16 {autocast_dtype is not None}; "
          f"compiled {compiled is not model}")
    say(f"training: {tc}")

    t0, cpu0 = time.time(), time.process_time()
    history = lesson.train(compiled, train_data, val_data, tc, device=device.type, autocast_dtype=autocast_dtype,
                          log=say)
    seconds, cpu_seconds = time.time() - t0, time.process_time() - cpu0
    # On a shared machine the wall time depends on the neighbours; the process's CPU time (one
    # thread) is what the run costs on one idle core.
    print(f"RESULT seed={seed} data={args.data} config={args.config} iters={tc.max_iters} params={n_params} "
          f"train={history['train'][-1]:.4f} val={history['val'][-1]:.4f} wall_s={seconds:.1f} "
          f"cpu_s={cpu_seconds:.1f} (ln V = {math.log(len(chars)):.4f})", flush=True)

    g = torch.Generator(device=device).manual_seed(42)
    start = torch.tensor([[stoi["\n"]]], device=device)
    out = lesson.generate(model, start, 60 if args.smoke else 500, g, temperature=0.8, top_k=20)
    print(f"SAMPLE seed={seed} (temperature 0.8, top_k 20):\n" + "".join(chars[i] for i in out[0].tolist()), flush=True)
    return {"train": history["train"][-1], "val": history["val"][-1], "training_s": seconds,
            "training_cpu_s": cpu_seconds, "history": history}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="embedded", help='"embedded" (default), "classic", a path or a URL')
    ap.add_argument("--config", choices=["cpu", "cpu-fast", "gpu"], default="cpu")
    ap.add_argument("--iters", type=int, default=None, help="override the number of steps")
    ap.add_argument("--smoke", action="store_true", help="a few steps only: does the configuration run?")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    ap.add_argument("--compile", choices=["auto", "on", "off"], default="auto", help="auto: on CUDA only")
    ap.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                    help="bf16 autocast; auto: on CUDA GPUs that support it, and in --smoke runs")
    ap.add_argument("--no-compile", action="store_const", const="off", dest="compile", help="= --compile off")
    ap.add_argument("--no-bf16", action="store_const", const="off", dest="bf16", help="= --bf16 off")
    add_arguments(ap, [1337, 1, 2])
    ap.set_defaults(seeds=None)
    args = ap.parse_args(argv)
    if args.seeds is None:
        args.seeds = [1337] if args.smoke else [1337, 1, 2]
    return run_seeds(run, args)


if __name__ == "__main__":
    main()
