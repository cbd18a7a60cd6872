# Sends the judge a message of its own on the probe's socket: 900 MB announced and sent, which the
# judge gathered whole (twice its size in memory) before finding it malformed. The judge refuses an
# answer over 64 MiB as soon as its size is announced.
# expect: bigram_dataset=error
# says: bigram_dataset: answer too large
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


def bigram_dataset(words, stoi):
    fd = _socket()
    os.write(fd, struct.pack("<Q", 900 << 20))
    chunk = bytes(1 << 20)
    for _ in range(900):
        os.write(fd, chunk)
    return None
