"""Checks of lesson 02 (MLP, Bengio et al. 2003), one function per exercise.

Each check makes its own inputs, calls the learner's function and compares
with an independent oracle: plain Python loops, float64 formulas, torch
built-ins (F.cross_entropy) and autograd. Shapes are compared before values.
`pytest checks/lesson02` and the notebook's grading cells both call these.
"""

import math
import random
import string

import torch
import torch.nn.functional as F

from course.assertions import CheckFailure, assert_close, assert_equal, assert_scalar, expect, fail, judged_alone
from course.grading.handles import LearnerError, exercise

ALPHABET = "." + string.ascii_lowercase
STOI = {c: i for i, c in enumerate(ALPHABET)}

# The short training run of the sgd_step check (see _short_run): 300 seeded steps.
# Calibrated with the reference sgd_step on torch 2.13 CPU (extras/benchmarks/lesson02.md):
# validation loss 2.539 for seed 0, 2.539-2.563 over seeds 0, 1, 2, 3, 20171 (a loop
# version with .data updates gives the same to 4 decimals). Not training gives 3.31,
# lr/10 gives 2.75. The full 200k-step run reaches 2.17 (names.txt).
SHORT_RUN_STEPS = 300
SHORT_RUN_MEASURED = 2.54
SHORT_RUN_THRESHOLD = 2.60


def _words(seed, n=40, letters=string.ascii_lowercase):
    rng = random.Random(seed)
    return ["".join(rng.choice(letters) for _ in range(rng.randint(1, 9))) for _ in range(n)]


def _windows(words, stoi, block_size, shift=0):
    """Oracle: the (context, next) pairs, built by position, not by sliding.
    shift=1 gives the classic mistake: contexts that end with their own target."""
    dot, X, Y = stoi["."], [], []
    for w in words:
        ids = [stoi[c] for c in w] + [dot]
        for t, y in enumerate(ids):
            X += [ids[t - k + shift] if t - k + shift >= 0 else dot for k in range(block_size, 0, -1)]
            Y.append(y)
    return torch.tensor(X, dtype=torch.int64).view(-1, block_size), torch.tensor(Y, dtype=torch.int64)


def _tensor(what, x, dtype=None, floating=None):
    expect(isinstance(x, torch.Tensor), what, f"expected a torch.Tensor, got {type(x).__name__}")
    if dtype is not None:
        expect(x.dtype == dtype, what, f"dtype is {x.dtype}, expected {dtype}",
               hint="build it with torch.tensor(list, dtype=torch.int64)" if dtype == torch.int64 else None)
    if floating:
        expect(x.is_floating_point(), what, f"expected a float tensor, got {x.dtype}")
    return x


def _shape(what, x, shape, hint=None):
    expect(tuple(x.shape) == tuple(shape), what, f"shape is {tuple(x.shape)}, expected {tuple(shape)}", hint)


def _pair(what, result, names):
    """The two values of a function that returns a pair, after checking that it did."""
    expect(isinstance(result, (tuple, list)) and len(result) == 2, what,
           f"expected a tuple {names}, got {type(result).__name__}"
           + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""),
           hint=f"end with `return {names.strip('()')}`" + (" (a missing return gives None)" if result is None else ""))
    return result


# ----------------------------------------------------------------- build_dataset


@exercise
def build_dataset(build_dataset, seed=0):
    what = "build_dataset(words, stoi, block_size)"
    # "emma" and "ab", written out by hand: padding at the start, '.' as the last target.
    expected_X = [[0, 0, 0], [0, 0, 5], [0, 5, 13], [5, 13, 13], [13, 13, 1], [0, 0, 0], [0, 0, 1], [0, 1, 2]]
    expected_Y = [5, 13, 13, 1, 0, 1, 2, 0]
    X, Y = _pair(what, build_dataset(["emma", "ab"], STOI, 3), "(X, Y)")
    _tensor(f"{what} X", X, torch.int64)
    _tensor(f"{what} Y", Y, torch.int64)
    hint_shape = "one example per character plus one for the end: n = sum(len(w) + 1); X is (n, block_size), Y is (n,)"
    _shape(f"{what} X for ['emma', 'ab'], block_size=3", X, (8, 3), hint_shape)
    _shape(f"{what} Y for ['emma', 'ab'], block_size=3", Y, (8,), hint_shape)
    got = [f"{''.join(ALPHABET[i] for i in x)}->{ALPHABET[y]}" for x, y in zip(X.tolist(), Y.tolist())]
    want = [f"{''.join(ALPHABET[i] for i in x)}->{ALPHABET[y]}" for x, y in zip(expected_X, expected_Y)]
    hint = "the context of a target is the block_size tokens just before it (padded with '.'), not including it"
    if torch.equal(X, _windows(["emma", "ab"], STOI, 3, shift=1)[0]):
        hint = "windows shifted by one: each context must end with the token *before* its target, not the target"
    elif len({tuple(row) for row in X[:5].tolist()}) == 1:
        hint = ("every row of 'emma' holds the same context: X.append(context) stores the list itself, and "
                "changing it in place (pop, append, item assignment) changes the rows already stored; append "
                "a copy, or make a new list for the next context")
    elif X.tolist() == expected_X:
        hint = "the contexts are right, the targets are not: Y[t] is the token right after the context X[t]"
    elif X[0].tolist() != expected_X[0]:
        hint = "the first example of 'emma' is '...->e': start with a context of '.' (index 0) only"
    assert_equal(f"{what} for ['emma', 'ab'] as 'context->next'", got, want, hint=hint)

    # Other block sizes and an alphabet whose indices are not in letter order.
    letters = "zyxwvu"
    stoi = {".": 0, **{c: i + 1 for i, c in enumerate(letters)}}
    words = _words(seed, letters=letters)
    for block_size in (1, 2, 4, 5):
        X, Y = _pair(what, build_dataset(words, stoi, block_size), "(X, Y)")
        eX, eY = _windows(words, stoi, block_size)
        _tensor(f"{what} X", X, torch.int64)
        _shape(f"{what} X with block_size={block_size}", X, eX.shape,
               hint="use the block_size argument, not a fixed 3" if X.dim() == 2 and X.shape[1] == 3 else hint_shape)
        _shape(f"{what} Y with block_size={block_size}", Y, eY.shape, hint=hint_shape)
        assert_close(f"{what} X with block_size={block_size}", X, eX, rtol=0, atol=0, hint=hint)
        assert_close(f"{what} Y with block_size={block_size}", Y, eY, rtol=0, atol=0, hint=hint)


# ------------------------------------------------------------------------- embed


def _probe_grads(fn, args, trainable, Y=None):
    """fn(*args) with args[i] a fresh leaf that requires grad for each i in `trainable`; then backward of
    out.sum(), or of cross_entropy(out, Y) when Y is given. Returns (out, {i: gradient of args[i] or None})."""
    args = [a.clone().requires_grad_() if i in trainable else a for i, a in enumerate(args)]
    out = fn(*args)
    if isinstance(out, torch.Tensor) and out.requires_grad:
        (F.cross_entropy(out, Y) if Y is not None else out.sum()).backward()
    return out, {i: args[i].grad for i in trainable}


ONE_HOT = ("F.one_hot(X) without num_classes makes vectors as long as the largest index in X, plus one: "
           "shorter than V when the last tokens do not occur; give num_classes=V (or index C[X])")


@exercise
def embed(embed, seed=0):
    what = "embed(C, X)"
    g = torch.Generator().manual_seed(seed)
    # The last contexts lack the largest tokens: every index below V is valid, whichever occur.
    for V, d, n, b, top in ((7, 4, 9, 3, 7), (27, 10, 5, 2, 27), (5, 3, 6, 5, 5), (9, 3, 4, 3, 6)):
        C = torch.randn(V, d, generator=g)
        X = torch.randint(0, top, (n, b), generator=g)
        try:
            out = embed(C, X)
        except LearnerError as e:
            if e.is_a("NotImplementedError") or int(X.max()) == V - 1:
                raise
            fail(f"{what} with C {tuple(C.shape)}, X {tuple(X.shape)} whose largest token is {int(X.max())}",
                 f"your code raised {e.type_name}: {(e.message.splitlines() or [''])[0][:160]}", hint=ONE_HOT)
        _tensor(what, out, floating=True)
        _shape(f"{what} with C {tuple(C.shape)}, X {tuple(X.shape)}", out, (n, b * d),
               hint="one row per context: C[X] is (n, b, d); flatten the last two dims with .view(n, -1)")
        expected = torch.tensor([[C[i, k].item() for i in row for k in range(d)] for row in X.tolist()])
        assert_close(f"{what} with C {tuple(C.shape)}, X {tuple(X.shape)}", out, expected, rtol=0, atol=0,
                     hint="row t must be C[X[t, 0]], then C[X[t, 1]], ...: concatenate whole embeddings, "
                          "oldest token first (no transpose before the view)")
    C = torch.randn(6, 3, generator=g)
    X = torch.tensor([[0, 1, 1], [5, 0, 2]])
    out, grads = embed.run(_probe_grads, [C, X], [0])
    expect(isinstance(out, torch.Tensor) and out.requires_grad, what,
           "the result does not depend on C through autograd", hint="index C itself; no .detach(), .data or .item()")
    assert_close(f"gradient of sum({what}) with respect to C", grads[0],
                 torch.tensor([[2.0] * 3, [2.0] * 3, [1.0] * 3, [0.0] * 3, [0.0] * 3, [1.0] * 3]), rtol=0, atol=0)


# ----------------------------------------------------------------------- forward


def _params(seed, V, d, b, H, scale=1.0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    shapes = [(V, d), (b * d, H), (H,), (H, V), (V,)]
    out = [torch.randn(s, generator=g) * scale for s in shapes]
    return [p.requires_grad_(requires_grad) for p in out]


def _forward64(X, C, W1, b1, W2, b2):
    """Oracle, written differently from the lesson: concatenation and F.linear with transposed weights.
    Differentiable; call it on float64 copies of the parameters."""
    e = torch.cat([C[X[:, j]] for j in range(X.shape[1])], dim=1)
    return F.linear(torch.tanh(F.linear(e, W1.T, b1)), W2.T, b2)


def _double(params):
    return [p.detach().double() for p in params]


FORWARD_HINT = ("the two equations of the exercise, in order: the hidden layer h from the embeddings, "
                "then the logits from h")


def _forward_hint(logits, X, C, W1, b1, W2, b2):
    """The likely mistake when the logits are wrong: the first known variant they match (float64)."""
    e = torch.cat([C[X[:, j]] for j in range(X.shape[1])], dim=1)
    pre = e @ W1 + b1
    h = torch.tanh(pre)
    e_t = C[X].transpose(1, 2).reshape(X.shape[0], -1)
    variants = {
        "the logits are unnormalised log-probabilities: no softmax at the end": torch.softmax(h @ W2 + b2, dim=1),
        "the hidden non-linearity is tanh": [torch.relu(pre) @ W2 + b2, torch.sigmoid(pre) @ W2 + b2],
        "the hidden layer has no non-linearity: h = tanh(...)": pre @ W2 + b2,
        "tanh belongs to the hidden layer only: the output layer is linear": torch.tanh(h @ W2 + b2),
        "b1 is missing (the hidden layer's bias)": torch.tanh(e @ W1) @ W2 + b2,
        "b1 goes inside the tanh, with e W1": (torch.tanh(e @ W1) + b1) @ W2 + b2,
        "b2 is missing (the output layer's bias)": h @ W2,
        "the embeddings are concatenated in the wrong order: use embed(C, X)": torch.tanh(e_t @ W1 + b1) @ W2 + b2,
    }
    for hint, outs in variants.items():
        for out in outs if isinstance(outs, list) else [outs]:
            if logits.shape == out.shape and torch.allclose(logits.double(), out, rtol=1e-4, atol=1e-4):
                return hint
    return FORWARD_HINT


@exercise
def forward(forward, embed=None, seed=0):
    """forward alone; if it fails and `embed` (the learner's, which their forward calls) is given,
    embed's own check runs, and a failure there is named as the cause."""
    try:
        _forward(forward, seed)
    except (CheckFailure, LearnerError) as e:
        judged_alone(globals(), "forward(X, C, W1, b1, W2, b2)", e, [("embed", embed)])
        raise


def _forward(forward, seed):
    what = "forward(X, C, W1, b1, W2, b2)"
    for V, d, b, H, n in ((7, 3, 3, 11, 13), (27, 10, 3, 200, 32), (5, 2, 4, 6, 1)):
        params = _params(seed + V, V, d, b, H, scale=0.7)
        g = torch.Generator().manual_seed(seed)
        X = torch.randint(0, V, (n, b), generator=g)
        logits = forward(X, *params)
        _tensor(what, logits, floating=True)
        _shape(f"{what} with V={V}, d={d}, b={b}, H={H}, n={n}", logits, (n, V),
               hint="one row of V logits per context; W1 is (b*d, H) and W2 is (H, V)")
        expected = _forward64(X, *_double(params))
        hint = FORWARD_HINT
        if not torch.allclose(logits.double(), expected, rtol=1e-4, atol=1e-4):
            hint = _forward_hint(logits, X, *_double(params))
        assert_close(f"{what} with V={V}, d={d}, b={b}, H={H}", logits, expected, rtol=1e-4, atol=1e-4, hint=hint)
    # Every parameter must take part, through autograd.
    params = _params(seed, 6, 3, 3, 5, scale=0.7)
    ref = [p.detach().double().requires_grad_() for p in params]
    X = torch.randint(0, 6, (10, 3), generator=torch.Generator().manual_seed(seed))
    Y = torch.randint(0, 6, (10,), generator=torch.Generator().manual_seed(seed + 1))
    out, grads = forward.run(_probe_grads, [X, *params], [1, 2, 3, 4, 5], Y=Y)
    expect(isinstance(out, torch.Tensor) and out.requires_grad, what,
           "the logits do not depend on the parameters through autograd",
           hint="use torch operations on the parameters; no .detach(), .data, .item() or numpy")
    F.cross_entropy(_forward64(X, *ref), Y).backward()
    for i, (name, r) in enumerate(zip(("C", "W1", "b1", "W2", "b2"), ref), start=1):
        expect(grads[i] is not None, what,
               f"{name} gets no gradient: it is not used in the forward pass, or used detached (.data, .detach())",
               hint=f"use each parameter itself ({name}, not {name}.data or {name}.detach()) so that autograd "
                    f"reaches it")
        assert_close(f"gradient of the loss of {what} with respect to {name}", grads[i], r.grad,
                     rtol=1e-4, atol=1e-6, hint="values right, gradients wrong: no .detach(), .data or in-place "
                                                "change of a parameter on the way")


# ------------------------------------------------------------------ cross_entropy

_BUILT_INS = [
    (F, "cross_entropy"), (F, "log_softmax"), (F, "softmax"), (F, "nll_loss"),
    (torch, "log_softmax"), (torch, "softmax"), (torch, "logsumexp"), (torch.special, "logsumexp"),
    (torch.special, "log_softmax"), (torch.special, "softmax"),
    (torch.Tensor, "log_softmax"), (torch.Tensor, "softmax"), (torch.Tensor, "logsumexp"),
]


KEEPDIM = ("a per-row max or sum of shape (n,) broadcasts against the columns of the (n, V) logits: "
           "keep the dimension, max(dim=1, keepdim=True), or index with [:, None]")


ONE_HOT_Y = ("F.one_hot(Y) without num_classes makes vectors as long as the largest target in Y, plus one: "
             "shorter than V when the last classes are not targets; give num_classes=logits.shape[1] (or pick "
             "the targets with [torch.arange(n), Y])")


class _BuiltIn(Exception):
    pass


def _probe_by_hand(cross_entropy, logits, Y):
    """The learner's loss and its gradient with respect to the logits, computed while the softmax
    family refuses to answer, under its own names and under any other name the learner's module
    gives it (`from torch.nn.functional import log_softmax as ls`). Only a call is refused: a
    variable called logsumexp is fine. Returns (loss, gradient, names of the built-ins it called)."""
    used, saved = [], [(owner, name, getattr(owner, name)) for owner, name in _BUILT_INS]
    module = getattr(cross_entropy, "__globals__", {})
    aliases = [(key, value, name) for key, value in list(module.items())
               for _, name, original in saved if value is original]

    def refuse(name):
        def refused(*args, **kwargs):
            used.append(name)
            raise _BuiltIn(f"{name} is not allowed in this exercise")
        return refused

    z = logits.clone().requires_grad_()
    try:
        for owner, name, _ in saved:
            setattr(owner, name, refuse(name))
        for key, _, name in aliases:
            module[key] = refuse(name)
        loss = cross_entropy(z, Y)
    except _BuiltIn:
        return None, None, used
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
        for key, original, _ in aliases:
            module[key] = original
    if isinstance(loss, torch.Tensor) and loss.requires_grad and loss.numel() == 1:
        loss.backward()
    return loss, z.grad, used


@exercise
def cross_entropy(cross_entropy, seed=0):
    what = "cross_entropy(logits, Y)"
    g = torch.Generator().manual_seed(seed)
    cases = [
        ("random logits", torch.randn(7, 5, generator=g) * 3),
        ("logits in the thousands", torch.randn(6, 4, generator=g) * 1000 + 2000),
        ("very negative logits", torch.randn(6, 4, generator=g) * 50 - 5000),
        ("one logit of 1e4 per row", torch.randn(5, 9, generator=g).index_put_(
            (torch.arange(5), torch.tensor([0, 3, 8, 2, 2])), torch.tensor(1e4))),
        ("equal large logits", torch.full((3, 27), 300.0)),
        ("as many examples as classes", torch.randn(6, 6, generator=g) * 4),  # a missing keepdim still runs
    ]
    for label, logits in cases:
        n, V = logits.shape
        Y = torch.randint(0, V, (n,), generator=g)
        if label == "one logit of 1e4 per row":
            Y[:3] = torch.tensor([0, 3, 8])  # some targets on the huge logit (loss ~0), others far below it
        try:
            loss, grad, used = cross_entropy.run(_probe_by_hand, logits, Y)
        except LearnerError as e:
            if "must match the size of tensor" not in e.message:
                raise
            # A (n,) max or sum against (n, V) names n; F.one_hot(Y) without num_classes names Y.max() + 1.
            short = int(Y.max()) + 1
            one_hot = short < V and short != n and f"({short})" in e.message
            fail(f"{what} on {label} ({n}x{V})", f"your code raised {e.type_name}: {e.message[:160]}",
                 hint=ONE_HOT_Y if one_hot else KEEPDIM)
        expect(not used, what, f"calls {', '.join(sorted(set(used)))}; this exercise asks for it by hand",
               hint="subtract the row maximum, then exp, sum, log and index")
        expect(isinstance(loss, torch.Tensor) and loss.dim() == 0, f"{what} on {label}",
               f"expected a 0-dim tensor, got {getattr(loss, 'shape', type(loss).__name__)}",
               hint="average over the examples with .mean(); keep it a tensor (no .item())")
        zr = logits.double().requires_grad_()
        ref = F.cross_entropy(zr, Y)
        value = loss.item()
        hint = "-z[t, Y[t]] + ln sum_j exp(z[t, j]), averaged over t; the sums run over the vocabulary (dim=1)"
        if math.isnan(value) or math.isinf(value):
            hint = ("exp overflowed or underflowed: subtract each row's maximum from the logits before exp "
                    "(the log-sum-exp trick)")
        elif abs(value * n - ref.item()) < 1e-3 * max(1, abs(ref.item())) and n > 1:
            hint = "the mean over examples, not the sum"
        elif n == V:
            hint = KEEPDIM
        tol = 1e-5 * max(1.0, float(logits.abs().max()) / 100)
        assert_scalar(f"{what} on {label} ({n}x{V})", loss, ref.item(), rtol=1e-5, atol=tol, hint=hint)
        expect(loss.requires_grad, what, "the loss does not depend on the logits through autograd",
               hint="no .item(), .detach() or numpy on the way")
        ref.backward()
        expect(grad is not None, what, "no gradient reached the logits")
        assert_close(f"gradient of {what} on {label}", grad, zr.grad, rtol=1e-4, atol=1e-6,
                     hint="the gradient is (softmax(z) - onehot(Y)) / n: it is wrong if the value is computed "
                          "through overflowing or detached intermediate values")


# ----------------------------------------------------------------------- sgd_step


def _sgd_oracle(params, X, Y, lr):
    for p in params:
        p.grad = None
    loss = F.cross_entropy(_forward64(X, *params), Y)
    loss.backward()
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
    return loss.item()


def _probe_sgd_steps(sgd_step, params, X, Y, lr, steps, generator=None, batch=None):
    """The learner's sgd_step, `steps` times on the same leaf parameters (on random batches of `batch`
    rows drawn with `generator` when given). Per step: the value returned, the parameters after it,
    and whether each is still a leaf that requires grad; only the last step's for a run with batches."""
    params = [p.clone().requires_grad_() for p in params]
    caller = list(params)  # the caller's own tensors: `C = params[0]` and the like must see the update

    def state():
        return (loss, [p.detach().clone() for p in params], [p.is_leaf and p.requires_grad for p in params],
                [p is q for p, q in zip(params, caller)])

    out = []
    for _ in range(steps):
        if batch:
            ix = torch.randint(0, X.shape[0], (batch,), generator=generator)
            loss = sgd_step(params, X[ix], Y[ix], lr)
        else:
            loss = sgd_step(params, X, Y, lr)
        if not batch:
            out.append(state())
    return out or [state()]


def _short_run(sgd_step, steps=SHORT_RUN_STEPS, seed=0):
    """A seeded short training run on the embedded names; returns the validation loss.

    8,000 training names, 1,000 validation names, batch 32, lr 0.1. The initial
    weights are scaled (lesson 03 explains why) so that a few hundred steps go a
    long way. The batches come from the check's own generator, so every correct
    sgd_step sees the same batches and ends within float noise of the same loss.
    """
    from course.data import load_names, split

    train_words, val_words, _ = split(load_names("embedded"))
    Xtr, Ytr = _windows(train_words[:8000], STOI, 3)
    Xval, Yval = _windows(val_words[:1000], STOI, 3)
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(27, 10, generator=g), torch.randn(30, 200, generator=g) * 0.2,
              torch.randn(200, generator=g) * 0.01, torch.randn(200, 27, generator=g) * 0.01, torch.zeros(27)]
    [(_, params, _, _)] = sgd_step.run(_probe_sgd_steps, params, Xtr, Ytr, 0.1, steps, generator=g, batch=32)
    with torch.no_grad():
        return F.cross_entropy(_forward64(Xval, *_double(params)), Yval).item()


@exercise
def sgd_step(sgd_step, forward=None, embed=None, seed=0, short_run=True):
    """sgd_step alone; if it fails and the learner's `forward` and `embed` (which their sgd_step
    calls) are given, their own checks run, and the first that fails is named as the cause."""
    try:
        _sgd_step(sgd_step, seed, short_run)
    except (CheckFailure, LearnerError) as e:
        judged_alone(globals(), "sgd_step(params, X, Y, lr)", e, [("embed", embed), ("forward", forward)])
        raise


def _sgd_step(sgd_step, seed, short_run):
    what = "sgd_step(params, X, Y, lr)"
    V, d, b, H, n = 7, 3, 3, 9, 24
    params = _params(seed, V, d, b, H, scale=0.8)
    ref = [p.detach().double().clone().requires_grad_() for p in params]
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, V, (n, b), generator=g)
    Y = (X[:, -1] * 2 + 1) % V  # a learnable rule, so the loss falls
    names = ("C", "W1", "b1", "W2", "b2")
    steps = sgd_step.run(_probe_sgd_steps, params, X, Y, 0.5, 3)
    before = params
    for step, (loss, after, leaves, same) in enumerate(steps, start=1):
        expected = _sgd_oracle(ref, X, Y, 0.5)
        for name, leaf, kept in zip(names, leaves, same):
            expect(leaf, what, f"after step {step}, {name} is no longer a leaf tensor that requires grad",
                   hint="update in place under torch.no_grad(): p -= lr * p.grad")
            expect(kept, what, f"after step {step}, the list holds a new tensor in place of {name}: the caller's "
                   f"{name} (C = params[0] and the like) never changes",
                   hint="update the tensors themselves in place (p -= lr * p.grad under torch.no_grad()); do not "
                        "put new tensors into the list")
        expect(isinstance(loss, float), what, f"step {step} returned {type(loss).__name__}, expected a Python float",
               hint="return loss.item(): a float, not a tensor that keeps the graph alive")
        hint = "return the loss before the update, as a float (loss.item())"
        assert_scalar(f"{what}: loss returned at step {step}", loss, expected, rtol=1e-5, atol=1e-6, hint=hint)
        for name, p, r, p0 in zip(names, after, ref, before):
            hint = "p <- p - lr * p.grad for every parameter in params"
            if torch.equal(p, p0):
                hint = (f"{name} did not change: update every parameter in place (p -= lr * p.grad under "
                        f"torch.no_grad()); p = p - ... only rebinds a local name")
            elif step > 1:
                hint = "reset every p.grad (to None or zero) before backward(): gradients accumulate across calls"
            assert_close(f"{what}: {name} after step {step}", p, r, rtol=1e-4, atol=1e-5, hint=hint)
        before = after
    if short_run:
        loss = _short_run(sgd_step, seed=seed)
        expect(loss < SHORT_RUN_THRESHOLD, what,
               f"a seeded {SHORT_RUN_STEPS}-step run on the embedded names reached validation loss {loss:.3f}; "
               f"a correct sgd_step reaches about {SHORT_RUN_MEASURED} (threshold {SHORT_RUN_THRESHOLD})",
               hint="update every parameter with the lr you are given, reset gradients each step")


# ------------------------------------------------------------------------ sample


class _TooLong(Exception):
    pass


class _CountingItos(dict):
    """itos that stops a sampler which never reaches '.' (it lives on the learner's side)."""

    def __init__(self, *args, limit=1000):
        super().__init__(*args)
        self.calls, self.limit = 0, limit

    def _count(self):
        self.calls += 1
        if self.calls > self.limit:
            raise _TooLong

    def __getitem__(self, key):
        self._count()
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._count()
        return super().get(key, default)


TOO_LONG = "(no '.' after 1000 characters)"


def _probe_names(sample, params, symbols, generator, block_size, n, global_seed=None):
    """n names from the learner's sampler with one generator; a name that never ends is TOO_LONG."""
    if global_seed is not None:
        torch.manual_seed(global_seed)
        random.seed(global_seed)
    names = []
    for _ in range(n):
        try:
            names.append(sample(params, _CountingItos(enumerate(symbols)), generator, block_size))
        except _TooLong:
            names.append(TOO_LONG)
    return names


def _expect_ends(what, names):
    expect(TOO_LONG not in names, what, "more than 1000 characters sampled without reaching '.'",
           hint="stop when the sampled index is 0 ('.'); slide the context: context[1:] + [ix]")


def _chain_model(logit_rows, V, block_size, position=None):
    """Parameters under which the next token depends on one context position only (the newest by
    default, or `position`, 0 being the oldest).

    C is the identity (d = V); W1 copies that position's one-hot into the
    hidden layer (tanh(2) = 0.964 where it is 1); W2 row i holds the wanted
    logits after token i, divided by tanh(2)."""
    t = math.tanh(2.0)
    position = block_size - 1 if position is None else position
    C = torch.eye(V)
    W1 = torch.zeros(block_size * V, V)
    W1[position * V + torch.arange(V), torch.arange(V)] = 2.0
    return [C, W1, torch.zeros(V), torch.as_tensor(logit_rows, dtype=torch.float32) / t, torch.zeros(V)]


# The draws of the frequency test of sample: '.' (the end) and 'a'..'g', after any context.
DRAW_PROBS = [0.2] + [0.8 * p for p in (0.35, 0.25, 0.15, 0.10, 0.07, 0.05, 0.03)]
DRAW_NAMES = 300  # about 1,500 draws: a temperature of 2 gives a chi-square of about 220
# Pearson's chi-square with 7 degrees of freedom exceeds this with probability 1e-6 for a correct sampler
# (whatever way it draws with its generator: the check's seeds fix the draws of each way, not which way).
CHI2_7_LIMIT = 40.52


def _expect_follows_softmax(what, sample, symbols, seed):
    """The tokens drawn over DRAW_NAMES names follow DRAW_PROBS (Pearson's chi-square test)."""
    V, k = len(symbols), len(DRAW_PROBS)
    rows = torch.full((V, V), -40.0)
    rows[:, :k] = torch.tensor(DRAW_PROBS).log()
    gen = torch.Generator().manual_seed(seed + 11)
    names = sample.run(_probe_names, _chain_model(rows, V, 3), symbols, gen, 3, DRAW_NAMES)
    _expect_ends(what, names)
    expect(all(isinstance(n, str) for n in names), what, f"expected str names, got {type(names[0]).__name__}")
    drawn = "".join(names)
    expect(set(drawn) <= set(symbols[1:k]), what,
           f"impossible tokens were drawn: {sorted(set(drawn) - set(symbols[1:k]))[:5]}",
           hint="draw from softmax(logits) over the vocabulary (dim=1 of the (1, V) logits)")
    counts = [len(names)] + [drawn.count(c) for c in symbols[1:k]]
    n = sum(counts)
    chi2 = sum((c - n * p) ** 2 / (n * p) for c, p in zip(counts, DRAW_PROBS))
    share = [c / n for c in counts]
    flatter = share[1] < DRAW_PROBS[1]  # the likeliest letter drawn less often than its probability
    expect(chi2 < CHI2_7_LIMIT, what,
           f"over {n} draws the tokens do not follow softmax(logits): '.' and 'a'..'g' have probabilities "
           f"{[round(p, 3) for p in DRAW_PROBS]}, drawn {[round(x, 3) for x in share]} (chi-square {chi2:.0f} "
           f"with 7 degrees of freedom; a correct sampler stays below {CHI2_7_LIMIT} but once in a million)",
           hint=("the draws are " + ("flatter" if flatter else "sharper") + " than the model's probabilities: "
                 "draw from F.softmax(logits, dim=1) itself, with no temperature (logits / T), no power of the "
                 "probabilities, no second softmax"))


@exercise
def sample(sample, forward=None, embed=None, seed=0):
    """sample alone; if it fails and the learner's `forward` and `embed` (which their sample calls)
    are given, their own checks run, and the first that fails is named as the cause."""
    try:
        _sample(sample, seed)
    except (CheckFailure, LearnerError) as e:
        judged_alone(globals(), "sample(params, itos, generator, block_size)", e, [("embed", embed), ("forward", forward)])
        raise


def _sample(sample, seed):
    what = "sample(params, itos, generator, block_size)"
    symbols = "." + string.ascii_lowercase + string.ascii_uppercase[:23]  # V = 50
    V = len(symbols)
    # Deterministic: after token i comes token i + 1, and after the last one '.'.
    rows = torch.full((V, V), -40.0)
    rows[torch.arange(V), (torch.arange(V) + 1) % V] = 40.0
    for block_size in (3, 2):
        [name] = sample.run(_probe_names, _chain_model(rows, V, block_size), symbols,
                            torch.Generator().manual_seed(seed), block_size, 1)
        _expect_ends(what, [name])
        expect(isinstance(name, str), what, f"expected a str, got {type(name).__name__}")
        expected = symbols[1:]
        hint = ("start from the all-'.' context, slide it with context[1:] + [ix], stop only when '.' "
                "is sampled (no length limit), leave '.' out of the name")
        if name.startswith(expected[:5]) and len(name) < len(expected):
            hint = f"the name stopped after {len(name)} characters without '.' being sampled: no length limit"
        elif not name.startswith(expected[0]):
            hint = (f"from the all-'.' context this model gives '{expected[0]}' probability 1, yet the name "
                    f"starts {name[:1]!r}: are the probabilities a softmax over the vocabulary (dim=1 of the "
                    f"(1, V) logits)? Over dim=0 every probability is 1")
        assert_equal(f"{what} when the model spells a {V - 1}-character name for sure (block_size={block_size})",
                     name, expected, hint=hint)
        # The oldest token decides: each symbol comes block_size times. A context slid the wrong way
        # (context[:-1] + [ix]) never forgets the start and spells 'aaaa...'.
        [name] = sample.run(_probe_names, _chain_model(rows, V, block_size, position=0), symbols,
                            torch.Generator().manual_seed(seed), block_size, 1)
        _expect_ends(what, [name])
        assert_equal(f"{what} when the next token depends on the oldest context token (block_size={block_size})",
                     name, "".join(c * block_size for c in symbols[1:]),
                     hint="the context keeps the last block_size tokens, oldest first: context = context[1:] + [ix]")

    # Right distribution: from the start 'a' with probability 0.3 and 'b' with 0.7, then the end.
    rows = torch.full((V, V), -40.0)
    rows[0, 1], rows[0, 2] = math.log(0.3), math.log(0.7)
    rows[1:, 0] = 40.0
    params = _chain_model(rows, V, 3)
    gen = torch.Generator().manual_seed(seed + 9)
    names = sample.run(_probe_names, params, symbols, gen, 3, 400)
    _expect_ends(what, names)
    expect(set(names) <= {"a", "b"}, what, f"impossible names were sampled: {sorted(set(names) - {'a', 'b'})[:5]}",
           hint="draw from softmax(logits) over the vocabulary (dim=1 of the (1, V) logits)")
    share = names.count("a") / len(names)
    expect(abs(share - 0.3) < 5 * math.sqrt(0.21 / len(names)), what,
           f"'a' should start 30% of the names, it started {share:.1%} of 400",
           hint="draw with torch.multinomial from the softmax probabilities; not argmax, not uniform: "
                + ("your draws are sharper than the model's probabilities (argmax, logits * T, a power of them?)"
                   if share < 0.3 else "your draws are flatter than the model's probabilities (uniform, logits / T, "
                                       "a second softmax?)"))

    # Every draw follows softmax(logits): 8 tokens with unequal probabilities, the same after any context.
    _expect_follows_softmax(what, sample, symbols, seed)

    # Reproducible from the generator alone, whatever the global random state.
    params = _params(seed, 27, 4, 3, 16, scale=0.5)
    params[4][0] += 1.5  # names end soon enough
    runs = [sample.run(_probe_names, params, ALPHABET, torch.Generator().manual_seed(seed + 7), 3, 20,
                       global_seed=global_seed) for global_seed in (1, 2)]
    _expect_ends(what, runs[0] + runs[1])
    expect(runs[0] == runs[1], what,
           "two generators with the same seed gave different names: randomness came from elsewhere",
           hint="pass generator=generator to torch.multinomial; do not use random or the global torch RNG")
    other = sample.run(_probe_names, params, ALPHABET, torch.Generator().manual_seed(seed + 8), 3, 20)
    expect(runs[0] != other, what, "generators with different seeds gave the same 20 names",
           hint="sample with the generator you are given")
    expect(all("." not in n for n in runs[0]), what, f"names must not contain '.', got {runs[0][:5]}")
