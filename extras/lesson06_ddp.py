"""Train lesson 06's GPT on several processes with DistributedDataParallel (DDP).

    torchrun --nproc_per_node 2 extras/lesson06_ddp.py --out runs/ddp                    # 2 CPU processes (gloo)
    torchrun --nproc_per_node 2 extras/lesson06_ddp.py --out runs/ddp --resume           # continue runs/ddp/ckpt.pt
    torchrun --nproc_per_node 8 extras/lesson06_ddp.py --config gpu --out runs/gpu       # 8 GPUs (nccl)
    torchrun --nproc_per_node 1 extras/lesson06_ddp.py --config gpu --out runs/gpu1      # one GPU, same recipe

The model, the batches, the optimizer and the learning-rate schedule are the
reference solution's own (solutions/06_gpt/gpt.py), and the configurations are
those of extras/benchmarks/lesson06_gpt.py.

How the work is split. One optimizer step sees `--batch-size` windows (the
global batch), cut into micro-batches of `--micro-batch` windows. There are
S = batch / micro of them per step; each of the N processes (ranks) computes
S / N, accumulating their gradients, and DDP averages the gradients of all
ranks on the last one. So the step is the same at any N: N = 1 does all S
micro-batches itself, by gradient accumulation. N must divide S.

Which windows. Micro-batch j of step s is drawn with a generator seeded from
(seed, s, j), and dropout is seeded the same way. Each rank therefore samples
its own windows with its own seeds, a run gives the same batches whatever N
is, and a resumed run needs only the step number to continue exactly: no
generator state to gather from the ranks.

Evaluation: every rank averages `eval_iters` batches of each split (its own
seeds), and an all-reduce averages the ranks. Checkpoints: rank 0 alone writes
`OUT/ckpt.pt` (model, optimizer, step, recipe); on `--resume` rank 0 alone
reads it and broadcasts it to the others.

On CUDA it uses bf16 autocast where the GPU supports it and torch.compile,
each checked on one real step before training and dropped with a message if
it fails (`--bf16` / `--compile` on|off|auto; auto means: on CUDA only).
"""

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course.data import load_shakespeare  # noqa: E402
from course.loader import load  # noqa: E402

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class LaunchError(SystemExit):
    """The script was started in a way it cannot work with; the message says how to start it."""


def lesson06():
    return load(ROOT / "solutions" / "06_gpt" / "gpt.py", "lesson06_reference")


def _benchmark_script():
    spec = importlib.util.spec_from_file_location("lesson06_bench", ROOT / "extras" / "benchmarks" / "lesson06_gpt.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


bench = _benchmark_script()  # the configurations and the GPU helpers live there
accelerate, autocast = bench.accelerate, bench.autocast


def recipes(lesson, vocab_size):
    """The configurations of extras/benchmarks/lesson06_gpt.py, plus a tiny one for tests."""
    out = bench.configs(lesson, vocab_size)
    out["tiny"] = (lesson.GPTConfig(vocab_size=vocab_size, block_size=16, n_embd=32, n_head=2, n_layer=2),
                   lesson.TrainConfig(max_iters=8, batch_size=8, warmup_iters=2, eval_interval=4, eval_iters=2))
    return out


def encode_text(text):
    """(characters, train ids, val ids): the lesson's vocabulary and its 90 % / 10 % cut."""
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n = int(0.9 * len(data))
    return chars, data[:n], data[n:]


def seed_for(seed, step, stream):
    """The seed of micro-batch `stream` of step `step`: distinct per stream, the same at any N."""
    return (seed * 1_000_003 + step) * 1_009 + stream


def eval_seed_for(seed, step, rank):
    return seed_for(seed, step, 1_000 + rank)  # apart from the training streams


def check_torchrun(environ):
    missing = [v for v in TORCHRUN_VARS if v not in environ]
    if missing:
        raise LaunchError(
            f"lesson06_ddp.py must be started by torchrun (missing {', '.join(missing)}):\n"
            f"    torchrun --nproc_per_node N {' '.join(['extras/lesson06_ddp.py'] + sys.argv[1:])}\n"
            "(N = 1 is a plain single-process run.)")


def launch_info(environ, backend, batch, micro):
    """(rank, local_rank, world_size) from torchrun's variables; a LaunchError if they don't fit."""
    check_torchrun(environ)
    rank, local_rank, world = int(environ["RANK"]), int(environ["LOCAL_RANK"]), int(environ["WORLD_SIZE"])
    if batch % micro:
        raise LaunchError(f"--batch-size {batch} is not a multiple of --micro-batch {micro}")
    streams = batch // micro
    if streams % world:
        raise LaunchError(f"{world} processes cannot share {streams} micro-batches of {micro} "
                          f"(--batch-size {batch}): N must divide batch / micro")
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise LaunchError("backend nccl needs CUDA GPUs; on a CPU use --backend gloo (the default there)")
        if local_rank >= torch.cuda.device_count():
            raise LaunchError(f"local rank {local_rank} has no GPU: this machine has "
                              f"{torch.cuda.device_count()}; use --nproc_per_node {torch.cuda.device_count()} or fewer")
    return rank, local_rank, world


def save_checkpoint(path, state):
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a run killed while saving leaves the previous checkpoint intact


def load_checkpoint(path, rank):
    """Rank 0 reads the file and broadcasts it: the other ranks never touch the disk."""
    box = [None]
    if rank == 0:
        box[0] = torch.load(path, map_location="cpu", weights_only=False) if path.exists() else None
    dist.broadcast_object_list(box, src=0)
    if box[0] is None:
        raise LaunchError(f"--resume: no checkpoint at {path}")
    return box[0]


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="embedded", help='"embedded" (default), "classic", a path or a URL')
    ap.add_argument("--text-file", help="train on this UTF-8 file instead (no checksum; tests use a short one)")
    ap.add_argument("--config", choices=["cpu", "cpu-fast", "gpu", "tiny"], default="cpu")
    ap.add_argument("--out", required=True, help="folder for ckpt.pt and history.json")
    ap.add_argument("--iters", type=int, help="total steps (default: the configuration's)")
    ap.add_argument("--batch-size", type=int, help="global batch in windows (default: the configuration's)")
    ap.add_argument("--micro-batch", type=int, help="windows per forward pass (default: batch / N)")
    ap.add_argument("--stop-at", type=int, help="stop after this step and save (the schedule still ends at --iters)")
    ap.add_argument("--save-every", type=int, default=0, help="also save every this many steps (0: at the end)")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt")
    ap.add_argument("--backend", choices=["gloo", "nccl"], help="default: nccl with CUDA, gloo without")
    ap.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda if available")
    ap.add_argument("--compile", choices=["auto", "on", "off"], default="auto")
    ap.add_argument("--bf16", choices=["auto", "on", "off"], default="auto")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per process")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--sample", type=int, default=300, help="characters to sample at the end (rank 0)")
    return ap.parse_args(argv)


def main(argv=None, environ=os.environ):
    args = parse_args(argv)
    check_torchrun(environ)  # before the slow part
    device_type = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    backend = args.backend or ("nccl" if device_type == "cuda" else "gloo")
    world_hint = int(environ.get("WORLD_SIZE", "1"))
    lesson = lesson06()
    text = Path(args.text_file).read_text(encoding="utf-8") if args.text_file else load_shakespeare(args.data)
    chars, train_data, val_data = encode_text(text)
    stoi = {c: i for i, c in enumerate(chars)}
    config, tc = recipes(lesson, len(chars))[args.config]
    tc = replace(tc, seed=args.seed, max_iters=args.iters or tc.max_iters, batch_size=args.batch_size or tc.batch_size)
    micro = args.micro_batch or max(1, tc.batch_size // world_hint)
    rank, local_rank, world = launch_info(environ, backend, tc.batch_size, micro)
    accum = tc.batch_size // micro // world  # micro-batches per rank per step

    device = torch.device(f"cuda:{local_rank}" if device_type == "cuda" else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    else:
        torch.set_num_threads(args.threads)
    dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    out = Path(args.out)
    log = print if rank == 0 else (lambda *a, **k: None)
    try:
        if rank == 0:
            out.mkdir(parents=True, exist_ok=True)
        recipe = {"data": args.text_file or args.data, "vocab": "".join(chars), "config": asdict(config), "train": asdict(tc),
                  "micro_batch": micro}
        torch.manual_seed(tc.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
        model = lesson.GPT(config).to(device)
        opt = lesson.make_optimizer(model, tc, device.type)
        step, history = 0, {"step": [], "train": [], "val": []}
        if args.resume:
            ckpt = load_checkpoint(out / "ckpt.pt", rank)
            if ckpt["recipe"] != recipe:
                changed = sorted(k for k in recipe if ckpt["recipe"].get(k) != recipe[k])
                raise LaunchError(f"--resume: {out / 'ckpt.pt'} was trained with another {', '.join(changed)}")
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            step, history = ckpt["step"], ckpt["history"]
            log(f"resumed from {out / 'ckpt.pt'} at step {step}")

        def micro_batch(s, stream):
            g = torch.Generator().manual_seed(seed_for(tc.seed, s, stream))
            return lesson.get_batch(train_data, config.block_size, micro, g, device)

        runner, dtype = accelerate(model, device, micro_batch(0, 0), args.compile, args.bf16, log)
        ddp = DDP(runner, device_ids=[local_rank] if device.type == "cuda" else None)
        n_params = sum(p.numel() for p in model.parameters())
        where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} thread(s) each"
        log(f"{world} process(es), {backend}, {where}; {n_params:,} parameters; batch {tc.batch_size} = "
            f"{world} x {accum} x {micro}; bf16 {dtype is not None}; compiled {runner is not model}")

        @torch.no_grad()
        def evaluate(s):
            ddp.eval()
            g = torch.Generator().manual_seed(eval_seed_for(tc.seed, s, rank))
            means = []
            for split in (train_data, val_data):
                losses = []
                for _ in range(tc.eval_iters):
                    with autocast(device, dtype):
                        losses.append(runner(*lesson.get_batch(split, config.block_size, micro, g, device))[1])
                means.append(torch.stack(losses).float().mean())
            both = torch.stack(means)
            dist.all_reduce(both)  # sum over ranks
            both /= world
            ddp.train()
            if not history["step"] or history["step"][-1] != s:
                history["step"].append(s)
                history["train"].append(both[0].item())
                history["val"].append(both[1].item())
            log(f"step {s:5d}: train {both[0].item():.4f}  val {both[1].item():.4f}")

        def checkpoint(s):
            if rank == 0:
                save_checkpoint(out / "ckpt.pt", {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                                  "step": s, "history": history, "recipe": recipe})
                (out / "history.json").write_text(json.dumps(history))
            dist.barrier()  # nobody goes on (or exits) before the file is complete

        stop = min(tc.max_iters, args.stop_at or tc.max_iters)
        t0, cpu0 = time.time(), time.process_time()
        ddp.train()
        while step < stop:
            if step % tc.eval_interval == 0:
                evaluate(step)
            for group in opt.param_groups:
                group["lr"] = lesson.lr_at(step, tc)
            for k in range(accum):
                stream = rank * accum + k
                x, y = micro_batch(step, stream)
                torch.manual_seed(seed_for(tc.seed, step, stream))  # dropout, the same at any N
                sync = contextlib.nullcontext() if k == accum - 1 else ddp.no_sync()
                with sync:  # all-reduce the gradients once per step, on the last micro-batch
                    with autocast(device, dtype):
                        _, loss = ddp(x, y)
                    (loss / accum).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if args.save_every and step % args.save_every == 0 and step < stop:
                checkpoint(step)
        if step == tc.max_iters:
            evaluate(step)
        seconds, cpu_seconds = time.time() - t0, time.process_time() - cpu0
        checkpoint(step)
        log(f"RESULT step={step} world={world} train={history['train'][-1]:.4f} val={history['val'][-1]:.4f} "
            f"wall_s={seconds:.1f} cpu_s_rank0={cpu_seconds:.1f}")
        if rank == 0 and args.sample and step == tc.max_iters:
            g = torch.Generator(device=device).manual_seed(42)
            idx = lesson.generate(model, torch.tensor([[stoi["\n"]]], device=device), args.sample, g,
                                  temperature=0.8, top_k=20)
            print("SAMPLE (temperature 0.8, top_k 20):")
            print("".join(chars[i] for i in idx[0].tolist()))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
