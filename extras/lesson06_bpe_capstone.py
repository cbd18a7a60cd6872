"""Capstone: lesson 06's GPT on lesson 07's BPE tokens, against the character model.

    python extras/lesson06_bpe_capstone.py --out runs/capstone                  # both models, then the plot
    python extras/lesson06_bpe_capstone.py --out runs/capstone --model char &   # or one process each ...
    python extras/lesson06_bpe_capstone.py --out runs/capstone --model bpe &
    wait; python extras/lesson06_bpe_capstone.py --out runs/capstone --plot     # ... and the plot

Both models are the lesson's CPU GPT (4 layers, 4 heads, n_embd 128, a context
of 64 tokens), trained by the lesson's own loop with the same steps, batch and
learning rate: the same compute per step, except that the BPE model's
embedding and output layer have 512 rows instead of 69 (about 7 % more
multiply-adds per token). Their losses per token cannot be compared: a BPE
token stands for about two and a half characters. The loss per *byte* can: the
total negative log-likelihood of the validation text, in nats, divided by its
length in bytes. It is measured on the whole validation text, cut into
windows of 64 tokens, not on a few random batches.

The tokenizer is lesson 07's `train_fast` with GPT-2's split pattern, trained on
the training 90 % of the text only, so the validation text is new to it too.
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course.data import load_shakespeare  # noqa: E402
from course.loader import load  # noqa: E402
from course.runtime import save_figure  # noqa: E402


def tokenize(kind, train_text, val_text, vocab_size):
    """(train ids, val ids, V, token -> byte length, decode) for "char" or "bpe"."""
    if kind == "char":
        chars = sorted(set(train_text + val_text))
        stoi = {c: i for i, c in enumerate(chars)}
        nbytes = torch.tensor([len(c.encode("utf-8")) for c in chars])
        return ([stoi[c] for c in train_text], [stoi[c] for c in val_text], len(chars), nbytes,
                lambda ids: "".join(chars[i] for i in ids))
    bpe = load(ROOT / "solutions" / "07_bpe" / "bpe.py", "lesson07_reference")
    merges = bpe.train_fast(train_text, vocab_size, bpe.GPT2_SPLIT_PATTERN)
    vocab = bpe.build_vocab(merges)
    nbytes = torch.tensor([len(vocab[i]) for i in range(len(vocab))])
    encode = lambda s: bpe.encode_ordinary(s, merges, bpe.GPT2_SPLIT_PATTERN)  # noqa: E731
    return encode(train_text), encode(val_text), len(vocab), nbytes, lambda ids: bpe.decode(ids, vocab)


@torch.no_grad()
def nats_per_byte(model, ids, nbytes, block_size, batch=64):
    """Total cross-entropy of every token of `ids` after the first, over their bytes.

    Non-overlapping windows of block_size + 1 tokens; each window predicts its last
    block_size tokens from at least one token of context.
    """
    model.eval()
    n = (len(ids) - 1) // block_size
    windows = ids[: n * block_size + 1]
    x = windows[:-1].view(n, block_size)
    y = windows[1:].view(n, block_size)
    nats = 0.0
    for i in range(0, n, batch):
        logits, _ = model(x[i : i + batch])
        nats += torch.nn.functional.cross_entropy(logits.flatten(0, 1), y[i : i + batch].flatten(),
                                                  reduction="sum").item()
    model.train()
    return nats / nbytes[y].sum().item()


def run(kind, args, lesson, train_text, val_text):
    t0 = time.time()
    train_ids, val_ids, V, nbytes, decode = tokenize(kind, train_text, val_text, args.vocab_size)
    tokenize_s = time.time() - t0
    train_ids, val_ids = torch.tensor(train_ids), torch.tensor(val_ids)
    bytes_per_token = nbytes[val_ids].sum().item() / len(val_ids)
    print(f"{kind}: V = {V}, {len(train_ids):,} train / {len(val_ids):,} val tokens, "
          f"{bytes_per_token:.3f} bytes per val token (tokenizing: {tokenize_s:.1f} s)")
    config = lesson.GPTConfig(vocab_size=V, block_size=64, n_embd=128, n_head=4, n_layer=4)
    tc = lesson.TrainConfig(max_iters=args.iters, batch_size=16, lr=2e-3, min_lr=2e-4, warmup_iters=100,
                            eval_interval=max(1, args.iters // 5), eval_iters=20, seed=1337)
    torch.manual_seed(tc.seed)
    model = lesson.GPT(config)
    n_params = sum(p.numel() for p in model.parameters())
    t0, cpu0 = time.time(), time.process_time()
    history = lesson.train(model, train_ids, val_ids, tc)
    wall, cpu = time.time() - t0, time.process_time() - cpu0
    per_byte = nats_per_byte(model, val_ids, nbytes, config.block_size)
    g = torch.Generator().manual_seed(42)
    sample = decode(lesson.generate(model, val_ids[:1].view(1, 1), 200, g, temperature=0.8, top_k=20)[0].tolist())
    result = {"kind": kind, "V": V, "params": n_params, "iters": tc.max_iters, "batch": tc.batch_size,
              "block_size": config.block_size, "bytes_per_token": bytes_per_token,
              "train_tokens": len(train_ids), "val_tokens": len(val_ids), "history": history,
              "val_nats_per_byte": per_byte, "val_bits_per_byte": per_byte / math.log(2),
              "wall_s": wall, "cpu_s": cpu, "tokenize_s": tokenize_s, "sample": sample}
    print(f"RESULT {kind}: {n_params:,} parameters, val {per_byte:.4f} nats per byte "
          f"({per_byte / math.log(2):.4f} bits), {history['val'][-1]:.4f} nats per token (random batches); "
          f"training {wall:.1f} s wall, {cpu:.1f} s CPU")
    print(f"SAMPLE {kind}:\n{sample}")
    (Path(args.out) / f"{kind}.json").write_text(json.dumps(result, indent=1))
    return result


def plot(out):
    import matplotlib.pyplot as plt

    results = [json.loads((out / f"{k}.json").read_text()) for k in ("char", "bpe") if (out / f"{k}.json").exists()]
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        # the random-batch estimates per token, divided by the validation text's bytes per token
        per_byte = [v / r["bytes_per_token"] for v in r["history"]["val"]]
        label = (f"{r['kind']} (V = {r['V']}): {r['val_nats_per_byte']:.3f} nats/byte at the end, whole val text")
        ax.plot(r["history"]["step"], per_byte, "o-", label=label)
    ax.set_xlabel("step (16 windows of 64 tokens each, for both)")
    ax.set_ylabel("validation loss, nats per byte")
    ax.set_title("Lesson 06's GPT on characters and on lesson 07's BPE tokens")
    ax.set_ylim(top=2.6)  # step 0 (ln V per token) is far above
    ax.legend(loc="upper right")
    os.environ["COURSE_OUT"] = str(out)  # save_figure writes to $COURSE_OUT
    save_figure(fig, "06_capstone_bpe_vs_char.png")
    for r in results:
        print(f"{r['kind']}: {r['val_nats_per_byte']:.4f} nats/byte = {r['val_bits_per_byte']:.4f} bits/byte")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default="embedded", help='"embedded" (default), "classic", a path or a URL')
    ap.add_argument("--model", choices=["char", "bpe", "both"], default="both")
    ap.add_argument("--plot", action="store_true", help="only draw the plot of the runs in --out")
    ap.add_argument("--iters", type=int, default=1000)
    ap.add_argument("--vocab-size", type=int, default=512)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.plot:
        torch.set_num_threads(1)
        lesson = load(ROOT / "solutions" / "06_gpt" / "gpt.py", "lesson06_reference")
        text = load_shakespeare(args.data)
        cut = int(0.9 * len(text))
        for kind in ("char", "bpe") if args.model == "both" else (args.model,):
            run(kind, args, lesson, text[:cut], text[cut:])
    if args.plot or args.model == "both":
        plot(out)


if __name__ == "__main__":
    main()
