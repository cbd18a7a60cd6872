"""Mutation testing of the checks: do they fail small mistakes in the reference solutions?

A developer tool, not part of `make test`. For each graded exercise of a lesson it
takes the code between `### BEGIN SOLUTION` and `### END SOLUTION` in
`solutions/NN_name/name.py`, makes *mutants* by small AST edits (+ for -, `dim=0`
for `dim=1`, a dropped `keepdim=True`, `<` for `<=`, a removed statement, swapped
arguments, `.sum` for `.mean`, float64 for float32, an off-by-one in a slice or a
range, ...), and runs the exercise's own check on each mutant. A mutant that passes
its check *survived*: either it is equivalent (behaviour unchanged, or a change the
exercise's spec allows) or the check has a gap.

    python extras/mutation.py                       all lessons, 30 mutants per exercise
    python extras/mutation.py 03 07 --max 40        some lessons, more mutants
    python extras/mutation.py 01 --exercise nll     one exercise
    python extras/mutation.py 02 --list             the mutants, without running them
    python extras/mutation.py 05 --rest             the mutants beyond the sample of 30 per exercise
    python extras/mutation.py 01 --pytest 2         also judge every survivor and 2 killed mutants per
                                                    exercise through `pytest checks/lessonNN --lessons
                                                    TMP --exercise X`; report any verdict that differs

How a mutant is judged: the lesson's checks are imported once; each mutant runs in a
forked child (a time limit, a memory limit, its own global state), which loads the
mutated text with `course.loader.load` (as the probe does) and calls the exercise's
test function from `checks/lessonNN/test_*.py` with a lesson whose attributes are the
mutated module's definitions, so the check gets `Local` handles: the same check code
and the same wire round trip as the pytest route, without the probe process. A check
that fails (CheckFailure), a learner error, a crash of the check, a timeout or a
memory blow-up all count as *killed*; `--pytest N` confirms that the in-process
verdict is the pytest route's.

Mutants judged equivalent are listed in EQUIVALENT below, keyed by exercise, operator
and the mutated line, each with the reason; they are left out of the kill rate. The
mutants are sampled (a fixed seed, round robin over the kinds of edit) so that a run
is reproducible; `--max 0` runs them all.
"""

import argparse
import ast
import copy
import importlib
import json
import os
import random
import re
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course import lessons as registry  # noqa: E402

GRADE_ID = re.compile(r'^# %%.*"grade_id":\s*"([^"]*)"')

# ------------------------------------------------------------------ mutants


def solution_blocks(text):
    """[(exercise, first line, last line)] of the code between the SOLUTION markers, by grade_id."""
    blocks, exercise, start = [], None, None
    for number, line in enumerate(text.splitlines(), start=1):
        match = GRADE_ID.match(line)
        if match:
            exercise = match.group(1)
        if line.strip() == "### BEGIN SOLUTION":
            start = number + 1
        elif line.strip() == "### END SOLUTION" and start is not None:
            blocks.append((exercise, start, number - 1))
            start = None
    return blocks


SWAP_BINOP = {ast.Add: [ast.Sub], ast.Sub: [ast.Add], ast.Mult: [ast.Div], ast.Div: [ast.Mult],
              ast.FloorDiv: [ast.Div, ast.Mult], ast.Pow: [ast.Mult], ast.Mod: [ast.FloorDiv],
              ast.MatMult: [ast.Mult], ast.BitOr: [ast.BitAnd], ast.BitAnd: [ast.BitOr]}
SWAP_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
SWAP_ATTR = {"sum": ["mean"], "mean": ["sum"], "max": ["min"], "min": ["max"], "argmax": ["argmin"],
             "argmin": ["argmax"], "float64": ["float32"], "double": ["float"], "float32": ["float16"],
             "int64": ["int32"], "long": ["int"], "var": ["std"], "std": ["var"], "exp": ["exp2"],
             "log": ["log2"], "log_softmax": ["softmax"], "softmax": ["log_softmax"], "tril": ["triu"],
             "triu": ["tril"], "zeros": ["ones"], "ones": ["zeros"], "zeros_like": ["ones_like"],
             "ones_like": ["zeros_like"], "tanh": ["sigmoid"], "relu": ["gelu"], "gelu": ["relu"],
             "append": ["extend"], "items": ["values"], "rsqrt": ["sqrt"], "sqrt": ["rsqrt"],
             "cumsum": ["cumprod"], "keys": ["values"], "unsqueeze": ["squeeze"], "view": ["reshape"],
             "randn": ["rand"], "rand": ["randn"], "topk": ["sort"], "isspace": ["isalpha"]}
SWAP_BUILTIN = {"min": "max", "max": "min", "sorted": "list", "reversed": "list", "any": "all", "all": "any",
                "int": "round", "round": "int", "len": "sum"}


def _numbers(value):
    """Replacement values for a numeric constant."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return {0: [1], 1: [0, 2]}.get(value, [value + 1, value - 1])
    if isinstance(value, float):
        return [1.0] if value == 0 else [0.0, value * 2] if value < 1e-3 else [value * 2, value / 2]
    return []


def _signed(node):
    """The numeric value of a constant or of -constant, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
            and isinstance(node.operand.value, (int, float)) and not isinstance(node.operand.value, bool):
        return -node.operand.value
    return None


def _const(value):
    return ast.UnaryOp(ast.USub(), ast.Constant(-value)) if value < 0 else ast.Constant(value)


def _plus(node, k):
    return ast.BinOp(copy.deepcopy(node), ast.Add() if k > 0 else ast.Sub(), ast.Constant(abs(k)))


def expression_mutants(node):
    """(kind, description, new node) for one expression node."""
    out = []
    value = _signed(node)
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        out.append(("number", f"{node.value} -> {not node.value}", ast.Constant(not node.value)))
    elif value is not None:
        for new in _numbers(value):
            out.append(("number", f"{value!r} -> {new!r}", _const(new)))
    if isinstance(node, ast.BinOp):
        for op in SWAP_BINOP.get(type(node.op), []):
            new = copy.deepcopy(node)
            new.op = op()
            out.append(("operator", f"{type(node.op).__name__} -> {op.__name__}", new))
        if isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            out.append(("drop operand", f"drop the right operand of {type(node.op).__name__}",
                        copy.deepcopy(node.left)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)) and value is None:
        out.append(("operator", f"drop unary {type(node.op).__name__}", copy.deepcopy(node.operand)))
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in SWAP_CMP:
                new = copy.deepcopy(node)
                new.ops[i] = SWAP_CMP[type(op)]()
                out.append(("comparison", f"{type(op).__name__} -> {type(new.ops[i]).__name__}", new))
    if isinstance(node, ast.BoolOp):
        new = copy.deepcopy(node)
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        out.append(("operator", f"{type(node.op).__name__} -> {type(new.op).__name__}", new))
    if isinstance(node, ast.Attribute):
        for name in SWAP_ATTR.get(node.attr, []):
            new = copy.deepcopy(node)
            new.attr = name
            out.append(("attribute", f".{node.attr} -> .{name}", new))
        if node.attr in ("T", "mT"):
            out.append(("attribute", f"drop .{node.attr}", copy.deepcopy(node.value)))
    if isinstance(node, ast.Call):
        func = node.func
        for i, kw in enumerate(node.keywords):
            if kw.arg is not None:
                new = copy.deepcopy(node)
                del new.keywords[i]
                out.append(("keyword", f"drop {kw.arg}=", new))
        positional = [a for a in node.args if not isinstance(a, ast.Starred)]
        if len(positional) == len(node.args) >= 2 and ast.dump(node.args[0]) != ast.dump(node.args[1]):
            new = copy.deepcopy(node)
            new.args[0], new.args[1] = new.args[1], new.args[0]
            out.append(("swap arguments", "swap the first two arguments", new))
        if isinstance(func, ast.Name) and func.id == "range" and node.args:
            for k in (1, -1):
                new = copy.deepcopy(node)
                new.args[-1] = _plus(node.args[-1], k)
                out.append(("off by one", f"range end {k:+d}", new))
            if len(node.args) >= 2:
                new = copy.deepcopy(node)
                new.args[0] = _plus(node.args[0], 1)
                out.append(("off by one", "range start +1", new))
        if isinstance(func, ast.Name) and func.id in SWAP_BUILTIN:
            new = copy.deepcopy(node)
            new.func = ast.Name(SWAP_BUILTIN[func.id], ast.Load())
            out.append(("builtin", f"{func.id}() -> {SWAP_BUILTIN[func.id]}()", new))
        if isinstance(func, ast.Attribute) and func.attr in ("transpose", "permute", "view", "reshape", "item",
                                                            "clone", "detach", "contiguous", "float", "double"):
            if func.attr in ("clone", "detach", "contiguous", "item", "float", "double"):
                out.append(("drop call", f"drop .{func.attr}()", copy.deepcopy(func.value)))
    if isinstance(node, ast.Slice):
        for part in ("lower", "upper"):
            bound = getattr(node, part)
            if bound is not None and _signed(bound) is None:
                for k in (1, -1):
                    new = copy.deepcopy(node)
                    setattr(new, part, _plus(bound, k))
                    out.append(("off by one", f"slice {part} {k:+d}", new))
        if node.lower is None and node.upper is not None:
            new = copy.deepcopy(node)
            new.lower = ast.Constant(1)
            out.append(("off by one", "slice from 1", new))
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Name):
        for k in (1, -1):
            new = copy.deepcopy(node)
            new.slice = _plus(node.slice, k)
            out.append(("off by one", f"index {k:+d}", new))
    return out


def statement_mutants(node):
    out = [("remove statement", f"remove `{ast.unparse(node).splitlines()[0][:60]}`", ast.Pass())]
    if isinstance(node, ast.AugAssign) and type(node.op) in SWAP_BINOP:
        for op in SWAP_BINOP[type(node.op)]:
            new = copy.deepcopy(node)
            new.op = op()
            out.append(("operator", f"{type(node.op).__name__}= -> {op.__name__}=", new))
        new = ast.Assign([copy.deepcopy(node.target)], copy.deepcopy(node.value), lineno=node.lineno)
        out.append(("operator", f"{type(node.op).__name__}= -> =", new))
    return out


class Mutant:
    def __init__(self, lesson, exercise, line, kind, description, original, mutated, text):
        self.lesson, self.exercise, self.line, self.kind, self.description = lesson, exercise, line, kind, description
        self.original, self.mutated, self.text = original, mutated, text  # the line before and after; all text

    nth = 1  # 2, 3, ...: the key of an earlier mutant of the exercise reads the same (two identical lines)

    @property
    def key(self):
        """What EQUIVALENT is keyed by: stable while the solution's line stays the same."""
        return (f"{self.lesson} {self.exercise} | {self.description} | {self.mutated.strip()}"
                + (f" #{self.nth}" if self.nth > 1 else ""))

    def __repr__(self):
        return f"{self.exercise}:{self.line} [{self.kind}] {self.description}: {self.mutated.strip()}"


def _replace(text, node, new_source, line_offsets):
    data = text.encode()
    start = line_offsets[node.lineno - 1] + node.col_offset
    end = line_offsets[node.end_lineno - 1] + node.end_col_offset
    return (data[:start] + new_source.encode() + data[end:]).decode()


def mutants(text, lesson=""):
    """Every mutant of the solution blocks of a lesson's text, as Mutant objects (deduplicated)."""
    tree = ast.parse(text)
    blocks = solution_blocks(text)
    offsets, total = [], 0
    for line in text.encode().splitlines(keepends=True):
        offsets.append(total)
        total += len(line)
    skip = set()  # inside an f-string (no reliable positions before 3.12); the 1 of -1 (mutated as -1)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(n) for n in ast.walk(node))
        if _signed(node) is not None and isinstance(node, ast.UnaryOp):
            skip.add(id(node.operand))
    lines = text.splitlines()
    seen, found = {text}, []
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or id(node) in skip or isinstance(node, ast.arg):
            continue
        block = next((b for b in blocks if b[1] <= node.lineno and node.end_lineno <= b[2]), None)
        if block is None:
            continue
        if isinstance(node, ast.stmt):
            edits = statement_mutants(node)
        elif isinstance(node, ast.expr):
            edits = expression_mutants(node)
        else:
            continue
        for kind, description, new in edits:
            source = ast.unparse(ast.fix_missing_locations(new))
            if isinstance(node, ast.expr) and not isinstance(node, (ast.Slice, ast.Constant, ast.Name)):
                source = f"({source})"
            if isinstance(node, ast.stmt):
                indent = " " * node.col_offset
                source = "\n".join((indent if i else "") + s for i, s in enumerate(source.splitlines()))
            new_text = _replace(text, node, source, offsets)
            if new_text in seen:
                continue
            try:
                compile(new_text, "<mutant>", "exec")
            except SyntaxError:
                continue
            seen.add(new_text)
            new_lines = new_text.splitlines()
            changed = next((i for i, (a, b) in enumerate(zip(lines, new_lines)) if a != b), node.lineno - 1)
            found.append(Mutant(lesson, block[0], changed + 1, kind, description, lines[changed],
                                new_lines[changed] if changed < len(new_lines) else "", new_text))
    seen_keys = {}
    for m in sorted(found, key=lambda m: m.line):
        base = m.key
        seen_keys[base] = seen_keys.get(base, 0) + 1
        m.nth = seen_keys[base]
    return found


def sample(found, limit, seed=0):
    """Up to `limit` mutants, round robin over the kinds of edit, in a reproducible order."""
    if not limit or len(found) <= limit:
        return list(found)
    rng = random.Random(seed)
    kinds = {}
    for m in found:
        kinds.setdefault(m.kind, []).append(m)
    for group in kinds.values():
        rng.shuffle(group)
    order = sorted(kinds)
    rng.shuffle(order)
    picked = []
    while len(picked) < limit:
        for kind in order:
            if kinds[kind] and len(picked) < limit:
                picked.append(kinds[kind].pop())
    return sorted(picked, key=lambda m: (m.line, m.description))


# ------------------------------------------------------------------ running


def exercise_tests(number):
    """{exercise: test function} of checks/lessonNN/test_*.py."""
    tests = {}
    for path in sorted((ROOT / "checks" / f"lesson{number}").glob("test_*.py")):
        module = importlib.import_module(f"checks.lesson{number}.{path.stem}")
        for name, fn in vars(module).items():
            if name.startswith("test_") and callable(fn):
                tests[name.removeprefix("test_")] = fn
    return tests


class ModuleLesson:
    """What the `lesson` fixture gives a test, but the definitions themselves (Local handles)."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, name)


def _judge_in_child(path, text, test, write_fd, memory_gb):
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        now = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = now + int(memory_gb * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    from course.assertions import CheckFailure
    from course.grading.handles import LearnerError
    from course.loader import load

    try:
        module = load(path, "learner_mutant", text=text)
        test(ModuleLesson(module))
        verdict = ("survived", "")
    except CheckFailure as e:
        verdict = ("failed", str(e).splitlines()[0][:300])
    except LearnerError as e:
        verdict = ("learner error", str(e).splitlines()[0][:300] if str(e) else "")
    except MemoryError:
        verdict = ("memory", "")
    except Exception as e:  # the check itself crashed on the mutant's output
        frame = traceback.extract_tb(e.__traceback__)[-1]
        verdict = ("check crashed", f"{type(e).__name__}: {str(e)[:200]} ({Path(frame.filename).name}:{frame.lineno})")
    os.write(write_fd, json.dumps(verdict).encode())
    os._exit(0)


def judge(path, text, test, seconds=20.0, memory_gb=4.0):
    """(verdict, detail) of one mutant's text under one exercise test, in a forked child."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            _judge_in_child(path, text, test, write_fd, memory_gb)
        finally:
            os._exit(1)
    os.close(write_fd)
    data, deadline = b"", time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([read_fd], [], [], max(left, 0))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_fd)
            return "timeout", f"over {seconds:g}s"
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    if not data:
        return "crashed", f"the child ended with status {status}"
    return tuple(json.loads(data))


def pytest_verdict(number, mutant):
    """'survived' or 'killed' of a mutant through `pytest checks/lessonNN --lessons TMP --exercise X`."""
    info = registry.get(number)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / info.folder
        folder.mkdir()
        (folder / f"{info.name}.py").write_text(mutant.text)
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lessons", tmp,
                               f"checks/lesson{number}", "--exercise", mutant.exercise],
                              capture_output=True, text=True, cwd=ROOT, timeout=300)
    return "survived" if proc.returncode == 0 else "killed"


# ------------------------------------------------------------------ equivalents

# "lesson exercise | description | mutated line (stripped)": why the behaviour is the same, or a change
# the exercise's spec allows. A survivor not listed here is a gap in the check (or a new equivalent).
EQUIVALENT = {
    "01 count_bigrams | drop dtype= | N = (torch.tensor(counts))": "a tensor of Python ints is int64 already",
    "01 bigram_probs | drop .float() | counts = (N) + k": "an int64 tensor plus a float k is float32 already",
    "01 sample_name | .append -> .extend | (out.extend)(itos[ix])": "itos[ix] is one character",
    "01 sample_name | drop replacement= | ix = (torch.multinomial(P[ix], num_samples=1, generator=generator)).item()":
        "one sample: with or without replacement is the same distribution",
    "01 sample_name | True -> False | ix = torch.multinomial(P[ix], num_samples=1, replacement=False, "
    "generator=generator).item()": "one sample: with or without replacement is the same distribution",
    "01 bigram_dataset | drop dtype= | return (torch.tensor(xs)), torch.tensor(ys, dtype=torch.int64)":
        "a tensor of Python ints is int64 already",
    "01 bigram_dataset | drop dtype= | return torch.tensor(xs, dtype=torch.int64), (torch.tensor(ys))":
        "a tensor of Python ints is int64 already",
    "01 neural_nll | 0 -> 1 | x = F.one_hot(xs, num_classes=W.shape[1]).float()  # (n, V)":
        "W is (V, V): both dimensions are V",
    "02 build_dataset | drop dtype= | return torch.tensor(X, dtype=torch.int64).view(-1, block_size), "
    "(torch.tensor(Y))": "a tensor of Python ints is int64 already",
    "02 build_dataset | drop dtype= | return (torch.tensor(X)).view(-1, block_size), torch.tensor(Y, dtype=torch.int64)":
        "a tensor of Python ints is int64 already",
    "02 build_dataset | .view -> .reshape | return (torch.tensor(X, dtype=torch.int64).reshape)(-1, block_size), "
    "torch.tensor(Y, dtype=torch.int64)": "a new contiguous tensor: view and reshape agree",
    "02 build_dataset | .append -> .extend | (X.extend)(context)":
        "a flat list of the same tokens, which .view(-1, block_size) puts back in rows",
    "02 embed | .view -> .reshape | return (C[X].reshape)(X.shape[0], -1)": "C[X] is contiguous: view and reshape agree",
    "02 cross_entropy | drop .detach() | m = (logits.max(dim=1, keepdim=True).values)  # (n, 1)":
        "the loss does not depend on the shift m: its gradient through m is zero (the detach only saves work)",
    "02 sample | drop dim= | probs = (F.softmax(logits))": "a 2-D input: softmax's implicit dim is 1",
    "02 sample | .append -> .extend | (out.extend)(itos[ix])": "itos[ix] is one character",
    "03 recompute_population_stats | .view -> .reshape | x = (C[Xb].reshape)(len(Xb), -1)":
        "C[Xb] is contiguous: view and reshape agree",
    "04 backward_first_layer | .view -> .reshape | demb = (dembcat.reshape)(emb.shape)":
        "dembcat is contiguous: view and reshape agree",
    "04 cross_entropy_backward | drop dim= | dlogits = (F.softmax(logits))": "a 2-D input: softmax's implicit dim is 1",
    "04 batchnorm_backward | drop keepdim= | bndiff = hprebn - (hprebn.mean(0))":
        "(n, H) - (H,) broadcasts as (n, H) - (1, H)",
    "04 batchnorm_backward | drop keepdim= | bnvar_inv = ((bndiff.pow(2).sum(0)) / (n - 1) + eps) ** -0.5":
        "(H,) broadcasts as (1, H) in every later use",
    "04 batchnorm_backward | True -> False | n * dhpreact - dhpreact.sum(0, keepdim=True) - n / (n - 1) * bnraw * "
    "(dhpreact * bnraw).sum(0, keepdim=False))": "(H,) broadcasts as (1, H) against (n, H)",
    "04 batchnorm_backward | drop keepdim= | n * dhpreact - (dhpreact.sum(0)) - n / (n - 1) * bnraw * "
    "(dhpreact * bnraw).sum(0, keepdim=True))": "(H,) broadcasts as (1, H) against (n, H)",
    "04 batchnorm_backward | drop keepdim= | n * dhpreact - dhpreact.sum(0, keepdim=True) - n / (n - 1) * bnraw * "
    "((dhpreact * bnraw).sum(0)))": "(H,) broadcasts as (1, H) against (n, H)",
    "04 train_step | True -> False | grads[\"bngain\"] = (c[\"bnraw\"] * dhpreact).sum(0, keepdim=False)":
        "the in-place p -= lr * grad broadcasts an (H,) gradient over the (1, H) parameter: the same update",
    "04 train_step | drop keepdim= | grads[\"bngain\"] = ((c['bnraw'] * dhpreact).sum(0))":
        "the in-place p -= lr * grad broadcasts an (H,) gradient over the (1, H) parameter: the same update",
    "04 train_step | True -> False | grads[\"bnbias\"] = dhpreact.sum(0, keepdim=False)":
        "the in-place p -= lr * grad broadcasts an (H,) gradient over the (1, H) parameter: the same update",
    "04 train_step | drop keepdim= | grads[\"bnbias\"] = (dhpreact.sum(0))":
        "the in-place p -= lr * grad broadcasts an (H,) gradient over the (1, H) parameter: the same update",
    "05 build_hierarchy | int() -> round() | for _ in range((round(math.log2(block_size)))):":
        "block_size is a power of 2: log2 is a whole number",
    "05 hierarchy_to_conv | swap the first two arguments | conv = (CausalConv1d(C_out, C_in, n, dilation=dilation, "
    "bias=layer.bias is not None, pad=False))": "the weight is replaced by the copy right after, and the hidden "
    "Linear layers have no bias: the channel counts given to the constructor are not used",
    "06 causal_average | .zeros -> .ones | scores = (torch.ones)(T, T, dtype=x.dtype, device=x.device)":
        "softmax is unchanged by adding a constant to every score",
    "06 attention_head | swap the first two arguments | scores = q @ (k.transpose(-1, -2)) / math.sqrt(d)  # (B, T, "
    "T): row t scores positions s": "transpose(-1, -2) is transpose(-2, -1)",
    "06 multi_head_attention | .view -> .reshape | return ((x @ w.T).reshape)(B, T, n_head, d).transpose(1, 2)":
        "x @ w.T is contiguous: view and reshape agree",
    "06 multi_head_attention | swap the first two arguments | return ((x @ w.T).view(B, T, n_head, d)"
    ".transpose(2, 1))": "transpose(2, 1) is transpose(1, 2)",
    "06 multi_head_attention | swap the first two arguments | return ((weights @ v).transpose(2, 1)).reshape(B, T, C)":
        "transpose(2, 1) is transpose(1, 2)",
    "06 gpt_forward | .view -> .reshape | loss = F.cross_entropy((logits.reshape)(B * T, -1), "
    "targets.reshape(B * T))": "the logits are contiguous: view and reshape agree",
    "06 generate | swap the first two arguments | k = (min(logits.size(-1), top_k))  # top_k >= V keeps every token":
        "min is symmetric",
    "06 generate | drop dim= | kth = (torch.topk(logits, k)).values[:, [-1]]": "topk's default dim is -1",
    "06 generate | drop dim= | probs = (F.softmax(logits))": "a 2-D input: softmax's implicit dim is 1, the last",
    "07 encode_ordinary | 256 -> 255 | byte_ids = byte_ids if byte_ids is not None else range(255)":
        "UTF-8 never holds the byte 255, so range(255) answers every lookup range(256) does",
    "07 encode_ordinary | 256 -> 257 | byte_ids = byte_ids if byte_ids is not None else range(257)":
        "only bytes 0..255 are looked up",
    "07 encode_ordinary | range end +1 | byte_ids = byte_ids if byte_ids is not None else (range(256 + 1))":
        "only bytes 0..255 are looked up",
    "07 encode_ordinary | range end -1 | byte_ids = byte_ids if byte_ids is not None else (range(256 - 1))":
        "UTF-8 never holds the byte 255, so range(255) answers every lookup range(256) does",
    "07 encode_special | drop key= | special = \"(\" + \"|\".join(regex.escape(s) for s in (sorted(allowed, "
    "reverse=True))) + \")\"": "reverse lexicographic order also puts a token before any token it is a prefix of",
    "07 train_fast | Gt -> GtE | if (counts[p] >= 0):": "an entry pushed with count 0 is skipped when popped "
    "(c == 0): the same merges",
    # Found by --rest (the mutants beyond the sample of 30 per exercise).
    "04 batchnorm_backward | True -> False | bndiff = hprebn - hprebn.mean(0, keepdim=False)":
        "(n, H) - (H,) broadcasts as (n, H) - (1, H)",
    "04 batchnorm_backward | True -> False | bnvar_inv = (bndiff.pow(2).sum(0, keepdim=False) / (n - 1) + eps) "
    "** -0.5": "(H,) broadcasts as (1, H) in every later use",
    "04 batchnorm_backward | True -> False | n * dhpreact - dhpreact.sum(0, keepdim=False) - n / (n - 1) * bnraw * "
    "(dhpreact * bnraw).sum(0, keepdim=True))": "(H,) broadcasts as (1, H) against (n, H)",
    "05 hierarchy_to_conv | remove `if layer.bias is not None:` | pass": "the Linear layers a convolution replaces "
    "have no bias (the exercise says bias=False): the removed branch never runs",
    "05 hierarchy_to_conv | remove `conv.bias = copy(layer.bias)` | pass": "the Linear layers a convolution replaces "
    "have no bias (the exercise says bias=False): the removed line never runs",
    "05 hierarchy_to_conv | .view -> .reshape | conv.weight = copy((layer.weight.reshape)(n, C_in, C_out))":
        "the weight is contiguous: view and reshape agree",
    "05 BatchNorm1d | FloorDiv -> Div | n = (x.numel() / x.shape[-1])": "a whole number either way, and n is used "
    "only in n / (n - 1)",
    "06 multi_head_attention | swap the first two arguments | scores = q @ (k.transpose(-1, -2)) / math.sqrt(d)  # "
    "(B, n_head, T, T)": "transpose(-1, -2) is transpose(-2, -1)",
    "07 train_fast | remove `del counts[p]` | pass": "a pair whose count fell to 0 stays in the dict with 0: it is "
    "never pushed, and a stale heap entry still differs from it",
    "07 train_fast | 0 -> 1 | if counts.get(pair, 0) != -c or c == 1:": "no entry is ever pushed with count 0, so "
    "the c == 0 guard never decides",
}

# Survivors that are not equivalent but that the checks leave alone on purpose, with the reason. They count
# as survivors in the kill rate.
LEFT = {
    "06 causal_average | drop dtype= | scores = (torch.zeros(T, T, device=x.device))": "wrong only for a float64 "
    "x (float32 weights @ float64 x raises); the lesson's inputs are float32, and the common tril / ones "
    "formulation has the same limit, so a float64 case would fail answers that are right for the lesson",
    **{key: "a CPU check cannot see a device: the mutant fails only when x is on a GPU. The lesson never asks "
            "for device=; a check on torch's 'meta' device would catch the masks (not torch.arange for "
            "gpt_forward) but fails tests/wrong's right versions too"
       for key in ("06 causal_average | drop device= | scores = (torch.zeros(T, T, dtype=x.dtype))",
                   "06 causal_average | drop device= | future = (torch.ones(T, T, dtype=torch.bool)).triu(diagonal=1)",
                   "06 attention_head | drop device= | future = (torch.ones(T, T, dtype=torch.bool)).triu(diagonal=1)",
                   "06 multi_head_attention | drop device= | future = (torch.ones(T, T, dtype=torch.bool))"
                   ".triu(diagonal=1)",
                   "06 gpt_forward | drop device= | pos = (torch.arange(T))")},
}

KILLED = {"failed", "learner error", "check crashed", "timeout", "memory", "crashed"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers (default: all)")
    parser.add_argument("--exercise", action="append", default=[], help="only these exercises")
    parser.add_argument("--max", type=int, default=30, help="mutants per exercise (0: all; default 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per mutant (default 20)")
    parser.add_argument("--rest", action="store_true", help="run the mutants that the sample of --max leaves out")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--pytest", type=int, default=0, metavar="N",
                        help="also judge every survivor and N killed mutants per exercise through pytest, and compare")
    parser.add_argument("--json", metavar="FILE", help="write every verdict to FILE (JSON lines)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    numbers = [registry.get(n).number for n in args.lessons] or [l.number for l in registry.all_lessons()]
    out = open(args.json, "w") if args.json else None
    totals, disagreements, verdicts, checked = [], [], {}, 0
    for number in numbers:
        info = registry.get(number)
        path = info.script(registry.solutions_dir())
        text = path.read_text(encoding="utf-8")
        tests = exercise_tests(number)
        by_exercise = {}
        for m in mutants(text, number):
            by_exercise.setdefault(m.exercise, []).append(m)
        generated = {m.key for found in by_exercise.values() for m in found}
        for key in [*EQUIVALENT, *LEFT]:
            if key.startswith(f"{number} ") and key not in generated:
                print(f"{number}: EQUIVALENT or LEFT names a mutant that is no longer made (the solution changed?): {key}")
        rows = []
        for exercise, found in by_exercise.items():
            if args.exercise and exercise not in args.exercise:
                continue
            picked = sample(found, args.max, args.seed)
            if args.rest:  # the mutants that sample leaves out
                picked = [m for m in found if m not in picked]
                if not picked:
                    continue
            if args.list:
                print(f"\n{number} {exercise}: {len(picked)} of {len(found)} mutants")
                for m in picked:
                    print(f"  {m!r}")
                continue
            base = judge(path, text, tests[exercise], args.timeout)
            if base[0] != "survived":
                print(f"{number} {exercise}: the solution itself does not pass in-process: {base}")
                continue
            killed = equivalent = left = 0
            survivors = []
            for m in picked:
                t0 = time.monotonic()
                verdict, detail = judge(path, m.text, tests[exercise], args.timeout)
                verdicts[m.key] = verdict
                if out:
                    out.write(json.dumps({"lesson": number, "exercise": exercise, "line": m.line, "kind": m.kind,
                                          "description": m.description, "original": m.original.strip(),
                                          "mutated": m.mutated.strip(), "verdict": verdict, "detail": detail,
                                          "seconds": round(time.monotonic() - t0, 2)}) + "\n")
                    out.flush()
                if verdict in KILLED:
                    killed += 1
                elif m.key in EQUIVALENT:
                    equivalent += 1
                else:
                    survivors.append(m)
                    left += m.key in LEFT
            rows.append((exercise, len(found), len(picked), killed, equivalent, survivors))
            print(f"{number} {exercise:<28} {killed:>3} killed of {len(picked) - equivalent:>3} "
                  f"({equivalent} equivalent, {left} left on purpose, {len(found)} generated)", flush=True)
            for m in survivors:
                print(f"    survived line {m.line} [{m.kind}] {m.description}"
                      + (" (left on purpose, see LEFT)" if m.key in LEFT else "")
                      + f"\n        - {m.original.strip()}\n        + {m.mutated.strip()}", flush=True)
            if args.pytest:  # every survivor (equivalent or not), and N of the killed
                alive = [m for m in picked if m in survivors or m.key in EQUIVALENT and verdicts[m.key] not in KILLED]
                dead = [m for m in picked if m not in alive]
                for m in alive + random.Random(args.seed).sample(dead, min(args.pytest, len(dead))):
                    local = "survived" if m in alive else "killed"
                    if pytest_verdict(number, m) != local:
                        disagreements.append((number, m, local))
                    checked += 1
        if rows:
            k = sum(r[3] for r in rows)
            n = sum(r[2] - r[4] for r in rows)
            e = sum(r[4] for r in rows)
            totals.append((number, k, n, e))
            print(f"lesson {number}: {k} killed of {n} non-equivalent mutants ({100 * k / max(n, 1):.0f}%), "
                  f"{e} equivalent\n", flush=True)
    if len(totals) > 1:
        k, n, e = (sum(t[i] for t in totals) for i in (1, 2, 3))
        print(f"all: {k} killed of {n} non-equivalent mutants ({100 * k / max(n, 1):.0f}%), {e} equivalent")
    if args.pytest:
        print(f"{checked} mutants judged through pytest too: {len(disagreements)} disagree")
    for number, m, local in disagreements:
        print(f"DISAGREEMENT lesson {number}: {m!r} is {local} in-process but not through pytest")
    usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"CPU time: {sum(u.ru_utime + u.ru_stime for u in usage):.0f}s")
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
