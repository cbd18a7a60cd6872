"""The judge's process ends without the interpreter's teardown.

After a check run, Python's own exit frees the objects of torch and of the
checks one by one and runs torch's C++ teardown: a tenth of a second (an
eighth of `python -c "import torch"`) spent on memory the process is about
to give back whole. `end_with_pytest(args, status)`, called when pytest
unconfigures, makes the process end right after the atexit handlers instead
(every one of them runs, as it would), with pytest's exit status. Only where
that status is certain: the process is the pytest command itself, run with
`args` (not `pytest.main()` inside another program, which goes on after it),
no error escaped pytest afterwards, and stdout is the file it was (after a
broken pipe pytest points it at /dev/null and exits 1). Otherwise Python
exits as usual.
"""

import atexit
import os
import sys
from pathlib import Path


def _is_pytest_command(args):
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    command = (spec is not None and spec.name == "pytest.__main__") or Path(sys.argv[0]).name in ("pytest", "py.test")
    return command and tuple(args) == tuple(sys.argv[1:])


def _stdout():
    try:
        st = os.fstat(1)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def end_with_pytest(args, status):
    """At the interpreter's exit: run the atexit handlers, flush, and end with `status` (see above)."""
    if not _is_pytest_command(args):
        return
    stdout, error, started = _stdout(), getattr(sys, "last_value", None), []  # pytest sets it for failed tests

    def end():
        if started:  # called once more by the handlers' run below
            return
        started.append(True)
        if getattr(sys, "last_value", None) is not error or _stdout() != stdout:
            return  # an error after pytest, or a broken pipe: Python's exit reports it, with its own status
        atexit._run_exitfuncs()
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - Python's exit reports it
            return
        os._exit(status)

    atexit.register(end)  # the last registered runs first: the others run inside it
