"""Lesson 07 reference numbers: trainer speed, encoder throughput, compression, parity.

    python extras/benchmarks/lesson07_bpe.py                      # the embedded Shakespeare
    python extras/benchmarks/lesson07_bpe.py --data /path/to/tinyshakespeare.txt

The functions are the reference solution's (solutions/07_bpe/bpe.py, loaded
without running its cells). Everything runs in this one process, one after
the other, so the ratios compare like with like. Times: wall (perf_counter)
and CPU (process_time) side by side.

1. train_regex (naive) against train_fast at vocab 512 on the first ~185 KB,
   GPT-4 pattern: the merges must be identical.
2. train_fast at several vocabulary sizes.
3. encode_ordinary with cl100k_base merges recovered by merges_from_ranks,
   against tiktoken's encode_ordinary, on the whole text: ids must be equal.
4. Compression (bytes per token) of the lesson's tokenizers, gpt2 and cl100k.
5. The size of the parity corpus of checks/lesson07.
"""

import argparse
import time
from pathlib import Path

from course.data import load_shakespeare, tiktoken_encoding, tiktoken_ranks
from course.loader import load

ROOT = Path(__file__).resolve().parents[2]


def timed(f, *args):
    w, c = time.perf_counter(), time.process_time()
    out = f(*args)
    return out, time.perf_counter() - w, time.process_time() - c


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="embedded", help="embedded (default), classic, or a path")
    parser.add_argument("--train-chars", type=int, default=185_000)
    parser.add_argument("--vocab", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the encode timings (best is kept)")
    args = parser.parse_args()
    ref = load(ROOT / "solutions" / "07_bpe" / "bpe.py", "reference_bpe")
    pattern = ref.GPT4_SPLIT_PATTERN

    text = load_shakespeare(args.data)
    corpus = text[:args.train_chars]
    print(f"data {args.data}: {len(text):,} characters, {len(text.encode()):,} bytes; "
          f"training text {len(corpus):,} characters, {len(corpus.encode()):,} bytes")

    # 1. naive against fast, same text, same vocabulary size
    naive, nw, nc = timed(ref.train_regex, corpus, args.vocab, pattern)
    fast, fw, fc = timed(ref.train_fast, corpus, args.vocab, pattern)
    same = list(naive.items()) == list(fast.items())
    print(f"\n[train] vocab {args.vocab}: train_regex wall {nw:.2f} s cpu {nc:.2f} s | train_fast wall {fw:.3f} s "
          f"cpu {fc:.3f} s | speed-up wall {nw / fw:.0f}x cpu {nc / fc:.0f}x | identical merges: {same}")
    assert same, "the fast trainer must give the naive trainer's merges"

    # 2. the fast trainer against the vocabulary size
    for v in (512, 1024, 2048, 4096, 8192):
        _, w, c = timed(ref.train_fast, corpus, v, pattern)
        print(f"[train_fast] vocab {v}: wall {w:.2f} s cpu {c:.2f} s")

    # 3. encoding throughput with cl100k_base
    enc = tiktoken_encoding("cl100k_base")
    (merges, byte_ids), w, c = timed(ref.merges_from_ranks, tiktoken_ranks("cl100k_base"))
    print(f"\n[merges_from_ranks] cl100k_base: {len(merges):,} merges, wall {w:.2f} s cpu {c:.2f} s")
    ours_best = theirs_best = None
    for _ in range(args.repeats):
        ours, ow, oc = timed(ref.encode_ordinary, text, merges, pattern, byte_ids)
        theirs, tw, tc = timed(enc.encode_ordinary, text)
        ours_best = min(ours_best or (ow, oc), (ow, oc))
        theirs_best = min(theirs_best or (tw, tc), (tw, tc))
        assert ours == theirs, "the reference encoder must give tiktoken's ids"
    (ow, oc), (tw, tc) = ours_best, theirs_best
    mb = len(text.encode()) / 1e6
    print(f"[encode] {len(theirs):,} tokens, ids identical: True | reference wall {ow:.2f} s cpu {oc:.2f} s "
          f"({mb / ow:.2f} MB/s) | tiktoken wall {tw:.3f} s cpu {tc:.3f} s ({mb / tw:.1f} MB/s) | "
          f"ratio wall {ow / tw:.1f}x cpu {oc / tc:.1f}x")
    short = text[:20_000]
    _, sw, sc = timed(ref.encode_ordinary, short, merges, pattern, byte_ids)
    _, uw, uc = timed(enc.encode_ordinary, short)
    print(f"[encode] first 20,000 characters only (fewer repeats for the chunk cache): reference wall {sw:.3f} s, "
          f"tiktoken wall {uw:.4f} s, ratio {sw / uw:.1f}x")

    # 4. compression on the text after the training part
    held_out = text[args.train_chars:]
    nbytes = len(held_out.encode())
    print(f"\n[compression] bytes per token on the rest of the text ({nbytes:,} bytes)")
    for v in (512, 1024, 4096, 8192):
        m = ref.train_fast(corpus, v, pattern)
        n_tokens = len(ref.encode_ordinary(held_out, m, pattern))
        print(f"  ours, vocab {v:>6,} (trained on {len(corpus):,} chars): {nbytes / n_tokens:.3f}")
    for name in ("gpt2", "cl100k_base"):
        e = tiktoken_encoding(name)
        size = len(tiktoken_ranks(name)) + len(e.special_tokens_set)  # n_vocab counts unused ids too
        print(f"  {name}, vocab {size:,}: {nbytes / len(e.encode_ordinary(held_out)):.3f}")
    sample = multilingual_sample()
    m = ref.train_fast(corpus, 4096, pattern)
    scores = [f"ours (vocab 4096) {len(sample.encode()) / len(ref.encode_ordinary(sample, m, pattern)):.3f}"]
    scores += [f"{n} {len(sample.encode()) / len(tiktoken_encoding(n).encode_ordinary(sample)):.3f}"
               for n in ("gpt2", "cl100k_base")]
    print(f"  the lesson's multilingual sample ({len(sample.encode()):,} bytes): " + ", ".join(scores))

    # 5. the parity corpus of the checks
    from checks.lesson07 import exercises as checks

    texts = checks.PARITY_CORPUS + checks._random_texts(11, 8, 80)
    print(f"\n[parity corpus] encode_ordinary: {len(texts)} texts, {sum(map(len, texts)):,} characters, "
          f"{sum(len(t.encode()) for t in texts):,} bytes, {sum(len(enc.encode_ordinary(t)) for t in texts):,} "
          f"cl100k tokens; encode_special: {len(checks.SPECIAL_CORPUS) + 4} texts")


def multilingual_sample():
    """The lesson's multilingual sample is defined in a data cell: read it from the source."""
    source = (ROOT / "solutions" / "07_bpe" / "bpe.py").read_text(encoding="utf-8")
    start = source.index('MULTILINGUAL = """\\\n') + len('MULTILINGUAL = """\\\n')
    return source[start:source.index('"""', start)]


if __name__ == "__main__":
    main()
