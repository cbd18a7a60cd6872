# Sends the judge a message of its own on the probe's socket: a 200 MB JSON header, which the judge
# read whole and parsed (about 10 times its size in memory). The judge refuses a header over 8 MiB
# as soon as its size is announced.
# expect: count_bigrams=error
# says: count_bigrams: answer too large
import os
import stat
import struct


def _socket():
    return next(fd for fd in range(3, 64) if _is_socket(fd))


def _is_socket(fd):
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        return False


def count_bigrams(words, stoi):
    fd, size = _socket(), 200 << 20
    os.write(fd, struct.pack("<QQ", 8 + size, size))
    chunk, sent = b"0," * (1 << 19), 0
    os.write(fd, b"[")
    while sent < size - 1:
        sent += os.write(fd, chunk[: size - 1 - sent])
    return None
