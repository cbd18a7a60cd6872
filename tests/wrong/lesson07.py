"""Classic mistakes in lesson 07 (BPE). Each must fail its exercise's check.

RIGHT holds one correct version per exercise and OTHER_RIGHT other correct
designs (Counter, bytearray, merges applied in rank order, a dict scanned with
max instead of a heap, tiktoken's find-the-next-special loop): they must pass.
Each wrong version differs from a right one in the named way.
"""

import heapq
import types
from collections import Counter, defaultdict

import regex

from course.data import GPT2_PATTERN

BY_COUNT_THEN_PAIR = lambda stats: max(stats, key=lambda p: (stats[p], p))  # noqa: E731
BY_DICT_ORDER = lambda stats: max(stats, key=stats.get)  # noqa: E731
SMALLEST_PAIR = lambda stats: min(stats, key=lambda p: (-stats[p], p))  # noqa: E731

# ------------------------------------------------------------------- get_stats


def get_stats_right(ids, counts=None):
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def get_stats_counter(ids, counts=None):
    c = Counter(zip(ids, ids[1:]))
    if counts is not None:
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + v
        return counts
    return dict(c)


def get_stats_no_overlap(ids, counts=None):
    """Steps by two: pairs at odd positions are never counted."""
    counts = {} if counts is None else counts
    for i in range(0, len(ids) - 1, 2):
        counts[ids[i], ids[i + 1]] = counts.get((ids[i], ids[i + 1]), 0) + 1
    return counts


def get_stats_ignores_counts(ids, counts=None):
    return dict(Counter(zip(ids, ids[1:])))


def get_stats_set(ids, counts=None):
    """Counts whether a pair occurs, not how often."""
    return {p: 1 for p in zip(ids, ids[1:])}


# ----------------------------------------------------------------------- merge


def merge_right(ids, pair, idx):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def merge_overlapping(ids, pair, idx):
    """Looks at every position, so 'aaa' merges twice: the middle 'a' is used by both."""
    out = []
    for i in range(len(ids) - 1):
        out.append(idx if (ids[i], ids[i + 1]) == tuple(pair) else ids[i])
    return out + ids[-1:] if ids else out


def merge_drops_last(ids, pair, idx):
    """Stops at len - 1: a last id that does not start a pair is lost."""
    out, i = [], 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == tuple(pair):
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def merge_from_the_right(ids, pair, idx):
    """Scans from the right: 'aaa' becomes [97, z] instead of [z, 97]."""
    return merge_right(ids[::-1], pair[::-1], idx)[::-1]


def merge_in_place(ids, pair, idx):
    """Right result, but the caller's list is consumed."""
    out = merge_right(ids, pair, idx)
    ids.clear()
    return out


# ----------------------------------------------------------------------- train


def _train(text, vocab_size, choose=BY_COUNT_THEN_PAIR, stop_early=True):
    ids = list(text.encode("utf-8"))
    merges = {}
    for idx in range(256, vocab_size):
        stats = get_stats_right(ids)
        if not stats:
            if stop_early:
                break
            continue
        pair = choose(stats)
        if pair is None:
            break
        ids = merge_right(ids, pair, idx)
        merges[pair] = idx
    return merges


def train_right(text, vocab_size):
    return _train(text, vocab_size)


def train_dict_order(text, vocab_size):
    """Ties broken by dict order (first occurrence): max(stats, key=stats.get)."""
    return _train(text, vocab_size, BY_DICT_ORDER)


def train_smallest_pair(text, vocab_size):
    return _train(text, vocab_size, SMALLEST_PAIR)


def train_one_too_many(text, vocab_size):
    """range(256, vocab_size + 1): one merge too many."""
    return _train(text, vocab_size + 1)


def train_code_points(text, vocab_size):
    """Trains on code points (ord) instead of UTF-8 bytes."""
    ids = [ord(c) for c in text]
    merges = {}
    for idx in range(256, vocab_size):
        stats = get_stats_right(ids)
        if not stats:
            break
        pair = BY_COUNT_THEN_PAIR(stats)
        ids = merge_right(ids, pair, idx)
        merges[pair] = idx
    return merges


# ---------------------------------------------------------------------- encode


def _encode_ids(ids, merges, fewest=2):
    """Merge by rank while `fewest` or more ids are left (2: right)."""
    while len(ids) >= fewest:
        stats = get_stats_right(ids)
        pair = min(stats, key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        ids = merge_right(ids, pair, merges[pair])
    return ids


def encode_right(text, merges):
    return _encode_ids(list(text.encode("utf-8")), merges)


def encode_merges_in_order(text, merges):
    """Right too: each merge in rank order, applied once everywhere."""
    ids = list(text.encode("utf-8"))
    for pair, idx in sorted(merges.items(), key=lambda kv: kv[1]):
        ids = merge_right(ids, pair, idx)
    return ids


def encode_left_to_right(text, merges):
    """One greedy pass: merge the first known pair, move on; repeat while anything changes."""
    ids = list(text.encode("utf-8"))
    changed = True
    while changed:
        changed, i = False, 0
        while i < len(ids) - 1:
            if (ids[i], ids[i + 1]) in merges:
                ids[i:i + 2] = [merges[ids[i], ids[i + 1]]]
                changed = True
            i += 1
    return ids


def encode_highest_rank_first(text, merges):
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        known = [p for p in zip(ids, ids[1:]) if p in merges]
        if not known:
            break
        pair = max(known, key=merges.get)
        ids = merge_right(ids, pair, merges[pair])
    return ids


def encode_stops_at_two(text, merges):
    """`while len(ids) > 2`: two tokens left are never merged into one."""
    return _encode_ids(list(text.encode("utf-8")), merges, fewest=3)


def encode_one_round(text, merges):
    """Stops after the first merge applied."""
    ids = list(text.encode("utf-8"))
    stats = get_stats_right(ids)
    if stats:
        pair = min(stats, key=lambda p: merges.get(p, float("inf")))
        if pair in merges:
            ids = merge_right(ids, pair, merges[pair])
    return ids


# ------------------------------------------------------------ vocab and decode


def build_vocab_right(merges, special_tokens=None):
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), idx in merges.items():
        vocab[idx] = vocab[a] + vocab[b]
    for s, idx in (special_tokens or {}).items():
        vocab[idx] = s.encode("utf-8")
    return vocab


def build_vocab_one_level(merges, special_tokens=None):
    """Nested tokens lost: a merged part is taken as the byte with its id (mod 256)."""
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), idx in merges.items():
        vocab[idx] = bytes([a % 256, b % 256])
    for s, idx in (special_tokens or {}).items():
        vocab[idx] = s.encode("utf-8")
    return vocab


def build_vocab_no_specials(merges, special_tokens=None):
    return build_vocab_right(merges)


def build_vocab_str(merges, special_tokens=None):
    """Values as str (latin-1) instead of bytes."""
    return {i: b.decode("latin-1") for i, b in build_vocab_right(merges, special_tokens).items()}


def decode_right(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


def decode_bytearray(ids, vocab):
    out = bytearray()
    for i in ids:
        out += vocab[i]
    return out.decode("utf-8", "replace")


def decode_strict(ids, vocab):
    """No errors='replace': invalid UTF-8 raises UnicodeDecodeError."""
    return b"".join(vocab[i] for i in ids).decode("utf-8")


def decode_ignore(ids, vocab):
    """errors='ignore' drops invalid bytes silently instead of marking them."""
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="ignore")


def decode_per_token(ids, vocab):
    """Decodes each token on its own: a character split over two tokens becomes two U+FFFD."""
    return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)


# ------------------------------------------------------------- regex training


def _train_chunks(chunks, vocab_size, choose=BY_COUNT_THEN_PAIR):
    chunks = [list(c.encode("utf-8")) for c in chunks]
    merges = {}
    for idx in range(256, vocab_size):
        stats = {}
        for ids in chunks:
            get_stats_right(ids, stats)
        if not stats:
            break
        pair = choose(stats)
        if pair is None:
            break
        chunks = [merge_right(ids, pair, idx) for ids in chunks]
        merges[pair] = idx
    return merges


def train_regex_right(text, vocab_size, pattern):
    return _train_chunks(regex.findall(pattern, text), vocab_size)


def train_regex_crossing(text, vocab_size, pattern):
    """The pattern is ignored: merges cross chunks."""
    return _train_chunks([text], vocab_size)


def train_regex_dict_order(text, vocab_size, pattern):
    return _train_chunks(regex.findall(pattern, text), vocab_size, BY_DICT_ORDER)


def train_regex_distinct_chunks(text, vocab_size, pattern):
    """Deduplicates chunks and forgets how often each occurs."""
    return _train_chunks(list(dict.fromkeys(regex.findall(pattern, text))), vocab_size)


def train_regex_split_on_space(text, vocab_size, pattern):
    """str.split() instead of the pattern: spaces vanish."""
    return _train_chunks(text.split(), vocab_size)


# ------------------------------------------------------------- regex encoding


def _encode_chunks(chunks, merges, byte_ids, encode_ids=_encode_ids):
    byte_ids = byte_ids if byte_ids is not None else range(256)
    return [i for chunk in chunks for i in encode_ids([byte_ids[b] for b in chunk.encode("utf-8")], merges)]


def encode_ordinary_right(text, merges, pattern, byte_ids=None):
    return _encode_chunks(regex.findall(pattern, text), merges, byte_ids)


def encode_ordinary_no_split(text, merges, pattern, byte_ids=None):
    """Encodes the whole text at once: merges cross chunks."""
    byte_ids = byte_ids if byte_ids is not None else range(256)
    return _encode_ids([byte_ids[b] for b in text.encode("utf-8")], merges)


def encode_ordinary_greedy(text, merges, pattern, byte_ids=None):
    """Chunks right, but each chunk encoded in one left-to-right pass."""
    byte_ids = byte_ids if byte_ids is not None else range(256)
    out = []
    for chunk in regex.findall(pattern, text):
        ids = [byte_ids[b] for b in chunk.encode("utf-8")]
        i = 0
        while i < len(ids) - 1:
            if (ids[i], ids[i + 1]) in merges:
                ids[i:i + 2] = [merges[ids[i], ids[i + 1]]]
            else:
                i += 1
        out += ids
    return out


def encode_ordinary_ignores_byte_ids(text, merges, pattern, byte_ids=None):
    return encode_ordinary_right(text, merges, pattern)


def encode_ordinary_re_module(text, merges, pattern, byte_ids=None):
    """A simplified pattern for `re` (no \\p{L}): letters are [A-Za-z] only."""
    simple = r"""'(?:[sdmt]|ll|ve|re)| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+"""
    return encode_ordinary_right(text, merges, simple, byte_ids)


# -------------------------------------------------------------- special tokens


def _sets(special_tokens, allowed_special, disallowed_special):
    allowed = set(special_tokens) if allowed_special == "all" else set(allowed_special)
    disallowed = set(special_tokens) - allowed if disallowed_special == "all" else set(disallowed_special)
    return allowed, disallowed


def encode_special_right(text, merges, pattern, special_tokens, allowed_special=(), disallowed_special="all",
                         byte_ids=None):
    allowed, disallowed = _sets(special_tokens, allowed_special, disallowed_special)
    if any(s in text for s in disallowed):
        raise ValueError("disallowed special token")
    if not allowed:
        return encode_ordinary_right(text, merges, pattern, byte_ids)
    return _split_specials(text, merges, pattern, special_tokens, sorted(allowed, key=len, reverse=True), byte_ids)


def _split_specials(text, merges, pattern, special_tokens, alternatives, byte_ids):
    """Cut out the special tokens with a regex alternation tried in the order given; encode the rest."""
    parts = regex.split("(" + "|".join(map(regex.escape, alternatives)) + ")", text)
    out = []
    for k, part in enumerate(parts):
        out += [special_tokens[part]] if k % 2 else encode_ordinary_right(part, merges, pattern, byte_ids)
    return out


def encode_special_find_loop(text, merges, pattern, special_tokens, allowed_special=(), disallowed_special="all",
                             byte_ids=None):
    """tiktoken's way: find the next allowed special token with str.find, encode up to it, repeat."""
    allowed, disallowed = _sets(special_tokens, allowed_special, disallowed_special)
    for s in disallowed:
        if s in text:
            raise ValueError(f"{s} is disallowed")
    out, start = [], 0
    while True:
        found = [(text.find(s, start), s) for s in allowed if text.find(s, start) >= 0]
        if not found:
            return out + encode_ordinary_right(text[start:], merges, pattern, byte_ids)
        at, s = min(found, key=lambda f: (f[0], -len(f[1])))
        out += encode_ordinary_right(text[start:at], merges, pattern, byte_ids) + [special_tokens[s]]
        start = at + len(s)


def encode_special_regex_first(text, merges, pattern, special_tokens, allowed_special=(), disallowed_special="all",
                               byte_ids=None):
    """Splits with the regex first, so '<|endoftext|>' is cut into '<|', 'endoftext', '|>' and
    only a chunk equal to a special token (never) would become one."""
    allowed, disallowed = _sets(special_tokens, allowed_special, disallowed_special)
    if any(s in text for s in disallowed):
        raise ValueError("disallowed special token")
    byte_ids = byte_ids if byte_ids is not None else range(256)
    out = []
    for chunk in regex.findall(pattern, text):
        if chunk in allowed:
            out.append(special_tokens[chunk])
        else:
            out += _encode_ids([byte_ids[b] for b in chunk.encode("utf-8")], merges)
    return out


def encode_special_silent(text, merges, pattern, special_tokens, allowed_special=(), disallowed_special="all",
                          byte_ids=None):
    """Never raises: a disallowed special token is encoded as ordinary text."""
    return encode_special_right(text, merges, pattern, special_tokens, allowed_special, (), byte_ids)


def encode_special_always_allowed(text, merges, pattern, special_tokens, allowed_special=(),
                                  disallowed_special="all", byte_ids=None):
    """Every special token is encoded as its id, whatever the caller allowed."""
    return encode_special_right(text, merges, pattern, special_tokens, "all", (), byte_ids)


def encode_special_ignores_disallowed_set(text, merges, pattern, special_tokens, allowed_special=(),
                                          disallowed_special="all", byte_ids=None):
    """Raises only when disallowed_special == 'all'; an explicit set is ignored."""
    d = disallowed_special if disallowed_special == "all" else ()
    return encode_special_right(text, merges, pattern, special_tokens, allowed_special, d, byte_ids)


# ----------------------------------------------------------- merges from ranks


def _bpe(ranks, token, max_rank):
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        i = min(range(len(parts) - 1), key=lambda i: ranks.get(parts[i] + parts[i + 1], max_rank))
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return parts


def merges_from_ranks_right(ranks):
    merges = {}
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            p, q = _bpe(ranks, token, rank)
            merges[ranks[p], ranks[q]] = rank
    return merges, [ranks[bytes([b])] for b in range(256)]


def merges_from_ranks_no_shuffle(ranks):
    """Takes the single bytes as ids 0..255: byte_ids is the identity, the merges' parts are bytes."""
    merges = {}
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            p, q = _bpe(ranks, token, rank)
            merges[p[0] if len(p) == 1 else ranks[p], q[0] if len(q) == 1 else ranks[q]] = rank
    return merges, list(range(256))


def merges_from_ranks_first_split(ranks):
    """The first cut where both halves are tokens of lower rank: concatenates right, not BPE's split."""
    merges = {}
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            k = next(k for k in range(1, len(token))
                     if ranks.get(token[:k], rank) < rank and ranks.get(token[k:], rank) < rank)
            merges[ranks[token[:k]], ranks[token[k:]]] = rank
    return merges, [ranks[bytes([b])] for b in range(256)]


def merges_from_ranks_any_rank(ranks):
    """Right too: BPE with the whole table, stopping at two parts (a lower-ranked pair always exists)."""
    merges = {}
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            p, q = _bpe(ranks, token, len(ranks) + 10**6)
            merges[ranks[p], ranks[q]] = rank
    return merges, [ranks[bytes([b])] for b in range(256)]


def merges_from_ranks_unsorted(ranks):
    """Right pairs, inserted in the table's order (here: longest tokens first)."""
    merges, byte_ids = merges_from_ranks_right(ranks)
    return dict(sorted(merges.items(), key=lambda kv: -kv[1])), byte_ids


# ------------------------------------------------------------------ train_fast


def _train_fast(text, vocab_size, pattern, *, key=lambda c, a, b: (-c, -a, -b), weighted=True, decrement=True,
                split=True, stop_at_one=False):
    freq = Counter(regex.findall(pattern, text) if split else [text])
    words = [list(c.encode("utf-8")) for c in freq]
    weights = list(freq.values()) if weighted else [1] * len(freq)
    counts, where = defaultdict(int), defaultdict(set)
    for w, (ids, n) in enumerate(zip(words, weights)):
        for p in zip(ids, ids[1:]):
            counts[p] += n
            where[p].add(w)
    heap = [(key(c, *p), p) for p, c in counts.items()]
    heapq.heapify(heap)
    merges = {}
    while len(merges) < vocab_size - 256 and heap:
        k, pair = heapq.heappop(heap)
        if counts.get(pair, 0) <= 0 or key(counts[pair], *pair) != k:
            continue
        if stop_at_one and counts[pair] == 1:
            break
        idx = 256 + len(merges)
        merges[pair] = idx
        changed = set()
        for w in where.pop(pair):
            old, n = words[w], weights[w]
            if decrement:
                for p in zip(old, old[1:]):
                    counts[p] -= n
                    changed.add(p)
            new = words[w] = merge_right(old, pair, idx)
            for p in zip(new, new[1:]):
                counts[p] += n
                where[p].add(w)
                changed.add(p)
        counts[pair] = 0
        for p in changed:
            if counts[p] > 0:
                heapq.heappush(heap, (key(counts[p], *p), p))
    return merges


def train_fast_right(text, vocab_size, pattern):
    return _train_fast(text, vocab_size, pattern)


def train_fast_dict_scan(text, vocab_size, pattern):
    """Right too: no heap, max over a dict of counts updated incrementally."""
    freq = Counter(regex.findall(pattern, text))
    words = [list(c.encode("utf-8")) for c in freq]
    weights = list(freq.values())
    counts = Counter()
    for ids, n in zip(words, weights):
        for p in zip(ids, ids[1:]):
            counts[p] += n
    merges = {}
    for idx in range(256, vocab_size):
        counts = +counts  # drop zero and negative counts
        if not counts:
            break
        pair = max(counts, key=lambda p: (counts[p], p))
        merges[pair] = idx
        for w, (ids, n) in enumerate(zip(words, weights)):
            if any(p == pair for p in zip(ids, ids[1:])):
                for p in zip(ids, ids[1:]):
                    counts[p] -= n
                words[w] = ids = merge_right(ids, pair, idx)
                for p in zip(ids, ids[1:]):
                    counts[p] += n
    return merges


def train_fast_smallest_pair(text, vocab_size, pattern):
    """Heap of (-count, a, b): among equal counts the smallest pair comes out first."""
    return _train_fast(text, vocab_size, pattern, key=lambda c, a, b: (-c, a, b))


def train_fast_dict_order(text, vocab_size, pattern):
    """Picks max(counts, key=counts.get) from an incrementally updated dict: dict order breaks ties."""
    merges = {}
    freq = Counter(regex.findall(pattern, text))
    words = [list(c.encode("utf-8")) for c in freq]
    for idx in range(256, vocab_size):
        counts = {}
        for ids, n in zip(words, freq.values()):
            for p in zip(ids, ids[1:]):
                counts[p] = counts.get(p, 0) + n
        if not counts:
            break
        pair = max(counts, key=counts.get)
        merges[pair] = idx
        words = [merge_right(ids, pair, idx) for ids in words]
    return merges


def train_fast_unweighted(text, vocab_size, pattern):
    """Each distinct chunk counted once, whatever its frequency."""
    return _train_fast(text, vocab_size, pattern, weighted=False)


def train_fast_no_decrement(text, vocab_size, pattern):
    """Adds the new pairs after a merge but never subtracts the old ones."""
    return _train_fast(text, vocab_size, pattern, decrement=False)


def train_fast_crossing(text, vocab_size, pattern):
    """Never splits: merges cross chunks."""
    return _train_fast(text, vocab_size, pattern, split=False)


RIGHT = {
    "get_stats": get_stats_right,
    "merge": merge_right,
    "train": train_right,
    "encode": encode_right,
    "build_vocab": build_vocab_right,
    "decode": decode_right,
    "train_regex": train_regex_right,
    "encode_ordinary": encode_ordinary_right,
    "encode_special": encode_special_right,
    "merges_from_ranks": merges_from_ranks_right,
    "train_fast": train_fast_right,
}

OTHER_RIGHT = {
    "get_stats": [get_stats_counter],
    "encode": [encode_merges_in_order],
    "decode": [decode_bytearray],
    "encode_special": [encode_special_find_loop],
    "train_fast": [train_fast_dict_scan],
    "merges_from_ranks": [merges_from_ranks_any_rank],
}

WRONG = {
    "get_stats": [get_stats_no_overlap, get_stats_ignores_counts, get_stats_set],
    "merge": [merge_overlapping, merge_drops_last, merge_from_the_right, merge_in_place],
    "train": [train_dict_order, train_smallest_pair, train_one_too_many, train_code_points],
    "encode": [encode_left_to_right, encode_highest_rank_first, encode_one_round, encode_stops_at_two],
    "build_vocab": [build_vocab_one_level, build_vocab_no_specials, build_vocab_str],
    "decode": [decode_strict, decode_ignore, decode_per_token],
    "train_regex": [train_regex_crossing, train_regex_dict_order, train_regex_distinct_chunks,
                    train_regex_split_on_space],
    "encode_ordinary": [encode_ordinary_no_split, encode_ordinary_greedy, encode_ordinary_ignores_byte_ids,
                        encode_ordinary_re_module],
    "encode_special": [encode_special_regex_first, encode_special_silent, encode_special_always_allowed,
                       encode_special_ignores_disallowed_set],
    "merges_from_ranks": [merges_from_ranks_no_shuffle, merges_from_ranks_first_split, merges_from_ranks_unsorted],
    "train_fast": [train_fast_smallest_pair, train_fast_dict_order, train_fast_unweighted, train_fast_no_decrement,
                   train_fast_crossing],
}

# The hint of the failure names the mistake.
HINTS = {
    "get_stats_no_overlap": "overlap",
    "merge_overlapping": "overlapping",
    "train_dict_order": "dict order",
    "train_smallest_pair": "smallest pair",
    "encode_left_to_right": "left-to-right",
    "build_vocab_one_level": "merged tokens themselves",
    "decode_strict": "errors='replace'",
    "train_regex_crossing": "cross chunks",
    "train_regex_dict_order": "dict order",
    "encode_ordinary_no_split": "chunk",
    "encode_special_regex_first": "before the regex",
    "encode_special_silent": "never be encoded silently",
    "merges_from_ranks_no_shuffle": "shuffled",
    "merges_from_ranks_first_split": "BPE",
    "train_fast_smallest_pair": "smallest pair (a heap entry (-count, a, b) pops it first); push (-count, -a, -b)",
    "train_fast_dict_order": "dict order (max(stats, key=stats.get)); push (-count, -a, -b) on the heap",
    "train_fast_unweighted": "frequency",
    "train_fast_crossing": "cross chunks",
}


def get_stats_returns_counter(ids, counts=None):
    """Right: a Counter is a dict (and a given counts dict is updated in place and returned)."""
    c = Counter(zip(ids, ids[1:]))
    if counts is None:
        return c
    for pair, n in c.items():
        counts[pair] = counts.get(pair, 0) + n
    return counts


def train_fast_defaultdict(text, vocab_size, pattern):
    """Right: merges in a defaultdict."""
    out = defaultdict(int)
    out.update(_train_fast(text, vocab_size, pattern))
    return out


OTHER_RIGHT["get_stats"].append(get_stats_returns_counter)
OTHER_RIGHT["train_fast"].append(train_fast_defaultdict)


def train_fast_linked_list(text, vocab_size, pattern):
    """Right: each distinct chunk a doubly linked list of tokens, each pair a set of its positions;
    a merge rewires the neighbours of each occurrence (ties: max over (count, pair) with a heap)."""
    freq = Counter(regex.findall(pattern, text))
    tok, nxt, prv, weight = [], [], [], []
    counts, occ = defaultdict(int), defaultdict(set)
    for chunk, n in freq.items():
        ids = list(chunk.encode("utf-8"))
        w = len(tok)
        tok.append(ids)
        nxt.append([i + 1 if i + 1 < len(ids) else -1 for i in range(len(ids))])
        prv.append([i - 1 for i in range(len(ids))])
        weight.append(n)
        for i in range(len(ids) - 1):
            counts[ids[i], ids[i + 1]] += n
            occ[ids[i], ids[i + 1]].add((w, i))
    heap = [((-c, -p[0], -p[1]), p) for p, c in counts.items()]
    heapq.heapify(heap)
    merges = {}
    while len(merges) < vocab_size - 256 and heap:
        key, pair = heapq.heappop(heap)
        if counts.get(pair, 0) <= 0 or key[0] != -counts[pair]:
            continue
        z = 256 + len(merges)
        merges[pair] = z
        touched = set()

        def add(p, w, i, d):
            counts[p] += d
            (occ[p].add if d > 0 else occ[p].discard)((w, i))
            touched.add(p)

        for w, i in sorted(occ.pop(pair)):
            t, n = tok[w], weight[w]
            j = nxt[w][i]
            if t[i] != pair[0] or j < 0 or t[j] != pair[1]:
                continue  # consumed by an overlapping occurrence just before
            h, k = prv[w][i], nxt[w][j]
            counts[pair] -= n
            if h >= 0:
                add((t[h], t[i]), w, h, -n)
                add((t[h], z), w, h, n)
            if k >= 0:
                add((t[j], t[k]), w, j, -n)
                add((z, t[k]), w, i, n)
                prv[w][k] = i
            t[i], t[j], nxt[w][i] = z, None, k
        for p in touched:
            if counts[p] > 0:
                heapq.heappush(heap, ((-counts[p], -p[0], -p[1]), p))
    return merges


OTHER_RIGHT["train_fast"].append(train_fast_linked_list)


# ------------------------------------------------ promised types (issue 15, item 2)


def get_stats_float_counts(ids, counts=None):
    """Counts as floats (counts.get(pair, 0.0) + 1): equal to the ints, but not what is promised."""
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0.0) + 1
    return counts


def get_stats_copy(ids, counts=None):
    """Returns the sum in a new dict: the counts dict given is not updated in place."""
    out = dict(counts or {})
    for pair in zip(ids, ids[1:]):
        out[pair] = out.get(pair, 0) + 1
    return out


def merge_returns_tuple(ids, pair, idx):
    return tuple(merge_right(ids, pair, idx))


def train_list_of_merges(text, vocab_size):
    """A list of ((a, b), idx) instead of a dict."""
    return list(train_right(text, vocab_size).items())


def encode_returns_tuple(text, merges):
    return tuple(encode_right(text, merges))


def build_vocab_bytearray(merges, special_tokens=None):
    """Tokens as bytearray (vocab[a] + vocab[b] of bytearrays), not bytes."""
    return {i: bytearray(b) for i, b in build_vocab_right(merges, special_tokens).items()}


def build_vocab_str_keys(merges, special_tokens=None):
    return {str(i): b for i, b in build_vocab_right(merges, special_tokens).items()}


def decode_bytes(ids, vocab):
    """Forgets to decode: returns the bytes."""
    return b"".join(vocab[i] for i in ids)


def train_regex_str_keys(text, vocab_size, pattern):
    """Pairs keyed as 'a,b' strings."""
    return {f"{a},{b}": idx for (a, b), idx in train_regex_right(text, vocab_size, pattern).items()}


def encode_ordinary_nested(text, merges, pattern, byte_ids=None):
    """out.append(ids) instead of out.extend(ids): a list of lists."""
    byte_ids = byte_ids if byte_ids is not None else range(256)
    out = []
    for chunk in regex.findall(pattern, text):
        out.append(_encode_ids([byte_ids[b] for b in chunk.encode("utf-8")], merges))
    return out


def encode_special_nested(text, merges, pattern, special_tokens, allowed_special=(), disallowed_special="all",
                          byte_ids=None):
    """Appends each part's list of ids instead of extending: a list of lists and ints."""
    allowed, disallowed = _sets(special_tokens, allowed_special, disallowed_special)
    if any(s in text for s in disallowed):
        raise ValueError("disallowed special token")
    if not allowed:
        return encode_ordinary_right(text, merges, pattern, byte_ids)
    parts = regex.split("(" + "|".join(map(regex.escape, sorted(allowed, key=len, reverse=True))) + ")", text)
    return [special_tokens[part] if k % 2 else encode_ordinary_right(part, merges, pattern, byte_ids)
            for k, part in enumerate(parts)]


def merges_from_ranks_swapped(ranks):
    """Returns (byte_ids, merges)."""
    merges, byte_ids = merges_from_ranks_right(ranks)
    return byte_ids, merges


def merges_from_ranks_byte_ids_dict(ranks):
    """byte_ids as a dict {byte: rank} instead of a list."""
    merges, byte_ids = merges_from_ranks_right(ranks)
    return merges, dict(enumerate(byte_ids))


def merges_from_ranks_merges_only(ranks):
    """Forgets byte_ids."""
    return merges_from_ranks_right(ranks)[0]


def train_fast_items(text, vocab_size, pattern):
    """Returns the merges as a list of items."""
    return list(train_fast_right(text, vocab_size, pattern).items())


for _exercise, _wrongs in {
    "get_stats": [get_stats_float_counts, get_stats_copy],
    "merge": [merge_returns_tuple],
    "train": [train_list_of_merges],
    "encode": [encode_returns_tuple],
    "build_vocab": [build_vocab_bytearray, build_vocab_str_keys],
    "decode": [decode_bytes],
    "train_regex": [train_regex_str_keys],
    "encode_ordinary": [encode_ordinary_nested],
    "encode_special": [encode_special_nested],
    "merges_from_ranks": [merges_from_ranks_swapped, merges_from_ranks_byte_ids_dict, merges_from_ranks_merges_only],
    "train_fast": [train_fast_items],
}.items():
    WRONG[_exercise] += _wrongs

HINTS |= {
    "get_stats_set": "not only whether it occurs",
    "get_stats_float_counts": "expected an int",
    "get_stats_copy": "in place",
    "merge_returns_tuple": "expected a list",
    "train_one_too_many": "range(256, vocab_size)",
    "train_list_of_merges": "expected a dict",
    "encode_highest_rank_first": "not the highest",
    "encode_one_round": "stopped too early",
    "encode_stops_at_two": "two tokens left can still be merged into one",
    "encode_returns_tuple": "expected a list of int",
    "build_vocab_bytearray": "bytearray",
    "build_vocab_str_keys": "not an int",
    "decode_bytes": "expected a str, got bytes",
    "train_regex_distinct_chunks": "as many times as it occurs",
    "train_regex_split_on_space": "not str.split()",
    "train_regex_str_keys": "is not a pair (a, b) of ints",
    "encode_ordinary_greedy": "left-to-right",
    "encode_ordinary_ignores_byte_ids": "byte_ids",
    "encode_ordinary_re_module": "`regex` module",
    "encode_ordinary_nested": "out.extend(ids)",
    "encode_special_nested": "out.extend(ids)",
    "merges_from_ranks_swapped": "(merges, byte_ids)",
    "merges_from_ranks_byte_ids_dict": "a list of 256 ints",
    "merges_from_ranks_merges_only": "expected a tuple (merges, byte_ids)",
    "train_fast_items": "expected a dict",
}


# ---------------------- the lesson's shape: later exercises call earlier ones by name (issue 10, item 15)
# These are the solution's designs: train, encode, train_regex and encode_ordinary call get_stats and
# merge, encode_special calls encode_ordinary, train_fast calls merge. `using` swaps in other versions.

get_stats, merge = get_stats_right, merge_right


def train_calls(text, vocab_size):
    ids, merges = list(text.encode("utf-8")), {}
    for idx in range(256, vocab_size):
        stats = get_stats(ids)
        if not stats:
            break
        pair = max(stats, key=lambda p: (stats[p], p))
        ids = merge(ids, pair, idx)
        merges[pair] = idx
    return merges


def encode_calls(text, merges):
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        stats = get_stats(ids)
        pair = min(stats, key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        ids = merge(ids, pair, merges[pair])
    return ids


def train_regex_calls(text, vocab_size, pattern):
    chunks, merges = [list(c.encode("utf-8")) for c in regex.findall(pattern, text)], {}
    for idx in range(256, vocab_size):
        stats = {}
        for ids in chunks:
            get_stats(ids, stats)
        if not stats:
            break
        pair = max(stats, key=lambda p: (stats[p], p))
        chunks = [merge(ids, pair, idx) for ids in chunks]
        merges[pair] = idx
    return merges


def encode_ordinary_calls(text, merges, pattern, byte_ids=None):
    byte_ids = byte_ids if byte_ids is not None else range(256)
    out = []
    for chunk in regex.findall(pattern, text):
        ids = [byte_ids[b] for b in chunk.encode("utf-8")]
        while len(ids) >= 2:
            stats = get_stats(ids)
            pair = min(stats, key=lambda p: merges.get(p, float("inf")))
            if pair not in merges:
                break
            ids = merge(ids, pair, merges[pair])
        out += ids
    return out


encode_ordinary = encode_ordinary_calls


def encode_special_calls(text, merges, pattern, special_tokens, allowed_special=(), disallowed_special="all",
                         byte_ids=None):
    allowed, disallowed = _sets(special_tokens, allowed_special, disallowed_special)
    if any(s in text for s in disallowed):
        raise ValueError("disallowed special token")
    if not allowed:
        return encode_ordinary(text, merges, pattern, byte_ids)
    parts = regex.split("(" + "|".join(map(regex.escape, sorted(allowed, key=len, reverse=True))) + ")", text)
    out = []
    for k, part in enumerate(parts):
        out += [special_tokens[part]] if k % 2 else encode_ordinary(part, merges, pattern, byte_ids)
    return out


def train_fast_calls(text, vocab_size, pattern):
    freq = Counter(regex.findall(pattern, text))
    words, merges = [list(c.encode("utf-8")) for c in freq], {}
    for idx in range(256, vocab_size):
        counts = Counter()
        for ids, n in zip(words, freq.values()):
            for p in zip(ids, ids[1:]):
                counts[p] += n
        if not counts:
            break
        pair = max(counts, key=lambda p: (counts[p], p))
        merges[pair] = idx
        words = [merge(ids, pair, idx) for ids in words]
    return merges


def using(fn, **definitions):
    """`fn` calling the given definitions by name (get_stats=..., merge=..., encode_ordinary=...)."""
    return types.FunctionType(fn.__code__, {**fn.__globals__, **definitions}, fn.__name__, fn.__defaults__)


def get_stats_blank(ids, counts=None):
    raise NotImplementedError()


# The names each check takes after the exercise itself, in its signature's order.
USES = {"train": ["get_stats", "merge"], "encode": ["get_stats", "merge"], "train_regex": ["get_stats", "merge"],
        "encode_ordinary": ["get_stats", "merge"], "encode_special": ["encode_ordinary", "get_stats", "merge"],
        "train_fast": ["merge"]}
CALLS = {"train": train_calls, "encode": encode_calls, "train_regex": train_regex_calls,
         "encode_ordinary": encode_ordinary_calls, "encode_special": encode_special_calls,
         "train_fast": train_fast_calls}


# ------------------------------------------------------------------------- issue 21 (lesson 07)
# Wrong answers that passed, and wrong answers whose hint pointed elsewhere.


def _most_frequent_first(ids, merges):
    """Merges the most frequent known pair first (ties: the lower rank), not the lowest rank."""
    while len(ids) >= 2:
        stats = get_stats_right(ids)
        known = [p for p in stats if p in merges]
        if not known:
            break
        pair = min(known, key=lambda p: (-stats[p], merges[p]))
        ids = merge_right(ids, pair, merges[pair])
    return ids


def encode_most_frequent(text, merges):
    """With {bc: 256, ab: 257}, 'ababc' becomes [257, 257, 99] instead of [257, 97, 256]."""
    return _most_frequent_first(list(text.encode("utf-8")), merges)


def encode_ordinary_most_frequent(text, merges, pattern, byte_ids=None):
    return _encode_chunks(regex.findall(pattern, text), merges, byte_ids, _most_frequent_first)


def encode_code_points(text, merges):
    """Starts from the code points (ord) instead of the UTF-8 bytes: 'é' is one id 233, '안' is 50504."""
    return _encode_ids([ord(c) for c in text], merges)


def encode_ordinary_code_points(text, merges, pattern, byte_ids=None):
    out = []
    for chunk in regex.findall(pattern, text):
        ids = [ord(c) if byte_ids is None or ord(c) > 255 else byte_ids[ord(c)] for c in chunk]
        out += _encode_ids(ids, merges)
    return out


def _stop_at_count_one(stats):
    pair = BY_COUNT_THEN_PAIR(stats)
    return pair if stats[pair] > 1 else None


def train_stops_at_count_one(text, vocab_size):
    """Stops as soon as the most frequent pair occurs only once."""
    return _train(text, vocab_size, _stop_at_count_one)


def train_regex_stops_at_count_one(text, vocab_size, pattern):
    return _train_chunks(regex.findall(pattern, text), vocab_size, _stop_at_count_one)


def train_fast_stops_at_count_one(text, vocab_size, pattern):
    return _train_fast(text, vocab_size, pattern, stop_at_one=True)


_CACHE = {}


def encode_ordinary_module_cache(text, merges, pattern, byte_ids=None):
    """A cache keyed by the chunk alone that outlives the call: a later call with other merges or
    byte_ids gets ids made with the earlier ones."""
    byte_ids = byte_ids if byte_ids is not None else range(256)
    out = []
    for chunk in regex.findall(pattern, text):
        if chunk not in _CACHE:
            _CACHE[chunk] = _encode_ids([byte_ids[b] for b in chunk.encode("utf-8")], merges)
        out += _CACHE[chunk]
    return out


def encode_ordinary_split(text, merges, pattern, byte_ids=None):
    """regex.split instead of regex.findall: encodes what lies between the chunks (mostly nothing)."""
    return _encode_chunks(regex.split(pattern, text), merges, byte_ids)


def encode_special_shortest_first(text, merges, pattern, special_tokens, allowed_special=(),
                                  disallowed_special="all", byte_ids=None):
    """The alternation in the order given (the dict's, or the caller's list): when '<|a|>' starts
    '<|a|>b' and comes first, '<|a|>b' is cut into '<|a|>' and 'b'."""
    allowed = list(special_tokens) if allowed_special == "all" else list(allowed_special)
    _, disallowed = _sets(special_tokens, allowed_special, disallowed_special)
    if any(s in text for s in disallowed):
        raise ValueError("disallowed special token")
    if not allowed:
        return encode_ordinary_right(text, merges, pattern, byte_ids)
    return _split_specials(text, merges, pattern, special_tokens, allowed, byte_ids)


def encode_special_scan(text, merges, pattern, special_tokens, allowed_special=(), disallowed_special="all",
                        byte_ids=None):
    """Right: walks the text; at each position tries the allowed tokens, longest first."""
    allowed, disallowed = _sets(special_tokens, allowed_special, disallowed_special)
    for s in disallowed:
        if s in text:
            raise ValueError(f"{s!r} is disallowed")
    longest_first = sorted(allowed, key=len, reverse=True)
    out, start, i = [], 0, 0
    while i < len(text):
        s = next((s for s in longest_first if text.startswith(s, i)), None)
        if s is None:
            i += 1
            continue
        out += encode_ordinary_right(text[start:i], merges, pattern, byte_ids) + [special_tokens[s]]
        i = start = i + len(s)
    return out + encode_ordinary_right(text[start:], merges, pattern, byte_ids)


def encode_special_disallows_everything(text, merges, pattern, special_tokens, allowed_special=(),
                                        disallowed_special="all", byte_ids=None):
    """Refuses every special token the text contains, allowed or not (disallowed_special ignored)."""
    if any(s in text for s in special_tokens):
        raise ValueError("disallowed special token")
    return encode_ordinary_right(text, merges, pattern, byte_ids)


def encode_special_ignores_empty_disallowed(text, merges, pattern, special_tokens, allowed_special=(),
                                            disallowed_special="all", byte_ids=None):
    """disallowed_special=() is taken as 'all': a token neither allowed nor disallowed raises."""
    return encode_special_right(text, merges, pattern, special_tokens, allowed_special, "all", byte_ids)


def merges_from_ranks_table_order(ranks):
    """Inserts the merges in the order of the table given, not by rank (right when the table is sorted)."""
    merges = {}
    for token, rank in ranks.items():
        if len(token) > 1:
            p, q = _bpe(ranks, token, rank)
            merges[ranks[p], ranks[q]] = rank
    return merges, [ranks[bytes([b])] for b in range(256)]


def get_stats_wrap_around(ids, counts=None):
    """Counts the pair (last, first) too, as if the list were a ring: an encoder that merges it
    finds nothing to merge and loops forever."""
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:] + ids[:1]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


NEW_WRONG = {
    "get_stats": [get_stats_wrap_around],
    "train": [train_stops_at_count_one],
    "encode": [encode_most_frequent, encode_code_points],
    "train_regex": [train_regex_stops_at_count_one],
    "encode_ordinary": [encode_ordinary_most_frequent, encode_ordinary_code_points, encode_ordinary_module_cache,
                        encode_ordinary_split],
    "encode_special": [encode_special_shortest_first, encode_special_disallows_everything,
                       encode_special_ignores_empty_disallowed],
    "merges_from_ranks": [merges_from_ranks_table_order],
    "train_fast": [train_fast_stops_at_count_one],
}
for _exercise, _wrongs in NEW_WRONG.items():
    WRONG[_exercise] += _wrongs
OTHER_RIGHT["encode_special"].append(encode_special_scan)

HINTS |= {
    "get_stats_wrap_around": "adjacent",
    "train_stops_at_count_one": "occurs once",
    "encode_most_frequent": "not the most frequent",
    "encode_code_points": "UTF-8 bytes",
    "train_regex_stops_at_count_one": "occurs once",
    "encode_ordinary_most_frequent": "not the most frequent",
    "encode_ordinary_code_points": "UTF-8 bytes",
    "encode_ordinary_module_cache": "cache",
    "encode_ordinary_split": "regex.findall",
    "encode_special_shortest_first": "longest",
    "encode_special_disallows_everything": "should not raise",
    "encode_special_ignores_empty_disallowed": "should not raise",
    "merges_from_ranks_table_order": "rank order",
    "train_fast_stops_at_count_one": "occurs once",
}


# ------------------------------------------------ blind test (lesson 07)
# Wrong answers that passed (train_fast that is train_regex, special tokens not in UTF-8), wrong answers
# whose hint pointed elsewhere, and a correct train_fast as slow as a correct one can reasonably be.


def build_vocab_latin1_specials(merges, special_tokens=None):
    """Special tokens in latin-1 instead of UTF-8: the same bytes for ASCII text only."""
    vocab = build_vocab_right(merges)
    for s, idx in (special_tokens or {}).items():
        vocab[idx] = s.encode("latin-1", errors="replace")
    return vocab


def train_regex_fixed_pattern(text, vocab_size, pattern):
    """The pattern argument ignored: always GPT-2's."""
    return _train_chunks(regex.findall(GPT2_PATTERN, text), vocab_size)


def encode_ordinary_byte_ids_after(text, merges, pattern, byte_ids=None):
    """Merges the raw bytes, then maps the ids below 256 through byte_ids."""
    ids = _encode_chunks(regex.findall(pattern, text), merges, None)
    return [byte_ids[i] if byte_ids is not None and i < 256 else i for i in ids]


def train_fast_is_train_regex(text, vocab_size, pattern):
    """The slow trainer under the new name: the same merges, none of the speed."""
    return train_regex_right(text, vocab_size, pattern)


def train_fast_pure_python(text, vocab_size, pattern):
    """Right, and slow for a correct one: pure Python loops everywhere, lists where sets would do, chunks
    left in the lists of pairs they no longer hold, and a loop over every count to find the best pair."""
    freq = {}
    for chunk in regex.findall(pattern, text):
        freq[chunk] = freq.get(chunk, 0) + 1
    words = [list(chunk.encode("utf-8")) for chunk in freq]
    weights = list(freq.values())
    counts, where = {}, {}

    def add(ids, w, sign):
        for i in range(len(ids) - 1):
            p = (ids[i], ids[i + 1])
            counts[p] = counts.get(p, 0) + sign * weights[w]
            if sign > 0 and w not in where.setdefault(p, []):
                where[p].append(w)

    for w, ids in enumerate(words):
        add(ids, w, 1)
    merges = {}
    for idx in range(256, vocab_size):
        best = None
        for p in list(counts):
            if counts[p] > 0 and (best is None or (counts[p], p) > (counts[best], best)):
                best = p
        if best is None:
            break
        merges[best] = idx
        for w in list(where.get(best, [])):
            add(words[w], w, -1)
            words[w] = merge_right(words[w], best, idx)
            add(words[w], w, 1)
    return merges


# Each with the words of its hint.
BLIND_WRONG = {
    "build_vocab": (build_vocab_latin1_specials, "not ASCII or latin-1"),
    "train_regex": (train_regex_fixed_pattern, "the pattern argument is ignored"),
    "encode_ordinary": (encode_ordinary_byte_ids_after, "byte_ids are applied after merging"),
    "train_fast": (train_fast_is_train_regex, "that train_regex's way costs here at least"),
}
for _exercise, (_wrong, _hint) in BLIND_WRONG.items():
    WRONG[_exercise].append(_wrong)
    HINTS[_wrong.__name__] = _hint
OTHER_RIGHT["train_fast"].append(train_fast_pure_python)
