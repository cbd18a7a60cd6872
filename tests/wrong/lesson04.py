"""Lesson 04: classic mistakes (WRONG, each must fail its exercise's check) and
correct alternatives (RIGHT, each must pass it on every seed)."""

import torch
import torch.nn.functional as F

EPS = 1e-5

# ============================================================== WRONG
# ---------------------------------------------------------------- exercise 1


def loss_one_hot_no_classes(Yb, probs, counts, counts_sum):
    """F.one_hot(Yb) without num_classes: too short whenever no target is the last token."""
    dlogprobs = -F.one_hot(Yb).to(probs.dtype) / Yb.numel()
    dprobs = dlogprobs / probs
    dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
    return dlogprobs, dprobs, dcounts_sum_inv, -(counts_sum**-2) * dcounts_sum_inv


def loss_missing_1_over_n(Yb, probs, counts, counts_sum):
    """dlogprobs without the 1/n of the mean."""
    n = Yb.shape[0]
    dlogprobs = torch.zeros_like(probs)
    dlogprobs[torch.arange(n), Yb] = -1.0
    dprobs = dlogprobs / probs
    dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
    return dlogprobs, dprobs, dcounts_sum_inv, -(counts_sum**-2) * dcounts_sum_inv


def loss_wrong_sign(Yb, probs, counts, counts_sum):
    n = Yb.shape[0]
    dlogprobs = torch.zeros_like(probs)
    dlogprobs[torch.arange(n), Yb] = 1.0 / n
    dprobs = dlogprobs / probs
    dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
    return dlogprobs, dprobs, dcounts_sum_inv, -(counts_sum**-2) * dcounts_sum_inv


def loss_whole_columns(Yb, probs, counts, counts_sum):
    """dlogprobs[:, Yb] sets whole columns instead of one element per row."""
    n = Yb.shape[0]
    dlogprobs = torch.zeros_like(probs)
    dlogprobs[:, Yb] = -1.0 / n
    dprobs = dlogprobs / probs
    dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
    return dlogprobs, dprobs, dcounts_sum_inv, -(counts_sum**-2) * dcounts_sum_inv


def loss_no_keepdim(Yb, probs, counts, counts_sum):
    n = Yb.shape[0]
    dlogprobs = torch.zeros_like(probs)
    dlogprobs[torch.arange(n), Yb] = -1.0 / n
    dprobs = dlogprobs / probs
    dcounts_sum_inv = (counts * dprobs).sum(1)  # (n,), not (n, 1)
    return dlogprobs, dprobs, dcounts_sum_inv, -(counts_sum.view(-1) ** -2) * dcounts_sum_inv


def loss_missing_sum(Yb, probs, counts, counts_sum):
    """counts_sum_inv was broadcast over the columns, but its gradient is not summed."""
    n = Yb.shape[0]
    dlogprobs = torch.zeros_like(probs)
    dlogprobs[torch.arange(n), Yb] = -1.0 / n
    dprobs = dlogprobs / probs
    dcounts_sum_inv = counts * dprobs
    return dlogprobs, dprobs, dcounts_sum_inv, (-(counts_sum**-2) * dcounts_sum_inv).sum(1, keepdim=True)


def loss_inverse_sign(Yb, probs, counts, counts_sum):
    """d(1/x)/dx taken as +1/x**2."""
    n = Yb.shape[0]
    dlogprobs = torch.zeros_like(probs)
    dlogprobs[torch.arange(n), Yb] = -1.0 / n
    dprobs = dlogprobs / probs
    dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
    return dlogprobs, dprobs, dcounts_sum_inv, counts_sum**-2 * dcounts_sum_inv


# ---------------------------------------------------------------- exercise 2


def softmax_no_max_branch(logits, counts, counts_sum_inv, dprobs, dcounts_sum):
    """Forgets that logits also reach the loss through logit_maxes."""
    dcounts = counts_sum_inv * dprobs + dcounts_sum
    dnorm_logits = counts * dcounts
    dlogit_maxes = -dnorm_logits.sum(1, keepdim=True)
    return dcounts, dnorm_logits, dlogit_maxes, dnorm_logits.clone()


def softmax_maxes_zero(logits, counts, counts_sum_inv, dprobs, dcounts_sum):
    """'The softmax is shift-invariant, so dlogit_maxes is zero': only for this loss."""
    dcounts = counts_sum_inv * dprobs + dcounts_sum
    dnorm_logits = counts * dcounts
    return dcounts, dnorm_logits, torch.zeros_like(counts_sum_inv), dnorm_logits.clone()


def softmax_counts_one_path(logits, counts, counts_sum_inv, dprobs, dcounts_sum):
    """counts is used twice; the path through counts_sum is left out."""
    dcounts = counts_sum_inv * dprobs
    dnorm_logits = counts * dcounts
    dlogit_maxes = -dnorm_logits.sum(1, keepdim=True)
    dlogits = dnorm_logits + F.one_hot(logits.max(1).indices, logits.shape[1]) * dlogit_maxes
    return dcounts, dnorm_logits, dlogit_maxes, dlogits


def softmax_maxes_no_keepdim(logits, counts, counts_sum_inv, dprobs, dcounts_sum):
    dcounts = counts_sum_inv * dprobs + dcounts_sum
    dnorm_logits = counts * dcounts
    dlogit_maxes = -dnorm_logits.sum(1)  # (n,)
    dlogits = dnorm_logits.clone()
    dlogits[torch.arange(logits.shape[0]), logits.argmax(1)] += dlogit_maxes
    return dcounts, dnorm_logits, dlogit_maxes, dlogits


def softmax_maxes_sign(logits, counts, counts_sum_inv, dprobs, dcounts_sum):
    dcounts = counts_sum_inv * dprobs + dcounts_sum
    dnorm_logits = counts * dcounts
    dlogit_maxes = dnorm_logits.sum(1, keepdim=True)
    dlogits = dnorm_logits + F.one_hot(logits.max(1).indices, logits.shape[1]) * dlogit_maxes
    return dcounts, dnorm_logits, dlogit_maxes, dlogits


def softmax_one_hot_no_classes(logits, counts, counts_sum_inv, dprobs, dcounts_sum):
    """F.one_hot without num_classes: too short whenever no row has its max in the last column."""
    dcounts = counts_sum_inv * dprobs + dcounts_sum
    dnorm_logits = counts * dcounts
    dlogit_maxes = -dnorm_logits.sum(1, keepdim=True)
    dlogits = dnorm_logits + F.one_hot(logits.max(1).indices) * dlogit_maxes
    return dcounts, dnorm_logits, dlogit_maxes, dlogits


def softmax_aliased(logits, counts, counts_sum_inv, dprobs, dcounts_sum):
    """dlogits is dnorm_logits itself: the in-place += also changes dnorm_logits."""
    dcounts = counts_sum_inv * dprobs + dcounts_sum
    dnorm_logits = counts * dcounts
    dlogit_maxes = -dnorm_logits.sum(1, keepdim=True)
    dlogits = dnorm_logits
    dlogits += F.one_hot(logits.max(1).indices, logits.shape[1]) * dlogit_maxes
    return dcounts, dnorm_logits, dlogit_maxes, dlogits


# ---------------------------------------------------------------- exercise 3


def output_transposed(h, W2, dlogits):
    """dlogits @ W2 instead of dlogits @ W2.T: (n, V) @ (H, V) cannot multiply unless H = V."""
    dh = dlogits @ W2
    return dh, h.T @ dlogits, dlogits.sum(0), (1 - h**2) * dh


def output_dW2_transposed(h, W2, dlogits):
    dh = dlogits @ W2.T
    return dh, dlogits.T @ h, dlogits.sum(0), (1 - h**2) * dh


def output_b2_keepdim(h, W2, dlogits):
    """db2 of shape (1, V) for a (V,) bias: broadcasting would hide it."""
    dh = dlogits @ W2.T
    return dh, h.T @ dlogits, dlogits.sum(0, keepdim=True), (1 - h**2) * dh


def output_b2_no_sum(h, W2, dlogits):
    dh = dlogits @ W2.T
    return dh, h.T @ dlogits, dlogits, (1 - h**2) * dh


def output_b2_wrong_dim(h, W2, dlogits):
    dh = dlogits @ W2.T
    return dh, h.T @ dlogits, dlogits.sum(1), (1 - h**2) * dh


def output_tanh_of_h(h, W2, dlogits):
    """1 - tanh(h)**2: tanh applied twice."""
    dh = dlogits @ W2.T
    return dh, h.T @ dlogits, dlogits.sum(0), (1 - torch.tanh(h) ** 2) * dh


# ---------------------------------------------------------------- exercise 4


def affine_gain_no_keepdim(bnraw, bngain, bndiff, dhpreact):
    dbnraw = bngain * dhpreact
    return ((bnraw * dhpreact).sum(0), dhpreact.sum(0, keepdim=True), dbnraw,
            (bndiff * dbnraw).sum(0, keepdim=True))


def affine_gain_missing_sum(bnraw, bngain, bndiff, dhpreact):
    dbnraw = bngain * dhpreact
    return bnraw * dhpreact, dhpreact.sum(0, keepdim=True), dbnraw, (bndiff * dbnraw).sum(0, keepdim=True)


def affine_bias_wrong_dim(bnraw, bngain, bndiff, dhpreact):
    """Sums over the hidden units instead of the batch (same shape when n = H)."""
    dbnraw = bngain * dhpreact
    return ((bnraw * dhpreact).sum(0, keepdim=True), dhpreact.sum(1, keepdim=True).T, dbnraw,
            (bndiff * dbnraw).sum(0, keepdim=True))


def affine_sums_no_keepdim(bnraw, bngain, bndiff, dhpreact):
    """dbngain and dbnbias both without keepdim: two independent mistakes (neither is computed from the other)."""
    dbnraw = bngain * dhpreact
    return (bnraw * dhpreact).sum(0), dhpreact.sum(0), dbnraw, (bndiff * dbnraw).sum(0, keepdim=True)


def affine_bnraw_no_gain(bnraw, bngain, bndiff, dhpreact):
    """Forgets the gain: invisible if bngain were initialised to ones."""
    dbnraw = dhpreact
    return ((bnraw * dhpreact).sum(0, keepdim=True), dhpreact.sum(0, keepdim=True), dbnraw,
            (bndiff * dbnraw).sum(0, keepdim=True))


def affine_var_inv_from_bnraw(bnraw, bngain, bndiff, dhpreact):
    dbnraw = bngain * dhpreact
    return ((bnraw * dhpreact).sum(0, keepdim=True), dhpreact.sum(0, keepdim=True), dbnraw,
            (bnraw * dbnraw).sum(0, keepdim=True))


# ---------------------------------------------------------------- exercise 5


def _stats(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps=EPS, var_n=None, var_sign=-0.5, both_paths=True,
           mean_sign=-1.0, mean_scale=None, mean_branch=True):
    n = bndiff.shape[0]
    dbnvar = var_sign * (bnvar + eps) ** -1.5 * dbnvar_inv
    dbndiff2 = torch.ones_like(bndiff) * dbnvar / (var_n or (n - 1))
    dbndiff = bnvar_inv * dbnraw + (2 * bndiff * dbndiff2 if both_paths else 0)
    dbnmeani = mean_sign * dbndiff.sum(0, keepdim=True)
    dhprebn = dbndiff + (dbnmeani / (mean_scale or n) if mean_branch else 0)
    return dbnvar, dbndiff2, dbndiff, dbnmeani, dhprebn


def stats_biased_variance(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps=EPS):
    """1/n in the backward of a 1/(n-1) forward."""
    return _stats(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps, var_n=bndiff.shape[0])


def stats_var_sign(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps=EPS):
    return _stats(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps, var_sign=0.5)


def stats_bndiff_one_path(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps=EPS):
    return _stats(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps, both_paths=False)


def stats_mean_sign(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps=EPS):
    return _stats(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps, mean_sign=1.0)


def stats_mean_missing_1_over_n(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps=EPS):
    return _stats(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps, mean_scale=1)


def stats_no_mean_branch(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps=EPS):
    return _stats(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps, mean_branch=False)


def stats_no_eps(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps=EPS):
    """Differentiates bnvar**-0.5 instead of (bnvar + eps)**-0.5."""
    return _stats(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps=0.0)


def stats_dbndiff2_no_broadcast(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps=EPS):
    """Returns dbndiff2 as the (1, H) row instead of broadcasting it to (n, H)."""
    dbnvar, dbndiff2, dbndiff, dbnmeani, dhprebn = _stats(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps)
    return dbnvar, dbnvar / (bndiff.shape[0] - 1), dbndiff, dbnmeani, dhprebn


# ---------------------------------------------------------------- exercise 6


def first_b1_left_out(emb, embcat, W1, dhprebn):
    """'BatchNorm cancels b1', so its gradient is set to zero."""
    dembcat = dhprebn @ W1.T
    return dembcat, embcat.T @ dhprebn, torch.zeros(W1.shape[1]), dembcat.view(emb.shape)


def first_b1_none(emb, embcat, W1, dhprebn):
    dembcat = dhprebn @ W1.T
    return dembcat, embcat.T @ dhprebn, None, dembcat.view(emb.shape)


def first_b1_keepdim(emb, embcat, W1, dhprebn):
    dembcat = dhprebn @ W1.T
    return dembcat, embcat.T @ dhprebn, dhprebn.sum(0, keepdim=True), dembcat.view(emb.shape)


def first_W1_transposed(emb, embcat, W1, dhprebn):
    dembcat = dhprebn @ W1.T
    return dembcat, dhprebn.T @ embcat, dhprebn.sum(0), dembcat.view(emb.shape)


def first_embcat_transposed(emb, embcat, W1, dhprebn):
    dembcat = dhprebn @ W1
    return dembcat, embcat.T @ dhprebn, dhprebn.sum(0), dembcat.view(emb.shape)


def first_emb_wrong_view(emb, embcat, W1, dhprebn):
    """Unflattens as (n, E, T) and transposes: right shape, numbers in the wrong places."""
    n, T, E = emb.shape
    dembcat = dhprebn @ W1.T
    return dembcat, embcat.T @ dhprebn, dhprebn.sum(0), dembcat.view(n, E, T).transpose(1, 2)


# ---------------------------------------------------------------- exercise 7


def embedding_one_hot_no_classes(C, Xb, demb):
    """F.one_hot(Xb) without num_classes: dC has too few rows whenever the batch lacks the last token."""
    onehot = F.one_hot(Xb.view(-1)).float()
    return onehot.T @ demb.view(-1, C.shape[1])


def embedding_fancy_index(C, Xb, demb):
    """dC[Xb] += demb: with repeated indices only one addition survives."""
    dC = torch.zeros_like(C)
    dC[Xb] += demb
    return dC


def embedding_assign(C, Xb, demb):
    dC = torch.zeros_like(C)
    for i in range(Xb.shape[0]):
        for t in range(Xb.shape[1]):
            dC[Xb[i, t]] = demb[i, t]
    return dC


def embedding_mean(C, Xb, demb):
    """Averages the gradients of a repeated row instead of adding them."""
    dC = torch.zeros_like(C)
    counts = torch.zeros(C.shape[0])
    dC.index_add_(0, Xb.view(-1), demb.view(-1, C.shape[1]))
    counts.index_add_(0, Xb.view(-1), torch.ones(Xb.numel()))
    return dC / counts.clamp(min=1).unsqueeze(1)


def embedding_misaligned(C, Xb, demb):
    """Flattens the indices column by column (Xb.T) but demb row by row: rows get others' gradients."""
    dC = torch.zeros_like(C)
    return dC.index_add_(0, Xb.T.reshape(-1), demb.reshape(-1, C.shape[1]))


# ---------------------------------------------------------------- exercise 8 (wiring)


def all_prefixed_keys(params, cache, Xb, Yb):
    """Keys 'dlogprobs', ... instead of 'logprobs', ... (and nothing computed)."""
    return {"d" + k: None for k in ["logprobs", "probs"]}


# ---------------------------------------------------------------- exercise 9


def ce_missing_1_over_n(logits, Yb):
    dlogits = F.softmax(logits, 1)
    dlogits[torch.arange(logits.shape[0]), Yb] -= 1
    return dlogits


def ce_wrong_sign(logits, Yb):
    return (F.one_hot(Yb, logits.shape[1]) - F.softmax(logits, 1)) / logits.shape[0]


def ce_no_softmax(logits, Yb):
    return (logits - F.one_hot(Yb, logits.shape[1])) / logits.shape[0]


def ce_softmax_dim0(logits, Yb):
    return (F.softmax(logits, 0) - F.one_hot(Yb, logits.shape[1])) / logits.shape[0]


def ce_no_max(logits, Yb):
    """A softmax that does not subtract the row max: exp overflows for large logits."""
    e = logits.exp()
    return (e / e.sum(1, keepdim=True) - F.one_hot(Yb, logits.shape[1])) / logits.shape[0]


def ce_log_softmax(logits, Yb):
    return (F.log_softmax(logits, 1) - F.one_hot(Yb, logits.shape[1])) / logits.shape[0]


# ---------------------------------------------------------------- exercise 10


def _bn(hprebn, bngain, dhpreact, eps, var_div, factor, mean_term=True, gain=True, sign=-1.0):
    n = hprebn.shape[0]
    bndiff = hprebn - hprebn.mean(0, keepdim=True)
    bnvar_inv = ((bndiff**2).sum(0, keepdim=True) / var_div(n) + eps) ** -0.5
    bnraw = bndiff * bnvar_inv
    inner = n * dhpreact - (dhpreact.sum(0, keepdim=True) if mean_term else 0)
    inner = inner + sign * factor(n) * bnraw * (dhpreact * bnraw).sum(0, keepdim=True)
    return (bngain if gain else 1.0) * bnvar_inv / n * inner


def bn_biased_variance(hprebn, bngain, dhpreact, eps=EPS):
    """PyTorch's biased (1/n) variance: the backward of another forward pass."""
    return _bn(hprebn, bngain, dhpreact, eps, lambda n: n, lambda n: 1.0)


def bn_biased_factor(hprebn, bngain, dhpreact, eps=EPS):
    """Bessel in the statistics but not in the derivative (n/(n-1) dropped)."""
    return _bn(hprebn, bngain, dhpreact, eps, lambda n: n - 1, lambda n: 1.0)


def bn_no_mean_term(hprebn, bngain, dhpreact, eps=EPS):
    return _bn(hprebn, bngain, dhpreact, eps, lambda n: n - 1, lambda n: n / (n - 1), mean_term=False)


def bn_no_gain(hprebn, bngain, dhpreact, eps=EPS):
    return _bn(hprebn, bngain, dhpreact, eps, lambda n: n - 1, lambda n: n / (n - 1), gain=False)


def bn_wrong_sign(hprebn, bngain, dhpreact, eps=EPS):
    return _bn(hprebn, bngain, dhpreact, eps, lambda n: n - 1, lambda n: n / (n - 1), sign=1.0)


def bn_no_eps(hprebn, bngain, dhpreact, eps=EPS):
    return _bn(hprebn, bngain, dhpreact, 0.0, lambda n: n - 1, lambda n: n / (n - 1))


def bn_keepdim_slip(hprebn, bngain, dhpreact, eps=EPS):
    """(dhpreact * bnraw).sum(1, keepdim=True): the wrong dimension, broadcast back silently."""
    n = hprebn.shape[0]
    bndiff = hprebn - hprebn.mean(0, keepdim=True)
    bnvar_inv = ((bndiff**2).sum(0, keepdim=True) / (n - 1) + eps) ** -0.5
    bnraw = bndiff * bnvar_inv
    return bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0, keepdim=True)
                                     - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(1, keepdim=True))


# ---------------------------------------------------------------- exercise 11


def _forward(p, Xb, Yb, eps=EPS):
    n = Xb.shape[0]
    emb = p["C"][Xb]
    embcat = emb.view(n, -1)
    hprebn = embcat @ p["W1"] + p["b1"]
    bndiff = hprebn - hprebn.mean(0, keepdim=True)
    bnvar_inv = ((bndiff**2).sum(0, keepdim=True) / (n - 1) + eps) ** -0.5
    bnraw = bndiff * bnvar_inv
    h = torch.tanh(p["bngain"] * bnraw + p["bnbias"])
    logits = h @ p["W2"] + p["b2"]
    return emb, embcat, bnraw, bnvar_inv, h, logits, F.cross_entropy(logits, Yb)


def _grads(p, Xb, Yb):
    """A self-contained manual backward (fused formulas), for the step variants below."""
    n = Xb.shape[0]
    emb, embcat, bnraw, bnvar_inv, h, logits, loss = _forward(p, Xb, Yb)
    dlogits = F.softmax(logits, 1)
    dlogits[torch.arange(n), Yb] -= 1
    dlogits /= n
    g = {"W2": h.T @ dlogits, "b2": dlogits.sum(0)}
    dhpreact = (1 - h**2) * (dlogits @ p["W2"].T)
    g["bngain"] = (bnraw * dhpreact).sum(0, keepdim=True)
    g["bnbias"] = dhpreact.sum(0, keepdim=True)
    dhprebn = p["bngain"] * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw
                                              * (dhpreact * bnraw).sum(0))
    g["W1"] = embcat.T @ dhprebn
    g["b1"] = dhprebn.sum(0)
    g["C"] = torch.zeros_like(p["C"]).index_add_(0, Xb.view(-1), (dhprebn @ p["W1"].T).view(-1, p["C"].shape[1]))
    return g, loss.item()


def step_tensor_loss(params, Xb, Yb, lr):
    """Right update, but returns the loss as a 0-d tensor where the docstring promises a Python float."""
    grads, loss = _grads(params, Xb, Yb)
    for k, g in grads.items():
        params[k] -= lr * g
    return torch.tensor(loss)


def step_ascent(params, Xb, Yb, lr):
    grads, loss = _grads(params, Xb, Yb)
    for k, g in grads.items():
        params[k] += lr * g
    return loss


def step_skips_embedding(params, Xb, Yb, lr):
    """C is never updated."""
    grads, loss = _grads(params, Xb, Yb)
    for k, g in grads.items():
        if k != "C":
            params[k] -= lr * g
    return loss


def step_fixed_lr(params, Xb, Yb, lr):
    """Ignores the lr argument."""
    grads, loss = _grads(params, Xb, Yb)
    for k, g in grads.items():
        params[k] -= 0.1 * g
    return loss


def step_loss_after(params, Xb, Yb, lr):
    grads, _ = _grads(params, Xb, Yb)
    for k, g in grads.items():
        params[k] -= lr * g
    return _forward(params, Xb, Yb)[-1].item()


def step_updates_too_early(params, Xb, Yb, lr):
    """Updates W2 before dh = dlogits @ W2.T is computed from it (and so on down)."""
    p, n = params, Xb.shape[0]
    emb, embcat, bnraw, bnvar_inv, h, logits, loss = _forward(p, Xb, Yb)
    dlogits = F.softmax(logits, 1)
    dlogits[torch.arange(n), Yb] -= 1
    dlogits /= n
    p["W2"] -= lr * (h.T @ dlogits)
    p["b2"] -= lr * dlogits.sum(0)
    dhpreact = (1 - h**2) * (dlogits @ p["W2"].T)  # uses the updated W2
    dhprebn = p["bngain"] * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw
                                              * (dhpreact * bnraw).sum(0))
    p["bngain"] -= lr * (bnraw * dhpreact).sum(0, keepdim=True)
    p["bnbias"] -= lr * dhpreact.sum(0, keepdim=True)
    dembcat = dhprebn @ p["W1"].T
    p["W1"] -= lr * embcat.T @ dhprebn
    p["b1"] -= lr * dhprebn.sum(0)
    p["C"] -= lr * torch.zeros_like(p["C"]).index_add_(0, Xb.view(-1), dembcat.view(-1, p["C"].shape[1]))
    return loss.item()


def step_autograd(params, Xb, Yb, lr):
    """Uses autograd after all: not allowed here (the check runs under no_grad)."""
    for p in params.values():
        p.requires_grad_()
    loss = _forward(params, Xb, Yb)[-1]
    loss.backward()
    with torch.no_grad():
        for p in params.values():
            p -= lr * p.grad
    return loss.item()


WRONG = {
    "backward_loss": [loss_missing_1_over_n, loss_wrong_sign, loss_whole_columns, loss_no_keepdim, loss_missing_sum,
                      loss_inverse_sign, loss_one_hot_no_classes],
    "backward_softmax": [softmax_no_max_branch, softmax_maxes_zero, softmax_counts_one_path, softmax_maxes_no_keepdim,
                         softmax_maxes_sign, softmax_aliased, softmax_one_hot_no_classes],
    "backward_output_layer": [output_transposed, output_dW2_transposed, output_b2_keepdim, output_b2_no_sum,
                              output_b2_wrong_dim, output_tanh_of_h],
    "backward_bn_affine": [affine_gain_no_keepdim, affine_gain_missing_sum, affine_bias_wrong_dim,
                           affine_bnraw_no_gain, affine_var_inv_from_bnraw, affine_sums_no_keepdim],
    "backward_bn_stats": [stats_biased_variance, stats_var_sign, stats_bndiff_one_path, stats_mean_sign,
                          stats_mean_missing_1_over_n, stats_no_mean_branch, stats_no_eps, stats_dbndiff2_no_broadcast],
    "backward_first_layer": [first_b1_left_out, first_b1_none, first_b1_keepdim, first_W1_transposed,
                             first_embcat_transposed, first_emb_wrong_view],
    "backward_embedding": [embedding_fancy_index, embedding_assign, embedding_mean, embedding_misaligned,
                           embedding_one_hot_no_classes],
    "backward_all": [all_prefixed_keys],
    "cross_entropy_backward": [ce_missing_1_over_n, ce_wrong_sign, ce_no_softmax, ce_softmax_dim0, ce_log_softmax,
                               ce_no_max],
    "batchnorm_backward": [bn_biased_variance, bn_biased_factor, bn_no_mean_term, bn_no_gain, bn_wrong_sign,
                           bn_no_eps, bn_keepdim_slip],
    "train_step": [step_ascent, step_skips_embedding, step_fixed_lr, step_loss_after, step_updates_too_early,
                   step_autograd, step_tensor_loss],
}

# Mistakes that torch itself stops: a shape error raised inside the learner's
# code, which the harness reports as "your code raised RuntimeError" with the line.
RAISES = {output_transposed}


# ============================================================== RIGHT


def loss_one_hot(Yb, probs, counts, counts_sum):
    dlogprobs = -F.one_hot(Yb, probs.shape[1]).to(probs.dtype) / Yb.numel()
    dprobs = dlogprobs * probs**-1
    dcounts_sum_inv = torch.einsum("nv,nv->n", counts, dprobs).unsqueeze(1)
    return dlogprobs, dprobs, dcounts_sum_inv, -dcounts_sum_inv / counts_sum**2


def loss_loop(Yb, probs, counts, counts_sum):
    n = len(Yb)
    dlogprobs = torch.zeros(probs.shape)
    for i in range(n):
        dlogprobs[i, Yb[i]] = -1 / n
    dprobs = dlogprobs / probs
    dcounts_sum_inv = (counts * dprobs).sum(dim=-1, keepdim=True)
    return dlogprobs, dprobs, dcounts_sum_inv, -1.0 / counts_sum / counts_sum * dcounts_sum_inv


def softmax_mask(logits, counts, counts_sum_inv, dprobs, dcounts_sum):
    dcounts = dprobs * counts_sum_inv + dcounts_sum.expand_as(counts)
    dnorm_logits = dcounts * counts
    dlogit_maxes = -dnorm_logits.sum(1, keepdim=True)
    is_max = (logits == logits.max(1, keepdim=True).values).to(logits.dtype)
    return dcounts, dnorm_logits, dlogit_maxes, dnorm_logits + is_max * dlogit_maxes


def softmax_scatter(logits, counts, counts_sum_inv, dprobs, dcounts_sum):
    dcounts = counts_sum_inv * dprobs + dcounts_sum
    dnorm_logits = counts * dcounts
    dlogit_maxes = -torch.sum(dnorm_logits, dim=1, keepdim=True)
    dlogits = dnorm_logits.clone().scatter_add_(1, logits.argmax(1, keepdim=True), dlogit_maxes)
    return dcounts, dnorm_logits, dlogit_maxes, dlogits


def output_einsum(h, W2, dlogits):
    dh = torch.einsum("nv,hv->nh", dlogits, W2)
    return dh, torch.einsum("nh,nv->hv", h, dlogits), torch.einsum("nv->v", dlogits), dh * (1 - h * h)


def output_transpose_trick(h, W2, dlogits):
    dh = (W2 @ dlogits.T).T
    return dh, (dlogits.T @ h).T, dlogits.sum(dim=0), (1 - h.pow(2)) * dh


def affine_einsum(bnraw, bngain, bndiff, dhpreact):
    dbnraw = dhpreact * bngain
    return (torch.einsum("nh,nh->h", bnraw, dhpreact)[None], dhpreact.sum(0).unsqueeze(0), dbnraw,
            torch.einsum("nh,nh->h", bndiff, dbnraw).view(1, -1))


def stats_compact(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps=EPS):
    n = bndiff.shape[0]
    dbnvar = -0.5 * bnvar_inv**3 * dbnvar_inv
    dbndiff2 = dbnvar.expand_as(bndiff) / (n - 1)
    dbndiff = bnvar_inv * dbnraw + 2 * bndiff * dbndiff2
    dbnmeani = -dbndiff.sum(0, keepdim=True)
    return dbnvar, dbndiff2, dbndiff, dbnmeani, dbndiff - dbndiff.mean(0, keepdim=True)


def first_einsum(emb, embcat, W1, dhprebn):
    dembcat = torch.einsum("nh,ih->ni", dhprebn, W1)
    return (dembcat, torch.einsum("ni,nh->ih", embcat, dhprebn), torch.ones(dhprebn.shape[0]) @ dhprebn,
            dembcat.reshape(emb.shape))


def embedding_loop(C, Xb, demb):
    dC = torch.zeros_like(C)
    for i in range(Xb.shape[0]):
        for t in range(Xb.shape[1]):
            dC[Xb[i, t]] += demb[i, t]
    return dC


def embedding_one_hot(C, Xb, demb):
    onehot = F.one_hot(Xb.view(-1), num_classes=C.shape[0]).float()
    return onehot.T @ demb.view(-1, C.shape[1])


def embedding_einsum(C, Xb, demb):
    return torch.einsum("ntv,nte->ve", F.one_hot(Xb, C.shape[0]).float(), demb)


def embedding_index_put(C, Xb, demb):
    return torch.zeros(C.shape).index_put_((Xb.flatten(),), demb.reshape(-1, C.shape[1]), accumulate=True)


def embedding_scatter_add(C, Xb, demb):
    E = C.shape[1]
    return torch.zeros_like(C).scatter_add_(0, Xb.reshape(-1, 1).expand(-1, E), demb.reshape(-1, E))


def ce_one_hot(logits, Yb):
    return (F.softmax(logits, dim=1) - F.one_hot(Yb, logits.shape[1])) / logits.shape[0]


def ce_by_hand(logits, Yb):
    counts = (logits - logits.max(1, keepdim=True).values).exp()
    probs = counts / counts.sum(1, keepdim=True)
    probs[range(logits.shape[0]), Yb] -= 1
    return probs / logits.shape[0]


def ce_log_softmax_exp(logits, Yb):
    return (F.log_softmax(logits, 1).exp() - F.one_hot(Yb, logits.shape[1]).float()) / len(Yb)


def bn_no_keepdim(hprebn, bngain, dhpreact, eps=EPS):
    """The formula with sum(0) without keepdim: (H,) broadcasts over rows, as it should."""
    n = hprebn.shape[0]
    bnvar_inv = 1.0 / torch.sqrt(hprebn.var(0, keepdim=True, unbiased=True) + eps)
    bnraw = (hprebn - hprebn.mean(0)) * bnvar_inv
    return bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))


def bn_means(hprebn, bngain, dhpreact, eps=EPS):
    """gamma*s*(dy - mean(dy) - xhat * sum(dy*xhat) / (n-1))."""
    n = hprebn.shape[0]
    s = (hprebn.var(0, correction=1) + eps).rsqrt()
    xhat = (hprebn - hprebn.mean(0)) * s
    return bngain * s * (dhpreact - dhpreact.mean(0) - xhat * (dhpreact * xhat).sum(0) / (n - 1))


def bn_chain(hprebn, bngain, dhpreact, eps=EPS):
    """The atom-by-atom chain of exercises 4-5, not one expression, but right."""
    n = hprebn.shape[0]
    bndiff = hprebn - hprebn.sum(0, keepdim=True) / n
    bnvar = (bndiff**2).sum(0, keepdim=True) / (n - 1)
    bnvar_inv = (bnvar + eps) ** -0.5
    dbnraw = bngain * dhpreact
    dbnvar = -0.5 * (bnvar + eps) ** -1.5 * (bndiff * dbnraw).sum(0, keepdim=True)
    dbndiff = bnvar_inv * dbnraw + 2 * bndiff * dbnvar / (n - 1)
    return dbndiff - dbndiff.sum(0, keepdim=True) / n


def step_replaces_tensors(params, Xb, Yb, lr):
    """Puts new tensors in the dict instead of updating in place: also fine."""
    grads, loss = _grads(params, Xb, Yb)
    for k, g in grads.items():
        params[k] = params[k] - lr * g
    return loss


def step_sub_(params, Xb, Yb, lr):
    """Updates with Tensor.sub_ (a 0-d tensor loss is no longer accepted: the docstring says a Python float)."""
    grads, loss = _grads(params, Xb, Yb)
    for k, g in grads.items():
        params[k].sub_(lr * g)
    return float(loss)


RIGHT = {
    "backward_loss": [loss_one_hot, loss_loop],
    "backward_softmax": [softmax_mask, softmax_scatter],
    "backward_output_layer": [output_einsum, output_transpose_trick],
    "backward_bn_affine": [affine_einsum],
    "backward_bn_stats": [stats_compact],
    "backward_first_layer": [first_einsum],
    "backward_embedding": [embedding_loop, embedding_one_hot, embedding_einsum, embedding_index_put,
                           embedding_scatter_add],
    "cross_entropy_backward": [ce_one_hot, ce_by_hand, ce_log_softmax_exp],
    "batchnorm_backward": [bn_no_keepdim, bn_means, bn_chain],
    "train_step": [step_replaces_tensors, step_sub_],
}
