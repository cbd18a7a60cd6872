"""Checks of lesson 01 (bigram), one function per exercise.

Each check takes the learner's function, calls it on inputs it makes itself,
and compares with an independent oracle (a plain loop, a torch built-in, or
autograd). It raises CheckFailure with a message that says what differs.
`pytest checks/lesson01` and the notebook's grading cells both call these.
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


def _words(seed, n=60, letters=string.ascii_lowercase):
    rng = random.Random(seed)
    return ["".join(rng.choice(letters) for _ in range(rng.randint(1, 8))) for _ in range(n)]


def _pairs(words, stoi):
    out = []
    for w in words:
        ids = [stoi["."]] + [stoi[c] for c in w] + [stoi["."]]
        out.extend(zip(ids, ids[1:]))
    return out


def _bigram_label(itos):
    return lambda ij: f"'{itos[ij[0]]}' -> '{itos[ij[1]]}'"


def _pair(what, result, names):
    """The two values of a function that returns a pair, after checking that it did."""
    expect(isinstance(result, (tuple, list)) and len(result) == 2, what,
           f"expected a tuple {names}, got {type(result).__name__}"
           + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""),
           hint=f"end with `return {names.strip('()')}`" + (" (a missing return gives None)" if result is None else ""))
    return result


@exercise
def build_vocab(build_vocab, seed=0):
    what = "build_vocab(words)"
    stoi, itos = _pair(what, build_vocab(["emma", "olivia", "zoe", "bob"]), "(stoi, itos)")
    expected = {c: i for i, c in enumerate(".abeilmovz")}
    assert_equal(f"{what} stoi", stoi, expected,
                 hint="'.' is 0, then the letters that occur, sorted, from 1 upwards")
    assert_equal(f"{what} itos", itos, {i: c for c, i in expected.items()}, hint="itos must invert stoi")
    words = _words(seed, letters="qwertyuio")
    stoi, itos = _pair(what, build_vocab(words), "(stoi, itos)")
    chars = sorted(set("".join(words)))
    assert_equal(f"{what} stoi (random words)", stoi, {".": 0, **{c: i + 1 for i, c in enumerate(chars)}})


@exercise
def count_bigrams(count_bigrams, seed=0):
    what = "count_bigrams(words, stoi)"
    hint = "wrap each name as '.' + name + '.': a name of length L gives L + 1 bigrams"
    for words, stoi in [(["ab"], {".": 0, "a": 1, "b": 2}),
                        (_words(seed, letters="abcde"), {c: i for i, c in enumerate(".abcde")}),
                        (_words(seed + 1), STOI)]:
        expected = torch.zeros(len(stoi), len(stoi), dtype=torch.int64)
        for i, j in _pairs(words, stoi):
            expected[i, j] += 1
        N = count_bigrams(words, stoi)
        itos = {i: c for c, i in stoi.items()}
        expect(isinstance(N, torch.Tensor), what, f"expected a torch.Tensor, got {type(N).__name__}")
        expect(N.dtype == torch.int64, what, f"dtype is {N.dtype}, expected torch.int64 (counts are integers)",
               hint="torch.zeros(V, V, dtype=torch.int64), or torch.tensor(counts, dtype=torch.int64)")
        if N.shape == expected.shape and not torch.equal(N, expected) and torch.equal(N, expected.T):
            hint = ("the table is transposed: N[i, j] counts token j *following* token i, so the row is the "
                    "current token and the column the next one")
        elif N.shape == expected.shape and not torch.equal(N, expected) and torch.equal(N, (expected > 0).long()):
            hint = ("each bigram that occurs is counted once, however often it occurs: N[xs, ys] += 1 with "
                    "repeated index pairs adds 1 only once; count in a loop, or with "
                    "N.index_put_((xs, ys), torch.ones_like(xs), accumulate=True) or torch.bincount")
        assert_close(what, N, expected, rtol=0, atol=0, hint=hint, label=_bigram_label(itos))


@exercise
def bigram_probs(bigram_probs, seed=0):
    what = "bigram_probs(N, k)"
    g = torch.Generator().manual_seed(seed)
    N = torch.randint(1, 20, (6, 6), generator=g)
    N[2, 3] = 0  # a bigram never seen
    for k in (0.0, 1.0, 0.5):
        original = N.clone()
        P = bigram_probs(N, k)
        expect(torch.equal(N, original), what, "changed the count table N in place",
               hint="compute on a copy: N.float() + k, not N += k")
        expect(isinstance(P, torch.Tensor) and P.is_floating_point(), what,
               f"expected a float tensor, got {getattr(P, 'dtype', type(P).__name__)}")
        expected = (N.double() + k) / (N.double() + k).sum(dim=1, keepdim=True)
        row_sums = P.double().sum(dim=1) if P.dim() == 2 else None
        hint = "normalise each row: divide by N.sum(dim=1, keepdim=True)"
        if row_sums is not None and not torch.allclose(row_sums, torch.ones(6, dtype=torch.float64), atol=1e-5):
            hint = f"rows must sum to 1, yours sum to {[round(x, 3) for x in row_sums.tolist()]}"
        assert_close(f"{what} with k={k}", P, expected, rtol=1e-5, atol=1e-7, hint=hint)


def _probe_many_names(sample_name, P, itos, generator, n, global_seed=None):
    """n names from the learner's sampler, one generator throughout (after seeding the global RNG)."""
    if global_seed is not None:
        torch.manual_seed(global_seed)
    return [sample_name(P, itos, generator) for _ in range(n)]


@exercise
def sample_name(sample_name, seed=0):
    what = "sample_name(P, itos, generator)"
    itos = dict(enumerate(".abc"))
    # A model with a single possible name.
    P = torch.tensor([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [1, 0, 0, 0]], dtype=torch.float32)
    name = sample_name(P, itos, torch.Generator().manual_seed(seed))
    expect(isinstance(name, str), what, f"expected a str, got {type(name).__name__}")
    assert_equal(f"{what} when '.'->a->b->'.' is certain", name, "ab",
                 hint="start from '.', sample from the row of the current token, stop at '.'; leave '.' out")

    # Reproducible from the generator alone, whatever the global random state.
    gen = torch.Generator().manual_seed(seed)
    P = torch.rand(27, 27, generator=gen) ** 3
    P[:, 0] += 0.3  # names end soon enough
    P /= P.sum(dim=1, keepdim=True)
    letters = dict(enumerate(ALPHABET))
    runs = []
    for global_seed in (1, 2):
        gen = torch.Generator().manual_seed(seed + 7)
        runs.append(sample_name.run(_probe_many_names, P, letters, gen, 20, global_seed=global_seed))
    expect(runs[0] == runs[1], what,
           "two generators with the same seed gave different names: randomness came from elsewhere",
           hint="pass generator=generator to torch.multinomial")
    gen = torch.Generator().manual_seed(seed + 8)
    expect(runs[0] != sample_name.run(_probe_many_names, P, letters, gen, 20), what,
           "generators with different seeds gave the same 20 names", hint="sample with the generator you are given")
    expect(all("." not in n for n in runs[0]), what, f"names must not contain '.', got {runs[0][:5]}")

    # Right distribution: from '.', 'a' with probability 0.3 and 'b' with 0.7, then the end.
    P = torch.tensor([[0, 0.3, 0.7, 0], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]])
    gen = torch.Generator().manual_seed(seed + 9)
    names = sample_name.run(_probe_many_names, P, itos, gen, 2000)
    expect(set(names) <= {"a", "b"}, what, f"impossible names were sampled: {sorted(set(names) - {'a', 'b'})[:5]}",
           hint="sample from row P[ix] of the current token ix")
    share = names.count("a") / len(names)
    sigma = math.sqrt(0.3 * 0.7 / len(names))
    expect(abs(share - 0.3) < 5 * sigma, what,
           f"'a' should start 30% of names, it started {share:.1%} of 2000",
           hint="sample from row P[ix] (the current token's row), not a column")


@exercise
def nll(nll, seed=0):
    what = "nll(P, words, stoi)"
    g = torch.Generator().manual_seed(seed)
    P = torch.rand(27, 27, generator=g) + 0.05
    P /= P.sum(dim=1, keepdim=True)
    words = _words(seed)
    pairs = _pairs(words, STOI)
    expected = -sum(math.log(P[i, j].item()) for i, j in pairs) / len(pairs)
    value = nll(P, words, STOI)
    expect(isinstance(value, float), what, f"returned {type(value).__name__}, expected a Python float",
           hint="end with .item() to turn a 0-dim tensor into a float")
    hint = "-(1/n) * sum of natural-log probabilities over all n bigrams of all '.'-wrapped names"
    if isinstance(value, (int, float)) and value != 0:
        if abs(value + expected) < 1e-3:
            hint = "the sign is wrong: the NLL is minus the mean log-probability"
        elif abs(value * math.log(2) - expected) < 1e-3 or abs(value * math.log(10) - expected) < 1e-3:
            hint = "use the natural log (torch.log or math.log), not log2 or log10"
        elif abs(value / len(pairs) - expected) < 1e-4:
            hint = "divide by the number of bigrams: the mean, not the sum"
    assert_scalar(what, value, expected, rtol=1e-4, atol=1e-5, hint=hint)
    uniform = torch.full((27, 27), 1 / 27)
    assert_scalar(f"{what} of the uniform model", nll(uniform, words, STOI), math.log(27), rtol=1e-4,
                  hint="the uniform model must score ln(27) = 3.2958")


@exercise
def bigram_dataset(bigram_dataset, seed=0):
    what = "bigram_dataset(words, stoi)"
    for words, stoi in [(["ab"], {".": 0, "a": 1, "b": 2}), (_words(seed), STOI)]:
        xs, ys = bigram_dataset(words, stoi)  # None: the verdict's one-line "cannot be used"
        pairs = torch.tensor(_pairs(words, stoi), dtype=torch.int64)
        for name, got, exp in (("xs", xs, pairs[:, 0]), ("ys", ys, pairs[:, 1])):
            expect(isinstance(got, torch.Tensor) and got.dtype == torch.int64, f"{what} {name}",
                   f"expected a torch.int64 tensor, got {getattr(got, 'dtype', type(got).__name__)}")
            assert_close(f"{what} {name} for {words[:3]}", got, exp, rtol=0, atol=0,
                         hint="xs[t] is a token, ys[t] the one after it; '.' opens and closes each name")


ONE_HOT = ("F.one_hot(xs) makes vectors as long as the largest index in xs, plus one; "
           "give the vocabulary size: F.one_hot(xs, num_classes=W.shape[0])")


def _probe_loss_and_grad(neural_nll, W0, xs, ys, reg):
    """The learner's loss for W = W0 (a leaf), and dloss/dW by autograd through it."""
    W = W0.clone().requires_grad_()
    loss = neural_nll(W, xs, ys, reg)
    grad = None
    if isinstance(loss, torch.Tensor) and loss.requires_grad and loss.numel() == 1:
        loss.backward()
        grad = W.grad
    return loss, grad


@exercise
def neural_nll(neural_nll, seed=0):
    what = "neural_nll(W, xs, ys, reg)"
    g = torch.Generator().manual_seed(seed)
    xs = torch.randint(0, 27, (50,), generator=g)
    ys = torch.randint(0, 27, (50,), generator=g)
    W0 = torch.randn(27, 27, generator=g)
    for reg in (0.0, 0.1):
        loss, grad = neural_nll.run(_probe_loss_and_grad, W0, xs, ys, reg)
        expect(isinstance(loss, torch.Tensor) and loss.dim() == 0, what,
               f"expected a 0-dim tensor, got {getattr(loss, 'shape', type(loss).__name__)}",
               hint="end with .mean(), and keep it a tensor (no .item()) so it can be differentiated")
        Wr = W0.clone().requires_grad_()
        expected = F.cross_entropy(Wr[xs], ys) + reg * (Wr**2).mean()
        hint = ("softmax over the vocabulary: normalise with sum(dim=1, keepdim=True); "
                "loss = -mean log p[target] + reg * (W**2).mean()")
        assert_scalar(f"{what} with reg={reg}", loss, expected.item(), rtol=1e-5, atol=1e-6, hint=hint)
        expect(loss.requires_grad and grad is not None, what, "the loss does not depend on W through autograd",
               hint="build it from W with torch operations; no .item(), .detach() or .data")
        expected.backward()
        if isinstance(grad, torch.Tensor) and grad.shape == W0.shape and torch.allclose(
                grad.double(), reg * 2 * W0.double() / W0.numel(), rtol=1e-4, atol=1e-7):
            hint = ("only the penalty's gradient reaches W: the data term is cut from the graph (W.detach(), "
                    "W.data, .item() or torch.tensor(...) on the way); compute it from W with torch operations")
        assert_close(f"gradient of {what} with respect to W, reg={reg}", grad, Wr.grad,
                     rtol=1e-4, atol=1e-6, hint=hint)
    # A batch in which the last token of the vocabulary never occurs: F.one_hot(xs) without
    # num_classes makes vectors that are too short.
    xs = torch.randint(0, 24, (40,), generator=g)
    ys = torch.randint(0, 27, (40,), generator=g)
    try:
        loss, grad = neural_nll.run(_probe_loss_and_grad, W0, xs, ys, 0.01)
    except LearnerError as e:
        if e.is_a("NotImplementedError"):
            raise
        fail(f"{what} on a batch whose inputs lack the last tokens", f"your code raised {e.type_name}: "
             f"{e.message.splitlines()[0][:160]}", hint=ONE_HOT)
    Wr = W0.clone().requires_grad_()
    expected = F.cross_entropy(Wr[xs], ys) + 0.01 * (Wr**2).mean()
    assert_scalar(f"{what} on a batch whose inputs lack the last tokens", loss, expected.item(), rtol=1e-5,
                  atol=1e-6, hint=ONE_HOT)


def _probe_sgd_steps(sgd_step, W0, xs, ys, lr, reg, steps, stale_grad=None):
    """The learner's sgd_step called `steps` times on one W (which arrives with .grad = stale_grad,
    left by an earlier backward): per step, the loss returned, W after the step, and whether W is
    still a leaf that requires grad."""
    W = W0.clone().requires_grad_()
    W.grad = None if stale_grad is None else stale_grad.clone()
    out = []
    for _ in range(steps):
        loss = sgd_step(W, xs, ys, lr, reg)
        out.append((loss, W.detach().clone(), W.is_leaf and W.requires_grad))
    return out


@exercise
def sgd_step(sgd_step, neural_nll=None, seed=0):
    """sgd_step alone; if it fails and `neural_nll` (the learner's, which their sgd_step calls) is
    given, neural_nll's own check runs, and a failure there is named as the cause."""
    try:
        _sgd_step(sgd_step, seed)
    except (CheckFailure, LearnerError) as e:
        judged_alone(globals(), "sgd_step(W, xs, ys, lr, reg)", e, [("neural_nll", neural_nll)])
        raise


def _sgd_loss(W, xs, ys, reg):
    return F.cross_entropy(W[xs], ys) + reg * (W**2).mean()


def _sgd_loss_hint(loss, W, xs, ys, lr, reg):
    """The likely mistake behind a wrong loss returned by sgd_step from weights W (float64 oracles)."""
    W = W.detach().double()
    candidates = [("return the loss computed before the update, as loss.item()", None)]
    if isinstance(loss, float):
        Wr = W.clone().requires_grad_()
        _sgd_loss(Wr, xs, ys, reg).backward()
        candidates = [
            (f"reg is not passed on: call neural_nll(W, xs, ys, reg); yours used its default 0.01, not reg={reg}",
             _sgd_loss(W, xs, ys, 0.01).item() if reg != 0.01 else None),
            (f"the penalty reg * (W**2).mean() is missing from the loss: call neural_nll(W, xs, ys, reg) with the "
             f"reg you are given (here {reg})", _sgd_loss(W, xs, ys, 0.0).item() if reg else None),
            ("return the loss computed before the update, as loss.item()",
             _sgd_loss(W - lr * Wr.grad, xs, ys, reg).item()),
        ]
        for hint, value in candidates:
            if value is not None and abs(loss - value) <= 1e-5 * abs(value) + 1e-6:
                return hint
    return "return neural_nll(W, xs, ys, reg).item(), the loss before the update, with the reg you are given"


def _sgd_step(sgd_step, seed):
    what = "sgd_step(W, xs, ys, lr, reg)"
    g = torch.Generator().manual_seed(seed)
    xs = torch.randint(0, 27, (200,), generator=g)
    ys = (xs * 3 + torch.randint(0, 3, (200,), generator=g)) % 27
    W0 = torch.randn(27, 27, generator=g)
    # The default reg (the lesson's), then others: reg is passed on to neural_nll.
    for reg, n_steps in ((0.01, 3), (0.5, 2), (0.0, 1)):
        steps = sgd_step.run(_probe_sgd_steps, W0, xs, ys, 2.0, reg, n_steps)
        Wr = W0.clone().requires_grad_()
        for step, (loss, W, still_leaf) in enumerate(steps, start=1):
            before = Wr.detach().clone()
            Wr.grad = None
            expected = _sgd_loss(Wr, xs, ys, reg)
            expected.backward()
            with torch.no_grad():
                Wr -= 2.0 * Wr.grad
            where = f"{what}: loss returned at step {step}" + (f" with reg={reg}" if reg != 0.01 else "")
            expect(still_leaf, what, f"after step {step} W is no longer a leaf that requires grad",
                   hint="update in place under torch.no_grad() (W -= lr * W.grad) or through W.data")
            expect(isinstance(loss, float), what,
                   f"step {step} returned {type(loss).__name__}, expected a Python float",
                   hint="return loss.item(): a float, not a tensor that keeps the graph alive")
            if not isinstance(loss, float) or abs(loss - expected.item()) > 1e-5 * abs(expected.item()) + 1e-6:
                assert_scalar(where, loss, expected.item(), rtol=1e-5,
                              hint=_sgd_loss_hint(loss, before, xs, ys, 2.0, reg))
            assert_close(f"{what}: W after step {step}" + (f" with reg={reg}" if reg != 0.01 else ""), W, Wr,
                         rtol=1e-4, atol=1e-5,
                         hint="W did not change: update it in place (W -= lr * W.grad under torch.no_grad(), or "
                         "W.data -= ...); W = W - ... only rebinds a local name" if torch.equal(W, before)
                         else "reset W.grad before backward(): gradients accumulate across calls"
                         if step > 1 else "W <- W - lr * dL/dW, with L = neural_nll(W, xs, ys, reg)")
    # W arrives with a .grad left by an earlier backward (an evaluation, another loop): the step must not add it.
    stale = torch.randn(27, 27, generator=g)
    [(loss, W, _)] = sgd_step.run(_probe_sgd_steps, W0, xs, ys, 2.0, 0.01, 1, stale_grad=stale)
    Wr = W0.clone().requires_grad_()
    _sgd_loss(Wr, xs, ys, 0.01).backward()
    assert_close(f"{what}: W after one step from a W whose .grad holds an earlier backward's gradient", W,
                 W0 - 2.0 * Wr.grad, rtol=1e-4, atol=1e-5,
                 hint="W.grad is not reset before backward(), so the earlier gradient is added to this one: set "
                      "W.grad = None (or zero it) before loss.backward(), not after the update")
    # A batch whose inputs lack the last tokens: every index below V is valid, whichever occur.
    where = f"{what} on a batch whose inputs lack the last tokens"
    xs, ys = torch.randint(0, 24, (60,), generator=g), torch.randint(0, 27, (60,), generator=g)
    try:
        [(loss, W, _)] = sgd_step.run(_probe_sgd_steps, W0, xs, ys, 2.0, 0.01, 1)
    except LearnerError as e:
        if e.is_a("NotImplementedError"):
            raise
        fail(where, f"your code raised {e.type_name}: {(e.message.splitlines() or [''])[0][:160]}", hint=ONE_HOT)
    Wr = W0.clone().requires_grad_()
    (F.cross_entropy(Wr[xs], ys) + 0.01 * (Wr**2).mean()).backward()
    assert_close(f"{where}: W after one step", W, W0 - 2.0 * Wr.grad, rtol=1e-4, atol=1e-5, hint=ONE_HOT)
