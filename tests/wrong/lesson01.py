"""Classic mistakes in lesson 01. Each must fail its exercise's check."""

import torch
import torch.nn.functional as F


def vocab_dot_last(words):
    """'.' after the letters instead of at index 0."""
    chars = sorted(set("".join(words))) + ["."]
    stoi = {c: i for i, c in enumerate(chars)}
    return stoi, {i: c for c, i in stoi.items()}


def vocab_unsorted(words):
    chars = list(dict.fromkeys("".join(words)))
    stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    return stoi, {i: c for c, i in stoi.items()}


def count_no_end_token(words, stoi):
    """Off by one in the context: the bigram (last letter, '.') is missing."""
    N = torch.zeros(len(stoi), len(stoi), dtype=torch.int64)
    for w in words:
        chs = ["."] + list(w)
        for a, b in zip(chs, chs[1:]):
            N[stoi[a], stoi[b]] += 1
    return N


def count_no_start_token(words, stoi):
    N = torch.zeros(len(stoi), len(stoi), dtype=torch.int64)
    for w in words:
        chs = list(w) + ["."]
        for a, b in zip(chs, chs[1:]):
            N[stoi[a], stoi[b]] += 1
    return N


def count_fixed_27(words, stoi):
    """Hard-codes the vocabulary size."""
    N = torch.zeros(27, 27, dtype=torch.int64)
    for w in words:
        chs = ["."] + list(w) + ["."]
        for a, b in zip(chs, chs[1:]):
            N[stoi[a], stoi[b]] += 1
    return N


def count_transposed(words, stoi):
    N = torch.zeros(len(stoi), len(stoi), dtype=torch.int64)
    for w in words:
        chs = ["."] + list(w) + ["."]
        for a, b in zip(chs, chs[1:]):
            N[stoi[b], stoi[a]] += 1
    return N


def count_float(words, stoi):
    """Right counts in a float tensor: the docstring promises torch.int64."""
    return count_transposed(words, {c: i for c, i in stoi.items()}).T.float()


def count_no_accumulate(words, stoi):
    """Vectorised N[xs, ys] += 1: a bigram that occurs several times is counted once."""
    xs, ys = _pairs(words, stoi)
    N = torch.zeros(len(stoi), len(stoi), dtype=torch.int64)
    N[torch.tensor(xs), torch.tensor(ys)] += 1
    return N


def probs_not_normalised(N, k=1.0):
    return N.float() + k


def probs_columns(N, k=1.0):
    """Normalises columns (dim 0) instead of rows."""
    counts = N.float() + k
    return counts / counts.sum(dim=0, keepdim=True)


def probs_no_keepdim(N, k=1.0):
    """Broadcasting slip: sum(1) without keepdim divides column j by row sum j."""
    counts = N.float() + k
    return counts / counts.sum(dim=1)


def probs_global(N, k=1.0):
    counts = N.float() + k
    return counts / counts.sum()


def probs_in_place(N, k=1.0):
    N += int(k)
    return N.float() / N.float().sum(dim=1, keepdim=True)


def probs_ignores_k(N, k=1.0):
    counts = N.float() + 1
    return counts / counts.sum(dim=1, keepdim=True)


def sample_global_rng(P, itos, generator):
    """Ignores the generator: randomness from the global state."""
    out, ix = [], 0
    while True:
        ix = torch.multinomial(P[ix], 1, replacement=True).item()
        if ix == 0:
            return "".join(out)
        out.append(itos[ix])


def sample_column(P, itos, generator):
    out, ix = [], 0
    while True:
        ix = torch.multinomial(P[:, ix], 1, replacement=True, generator=generator).item()
        if ix == 0:
            return "".join(out)
        out.append(itos[ix])


def sample_keeps_dots(P, itos, generator):
    out, ix = ["."], 0
    while True:
        ix = torch.multinomial(P[ix], 1, replacement=True, generator=generator).item()
        out.append(itos[ix])
        if ix == 0:
            return "".join(out)


def sample_argmax(P, itos, generator):
    """Greedy: always the most likely token, so no randomness at all."""
    out, ix = [], 0
    for _ in range(20):
        ix = int(P[ix].argmax())
        if ix == 0:
            break
        out.append(itos[ix])
    return "".join(out)


def _pairs(words, stoi):
    xs, ys = [], []
    for w in words:
        ids = [stoi[c] for c in "." + w + "."]
        xs.extend(ids[:-1])
        ys.extend(ids[1:])
    return xs, ys


def nll_log2(P, words, stoi):
    xs, ys = _pairs(words, stoi)
    return -P[xs, ys].log2().mean().item()


def nll_sign(P, words, stoi):
    xs, ys = _pairs(words, stoi)
    return P[xs, ys].log().mean().item()


def nll_sum(P, words, stoi):
    xs, ys = _pairs(words, stoi)
    return -P[xs, ys].log().sum().item()


def nll_per_name(P, words, stoi):
    """Averages over names, not over bigrams."""
    total = 0.0
    for w in words:
        xs, ys = _pairs([w], stoi)
        total += -P[xs, ys].log().sum().item()
    return total / len(words)


def nll_no_end(P, words, stoi):
    xs, ys = _pairs(words, stoi)
    keep = [i for i, y in enumerate(ys) if y != 0]
    return -P[[xs[i] for i in keep], [ys[i] for i in keep]].log().mean().item()


def nll_tensor(P, words, stoi):
    """Right value, but a 0-dim tensor where the docstring promises a Python float."""
    xs, ys = [], []
    for w in words:
        ids = [stoi[c] for c in "." + w + "."]
        xs.extend(ids[:-1])
        ys.extend(ids[1:])
    return -P[xs, ys].log().mean()


def vocab_no_return(words):
    """Builds the maps and forgets to return them."""
    chars = sorted(set("".join(words)))
    stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    itos = {i: c for c, i in stoi.items()}  # noqa: F841


def dataset_shifted(words, stoi):
    """ys equal to xs: the target is not the next token."""
    xs, _ = _pairs(words, stoi)
    return torch.tensor(xs), torch.tensor(xs)


def dataset_no_end(words, stoi):
    xs, ys = [], []
    for w in words:
        ids = [0] + [stoi[c] for c in w]
        xs.extend(ids[:-1])
        ys.extend(ids[1:])
    return torch.tensor(xs), torch.tensor(ys)


def dataset_column(words, stoi):
    xs, ys = _pairs(words, stoi)
    return torch.tensor(xs).view(-1, 1), torch.tensor(ys).view(-1, 1)


def neural_softmax_dim0(W, xs, ys, reg=0.01):
    logits = F.one_hot(xs, W.shape[0]).float() @ W
    probs = logits.exp() / logits.exp().sum(dim=0, keepdim=True)
    return -probs[torch.arange(len(ys)), ys].log().mean() + reg * (W**2).mean()


def neural_no_reg(W, xs, ys, reg=0.01):
    return F.cross_entropy(W[xs], ys)


def neural_sum(W, xs, ys, reg=0.01):
    return F.cross_entropy(W[xs], ys, reduction="sum") + reg * (W**2).mean()


def neural_detached(W, xs, ys, reg=0.01):
    return torch.tensor(F.cross_entropy(W[xs], ys).item() + reg * (W**2).mean().item())


def neural_data_term_detached(W, xs, ys, reg=0.01):
    """The data term from W.detach(): only the penalty's gradient reaches W."""
    return F.cross_entropy(W.detach()[xs], ys) + reg * (W**2).mean()


def neural_log_softmax_wrong_target(W, xs, ys, reg=0.01):
    """Picks the probability of the input token, not the target."""
    logp = F.log_softmax(W[xs], dim=1)
    return -logp[torch.arange(len(xs)), xs].mean() + reg * (W**2).mean()


def neural_one_hot_no_classes(W, xs, ys, reg=0.01):
    """F.one_hot(xs) without num_classes: right whenever the batch holds the last token."""
    x = F.one_hot(xs).float()
    logits = x @ W
    probs = logits.exp() / logits.exp().sum(dim=1, keepdim=True)
    return -probs[torch.arange(len(ys)), ys].log().mean() + reg * (W**2).mean()


def neural_right(W, xs, ys, reg=0.01):
    return F.cross_entropy(W[xs], ys) + reg * (W**2).mean()


def sgd_using(neural_nll):
    """A right sgd_step on top of the given neural_nll (as the lesson's calls the learner's by name)."""
    def sgd_step(W, xs, ys, lr, reg=0.01):
        W.grad = None
        loss = neural_nll(W, xs, ys, reg)
        loss.backward()
        with torch.no_grad():
            W -= lr * W.grad
        return loss.item()
    sgd_step.__name__ = f"sgd_using_{neural_nll.__name__}"
    return sgd_step


def _loss(W, xs, ys, reg):
    return F.cross_entropy(W[xs], ys) + reg * (W**2).mean()


def sgd_no_zero_grad(W, xs, ys, lr, reg=0.01):
    """Never resets W.grad: gradients accumulate from step 2 on."""
    loss = _loss(W, xs, ys, reg)
    loss.backward()
    with torch.no_grad():
        W -= lr * W.grad
    return loss.item()


def _sgd_fixed_reg(fixed, name, doc):
    """A right sgd_step whose loss always has the penalty `fixed`, whatever reg it is given."""
    sgd_step = sgd_using(lambda W, xs, ys, reg: _loss(W, xs, ys, fixed))
    sgd_step.__name__, sgd_step.__doc__ = name, doc
    return sgd_step


sgd_ignores_reg = _sgd_fixed_reg(0.01, "sgd_ignores_reg", "reg not passed on: the default penalty 0.01 always.")
sgd_reg_zero = _sgd_fixed_reg(0.0, "sgd_reg_zero", "The penalty dropped: reg=0 hard-coded.")


def sgd_zero_after(W, xs, ys, lr, reg=0.01):
    """Resets the gradient after the update, not before backward(): a .grad that W brings is added."""
    loss = _loss(W, xs, ys, reg)
    loss.backward()
    with torch.no_grad():
        W -= lr * W.grad
    W.grad.zero_()
    return loss.item()


def sgd_ascent(W, xs, ys, lr, reg=0.01):
    W.grad = None
    loss = _loss(W, xs, ys, reg)
    loss.backward()
    with torch.no_grad():
        W += lr * W.grad
    return loss.item()


def sgd_loss_after(W, xs, ys, lr, reg=0.01):
    """Returns the loss after the update."""
    W.grad = None
    loss = _loss(W, xs, ys, reg)
    loss.backward()
    with torch.no_grad():
        W -= lr * W.grad
        return _loss(W, xs, ys, reg).item()


def sgd_replaces_w(W, xs, ys, lr, reg=0.01):
    """Out of place: the caller's W never changes."""
    W.grad = None
    loss = _loss(W, xs, ys, reg)
    loss.backward()
    W = W - lr * W.grad
    return loss.item()


def sgd_one_hot_no_classes(W, xs, ys, lr, reg=0.01):
    """Its own forward pass with F.one_hot(xs) without num_classes (not the learner's neural_nll)."""
    W.grad = None
    logits = F.one_hot(xs).float() @ W
    loss = F.cross_entropy(logits, ys) + reg * (W**2).mean()
    loss.backward()
    with torch.no_grad():
        W -= lr * W.grad
    return loss.item()


WRONG = {
    "build_vocab": [vocab_dot_last, vocab_unsorted, vocab_no_return],
    "count_bigrams": [count_no_end_token, count_no_start_token, count_fixed_27, count_transposed, count_float,
                      count_no_accumulate],
    "bigram_probs": [probs_not_normalised, probs_columns, probs_no_keepdim, probs_global, probs_in_place,
                     probs_ignores_k],
    "sample_name": [sample_global_rng, sample_column, sample_keeps_dots, sample_argmax],
    "nll": [nll_log2, nll_sign, nll_sum, nll_per_name, nll_no_end, nll_tensor],
    "bigram_dataset": [dataset_shifted, dataset_no_end, dataset_column],
    "neural_nll": [neural_softmax_dim0, neural_no_reg, neural_sum, neural_detached, neural_log_softmax_wrong_target,
                   neural_one_hot_no_classes, neural_data_term_detached],
    "sgd_step": [sgd_no_zero_grad, sgd_ascent, sgd_loss_after, sgd_replaces_w, sgd_one_hot_no_classes,
                 sgd_ignores_reg, sgd_reg_zero, sgd_zero_after],
}
