# A detached grandchild that outlives the check and keeps trying to write the grades.
# expect: bigram_probs=wrong
import os


def _daemon():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            import time

            for _ in range(600):
                for target in ("checks/lesson01/exercises.py", "gradebook.db", "../../../gradebook.db"):
                    try:
                        with open(target, "ab") as fh:
                            fh.write(b"\n# tampered\n")
                    except OSError:
                        pass
                time.sleep(0.1)
        os._exit(0)


def bigram_probs(N, k=1.0):
    _daemon()
    return N.float()
