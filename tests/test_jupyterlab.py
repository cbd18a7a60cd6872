"""A lesson in JupyterLab, in a real browser: what a learner does with the mouse and keyboard.

`jupyter lab` from the course's environment (its settings and pairing included) serves a copy of
the lessons; headless Chromium (Debian's `chromium` and `chromium-driver`, driven by selenium)
opens lesson 01's notebook, types an answer, saves, runs the check cells and reads their verdicts;
the paired .py follows, an edit of the .py shows after a reload, and in the "File Changed" case
the editor's version is kept in a backup. Each step leaves a screenshot in tests/artifacts/jupyterlab/
(with the server's log): look at them when this test changes.
"""

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from course import lessons as registry

ROOT = registry.ROOT
ARTIFACTS = ROOT / "tests" / "artifacts" / "jupyterlab"
BIGRAM = registry.get("01")
NOTEBOOK = f"lessons/{BIGRAM.folder}/{BIGRAM.name}.ipynb"
STUB = "    # YOUR CODE HERE\n    raise NotImplementedError()"
# What the learner types after the indentation, one line at a time (the editor indents each next line).
ANSWER = ['chars = sorted(set("".join(words)))',
          'stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}',
          "return stoi, {i: c for c, i in stoi.items()}"]
BROWSER, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (BROWSER and DRIVER),
                       reason="no browser here: `apt-get install chromium chromium-driver` (.ci/run does)"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid):
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def stop(processes):
    """Terminate these processes (by PID); kill those still alive 10 s later. The ones left, if any."""
    for proc in processes:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=10)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    return psutil.wait_procs(alive, timeout=5)[1]


class Lab:
    """`jupyter lab` on a copy of the lessons, as the README starts it, with a home of its own."""

    def __init__(self, tmp):
        self.root, self.home = tmp / "course", tmp / "home"
        shutil.copytree(ROOT / "lessons", self.root / "lessons",
                        ignore=shutil.ignore_patterns("*.bak-*", ".*.agreed", "out"))
        self.home.mkdir()
        self.port, self.token = free_port(), secrets.token_hex(16)
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
        env.update(HOME=str(self.home), MPLBACKEND="Agg", COURSE_LESSONS=str(self.root / "lessons"),
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
        self.log_path = ARTIFACTS / "jupyter-lab.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [Path(sys.executable).parent / "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1",
             "--port", str(self.port), f"--IdentityProvider.token={self.token}",
             *(["--allow-root"] if os.geteuid() == 0 else [])],
            cwd=self.root, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while True:
            try:
                self.api("status")
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"jupyter lab did not start: see {self.log_path}")
                time.sleep(0.5)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def api(self, path):
        with urllib.request.urlopen(self.url(f"api/{path}"), timeout=10) as reply:
            return json.load(reply)

    def log_text(self):
        self.log.flush()
        return self.log_path.read_text()

    def close(self):
        """Stop the server (it shuts its kernels down), then any kernel left; the processes left."""
        children = descendants(self.proc.pid)  # the kernels: sessions of their own, found by PID now
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        return stop(children)


class Page:
    """Headless Chromium on one JupyterLab page; `shot(name)` keeps a screenshot of each step."""

    def __init__(self, user_data):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = BROWSER
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                     f"--user-data-dir={user_data}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        options.unhandled_prompt_behavior = "accept"  # "leave this page?" on a reload
        self.service = Service(executable_path=DRIVER)
        self.driver = webdriver.Chrome(options=options, service=self.service)
        self.driver.set_page_load_timeout(60)
        self.steps = 0

    def shot(self, name):
        self.steps += 1
        path = ARTIFACTS / f"{self.steps:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def wait(self, condition, what, seconds=120):
        from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        rerendered = (StaleElementReferenceException, IndexError)  # cells replaced while we look
        try:
            return WebDriverWait(self.driver, seconds, poll_frequency=0.25,
                                 ignored_exceptions=rerendered).until(lambda d: condition())
        except TimeoutException:
            path = self.shot("timeout")
            raise AssertionError(f"timed out waiting for {what} (screenshot {path})") from None

    def find(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def cells(self):
        return self.find(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")

    def cell_text(self, n):
        """Cell `n` (from 1, markdown included, as the course counts) as the editor shows it."""
        return "\n".join(line.text for line in self.cells()[n - 1].find_elements("css selector", ".cm-line"))

    def output(self, n):
        return "\n".join(o.text for o in self.cells()[n - 1].find_elements("css selector", ".jp-OutputArea-output"))

    def prompt(self, n):
        return self.cells()[n - 1].find_elements("css selector", ".jp-InputPrompt")[0].text

    def dirty(self):
        """Whether the notebook's tab shows it modified (unsaved)."""
        tabs = [t for t in self.find(".lm-DockPanel .lm-TabBar-tab") if t.text.strip() == Path(NOTEBOOK).name]
        assert len(tabs) == 1, [t.text for t in tabs]
        return "jp-mod-dirty" in tabs[0].get_attribute("class").split()

    def keys(self, *keys):
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.driver).send_keys(*keys).perform()

    def chord(self, modifier, *keys):
        """`keys` pressed with `modifier` held down."""
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.driver).key_down(modifier).send_keys(*keys).key_up(modifier).perform()

    def open_notebook(self, lab):
        self.driver.get(lab.url(f"lab/tree/{NOTEBOOK}"))
        self.wait(lambda: len(self.cells()) > 20, "the notebook's cells")
        self.wait(lambda: self.find(".jp-Notebook-ExecutionIndicator[data-status='idle']"), "an idle kernel")

    def show(self, n):
        """Scroll cell n into the middle of the page (for a screenshot)."""
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", self.cells()[n - 1])
        time.sleep(0.3)

    def edit(self, n):
        """Put the cursor into cell n's editor."""
        editor = self.cells()[n - 1].find_elements("css selector", ".cm-content")[0]
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", editor)
        editor.click()

    def run(self, first, last):
        """Run cells first..last with Shift+Enter, as a learner does, and wait for the last one."""
        from selenium.webdriver.common.keys import Keys

        self.edit(first)
        self.keys(Keys.ESCAPE)
        before = self.prompt(last)
        for _ in range(first, last + 1):
            self.chord(Keys.SHIFT, Keys.ENTER)
            time.sleep(0.2)
        self.wait(lambda: re.fullmatch(r"\[\d+\]:", self.prompt(last)) and self.prompt(last) != before,
                  f"cell {last} to run")
        self.wait(lambda: self.find(".jp-Notebook-ExecutionIndicator[data-status='idle']"), "an idle kernel")

    def save(self):
        from selenium.webdriver.common.keys import Keys

        self.chord(Keys.CONTROL, "s")

    def close(self):
        """Quit the browser and its driver, then any of their processes left; the processes left."""
        driver = psutil.Process(self.service.process.pid)
        processes = [driver, *descendants(driver.pid)]  # chromedriver, chromium and its helpers
        from selenium.common.exceptions import WebDriverException

        try:
            self.driver.quit()
        except WebDriverException:
            pass  # ended by PID below
        return stop(processes)


@pytest.fixture
def lab(tmp_path):
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    print(f"screenshots and the server log: {ARTIFACTS}")
    lab = Lab(tmp_path)
    page = Page(tmp_path / "chromium")
    try:
        yield lab, page
    finally:
        left = page.close() + lab.close()
    assert not left, f"processes left running: {left}"


def test_a_lesson_in_jupyterlab(lab):
    from selenium.webdriver.common.keys import Keys

    lab, page = lab
    py = lab.root / "lessons" / BIGRAM.folder / f"{BIGRAM.name}.py"
    cell, check = 6, 7  # build_vocab and its check cell, counted as the course counts them
    page.open_notebook(lab)
    time.sleep(5)  # JupyterLab's first moves: the kernel's metadata (it marked the notebook modified), news
    page.shot("opened")
    assert "def build_vocab(words):" in page.cell_text(cell)
    assert not page.dirty(), "a notebook just opened must not be marked modified"
    assert not page.find(".Toastify__toast"), "no pop-up covers the page (JupyterLab asks about news)"
    assert "is not trusted" not in lab.log_text()

    # Type the answer over the stub, with the keyboard, and save.
    page.edit(cell)
    page.chord(Keys.CONTROL, Keys.END)
    page.chord(Keys.SHIFT, Keys.UP, Keys.HOME)  # the stub's two lines, after the indentation
    for i, line in enumerate(ANSWER):
        page.keys(line, *([Keys.ENTER] if i < len(ANSWER) - 1 else []))
    page.shot("typed")
    assert page.dirty()
    page.save()
    page.wait(lambda: ANSWER[1] in py.read_text(), "the save to reach the paired .py")
    page.wait(lambda: not page.dirty(), "the notebook saved")
    body = py.read_text().split('itos is the inverse of stoi.\n    """\n')[1].split("\n\n")[0]
    assert body == "    " + "\n    ".join(ANSWER), "the stub replaced by the answer, indented by the editor"

    # Run the imports through the check cell; the verdict is on the page.
    page.run(2, check)
    page.shot("checked")
    verdict = page.output(check)
    assert verdict == "build_vocab: pass (1 point)", verdict  # as `pytest --exercise build_vocab` says
    page.run(check + 1, 11)  # on to the next exercise's check, its blank untouched
    page.show(11)
    page.shot("not-attempted")
    verdict = page.output(11)
    assert verdict.startswith("count_bigrams: not attempted") and "bigram.ipynb, cell 10, line" in verdict, verdict

    # Saved, then an editor changes the .py; a reload of the page shows the change; the check says wrong.
    page.save()
    page.wait(lambda: not page.dirty(), "the notebook saved")
    py.write_text(py.read_text().replace('{".": 0, **', '{".": 27, **'))
    page.shot("saved")
    page.open_notebook(lab)  # the page loaded again
    page.wait(lambda: '".": 27' in page.cell_text(cell), "the .py's edit in the notebook")
    page.show(cell)
    page.shot("reloaded")
    page.run(2, check)
    page.show(check)
    page.shot("wrong")
    verdict = page.output(check)
    assert verdict.startswith("build_vocab: wrong\nbuild_vocab(words) stoi: 1 wrong values"), verdict
    assert "Traceback" not in verdict and "checks/" not in verdict and "abeilmovz" not in verdict, verdict

    # "File Changed": the notebook is open (and modified); an editor changes the .py; Ctrl+S; the
    # dialog's default button, Overwrite, writes the notebook's version and the editor's is kept.
    fixed = py.read_text().replace('{".": 27, **', '{".": 0, **')
    fixed = fixed.replace("    chars =", "    # fixed in my editor\n    chars =")
    py.write_text(fixed)
    page.save()
    page.wait(lambda: page.find(".jp-Dialog"), "the File Changed dialog")
    page.shot("file-changed")
    dialog = page.find(".jp-Dialog")[0].text
    assert "File Changed" in dialog and "Overwrite" in dialog and "Revert" in dialog, dialog
    page.keys(Keys.ENTER)  # its default button
    page.wait(lambda: not page.find(".jp-Dialog") and not page.dirty(), "the save")
    backups = list(py.parent.glob("bigram.py.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == fixed, "the editor's version is kept"
    assert '".": 27' in py.read_text() and "# fixed in my editor" not in py.read_text(), "the notebook's version"
    note = page.wait(lambda: [t.text for t in page.find(".Toastify__toast") if backups[0].name in t.text],
                     "a notification naming the backup")
    time.sleep(1)  # the notification slides in
    page.shot("overwritten")
    assert "bigram.py was changed" in note[0], note
    assert backups[0].name in lab.log_text(), "the server's log names the backup too"

    # The same, answered Revert: the notebook shows the editor's version, which nothing overwrote.
    py.write_text(fixed)
    page.edit(8)
    page.keys(Keys.END, "  # typed in the notebook, then reverted")
    page.save()
    page.wait(lambda: page.find(".jp-Dialog"), "the File Changed dialog")
    next(b for b in page.find(".jp-Dialog-button") if b.text == "Revert").click()
    page.wait(lambda: "# fixed in my editor" in page.cell_text(cell), "the editor's version in the notebook")
    page.keys(Keys.ESCAPE)
    page.show(cell)
    page.shot("reverted")
    assert not page.dirty() and py.read_text() == fixed
    assert len(list(py.parent.glob("bigram.py.bak-*"))) == 1, "nothing was overwritten, nothing backed up"
