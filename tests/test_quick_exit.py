"""course.grading.quick_exit: the judge's pytest ends after the atexit handlers, with pytest's exit
status, without the interpreter's teardown; pytest.main() inside another program is left alone."""

import os
import subprocess
import sys

import pytest

from course import lessons as registry

CONFTEST = '''
import atexit
import os

from course.grading import quick_exit

_sessions = []


class Teardown:
    def __del__(self):  # runs in the interpreter's teardown only
        os.write(1, b"<teardown>")


_teardown = Teardown()
atexit.register(lambda: os.write(1, b"<atexit>"))


def pytest_sessionstart(session):
    _sessions.append(session)


def pytest_unconfigure(config):
    quick_exit.end_with_pytest(config.invocation_params.args, int(_sessions[0].exitstatus))
    if os.environ.get("RAISE_AFTER"):
        raise RuntimeError("an error that escapes pytest")
'''


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_one.py").write_text("def test_pass():\n    pass\n\n\ndef test_fail():\n    assert False\n")
    return tmp_path


def _run(folder, *argv, **extra):
    env = {**os.environ, "PYTHONPATH": str(registry.ROOT), **extra}
    return subprocess.run([sys.executable, *argv], cwd=folder, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("selected,status", [("test_pass", 0), ("test_fail", 1), ("test_none", 5)])
def test_the_pytest_command_ends_after_atexit_with_its_status(folder, selected, status):
    proc = _run(folder, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", selected)
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("<atexit>"), proc.stdout  # pytest's summary was flushed before it
    assert "<teardown>" not in proc.stdout


def test_pytest_main_inside_a_program_leaves_its_exit_alone(folder):
    code = "import pytest, sys\nprint('pytest says', pytest.main(['-q', '-p', 'no:cacheprovider']))\nsys.exit(7)"
    proc = _run(folder, "-c", code)
    assert proc.returncode == 7, proc.stdout + proc.stderr
    assert "pytest says 1" in proc.stdout and "<teardown>" in proc.stdout


def test_an_error_that_escapes_pytest_gets_pythons_own_exit(folder):
    proc = _run(folder, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "test_pass", RAISE_AFTER="1")
    assert proc.returncode == 1 and "an error that escapes pytest" in proc.stderr, proc.stdout + proc.stderr
    assert "<teardown>" in proc.stdout
