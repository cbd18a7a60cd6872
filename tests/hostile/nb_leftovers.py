# A blank nll. Top-level code (run only by nbgrader's kernel) leaves files behind in /tmp, /dev/shm,
# $TMPDIR and $HOME, and a detached process that keeps writing there after its notebook ended. (Only
# a HOME holding a .hostile-target file, which the test makes, is written to.)
# expect: nll=not attempted
import os
import tempfile


def _leave():
    places = {"/tmp", "/dev/shm", tempfile.gettempdir()}
    if os.path.exists(os.path.expanduser("~/.hostile-target")):
        places.add(os.path.expanduser("~"))
    for place in places:
        try:
            with open(os.path.join(place, f"hostile-left-{os.getpid()}"), "wb") as fh:
                fh.write(b"x" * (1 << 20))
        except OSError:
            pass
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            import time

            for i in range(600):
                for place in places:
                    try:
                        with open(os.path.join(place, f"hostile-left-daemon-{os.getpid()}"), "ab") as fh:
                            fh.write(b"x" * 4096)
                    except OSError:
                        pass
                time.sleep(0.1)
        os._exit(0)


_leave()


def nll(P, words, stoi):
    raise NotImplementedError()
