"""A learner's first steps: the install, a bare `pytest`, `make start` twice, selecting one check."""

import os
import shutil
import subprocess
import sys
import tomllib

import pytest

from course import lessons as registry
from tests.helpers import run_checks, summary_table

ROOT = registry.ROOT


def make(*args, **kwargs):
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    # Under `make test` the outer make's MAKELEVEL/MAKEFLAGS would make this one print "Entering directory".
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(["make", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**env, **kwargs.pop("env", {})}, **kwargs)


def test_a_venv_made_by_an_old_python_is_rebuilt(tmp_path):
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "python"  # answers like a Python 3.9
    fake.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Python 3.9.18"; exit 0; fi\nexit 1\n')
    fake.chmod(0o755)
    (venv / ".learner").touch()  # an install that looked complete
    proc = make("-n", "start", f"VENV={venv}")
    assert proc.returncode == 0, proc.stderr
    assert "needs Python 3.11+: rebuilding it" in proc.stdout and f"rm -rf {venv}" in proc.stdout
    assert "pip install -e '.'" in proc.stdout


def test_without_a_usable_python_make_start_says_what_to_do(tmp_path):
    proc = make("start", f"VENV={tmp_path / '.venv'}", "PYTHON=")
    assert proc.returncode != 0
    assert "No Python 3.11 or newer found. Install one, then: make PYTHON=/path/to/python3.11 start" in proc.stdout


def test_pip_output_goes_to_a_log_not_to_the_learner():
    # setuptools prints an "Editable installation" warning box on every `pip install -e .`.
    proc = make("-n", "start", "VENV=/nonexistent/.venv")
    install = [line for line in proc.stdout.splitlines() if "pip install -e" in line]
    assert install and all("pip install -e '.' 2>&1 | tee -a /nonexistent/.venv/install.log | awk" in line
                           for line in install)


FAKE_PIP = """#!/bin/sh
# A Python whose pip prints what a real install prints (abridged), for the Makefile's progress lines.
case "$*" in
  *"pip install --upgrade pip"*) echo "Requirement already satisfied: pip";;
  *"pip install -e"*) echo "Obtaining file:///course"; echo "Collecting torch==2.13.0"
     echo "  Downloading torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl (200.1 MB)"
     echo "Collecting tqdm>=4.66"; echo "  Downloading tqdm-4.70.1-py3-none-any.whl (80 kB)"
     echo "Installing collected packages: tqdm, torch, llm-from-scratch"
     echo "Successfully installed llm-from-scratch-0.1.0 torch-2.13.0 tqdm-4.70.1";;
  *"course.pairing"*) echo "installed settings";;
  *) exit 0;;
esac
"""


def test_the_install_shows_a_line_per_stage(tmp_path):
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(FAKE_PIP)
    (venv / "bin" / "python").chmod(0o755)
    proc = make(str(venv / ".learner"), f"VENV={venv}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"installing the course into {venv} (a few minutes the first time")
    assert lines[1:6] == ["  upgrading pip", "  resolving the requirements", "  downloading torch 2.13.0 (200.1 MB)",
                          "  installing the packages (torch takes the longest)",
                          "  installed 3 packages (2 downloaded)"], proc.stdout
    assert lines[6].startswith("  the course's Jupyter settings installed; done in 0 min ")
    log = (venv / "install.log").read_text()
    assert "Obtaining file:///course" in log and "installed settings" in log, "the learner saw less; the log has all"


def test_a_failed_install_says_so_and_shows_the_log(tmp_path):
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(FAKE_PIP.replace('echo "Successfully installed', 'exit 1; echo "'))
    (venv / "bin" / "python").chmod(0o755)
    proc = make(str(venv / ".learner"), f"VENV={venv}")
    assert proc.returncode != 0 and not (venv / ".learner").exists()
    assert f"the install failed: the whole log is in {venv}/install.log" in proc.stdout


def test_bare_pytest_runs_the_learner_checks_and_make_test_the_suite():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert options["testpaths"] == ["checks"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    collected = [line for line in proc.stdout.splitlines() if "::" in line]
    assert collected and all(line.startswith("checks/lesson") for line in collected), proc.stdout[-2000:]
    assert "pytest -ra tests" in make("-n", "test", "VENV=/nonexistent/.venv").stdout


def test_exercise_selects_exactly_one_check():
    code, out = run_checks(registry.get("01"), registry.solutions_dir(), "--exercise", "nll")
    assert summary_table(out) == {"nll": "pass"}, out
    code, out = run_checks(registry.get("01"), registry.solutions_dir(), "-k", "nll")
    assert set(summary_table(out)) == {"nll", "neural_nll"}, "what -k does, and why --exercise exists"
    code, out = run_checks(registry.get("01"), registry.solutions_dir(), "--exercise", "nl")
    assert code != 0 and "no exercise named nl here; the exercises are build_vocab," in out


@pytest.mark.slow
def test_make_start_points_to_the_next_unfinished_lesson(tmp_path):
    copy = tmp_path / "lessons"
    shutil.copytree(ROOT / "lessons", copy)
    bigram = registry.get("01")
    shutil.copy(bigram.script(registry.solutions_dir()), bigram.script(copy))  # lesson 01 finished
    env = {**__import__("os").environ, "COURSE_LESSONS": str(copy)}
    proc = subprocess.run([sys.executable, "-m", "course", "start"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Begin with lessons/02_mlp/mlp.py" in proc.stdout, proc.stdout
