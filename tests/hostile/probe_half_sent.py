# Writes a length prefix on the probe's socket to the judge, and then nothing more: the judge read
# the first byte within the limit and then waited for the rest forever (the whole run hung).
# expect: nll=timeout
# says: nll: your code sent part of an answer, then nothing more within 10 s
import os
import stat
import struct


def _sockets():
    found = []
    for fd in range(3, 64):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                found.append(fd)
        except OSError:
            pass
    return found


def nll(P, words, stoi):
    for fd in _sockets():
        os.write(fd, struct.pack("<Q", 1 << 20) + b"{")  # a megabyte announced, one byte sent
    return 0.0
