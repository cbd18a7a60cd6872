"""Plain data across the line between learner code and the judge, without pickle.

A message is a JSON header plus raw byte blobs. The header names every value's
type, so the judge gets back exactly what learner code returned as far as the
checks care: a `float` stays a `float`, a tuple a tuple, an int-keyed dict an
int-keyed dict, a tensor keeps its dtype, shape and `requires_grad`. Decoding
builds only builtin values, numpy scalars and arrays, and plain tensors: it
never imports, calls or unpickles anything a learner wrote. A subclass of a
plain type crosses as that type (an OrderedDict as a dict, a namedtuple as a
tuple, a float subclass with a rigged `__eq__` as a float). An object of any
other type comes back as an `Opaque` stand-in that carries its type's name (for
messages such as "expected a tensor, got LinearLayer") and compares equal to
nothing.
"""

import json
import math
import struct

import numpy as np
import torch

MAX_DEPTH = 64
MAX_BYTES = 1 << 30  # a message above 1 GiB is refused, not read
MAX_HEADER = 8 << 20  # the JSON part: parsing costs about 10 times its size in memory

_DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.complex64, torch.complex128,
    torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool)}


class WireError(Exception):
    """A value that cannot cross, or a message that is not well formed."""


class Opaque:
    """Stands for a value of a type that does not cross (a learner's object)."""

    type_name = "object"

    def __init__(self, summary=""):
        self.summary = summary

    def __repr__(self):
        return f"<{self.type_name} {self.summary}>".replace("  ", " ")

    def __eq__(self, other):
        return False

    __hash__ = object.__hash__


_opaque_types = {}


def opaque(type_name, summary=""):
    """An Opaque whose class is named after the original type, so type(x).__name__ reads naturally."""
    name = str(type_name)[:80]
    cls = _opaque_types.get(name)
    if cls is None:
        cls = _opaque_types[name] = type(name if name.isidentifier() else "object", (Opaque,), {"type_name": name})
    return cls(str(summary)[:200])


class Reference:
    """A name on the learner's side: the learner's function or class called `name`."""

    def __init__(self, name):
        self.name = name


class _Encoder:
    def __init__(self, refs=None):
        self.blobs = []
        self.refs = refs  # on the learner's side: how to encode a Reference (None: refuse)

    def blob(self, data):
        self.blobs.append(bytes(data))
        return len(self.blobs) - 1

    def tensor(self, t):
        t = t.detach()
        if t.layout != torch.strided or t.device.type != "cpu" or t.is_quantized:
            t = t.to_dense().cpu() if t.layout != torch.strided else t.cpu()
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in _DTYPES:
            raise WireError(f"tensor dtype {t.dtype} is not supported")
        t = t.contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        return {"dtype": dtype, "shape": list(t.shape), "blob": self.blob(raw)}

    def __call__(self, x, depth=0):
        if depth > MAX_DEPTH:
            raise WireError("nested too deeply")
        kind = type(x)
        if x is None or kind in (bool, str):
            return x
        if kind is int:
            return x if abs(x) < 2**53 else {"_": "int", "v": str(x)}
        if kind is float:
            return x if math.isfinite(x) else {"_": "float", "v": repr(x)}
        if kind is list:  # the common case in place: a list of small ints (ids, merges) is most of a long message
            return [v if type(v) is int and -2**53 < v < 2**53 else self(v, depth + 1) for v in x]
        if kind is tuple or kind is torch.Size:
            return {"_": "tuple" if kind is tuple else "size", "v": [self(v, depth + 1) for v in x]}
        if kind is dict:
            return {"_": "dict", "k": [self(k, depth + 1) for k in x], "v": [self(v, depth + 1) for v in x.values()]}
        if kind in (set, frozenset):
            return {"_": kind.__name__, "v": [self(v, depth + 1) for v in x]}
        if kind in (bytes, bytearray):
            return {"_": kind.__name__, "blob": self.blob(x)}
        if isinstance(x, torch.Tensor):
            t = self.tensor(x)
            t.update({"_": "tensor", "grad": bool(x.requires_grad), "parameter": isinstance(x, torch.nn.Parameter)})
            return t
        if isinstance(x, np.ndarray) and x.dtype.kind in "biufc":
            return {"_": "ndarray", "dtype": x.dtype.str, "shape": list(x.shape),
                    "blob": self.blob(np.ascontiguousarray(x).tobytes())}
        if isinstance(x, np.generic) and x.dtype.kind in "biufc":
            return {"_": "npscalar", "dtype": x.dtype.str, "blob": self.blob(x.tobytes())}
        if kind is torch.Generator:
            return {"_": "generator", "state": self.tensor(x.get_state())}
        if kind is torch.dtype:
            return {"_": "dtype", "v": str(x).removeprefix("torch.")}
        if isinstance(x, Reference):
            if self.refs is None:
                raise WireError("a learner reference cannot cross this way")
            return {"_": "ref", "v": x.name}
        # Subclasses of the plain types cross as the plain type (an OrderedDict as a dict, a namedtuple
        # as a tuple): whatever their methods do, the judge gets builtin values only.
        for base in (bool, int, float, str, bytes):
            if isinstance(x, base):
                return self(base(x), depth + 1)
        if isinstance(x, dict):
            return self(dict(x.items()), depth + 1)
        if isinstance(x, (list, tuple)):
            return self((list if isinstance(x, list) else tuple)(iter(x)), depth + 1)
        return {"_": "opaque", "type": type(x).__name__, "summary": _summary(x)}


def _summary(x):
    # Learner code must not run while encoding: no repr() of a learner object, only builtin facts.
    if isinstance(x, torch.Tensor):  # an unsupported tensor (dtype), described without calling it
        return f"tensor of shape {tuple(x.shape)}"
    return ""


_PLAIN = frozenset({int, float, str, bool, type(None)})  # what json.loads makes that decodes to itself


class _Decoder:
    def __init__(self, blobs, refs=None):
        self.blobs, self.refs = blobs, refs

    def blob(self, i):
        if not isinstance(i, int) or not 0 <= i < len(self.blobs):
            raise WireError("bad blob index")
        return self.blobs[i]

    def tensor(self, d):
        dtype = _DTYPES.get(d.get("dtype"))
        shape = d.get("shape")
        if dtype is None or not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise WireError("bad tensor header")
        raw = self.blob(d["blob"])
        n = math.prod(shape)
        size = torch.empty((), dtype=dtype).element_size()
        if len(raw) != n * size:
            raise WireError("tensor size does not match its shape")
        if n == 0:
            return torch.empty(shape, dtype=dtype)
        out = torch.empty(len(raw), dtype=torch.uint8)  # one copy, aligned, from a view of the message
        out.numpy()[:] = np.frombuffer(raw, dtype=np.uint8)
        return out.view(dtype).reshape(shape)

    def __call__(self, x, depth=0):
        if depth > MAX_DEPTH:
            raise WireError("nested too deeply")
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, list):  # plain values in place, as in the encoder
            return [v if type(v) in _PLAIN else self(v, depth + 1) for v in x]
        if not isinstance(x, dict):
            raise WireError("bad value")
        tag = x.get("_")
        if tag == "int":
            return int(x["v"])
        if tag == "float":
            return float(x["v"])
        if tag in ("tuple", "size"):
            items = tuple(self(v, depth + 1) for v in x["v"])
            return torch.Size(items) if tag == "size" and all(type(i) is int for i in items) else items
        if tag == "dict":
            keys, values = [self(k, depth + 1) for k in x["k"]], [self(v, depth + 1) for v in x["v"]]
            try:
                return dict(zip(keys, values, strict=True))
            except (TypeError, ValueError):
                raise WireError("bad dict") from None
        if tag in ("set", "frozenset"):
            try:
                return (set if tag == "set" else frozenset)(self(v, depth + 1) for v in x["v"])
            except TypeError:
                raise WireError("unhashable set member") from None
        if tag in ("bytes", "bytearray"):
            return (bytes if tag == "bytes" else bytearray)(self.blob(x["blob"]))  # a copy, not a view
        if tag == "tensor":
            t = self.tensor(x)
            if x.get("parameter"):
                return torch.nn.Parameter(t, requires_grad=bool(x.get("grad")) and t.is_floating_point())
            if x.get("grad") and (t.is_floating_point() or t.is_complex()):
                t.requires_grad_(True)
            return t
        if tag == "ndarray":
            dtype, shape = np.dtype(x["dtype"]), x["shape"]
            if dtype.kind not in "biufc" or not all(isinstance(s, int) and s >= 0 for s in shape):
                raise WireError("bad array header")
            raw = self.blob(x["blob"])
            if len(raw) != math.prod(shape) * dtype.itemsize:
                raise WireError("array size does not match its shape")
            return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        if tag == "npscalar":
            dtype = np.dtype(x["dtype"])
            if dtype.kind not in "biufc" or len(self.blob(x["blob"])) != dtype.itemsize:
                raise WireError("bad numpy scalar")
            return np.frombuffer(self.blob(x["blob"]), dtype=dtype)[0]
        if tag == "generator":
            g = torch.Generator()
            g.set_state(self.tensor(x["state"]))
            return g
        if tag == "dtype":
            if x["v"] not in _DTYPES:
                raise WireError("bad dtype")
            return _DTYPES[x["v"]]
        if tag == "ref":
            if self.refs is None:
                raise WireError("a learner reference cannot cross this way")
            return self.refs(x["v"])
        if tag == "opaque":
            return opaque(x.get("type", "object"), x.get("summary", ""))
        raise WireError(f"unknown tag {tag!r}")


def dumps(value, refs=None):
    """bytes for `value`: a length-prefixed JSON header, then the blobs."""
    enc = _Encoder(refs)
    header = json.dumps({"v": enc(value), "n": [len(b) for b in enc.blobs]}, separators=(",", ":")).encode()
    return b"".join([struct.pack("<Q", len(header)), header, *enc.blobs])


def loads(data, refs=None):
    """The value `dumps` encoded; raises WireError on anything malformed. Blobs are views of `data`
    (no copy until a value is built), so decoding costs about twice the message at most."""
    try:
        if len(data) > MAX_BYTES:
            raise WireError("message too large")
        (size,) = struct.unpack_from("<Q", data, 0)
        if size > MAX_HEADER:
            raise WireError("header too large")
        view = memoryview(data)
        header = json.loads(bytes(view[8:8 + size]))
        blobs, at = [], 8 + size
        for n in header["n"]:
            if not isinstance(n, int) or n < 0 or at + n > len(data):
                raise WireError("truncated message")
            blobs.append(view[at:at + n])
            at += n
        return _Decoder(blobs, refs)(header["v"])
    except WireError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever a crafted header makes torch or numpy raise
        raise WireError(f"malformed message ({type(e).__name__})") from None
