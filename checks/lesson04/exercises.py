"""Checks of lesson 04 (manual backprop), one function per exercise.

The referee is autograd run in float64 on the check's own forward pass (the
same atoms as the lesson's, written again here so that the checks need
nothing from solutions/). The learner's functions get float32 inputs, as in
the lesson, and their answers are compared with the float64 truth:

- shapes first: a (1, 27) gradient for a (27,) tensor fails, whatever
  broadcasting would make of it;
- then values, element by element, with |got - true| <= RTOL * |true| +
  ATOL * scale, where scale is the largest |true| of that gradient (or of the
  gradient it is made from, for the two that are about zero: logit_maxes and
  b1). Correct float32 code stays below 1e-6 of scale (measured over 20
  seeds: extras/benchmarks/lesson04.md), 50 times inside this; the classic
  mistakes are off by 1 % or much more.

Each exercise is run on several batches: square sizes (n = T*E = H = 30,
so a transposed matmul keeps its shape and must be caught by its values), the
standard sizes, a batch whose variance is as small as eps (for the BatchNorm
statistics), and, for the two gradients that are about zero in the standard
set-up, a loss with one more use of counts_sum (so that logit_maxes matters)
or of hprebn (so that b1 matters). A failure lists every gradient of
the exercise in order (name, ok, max difference) and names the first wrong
one: the ones after it are computed from it.

The learner's functions get copies of plain data through their handles;
train_step runs on the learner's side in a `_probe_*` function (its in-place
updates come back as a snapshot after each step), and every true value is
computed here, never in a probe.
"""

import torch
import torch.nn.functional as F

from course.assertions import CheckFailure, expect, fail, judged_alone
from course.grading.handles import LearnerError, exercise

RTOL = 1e-3  # per element, relative to the true value
ATOL = 5e-5  # per element, relative to the gradient's scale
BN_EPS = 1e-5

# The 26 gradients, in the order backprop computes them.
GRADIENTS = ["logprobs", "probs", "counts_sum_inv", "counts_sum", "counts", "norm_logits", "logit_maxes",
             "logits", "h", "W2", "b2", "hpreact", "bngain", "bnbias", "bnraw", "bnvar_inv", "bnvar", "bndiff2",
             "bndiff", "bnmeani", "hprebn", "embcat", "W1", "b1", "emb", "C"]

# exercise -> (its arguments, the gradients it returns, in order)
EXERCISES = {
    "backward_loss": (["Yb", "probs", "counts", "counts_sum"],
                      ["logprobs", "probs", "counts_sum_inv", "counts_sum"]),
    "backward_softmax": (["logits", "counts", "counts_sum_inv", "dprobs", "dcounts_sum"],
                         ["counts", "norm_logits", "logit_maxes", "logits"]),
    "backward_output_layer": (["h", "W2", "dlogits"], ["h", "W2", "b2", "hpreact"]),
    "backward_bn_affine": (["bnraw", "bngain", "bndiff", "dhpreact"], ["bngain", "bnbias", "bnraw", "bnvar_inv"]),
    "backward_bn_stats": (["bndiff", "bnvar", "bnvar_inv", "dbnraw", "dbnvar_inv"],
                          ["bnvar", "bndiff2", "bndiff", "bnmeani", "hprebn"]),
    "backward_first_layer": (["emb", "embcat", "W1", "dhprebn"], ["embcat", "W1", "b1", "emb"]),
    "backward_embedding": (["C", "Xb", "demb"], ["C"]),
}

# Where each tensor is used in the forward pass: its gradient is computed from theirs.
USED_BY = {"C": ["emb"], "emb": ["embcat"], "embcat": ["hprebn"], "W1": ["hprebn"], "b1": ["hprebn"],
           "hprebn": ["bnmeani", "bndiff"], "bnmeani": ["bndiff"], "bndiff": ["bndiff2", "bnraw"],
           "bndiff2": ["bnvar"], "bnvar": ["bnvar_inv"], "bnvar_inv": ["bnraw"], "bnraw": ["hpreact"],
           "bngain": ["hpreact"], "bnbias": ["hpreact"], "hpreact": ["h"], "h": ["logits"], "W2": ["logits"],
           "b2": ["logits"], "logits": ["logit_maxes", "norm_logits"], "logit_maxes": ["norm_logits"],
           "norm_logits": ["counts"], "counts": ["counts_sum", "probs"], "counts_sum": ["counts_sum_inv"],
           "counts_sum_inv": ["probs"], "probs": ["logprobs"], "logprobs": []}


def computed_from(name):
    """Every gradient that d<name> is computed from (directly or not)."""
    out = set()
    for user in USED_BY[name]:
        out |= {user} | computed_from(user)
    return out


# The two gradients that are about zero in the standard set-up are measured
# against the scale of the gradient they are summed from.
SCALE_OF = {"logit_maxes": "norm_logits", "b1": "hprebn"}

HINTS = {
    "logprobs": "loss = -mean of logprobs[i, Yb[i]]: -1/n at each target, 0 elsewhere (n = batch size)",
    "probs": "d log(x)/dx = 1/x, times the upstream gradient dlogprobs",
    "counts_sum_inv": "probs = counts * counts_sum_inv broadcasts counts_sum_inv (n, 1) over the columns: "
                      "sum over dim 1 with keepdim=True",
    "counts_sum": "d(x**-1)/dx = -x**-2",
    "counts": "counts is used twice (in probs and in counts_sum): add both contributions; "
              "counts_sum (n, 1) was a sum over dim 1, so its gradient broadcasts back",
    "norm_logits": "d exp(x)/dx = exp(x) = counts",
    "logit_maxes": "norm_logits = logits - logit_maxes broadcasts logit_maxes (n, 1): minus the sum over dim 1, "
                   "keepdim=True",
    "logits": "logits is used twice: in norm_logits (gradient passes as is) and through the max, which picks one "
              "element per row (a one-hot of the argmax times dlogit_maxes); the check feeds a loss where "
              "dlogit_maxes is not zero",
    "h": "logits = h @ W2 + b2, so dh = dlogits @ W2.T (check the shapes: (n, H) = (n, V) @ (V, H))",
    "W2": "dW2 = h.T @ dlogits: (H, V) = (H, n) @ (n, V)",
    "b2": "b2 (V,) is broadcast over the batch: sum dlogits over dim 0, without keepdim, to get shape (V,)",
    "hpreact": "d tanh(x)/dx = 1 - tanh(x)**2 = 1 - h**2",
    "bngain": "bngain (1, H) is broadcast over the batch: sum (bnraw * dhpreact) over dim 0 with keepdim=True",
    "bnbias": "bnbias (1, H) is broadcast over the batch: sum dhpreact over dim 0 with keepdim=True",
    "bnraw": "hpreact = bngain * bnraw + bnbias: dbnraw = bngain * dhpreact",
    "bnvar_inv": "bnraw = bndiff * bnvar_inv broadcasts bnvar_inv (1, H): sum (bndiff * dbnraw) over dim 0, "
                 "keepdim=True",
    "bnvar": "d (v + eps)**-0.5 / dv = -0.5 * (v + eps)**-1.5 (keep eps: it matters when the variance is small)",
    "bndiff2": "bnvar = bndiff2.sum(0, keepdim=True) / (n - 1) (Bessel): each element gets dbnvar / (n - 1)",
    "bndiff": "bndiff is used twice (bnraw and bndiff2): bnvar_inv * dbnraw + 2 * bndiff * dbndiff2",
    "bnmeani": "bndiff = hprebn - bnmeani broadcasts bnmeani (1, H): minus the sum of dbndiff over dim 0, keepdim",
    "hprebn": "hprebn is used twice: in bndiff (as is) and in bnmeani = sum / n (each element gets dbnmeani / n)",
    "embcat": "hprebn = embcat @ W1 + b1: dembcat = dhprebn @ W1.T",
    "W1": "dW1 = embcat.T @ dhprebn: (T*E, H) = (T*E, n) @ (n, H)",
    "b1": "b1 (H,) is broadcast over the batch: db1 = dhprebn.sum(0). BatchNorm makes it about zero in the "
          "standard net, so the check also feeds a dhprebn with a non-zero batch sum",
    "emb": "embcat = emb.view(n, -1) only reshapes: view dembcat back to emb's shape",
    "C": "emb = C[Xb] copies row Xb[i, t] of C: add demb[i, t] into dC[Xb[i, t]] (rows picked twice add up)",
}

SIZES = {  # vocab V, context T, embedding E, hidden H, batch n
    "standard": dict(V=27, T=3, E=10, H=64, n=32),
    # n = T*E = H: transposes in the first layer keep their shape. V, T and E stay
    # those of the lesson, so code that hard-codes 27, 3 or 10 is not failed for it.
    "square": dict(V=27, T=3, E=10, H=30, n=30),
}

SETUPS = {
    "standard": "the standard sizes (n=32, V=27, T*E=30, H=64)",
    "square": "square sizes (n = T*E = H = 30: a transposed matmul or a sum over the wrong dimension "
              "keeps its shape here)",
    "small_variance": "a batch where hprebn's variance (about 1e-5) is as small as eps, so that eps matters",
    "probe_counts_sum": "a loss that also uses counts_sum (loss + sum(counts_sum * R)), so that "
                        "dlogit_maxes is not zero",
    "probe_hprebn": "a loss that also uses hprebn (loss + sum(hprebn * R)), like a net without BatchNorm "
                    "after the first layer, so that db1 is not zero",
    "last_token_unused": "a batch in which the last token of the vocabulary is never an input, never a target "
                         "and never the largest logit of a row",
}

ONE_HOT = ("F.one_hot(ix) without num_classes makes vectors as long as the largest index in ix, plus one: "
           "shorter than V when the batch lacks the last token")


# ------------------------------------------------------------------ the referee


def init_params(sizes, generator, dtype=torch.float64):
    """Parameters with every entry non-zero, so no gradient can hide behind a zero."""
    V, T, E, H = sizes["V"], sizes["T"], sizes["E"], sizes["H"]
    g = generator
    p = {
        "C": torch.randn(V, E, generator=g, dtype=dtype),
        "W1": torch.randn(T * E, H, generator=g, dtype=dtype) * (5 / 3) / (T * E) ** 0.5,
        "b1": torch.randn(H, generator=g, dtype=dtype) * 0.1,
        "W2": torch.randn(H, V, generator=g, dtype=dtype) * 0.1,
        "b2": torch.randn(V, generator=g, dtype=dtype) * 0.1,
        "bngain": 1.0 + 0.1 * torch.randn(1, H, generator=g, dtype=dtype),
        "bnbias": 0.1 * torch.randn(1, H, generator=g, dtype=dtype),
    }
    return p


def forward(p, Xb, Yb, eps=BN_EPS):
    """The lesson's forward pass, atom by atom; returns every intermediate."""
    n = Xb.shape[0]
    c = {}
    c["emb"] = p["C"][Xb]
    c["embcat"] = c["emb"].view(n, -1)
    c["hprebn"] = c["embcat"] @ p["W1"] + p["b1"]
    c["bnmeani"] = c["hprebn"].sum(0, keepdim=True) / n
    c["bndiff"] = c["hprebn"] - c["bnmeani"]
    c["bndiff2"] = c["bndiff"] ** 2
    c["bnvar"] = c["bndiff2"].sum(0, keepdim=True) / (n - 1)
    c["bnvar_inv"] = (c["bnvar"] + eps) ** -0.5
    c["bnraw"] = c["bndiff"] * c["bnvar_inv"]
    c["hpreact"] = p["bngain"] * c["bnraw"] + p["bnbias"]
    c["h"] = torch.tanh(c["hpreact"])
    c["logits"] = c["h"] @ p["W2"] + p["b2"]
    c["logit_maxes"] = c["logits"].max(1, keepdim=True).values
    c["norm_logits"] = c["logits"] - c["logit_maxes"]
    c["counts"] = c["norm_logits"].exp()
    c["counts_sum"] = c["counts"].sum(1, keepdim=True)
    c["counts_sum_inv"] = c["counts_sum"] ** -1
    c["probs"] = c["counts"] * c["counts_sum_inv"]
    c["logprobs"] = c["probs"].log()
    c["loss"] = -c["logprobs"][torch.arange(n), Yb].mean()
    return c


def make_case(setup="standard", seed=0):
    """One batch: float32 inputs for the learner and float64 true gradients.

    Returns (inputs, true): inputs maps every parameter, intermediate, Xb, Yb
    and (as 'd' + name) every true gradient, cast to float32; true maps each
    of the 26 names to its float64 gradient.
    """
    sizes = SIZES["square" if setup == "square" else "standard"]
    g = torch.Generator().manual_seed(1000 + seed)
    n, T, V = sizes["n"], sizes["T"], sizes["V"]
    Xb = torch.randint(0, V, (n, T), generator=g)
    Yb = torch.randint(0, V, (n,), generator=g)
    if setup == "last_token_unused":
        Xb, Yb = Xb % (V - 1), Yb % (V - 1)
    p64 = init_params(sizes, g)
    if setup == "last_token_unused":
        p64["b2"][-1] -= 30.0  # the last logit of every row far below the others: never the row's max
    if setup == "small_variance":
        p64["W1"] *= 0.002  # hprebn's variance about 1e-5, like eps: forgetting eps shows
        p64["b1"] *= 0.002  # and no large offset, whose float32 rounding would swamp the deviations
    p64 = {k: v.requires_grad_() for k, v in p64.items()}
    c64 = forward(p64, Xb, Yb)
    loss = c64["loss"]
    if setup == "probe_counts_sum":
        loss = loss + (c64["counts_sum"] * torch.randn(n, 1, generator=g, dtype=torch.float64)).sum()
    if setup == "probe_hprebn":
        loss = loss + (c64["hprebn"] * 0.01 * torch.randn(n, sizes["H"], generator=g, dtype=torch.float64)).sum()
    values = {**p64, **{k: v for k, v in c64.items() if k != "loss"}}
    for v in values.values():
        if not v.is_leaf:
            v.retain_grad()
    loss.backward()
    true = {k: values[k].grad.detach() for k in GRADIENTS}

    p32 = {k: v.detach().float() for k, v in p64.items()}
    c32 = forward(p32, Xb, Yb)  # the learner's inputs: a genuine float32 forward pass
    inputs = {**p32, **c32, "Xb": Xb, "Yb": Yb, **{"d" + k: v.float() for k, v in true.items()}}
    return inputs, true


# ------------------------------------------------------------------ comparing


observed = None  # set to a list to record (label, max abs diff, relative diff) of every comparison


def compare(name, got, expected, scale=None):
    """One row of a report: (name, ok, text)."""
    label = "d" + name
    row = _compare(label, got, expected, scale)
    if observed is not None and row[3] is not None:
        observed.append((label, row[3], row[4]))
    return row[:3]


def _compare(label, got, expected, scale):
    name = label[1:]
    if got is None:
        return label, False, "missing (None)", None, None
    if not isinstance(got, torch.Tensor):
        return label, False, f"is a {type(got).__name__}, expected a tensor", None, None
    if tuple(got.shape) != tuple(expected.shape):
        return (label, False, f"shape {tuple(got.shape)}, expected {tuple(expected.shape)} (the shape of {name})",
                None, None)
    a = got.detach().to(torch.float64)
    e = expected.to(torch.float64)
    scale = max(float(e.abs().max()), float(scale or 0.0), 1e-30)
    if torch.isnan(a).any():
        return label, False, "contains NaN", None, None
    diff = (a - e).abs()
    bad = diff > RTOL * e.abs() + ATOL * scale
    worst = float(diff.max())
    text = f"max abs diff {worst:.2e} (relative {worst / scale:.1e})"
    if bad.any():
        first = [int(i) for i in torch.nonzero(bad)[0]]
        text += f"; first wrong at {first}: expected {float(e[tuple(first)]):.4g}, got {float(a[tuple(first)]):.4g}"
    return label, not bool(bad.any()), text, worst, worst / scale


def report(rows, title, hint=None, got=None, true=None):
    """Raise CheckFailure listing every row and naming the first wrong one (and, of the wrong ones after
    it, those computed from it). With the learner's gradients `got` and the true ones, spot aliasing."""
    wrong = [r for r in rows if not r[1]]
    if not wrong:
        return
    width = max(len(r[0]) for r in rows)
    lines = [f"{title}"]
    lines += [f"  {label:<{width}}  {'ok' if ok else 'WRONG':<5}  {text}" for label, ok, text in rows]
    first = wrong[0][0]
    if len(rows) > 1:
        after = [r[0] for r in wrong[1:] if r[0][1:] in GRADIENTS and first[1:] in computed_from(r[0][1:])]
        lines.append(f"  first wrong: {first}" + (f" (fix it first: {', '.join(after)} "
                                                   f"{'is' if len(after) == 1 else 'are'} computed from it)"
                                                   if after else ""))
    hint = hint or _aliasing_hint(first[1:], got, true) or HINTS[first[1:]]
    raise CheckFailure("\n".join(lines) + f"\n  hint: {hint}")


def _aliasing_hint(name, got, true):
    """A hint when the wrong d<name> holds the very values of another returned gradient that should differ:
    `dother = dname` then an in-place `dother += ...` changes both (one tensor, two names)."""
    if not got or not isinstance(got.get(name), torch.Tensor):
        return None
    for other, t in got.items():
        if (other != name and isinstance(t, torch.Tensor) and t.shape == got[name].shape
                and torch.equal(t, got[name]) and not torch.allclose(true[other], true[name])):
            return (f"d{name} holds the values of d{other}: after `d{other} = d{name}`, an in-place `+=` on one "
                    f"changes both (they are one tensor). Start from a copy (d{name}.clone()) or write "
                    f"d{other} = d{name} + ...")
    return None


def rows_for(names, got, true):
    scale = {k: float(true[SCALE_OF[k]].abs().max()) for k in SCALE_OF}
    return [compare(k, got.get(k), true[k], scale.get(k)) for k in names]


def table(rows):
    """The rows of a report as text, for printing in the lesson."""
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{label:<{width}}  {'ok' if ok else 'WRONG':<5}  {text}" for label, ok, text in rows)


def gradient_table(grads, reference):
    """Compare a dict of gradients with reference ones (e.g. autograd's), in
    backprop order, and return the report as text (printed by the lesson)."""
    names = [k for k in GRADIENTS if k in reference]
    return table(rows_for(names, {k: grads.get(k) for k in names}, reference))


# ------------------------------------------------------------------ the seven steps


def _call(exercise, fn, inputs):
    args, outs = EXERCISES[exercise]
    result = fn(*[inputs[a].clone() for a in args])  # clones: in-place edits cannot touch the referee's tensors
    what = f"{exercise}({', '.join(args)})"
    if len(outs) == 1 and isinstance(result, torch.Tensor):
        result = (result,)
    names = ", ".join("d" + o for o in outs)
    expect(isinstance(result, (tuple, list)) and len(result) == len(outs), what,
           f"expected {'a tuple of ' if len(outs) > 1 else ''}{len(outs)} gradient{'s' if len(outs) > 1 else ''} "
           f"({names}), got {type(result).__name__}"
           + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""),
           hint=f"end with: return {names}")
    return what, dict(zip(outs, result))


def run_exercise(exercise, fn, setup="standard", seed=0):
    """Run one exercise on one batch; return its report rows (no raising)."""
    inputs, true = make_case(setup, seed)
    _, got = _call(exercise, fn, inputs)
    return rows_for(EXERCISES[exercise][1], got, true)


def _check_steps(exercise, fn, setups, seed):
    for setup in setups:
        inputs, true = make_case(setup, seed)
        try:
            what, got = _call(exercise, fn, inputs)
        except LearnerError as e:
            if setup != "last_token_unused" or e.is_a("NotImplementedError"):
                raise
            fail(f"{exercise} on {SETUPS[setup]}", f"your code raised {e.type_name}: "
                 f"{e.message.splitlines()[0][:160] if e.message else ''}", hint=ONE_HOT)
        rows = rows_for(EXERCISES[exercise][1], got, true)
        shape = setup == "last_token_unused" and any(not ok and text.startswith("shape") for _, ok, text in rows)
        report(rows, f"{what} on {SETUPS[setup]}:", hint=ONE_HOT if shape else None, got=got, true=true)


@exercise
def backward_loss(backward_loss, seed=0):
    _check_steps("backward_loss", backward_loss, ["square", "standard", "last_token_unused"], seed)


@exercise
def backward_softmax(backward_softmax, seed=0):
    _check_steps("backward_softmax", backward_softmax, ["square", "standard", "probe_counts_sum", "last_token_unused"],
                 seed)


@exercise
def backward_output_layer(backward_output_layer, seed=0):
    _check_steps("backward_output_layer", backward_output_layer, ["square", "standard"], seed)


@exercise
def backward_bn_affine(backward_bn_affine, seed=0):
    _check_steps("backward_bn_affine", backward_bn_affine, ["square", "standard"], seed)


@exercise
def backward_bn_stats(backward_bn_stats, seed=0):
    _check_steps("backward_bn_stats", backward_bn_stats, ["square", "standard", "small_variance"], seed)


@exercise
def backward_first_layer(backward_first_layer, seed=0):
    _check_steps("backward_first_layer", backward_first_layer, ["square", "standard", "probe_hprebn"], seed)


@exercise
def backward_embedding(backward_embedding, seed=0):
    _check_steps("backward_embedding", backward_embedding, ["square", "standard", "last_token_unused"], seed)


PARAMS = ["C", "W1", "b1", "W2", "b2", "bngain", "bnbias"]
INTERMEDIATES = ["emb", "embcat", "hprebn", "bnmeani", "bndiff", "bndiff2", "bnvar", "bnvar_inv", "bnraw",
                 "hpreact", "h", "logits", "logit_maxes", "norm_logits", "counts", "counts_sum",
                 "counts_sum_inv", "probs", "logprobs", "loss"]


STEPS = ["backward_loss", "backward_softmax", "backward_output_layer", "backward_bn_affine", "backward_bn_stats",
         "backward_first_layer", "backward_embedding"]
TRAIN_STEP_USES = ["cross_entropy_backward", "backward_output_layer", "batchnorm_backward", "backward_first_layer",
                   "backward_embedding"]


@exercise
def backward_all(backward_all, *steps, seed=0):
    """All 26 gradients from the learner's chain, in order, on two batches. `steps`: the learner's seven
    step functions (STEPS), which their backward_all calls; when this check fails, theirs run (optional)."""
    try:
        _backward_all(backward_all, seed)
    except (CheckFailure, LearnerError) as e:
        judged_alone(globals(), "backward_all(params, cache, Xb, Yb)", e, list(zip(STEPS, steps)), seed=seed)
        raise


def _backward_all(backward_all, seed):
    for setup in ("square", "standard"):
        inputs, true = make_case(setup, seed)
        params = {k: inputs[k].clone() for k in PARAMS}
        cache = {k: inputs[k].clone() for k in INTERMEDIATES}
        what = "backward_all(params, cache, Xb, Yb)"
        grads = backward_all(params, cache, inputs["Xb"].clone(), inputs["Yb"].clone())
        expect(isinstance(grads, dict), what, f"expected a dict of gradients, got {type(grads).__name__}",
               hint="return {'logprobs': dlogprobs, 'probs': dprobs, ..., 'C': dC}, keyed without the 'd'")
        missing = [k for k in GRADIENTS if k not in grads]
        expect(not missing, what, f"the dict has no key {missing[0]!r}" if missing else "",
               hint=f"keys are the 26 names without 'd': {', '.join(GRADIENTS[:4])}, ..., C")
        report(rows_for(GRADIENTS, grads, true), f"{what} on {SETUPS[setup]}, every gradient in order:",
               got=grads, true=true)


# ------------------------------------------------------------------ the fused backwards


@exercise
def cross_entropy_backward(cross_entropy_backward, seed=0):
    g = torch.Generator().manual_seed(2000 + seed)
    # the last: logits near 100 and spread 30, where exp overflows float32 unless the row max is subtracted
    for n, V, spread, shift in [(32, 27, 1.0, 0.0), (27, 27, 3.0, 0.0), (5, 27, 1.0, 0.0), (64, 27, 8.0, 0.0),
                                (1, 27, 2.0, 0.0), (16, 27, 30.0, 100.0)]:
        logits = (shift + torch.randn(n, V, generator=g, dtype=torch.float64) * spread).requires_grad_()
        Yb = torch.randint(0, V, (n,), generator=g)
        F.cross_entropy(logits, Yb).backward()
        what = f"cross_entropy_backward(logits, Yb) with logits of shape ({n}, {V})" + (
            f", values about {shift:g} +- {spread:g}" if shift else "")
        got = cross_entropy_backward(logits.detach().float().clone(), Yb.clone())
        hint = ("dlogits = (softmax(logits) - onehot(Yb)) / n: softmax over dim 1, minus 1 at each row's target, "
                "divided by the batch size n")
        if shift and isinstance(got, torch.Tensor) and not torch.isfinite(got).all():
            hint = ("exp of large logits overflows: subtract each row's max before exp (softmax is unchanged by it), "
                    "or use F.softmax")
        report([compare("logits", got, logits.grad)], f"{what}, compared with autograd of F.cross_entropy:", hint=hint)


def _batchnorm(hprebn, bngain, bnbias, eps):
    n = hprebn.shape[0]
    mean = hprebn.mean(0, keepdim=True)
    var = ((hprebn - mean) ** 2).sum(0, keepdim=True) / (n - 1)  # Bessel, as in the lesson
    return bngain * (hprebn - mean) / torch.sqrt(var + eps) + bnbias


@exercise
def batchnorm_backward(batchnorm_backward, seed=0):
    g = torch.Generator().manual_seed(3000 + seed)
    cases = [(32, 64, 0.5, 1.0), (27, 27, -2.0, 0.3), (8, 5, 3.0, 2.0), (100, 3, 0.0, 0.1),
             (16, 8, 0.0, 0.003)]  # the last one: variance about eps, so that eps matters
    for n, H, mean, std in cases:
        hprebn = (mean + std * torch.randn(n, H, generator=g, dtype=torch.float64)).requires_grad_()
        bngain = 1.0 + 0.5 * torch.randn(1, H, generator=g, dtype=torch.float64)
        bnbias = torch.randn(1, H, generator=g, dtype=torch.float64)
        dhpreact = torch.randn(n, H, generator=g, dtype=torch.float64) / n
        (_batchnorm(hprebn, bngain, bnbias, BN_EPS) * dhpreact).sum().backward()  # backward(grad) imports sympy: 1 s
        what = f"batchnorm_backward(hprebn, bngain, dhpreact) with hprebn of shape ({n}, {H})"
        got = batchnorm_backward(hprebn.detach().float().clone(), bngain.float(), dhpreact.float())
        report([compare("hprebn", got, hprebn.grad)], f"{what}, compared with autograd (Bessel-corrected variance):",
               hint="recompute xhat and s = (var + eps)**-0.5 from hprebn with the (n - 1) variance; then "
                    "bngain * s / n * (n * dhpreact - its sum over dim 0 - n / (n - 1) * xhat * "
                    "sum over dim 0 of (dhpreact * xhat))")


# ------------------------------------------------------------------ training without autograd


def _probe_train_steps(train_step, params, batches, lr):
    """The learner's train_step on each batch in turn, under torch.no_grad() (the gradients must be the
    learner's own): after each step, the loss it returned and the tensors then in `params`."""
    steps = []
    for Xb, Yb in batches:
        with torch.no_grad():
            loss = train_step(params, Xb.clone(), Yb.clone(), lr)
        steps.append((loss, {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in params.items()}))
    return steps


@exercise
def train_step(train_step, *uses, seed=0, steps=5, lr=0.07):
    """K steps of the learner's train_step against autograd's SGD, step by step. `uses`: the learner's
    functions of TRAIN_STEP_USES, which their train_step calls; when this check fails, theirs run (optional)."""
    try:
        _train_step(train_step, seed, steps, lr)
    except (CheckFailure, LearnerError) as e:
        judged_alone(globals(), "train_step(params, Xb, Yb, lr)", e, list(zip(TRAIN_STEP_USES, uses)), seed=seed)
        raise


def _train_step(train_step, seed, steps, lr):
    sizes = SIZES["standard"]
    g = torch.Generator().manual_seed(4000 + seed)
    n, T, V = sizes["n"], sizes["T"], sizes["V"]
    ref = {k: v.float().requires_grad_() for k, v in init_params(sizes, g).items()}
    start = {k: v.detach().clone() for k, v in ref.items()}
    what = "train_step(params, Xb, Yb, lr)"
    batches = []
    for _ in range(steps):
        Xb = torch.randint(0, V, (n, T), generator=g)
        batches.append((Xb, torch.randint(0, V, (n,), generator=g)))
    try:
        got = train_step.run(_probe_train_steps, {k: v.clone() for k, v in start.items()}, batches, lr)
    except LearnerError as e:
        if e.is_a("RuntimeError") and "grad" in e.message:
            fail(what, f"raised {e.message}", hint="train_step must not use autograd (no .backward()): "
                 "compute every gradient with your own backward functions")
        raise
    for step, ((Xb, Yb), (got_loss, mine)) in enumerate(zip(batches, got), 1):
        loss = forward(ref, Xb, Yb)["loss"]
        for p in ref.values():
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in ref.values():
                p -= lr * p.grad
        expect(isinstance(got_loss, float), what,
               f"expected the loss as a Python float, got {type(got_loss).__name__}",
               hint="return loss.item(), the loss before the update")
        expect(abs(got_loss - loss.item()) <= 1e-4 * abs(loss.item()), what,
               f"step {step}: returned loss {got_loss:.6g}, autograd's forward gives {loss.item():.6g}",
               hint="return the loss of the forward pass before the update")
        rows = []
        for k in PARAMS:
            moved = float((ref[k].detach() - start[k]).abs().max())  # how far autograd's SGD moved it so far
            got = mine.get(k)
            if not isinstance(got, torch.Tensor) or got.shape != ref[k].shape:
                rows.append(compare(k, got, ref[k].detach()))
                continue
            diff = float((got.double() - ref[k].detach().double()).abs().max())
            ok = diff <= 1e-2 * moved + 1e-6 * float(start[k].abs().max())
            if observed is not None:  # the difference as a fraction of the tolerance
                observed.append((k, diff, diff / (1e-2 * moved + 1e-6 * float(start[k].abs().max()))))
            rows.append((k, ok, f"max abs diff {diff:.2e} from autograd's SGD (it moved by {moved:.2e} so far)"))
        bad = [r for r in rows if not r[1]]
        if bad:
            width = max(len(r[0]) for r in rows)
            lines = [f"after step {step} of {steps} (lr={lr}) the parameters left autograd's SGD, first {bad[0][0]}:"]
            lines += [f"  {name:<{width}}  {'ok' if ok else 'WRONG':<5}  {text}" for name, ok, text in rows]
            fail(what, "\n".join(lines),
                 hint="update every parameter (p -= lr * grad) with the gradients of your backward functions; "
                      "make their checks pass first")
