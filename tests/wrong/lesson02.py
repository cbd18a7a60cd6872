"""Classic mistakes in lesson 02. Each must fail its exercise's check."""

import torch
import torch.nn.functional as F
from torch import logsumexp as _lse
from torch.nn.functional import log_softmax as _ls

# ----------------------------------------------------------------- build_dataset


def _slide(words, stoi, block_size, shift_target=False, end=True, pad=True):
    X, Y = [], []
    for w in words:
        ids = [stoi[c] for c in w] + ([0] if end else [])
        context = [0] * block_size
        for t, ix in enumerate(ids):
            if pad or t >= block_size:
                if shift_target:
                    context = context[1:] + [ix]  # slides before recording: the context holds its own target
                X.append(context)
                Y.append(ix)
            if not shift_target:
                context = context[1:] + [ix]
    return torch.tensor(X, dtype=torch.int64).view(-1, block_size), torch.tensor(Y, dtype=torch.int64)


def dataset_aliased_context(words, stoi, block_size=3):
    """Slides the context in place after storing it: every row of a word is the same list."""
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            X.append(context)
            Y.append(stoi[ch])
            context.pop(0)
            context.append(stoi[ch])
    return torch.tensor(X, dtype=torch.int64).view(-1, block_size), torch.tensor(Y, dtype=torch.int64)


def dataset_no_return(words, stoi, block_size=3):
    """Builds X and Y and forgets to return them."""
    X, Y = _slide(words, stoi, block_size)  # noqa: F841


def dataset_shifted_by_one(words, stoi, block_size=3):
    """Windows shifted by one: each context ends with the target it should predict."""
    return _slide(words, stoi, block_size, shift_target=True)


def dataset_target_shifted(words, stoi, block_size=3):
    """Y shifted by one: predicts the token after the next one."""
    X, Y = _slide(words, stoi, block_size)
    return X, torch.cat([Y[1:], Y[:1]])


def dataset_no_end(words, stoi, block_size=3):
    """Forgets the example whose target is the end token."""
    return _slide(words, stoi, block_size, end=False)


def dataset_no_padding(words, stoi, block_size=3):
    """Starts at the first full window: no '.'-padded contexts at the start."""
    return _slide(words, stoi, block_size, pad=False)


def dataset_fixed_block(words, stoi, block_size=3):
    """Ignores block_size."""
    return _slide(words, stoi, 3)


def dataset_padding_after(words, stoi, block_size=3):
    """Pads on the right: the newest token comes first."""
    X, Y = _slide(words, stoi, block_size)
    return X.flip(1), Y


def dataset_float(words, stoi, block_size=3):
    X, Y = _slide(words, stoi, block_size)
    return X.float(), Y.float()


def dataset_y_column(words, stoi, block_size=3):
    X, Y = _slide(words, stoi, block_size)
    return X, Y.view(-1, 1)


# ------------------------------------------------------------------------- embed


def embed_no_flatten(C, X):
    return C[X]


def embed_wrong_view(C, X):
    """Flattens everything into rows of length d."""
    return C[X].view(-1, C.shape[1])


def embed_transposed(C, X):
    """Interleaves the embeddings: (n, d, b) flattened instead of (n, b, d)."""
    return C[X].transpose(1, 2).reshape(X.shape[0], -1)


def embed_reversed(C, X):
    """Newest token first."""
    return C[X.flip(1)].view(X.shape[0], -1)


def embed_sum(C, X):
    """Sums the embeddings instead of concatenating them (a bag of characters)."""
    return C[X].sum(dim=1)


def embed_detached(C, X):
    return C.detach()[X].view(X.shape[0], -1)


def embed_one_hot_without_num_classes(C, X):
    """F.one_hot(X) has X.max() + 1 columns: too few when the last tokens do not occur."""
    return (F.one_hot(X).float() @ C).view(X.shape[0], -1)


def embed_one_hot(C, X):
    """Right, differently: one-hot rows of the vocabulary's length times C."""
    return (F.one_hot(X, C.shape[0]).to(C.dtype) @ C).view(X.shape[0], -1)


# ----------------------------------------------------------------------- forward


def _emb(C, X):
    return C[X].view(X.shape[0], -1)


def forward_softmax(X, C, W1, b1, W2, b2):
    """Returns probabilities instead of logits."""
    return F.softmax(torch.tanh(_emb(C, X) @ W1 + b1) @ W2 + b2, dim=1)


def forward_relu(X, C, W1, b1, W2, b2):
    return torch.relu(_emb(C, X) @ W1 + b1) @ W2 + b2


def forward_no_tanh(X, C, W1, b1, W2, b2):
    return (_emb(C, X) @ W1 + b1) @ W2 + b2


def forward_no_b1(X, C, W1, b1, W2, b2):
    return torch.tanh(_emb(C, X) @ W1) @ W2 + b2


def forward_no_b2(X, C, W1, b1, W2, b2):
    return torch.tanh(_emb(C, X) @ W1 + b1) @ W2


def forward_tanh_on_logits(X, C, W1, b1, W2, b2):
    return torch.tanh(torch.tanh(_emb(C, X) @ W1 + b1) @ W2 + b2)


def forward_bias_after_tanh(X, C, W1, b1, W2, b2):
    return (torch.tanh(_emb(C, X) @ W1) + b1) @ W2 + b2


def forward_transposed_embedding(X, C, W1, b1, W2, b2):
    """Interleaved flatten inside the forward pass."""
    e = C[X].transpose(1, 2).reshape(X.shape[0], -1)
    return torch.tanh(e @ W1 + b1) @ W2 + b2


def forward_w1_data(X, C, W1, b1, W2, b2):
    """Right values through W1.data: W1 gets no gradient."""
    return torch.tanh(_emb(C, X) @ W1.data + b1) @ W2 + b2


# ------------------------------------------------------------------ cross_entropy


def ce_naive(logits, Y):
    """exp without subtracting the max: overflows to inf, then nan."""
    probs = logits.exp() / logits.exp().sum(dim=1, keepdim=True)
    return -probs[torch.arange(len(Y)), Y].log().mean()


def ce_log_of_sum_naive(logits, Y):
    """Right formula, no max trick: -z_y + ln sum exp(z)."""
    return (logits.exp().sum(dim=1).log() - logits[torch.arange(len(Y)), Y]).mean()


def ce_softmax_dim0(logits, Y):
    m = logits.max(dim=0, keepdim=True).values
    z = logits - m
    logp = z - z.exp().sum(dim=0, keepdim=True).log()
    return -logp[torch.arange(len(Y)), Y].mean()


def ce_sum(logits, Y):
    m = logits.max(dim=1, keepdim=True).values
    z = logits - m
    return (z.exp().sum(dim=1).log() - z[torch.arange(len(Y)), Y]).sum()


def ce_wrong_index(logits, Y):
    """logp[:, Y] picks an (n, n) block: the mean mixes every example with every target."""
    m = logits.max(dim=1, keepdim=True).values
    logp = logits - m - (logits - m).exp().sum(dim=1, keepdim=True).log()
    return -logp[:, Y].mean()


def ce_max_not_added_back(logits, Y):
    """Subtracts the max inside the log-sum-exp but from only one of the two terms."""
    m = logits.max(dim=1, keepdim=True).values
    return ((logits - m).exp().sum(dim=1).log() - logits[torch.arange(len(Y)), Y]).mean()


def ce_global_max(logits, Y):
    """One max over the whole batch: rows far below it underflow to log(0)."""
    m = logits.max()
    z = logits - m
    return (z.exp().sum(dim=1).log() - z[torch.arange(len(Y)), Y]).mean()


def ce_builtin(logits, Y):
    """Not by hand."""
    return F.cross_entropy(logits, Y)


def ce_builtin_method(logits, Y):
    return -logits.log_softmax(dim=1)[torch.arange(len(Y)), Y].mean()


def ce_alias(logits, Y):
    """Calls log_softmax under another name (imported as _ls)."""
    return -_ls(logits, dim=1)[torch.arange(len(Y)), Y].mean()


def ce_alias_logsumexp(logits, Y):
    """Calls torch.logsumexp under another name (imported as _lse)."""
    return (_lse(logits, dim=1) - logits[torch.arange(len(Y)), Y]).mean()


def ce_max_no_keepdim(logits, Y):
    """The row maximum without keepdim: (n, V) - (n,) broadcasts against the columns (or fails)."""
    m = logits.max(dim=1).values.detach()
    shifted = logits - m
    return (shifted.exp().sum(dim=1).log() - shifted[torch.arange(len(Y)), Y]).mean()


def ce_variable_named_logsumexp(logits, Y):
    """Right: by hand, with a local variable that happens to be called logsumexp."""
    m = logits.max(dim=1, keepdim=True).values
    logsumexp = m.squeeze(1) + (logits - m).exp().sum(dim=1).log()
    softmax = None  # noqa: F841 - a name, not a call
    return (logsumexp - logits[torch.arange(len(Y)), Y]).mean()


def ce_one_hot_without_num_classes(logits, Y):
    """Picks the targets' log-probabilities with F.one_hot(Y), as long as Y.max() + 1, not V."""
    z = logits - logits.max(1, keepdim=True).values
    logp = z - z.exp().sum(1, keepdim=True).log()
    return -(logp * F.one_hot(Y)).sum(1).mean()


def ce_one_hot(logits, Y):
    """Right, differently: the targets picked by a one-hot mask of the vocabulary's length."""
    z = logits - logits.max(1, keepdim=True).values
    logp = z - z.exp().sum(1, keepdim=True).log()
    return -(logp * F.one_hot(Y, logits.shape[1])).sum(1).mean()


def ce_detached(logits, Y):
    return torch.tensor(ce_log_of_sum_naive(logits.double(), Y).item())


# ----------------------------------------------------------------------- sgd_step


def _forward(X, C, W1, b1, W2, b2):
    return torch.tanh(_emb(C, X) @ W1 + b1) @ W2 + b2


def sgd_no_zero_grad(params, X, Y, lr):
    loss = F.cross_entropy(_forward(X, *params), Y)
    loss.backward()
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
    return loss.item()


def sgd_ascent(params, X, Y, lr):
    for p in params:
        p.grad = None
    loss = F.cross_entropy(_forward(X, *params), Y)
    loss.backward()
    with torch.no_grad():
        for p in params:
            p += lr * p.grad
    return loss.item()


def sgd_skips_embedding(params, X, Y, lr):
    """Updates the layers but never C."""
    for p in params:
        p.grad = None
    loss = F.cross_entropy(_forward(X, *params), Y)
    loss.backward()
    with torch.no_grad():
        for p in params[1:]:
            p -= lr * p.grad
    return loss.item()


def sgd_out_of_place(params, X, Y, lr):
    """Rebinds the loop variable: the caller's tensors never change."""
    for p in params:
        p.grad = None
    loss = F.cross_entropy(_forward(X, *params), Y)
    loss.backward()
    for p in params:
        p = p - lr * p.grad  # noqa: F841
    return loss.item()


def sgd_replaces_in_list(params, X, Y, lr):
    """Puts new leaf tensors into the list: the list sees the update, the caller's tensors do not."""
    new = [p.detach().clone().requires_grad_() for p in params]
    loss = make_sgd_step(_forward)(new, X, Y, lr)
    params[:] = new
    return loss


def sgd_loss_after(params, X, Y, lr):
    for p in params:
        p.grad = None
    loss = F.cross_entropy(_forward(X, *params), Y)
    loss.backward()
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
        return F.cross_entropy(_forward(X, *params), Y).item()


def sgd_fixed_lr(params, X, Y, lr):
    """Ignores the lr argument."""
    for p in params:
        p.grad = None
    loss = F.cross_entropy(_forward(X, *params), Y)
    loss.backward()
    with torch.no_grad():
        for p in params:
            p -= 0.1 * p.grad
    return loss.item()


def sgd_sum_loss(params, X, Y, lr):
    """Sums the loss over the batch: steps 24x too large for this batch."""
    for p in params:
        p.grad = None
    loss = F.cross_entropy(_forward(X, *params), Y, reduction="sum")
    loss.backward()
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
    return loss.item() / len(Y)


def sgd_returns_tensor(params, X, Y, lr):
    """Right update, but returns the loss tensor (graph and all) instead of a Python float."""
    for p in params:
        p.grad = None
    loss = F.cross_entropy(_forward(X, *params), Y)
    loss.backward()
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
    return loss.detach()


# ------------------------------------------------------------------------ sample


def _probs(params, context):
    return F.softmax(_forward(torch.tensor([context]), *params), dim=1)


def make_forward(embed):
    """The lesson's forward on top of the given embed (it calls the learner's by name)."""
    def forward(X, C, W1, b1, W2, b2):
        return torch.tanh(embed(C, X) @ W1 + b1) @ W2 + b2
    forward.__name__ = f"forward_using_{embed.__name__}"
    return forward


def make_sample(forward):
    """A right sample on top of the given forward."""
    def sample(params, itos, generator, block_size=3):
        context, out = [0] * block_size, []
        with torch.no_grad():
            while True:
                probs = F.softmax(forward(torch.tensor([context]), *params), dim=1)
                ix = torch.multinomial(probs, 1, generator=generator).item()
                if ix == 0:
                    return "".join(out)
                out.append(itos[ix])
                context = context[1:] + [ix]
    sample.__name__ = f"sample_using_{forward.__name__}"
    return sample


def make_sgd_step(forward):
    """A right sgd_step on top of the given forward."""
    def sgd_step(params, X, Y, lr):
        for p in params:
            p.grad = None
        loss = F.cross_entropy(forward(X, *params), Y)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad
        return loss.item()
    sgd_step.__name__ = f"sgd_step_using_{forward.__name__}"
    return sgd_step


def _sample_with(draw, name, doc):
    """A sampler whose next token is draw(logits, generator), logits of shape (1, V)."""
    def sample(params, itos, generator, block_size=3):
        context, out = [0] * block_size, []
        with torch.no_grad():
            while True:
                ix = int(draw(_forward(torch.tensor([context]), *params), generator))
                if ix == 0:
                    return "".join(out)
                out.append(itos[ix])
                context = context[1:] + [ix]
    sample.__name__, sample.__doc__ = name, doc
    return sample


def _inverse_cdf(logits, generator):
    cdf = F.softmax(logits, dim=1)[0].cumsum(0)
    return min(int(torch.searchsorted(cdf, torch.rand(1, generator=generator) * cdf[-1])), len(cdf) - 1)


sample_temperature = _sample_with(
    lambda logits, g: torch.multinomial(F.softmax(logits / 2.0, dim=1), 1, generator=g),
    "sample_temperature", "Draws from softmax(logits / 2): flatter than the model's probabilities.")
sample_sharpened = _sample_with(
    lambda logits, g: torch.multinomial(F.softmax(logits * 2.0, dim=1), 1, generator=g),
    "sample_sharpened", "Draws from softmax(2 * logits): sharper than the model's probabilities.")
sample_float64_slice = _sample_with(
    lambda logits, g: torch.multinomial(F.softmax(logits.double(), dim=1)[0], 1, replacement=False, generator=g),
    "sample_float64_slice", "Right: float64 probabilities, a (V,) row, without replacement.")
sample_inverse_cdf = _sample_with(
    _inverse_cdf, "sample_inverse_cdf", "Right: its own draw, a uniform number from the generator against the CDF.")


def sample_global_rng(params, itos, generator, block_size=3):
    context, out = [0] * block_size, []
    while True:
        ix = torch.multinomial(_probs(params, context), 1).item()
        if ix == 0:
            return "".join(out)
        out.append(itos[ix])
        context = context[1:] + [ix]


def sample_softmax_dim0(params, itos, generator, block_size=3):
    """Softmax over the batch dimension of the (1, V) logits: all ones, so uniform."""
    context, out = [0] * block_size, []
    while True:
        probs = F.softmax(_forward(torch.tensor([context]), *params), dim=0)
        ix = torch.multinomial(probs, 1, generator=generator).item()
        if ix == 0:
            return "".join(out)
        out.append(itos[ix])
        context = context[1:] + [ix]


def sample_max_len(params, itos, generator, block_size=3):
    """Stops after 20 characters even if '.' was never sampled."""
    context, out = [0] * block_size, []
    for _ in range(20):
        ix = torch.multinomial(_probs(params, context), 1, generator=generator).item()
        if ix == 0:
            break
        out.append(itos[ix])
        context = context[1:] + [ix]
    return "".join(out)


def sample_keeps_end(params, itos, generator, block_size=3):
    context, out = [0] * block_size, []
    while True:
        ix = torch.multinomial(_probs(params, context), 1, generator=generator).item()
        out.append(itos[ix])
        if ix == 0:
            return "".join(out)
        context = context[1:] + [ix]


def sample_argmax(params, itos, generator, block_size=3):
    context, out = [0] * block_size, []
    for _ in range(50):
        ix = int(_probs(params, context).argmax())
        if ix == 0:
            break
        out.append(itos[ix])
        context = context[1:] + [ix]
    return "".join(out)


def sample_context_reversed(params, itos, generator, block_size=3):
    """Pushes the new token at the front of the window."""
    context, out = [0] * block_size, []
    while True:
        ix = torch.multinomial(_probs(params, context), 1, generator=generator).item()
        if ix == 0:
            return "".join(out)
        out.append(itos[ix])
        context = [ix] + context[:-1]


def sample_context_frozen(params, itos, generator, block_size=3):
    """Never slides the window: loops forever on a model that always continues."""
    context, out = [0] * block_size, []
    while True:
        ix = torch.multinomial(_probs(params, context), 1, generator=generator).item()
        if ix == 0:
            return "".join(out)
        out.append(itos[ix])


def sample_context_drops_oldest_wrong_end(params, itos, generator, block_size=3):
    """Slides the wrong way (context[:-1] + [ix]): the start tokens are never forgotten."""
    context, out = [0] * block_size, []
    while True:
        ix = torch.multinomial(_probs(params, context), 1, generator=generator).item()
        if ix == 0:
            return "".join(out)
        out.append(itos[ix])
        context = context[:-1] + [ix]


WRONG = {
    "build_dataset": [dataset_aliased_context, dataset_no_return, dataset_shifted_by_one, dataset_target_shifted,
                      dataset_no_end, dataset_no_padding, dataset_fixed_block, dataset_padding_after, dataset_float, dataset_y_column],
    "embed": [embed_no_flatten, embed_wrong_view, embed_transposed, embed_reversed, embed_sum, embed_detached,
              embed_one_hot_without_num_classes],
    "forward": [forward_softmax, forward_relu, forward_no_tanh, forward_no_b1, forward_no_b2, forward_tanh_on_logits,
                forward_bias_after_tanh, forward_transposed_embedding, forward_w1_data],
    "cross_entropy": [ce_naive, ce_log_of_sum_naive, ce_softmax_dim0, ce_sum, ce_wrong_index,
                      ce_max_not_added_back, ce_global_max, ce_builtin, ce_builtin_method, ce_detached, ce_alias,
                      ce_alias_logsumexp, ce_max_no_keepdim, ce_one_hot_without_num_classes],
    "sgd_step": [sgd_no_zero_grad, sgd_ascent, sgd_skips_embedding, sgd_out_of_place, sgd_loss_after, sgd_fixed_lr,
                 sgd_sum_loss, sgd_returns_tensor, sgd_replaces_in_list],
    "sample": [sample_global_rng, sample_softmax_dim0, sample_max_len, sample_keeps_end, sample_argmax,
               sample_context_reversed, sample_context_frozen, sample_context_drops_oldest_wrong_end,
               sample_temperature, sample_sharpened],
}

RIGHT = {  # correct answers, in a form the checks must accept
    "cross_entropy": [ce_variable_named_logsumexp, ce_one_hot],
    "embed": [embed_one_hot],
    "sample": [sample_float64_slice, sample_inverse_cdf],
}
