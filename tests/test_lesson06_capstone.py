"""extras/lesson06_bpe_capstone.py: the loss per byte that compares characters with BPE tokens."""

import importlib.util
import math
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def capstone():
    spec = importlib.util.spec_from_file_location("capstone", ROOT / "extras" / "lesson06_bpe_capstone.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Uniform(torch.nn.Module):
    """Equal logits for every token: ln V nats per predicted token."""

    def __init__(self, V):
        super().__init__()
        self.V = V

    def forward(self, idx):
        return torch.zeros(*idx.shape, self.V), None


def test_nats_per_byte_counts_every_predicted_token_and_its_bytes():
    c = capstone()
    V, block = 7, 4
    ids = torch.arange(2 * block + 3) % V  # 11 tokens: 2 windows predict tokens 1..8
    nbytes = torch.tensor([1, 2, 3, 1, 2, 3, 1])
    predicted = ids[1 : 2 * block + 1]
    want = 2 * block * math.log(V) / nbytes[predicted].sum().item()
    assert math.isclose(c.nats_per_byte(Uniform(V), ids, nbytes, block, batch=1), want, rel_tol=1e-6)
    # the same model reads a text of one-byte tokens at ln V per byte
    assert math.isclose(c.nats_per_byte(Uniform(V), ids, torch.ones(V, dtype=torch.long), block), math.log(V),
                        rel_tol=1e-6)


def test_tokenizers_cover_the_same_bytes():
    c = capstone()
    train, val = "To be, or not to be: that is the question.\n" * 20, "Whether 'tis nobler in the mind to suffer\n"
    for kind in ("char", "bpe"):
        tr, va, V, nbytes, decode = c.tokenize(kind, train, val, 300)
        assert decode(va) == val and nbytes[torch.tensor(va)].sum().item() == len(val.encode())
        assert max(tr + va) < V
    assert 256 < V <= 300 and len(va) < len(val)  # merges (as many as the short text has): fewer tokens
