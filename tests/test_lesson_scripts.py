"""Each solution runs top to bottom as a script, in fast mode, saves its figures and says that each
check passed; a learner's script stops at the first failing check with pytest's verdict, not a traceback."""

import os
import re
import subprocess
import sys

import pytest

from course import lessons as registry

LESSONS = registry.available(registry.solutions_dir())


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=[l.folder for l in LESSONS])
def test_solution_runs_in_fast_mode(lesson, fast_runs):
    proc, out = fast_runs.get(lesson)  # run once; tests/test_prose_figures.py reads the same output
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert list(out.glob("*.png")), "a lesson saves at least one figure"
    checked = re.findall(r"^check\.(\w+)\(", lesson.script(registry.solutions_dir()).read_text(), re.M)
    assert checked and all(re.search(rf"^{name}: pass\b", proc.stdout, re.M) for name in checked), proc.stdout


NLL = re.compile(r"^def nll\(.*?(?=^# %%)", re.M | re.S)
FAILING = {  # the nll exercise of lesson 01: its source, then what the run's stderr must say
    "blank": ("def nll(P, words, stoi):\n    raise NotImplementedError()\n\n\n",
              "nll: not attempted yet (bigram.py:{line})"),
    "wrong": ("def nll(P, words, stoi):\n    return 1.0\n\n\n", "nll: wrong\nnll(P, words, stoi): expected "),
    "raises": ("def nll(P, words, stoi):\n    n = len(words) - len(words)\n    return 1.0 / n\n\n\n",
               "nll: your code raised ZeroDivisionError: float division by zero\n  bigram.py:{line} in nll"),
}


@pytest.mark.parametrize("answer", FAILING)
def test_a_script_stops_at_a_failing_check_with_its_verdict(tmp_path, answer):
    source, verdict = FAILING[answer]
    lesson = registry.get("01")
    text = lesson.script(registry.solutions_dir()).read_text()
    (tmp_path / "bigram.py").write_text(NLL.sub(lambda m: source, text, count=1))
    line = text[:NLL.search(text).start()].count("\n") + 1 + source.count("\n", 0, source.rindex("    "))
    env = {**os.environ, "COURSE_FAST": "1", "COURSE_OUT": str(tmp_path), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "bigram.py"], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 1 and proc.stderr.startswith(verdict.format(line=line)), proc.stderr
    assert "Traceback" not in proc.stderr and "checks/" not in proc.stderr, proc.stderr  # no check source
    assert re.search(r"^bigram_probs: pass \(\d+ points?\)$", proc.stdout, re.M), proc.stdout  # those before
    assert "neural_nll" not in proc.stdout + proc.stderr  # the script stopped at nll
