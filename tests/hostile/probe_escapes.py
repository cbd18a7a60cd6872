# Terminal escape sequences in what learner code prints and in its exception messages: clear the
# screen, set the window title, a hyperlink, colours, 8-bit CSI, a bidirectional override. The
# report shows them as text, without any escape (and the honest build_vocab, which prints, passes).
# expect: count_bigrams=error
# says: count_bigrams: your code raised ValueError: not a table
# never: PWNED, ]0;, [2J, 31m
import torch

_NASTY = "\x1b[2J\x1b[H\x1b]0;PWNED\x07\x1b]8;;http://example.invalid\x1b\\click\x1b]8;;\x1b\\\x1b[31m\x9b31m\u202e"


def build_vocab(words):
    print(f"building {_NASTY} the vocabulary")
    chars = sorted(set("".join(words)))
    stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    itos = {i: c for c, i in stoi.items()}
    return stoi, itos


def count_bigrams(words, stoi):
    raise ValueError(f"not a table{_NASTY}\n  count_bigrams  pass")
