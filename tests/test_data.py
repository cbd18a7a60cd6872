"""The names data: embedded by default, split deterministically, optional classic file checked by sha256."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from course import data
from tests.helpers import StaticServer

CLASSIC = Path(__file__).resolve().parents[2] / "shared" / "data" / "names.txt"


@pytest.fixture(scope="module")
def names():
    return data.load_names()


def test_embedded_names_are_the_2017_slice(names):
    assert len(names) == 29_910
    assert all(n.isascii() and n.isalpha() and n.islower() for n in names)
    assert len(set(names)) == len(names)
    assert (min(map(len, names)), max(map(len, names))) == (2, 15)


def test_split_sizes_are_pinned_and_disjoint(names):
    train, val, test = data.split(names)
    assert (len(train), len(val), len(test)) == (23_928, 2_991, 2_991)
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    assert data.split(names) == (train, val, test), "the split must be deterministic"


def test_split_does_not_touch_its_input(names):
    before = list(names)
    data.split(names)
    assert names == before


@pytest.mark.skipif(not CLASSIC.exists(), reason="the classic names.txt is not beside the project")
def test_classic_names_from_a_path():
    words = data.load_names(str(CLASSIC))
    assert len(words) == 32_033
    assert [len(p) for p in data.split(words)] == [25_626, 3_203, 3_204]


def test_a_wrong_file_is_refused_in_one_sentence(tmp_path):
    bad = tmp_path / "names.txt"
    bad.write_text("emma\nolivia\n")
    with pytest.raises(data.DataError, match="not the expected file"):
        data.load_names(str(bad))
    with pytest.raises(data.DataError, match="There is no file"):
        data.load_names(str(tmp_path / "missing.txt"))


def test_download_is_verified_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    good = b"ava\nbob\n"
    sha = hashlib.sha256(good).hexdigest()
    server = StaticServer({"/good.txt": good, "/bad.txt": b"tampered\n"})
    try:
        assert data.fetch(f"{server.url}/good.txt", sha, "n.txt") == good
        assert (tmp_path / "cache" / "n.txt").read_bytes() == good
        with pytest.raises(data.DataError, match="sha256 mismatch"):
            data.fetch(f"{server.url}/bad.txt", sha, "other.txt")
        assert not (tmp_path / "cache" / "other.txt").exists(), "a bad download must not be cached"
        with pytest.raises(data.DataError, match="Could not download"):
            data.fetch(f"{server.url}/missing.txt", sha, "missing.txt")
    finally:
        server.close()
    # Offline now: the cached copy is used, the uncached one fails clearly.
    assert data.fetch(f"{server.url}/good.txt", sha, "n.txt") == good
    with pytest.raises(data.DataError, match="you may be offline"):
        data.fetch(f"{server.url}/else.txt", sha, "else.txt")


def test_cli_says_one_sentence_offline(tmp_path):
    env = {"COURSE_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "course", "data", "--names", "http://127.0.0.1:9/names.txt"],
                          capture_output=True, text=True, env=env, cwd=Path(__file__).parents[1], timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("course: Could not download") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_embedded_names_are_cached_and_a_changed_copy_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    parsed = data._names_from_parquet(2017)
    assert data.embedded_names() == parsed  # read from the parquet file, and cached
    cached = tmp_path / "names-2017.txt"
    assert cached.read_text().split("\n") == parsed

    def no_parquet(year):
        raise AssertionError("the cached copy should have been used")

    with monkeypatch.context() as m:
        m.setattr(data, "_names_from_parquet", no_parquet)
        assert data.embedded_names() == parsed
    cached.write_text("\n".join(parsed[:-1] + ["zzz"]))  # edited: its sha256 differs
    assert data.embedded_names() == parsed
    assert cached.read_text().split("\n") == parsed  # and the good list replaced it
