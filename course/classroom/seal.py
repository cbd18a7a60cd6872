"""Trust nothing learner code wrote: what crosses back from a notebook run is its executed notebook.

nbgrader is not contained: it writes the gradebook, and after a learner's
kernel ran it writes the executed notebook into autograded/LEARNER/NN/,
chmods every file there, and `generate_feedback` copies that folder into
feedback/, each time following symbolic links. So nothing the learner's
processes left may still be there when nbgrader does:

- `Seal`, a preprocessor that runs inside `nbgrader autograde` right after
  `Execute` (named in the course folder's nbgrader_config.py): it kills every
  process left below nbgrader (it is their subreaper), empties the learner's
  folder (the executed notebook is in nbgrader's memory; its writer puts it
  back as a new regular file), removes links and special files anywhere
  nbgrader writes, and keeps only plain-text and image outputs, so a
  feedback page shows learner output without running its scripts;
- `clean_tree`, run by `course nbgrader grade` before each later nbgrader
  step: no symbolic link, hard link (st_nlink > 1) or special file under the
  folders nbgrader and the grader write;
- `protect_page`: a Content-Security-Policy that forbids scripts, first in
  every feedback page's <head>;
- `take_snapshot`: at collect time, each submission is copied where no
  learner code can reach it (snapshots/) and hashed; the judge grades that.
"""

import os
import shutil
import stat
from pathlib import Path

WRITTEN = ("autograded", "feedback", "reports", "logs")  # folders of the course folder written after learner code ran
SAFE_OUTPUTS = ("text/plain", "image/png", "image/jpeg")  # what a feedback page shows of learner output
CSP = ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
       'style-src \'unsafe-inline\'; img-src data:; font-src data:">')
LOG_PREFIX = "course-seal:"  # the watcher (autograde.py) reads these lines of nbgrader's log


def _kind(st):
    if stat.S_ISLNK(st.st_mode):
        return "symbolic link"
    if stat.S_ISDIR(st.st_mode):
        return None
    if not stat.S_ISREG(st.st_mode):
        return "special file"
    return "hard link" if st.st_nlink > 1 else None


def _remove(path, st):
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)  # never follows the links inside
    else:
        os.unlink(path)


def real_folder(root, *parts):
    """No component of root/parts... is a link or a file: such a component is removed (whoever writes there
    next makes a real folder, never following a link). Returns what was removed."""
    replaced, here = [], Path(root)
    for part in parts:
        here = here / part
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            replaced.append(f"{here} ({_kind(st) or 'a file, not a folder'})")
            os.unlink(here)
    return replaced


def clean_tree(root):
    """Remove every symbolic link, hard link and special file under `root` (never following one);
    returns what was removed, as 'path (kind)'."""
    root = Path(root)
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return []
    if _kind(st) is not None:
        os.unlink(root)
        return [f"{root} ({_kind(st)})"]
    removed = []
    for dirpath, dirnames, filenames in os.walk(root):  # os.walk does not descend into linked folders
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            kind = _kind(st)
            if kind:
                os.unlink(path)
                removed.append(f"{path} ({kind})")
    return removed


def clean_course(course_dir):
    """clean_tree over every folder of the course folder written after learner code ran, grades.csv too."""
    course_dir = Path(course_dir)
    removed = [r for sub in WRITTEN for r in real_folder(course_dir, sub) + clean_tree(course_dir / sub)]
    grades = course_dir / "grades.csv"
    if grades.is_symlink() or (grades.exists() and _kind(os.lstat(grades))):
        removed.append(f"{grades} ({_kind(os.lstat(grades))})")
        os.unlink(grades)
    return removed


def safe_outputs(nb):
    """Keep only plain text and images of display outputs (no HTML, JavaScript, SVG or Markdown)."""
    dropped = set()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if not data:
                continue
            unsafe = [k for k in data if k not in SAFE_OUTPUTS]
            dropped.update(unsafe)
            for k in unsafe:
                del data[k]
            if not data:
                data["text/plain"] = f"[{', '.join(unsafe)} output: not shown]"
    return sorted(dropped)


def protect_page(path):
    """Put the script-forbidding CSP first in the <head> of the feedback page at `path` (a regular file)."""
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    with os.fdopen(fd, "r+", encoding="utf-8") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise OSError(f"{path} is not a plain file")
        page = fh.read()
        if CSP in page:
            return
        head = page.find("<head>")
        page = page[:head + 6] + CSP + page[head + 6:] if head >= 0 else CSP + page
        fh.seek(0)
        fh.write(page)
        fh.truncate()


def snapshot_path(course_dir, lesson, learner):
    """snapshots/NN_name/LEARNER/name.ipynb: the submission as collected, read-only; the judge grades it."""
    return Path(course_dir) / "snapshots" / lesson.folder / learner / f"{lesson.name}.ipynb"


def take_snapshot(course_dir, lesson, learner):
    """Copy submitted/LEARNER/NN_name/name.ipynb to its snapshot; returns its sha256."""
    from ..grading.integrity import copy_regular

    source = Path(course_dir) / "submitted" / learner / lesson.folder / f"{lesson.name}.ipynb"
    return copy_regular(source, snapshot_path(course_dir, lesson, learner))


def checked_snapshot(course_dir, lesson, sub, outcome):
    """The sha256 of the learner's snapshot (taken at collect time), before any learner code of this batch runs.
    A submission placed or changed in submitted/ since then is snapshot now, and graded as it is."""
    from ..grading.integrity import sha256

    submitted = Path(course_dir) / "submitted" / sub.learner / lesson.folder / f"{lesson.name}.ipynb"
    snapshot = snapshot_path(course_dir, lesson, sub.learner)
    if sub.sha256 and snapshot.is_file() and sha256(snapshot) == sub.sha256 == sha256(submitted):
        return sub.sha256
    if sub.sha256:
        outcome.notes.append("submitted/ changed since `collect`: graded as it is now")
    return take_snapshot(course_dir, lesson, sub.learner)


def before_nbgrader(course_dir, guard, log):
    """No learner code runs any more: the files that decide grades are as they were, and nothing of the
    learners' processes is left for nbgrader to follow."""
    guard.verify("this batch")
    for path in clean_course(course_dir):
        log(f"removed {path}: a link or special file where nbgrader writes")


def write_new(path, text):
    """Write `text` as a new regular file at `path` (whatever was there, link or not, is replaced)."""
    path = Path(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def seal(nb, resources, log):
    """After `Execute`: no learner process left, nothing of theirs in the folders nbgrader writes next."""
    from ..grading import processes

    killed = processes.kill_descendants()  # the kernel is shut down: whatever remains is the learner's
    here = Path(resources["metadata"]["path"]).absolute()
    course = here.parent.parent.parent
    student, assignment = resources["nbgrader"]["student"], resources["nbgrader"]["assignment"]
    found = real_folder(course, "autograded", student, assignment)
    if here.is_dir():
        for entry in os.scandir(here):  # the notebook too: the writer puts the executed one back, new
            st = entry.stat(follow_symlinks=False)
            if _kind(st):  # plain files and folders (figures the lesson saved) go quietly
                found.append(f"{entry.path} ({_kind(st)})")
            _remove(entry.path, st)
    here.mkdir(parents=True, exist_ok=True)
    found += clean_course(course)
    dropped = safe_outputs(nb)
    if killed:
        log.warning("%s %s: killed %d process(es) the notebook left running", LOG_PREFIX, student, len(killed))
    if found:
        log.warning("%s %s: removed what the notebook's processes left where nbgrader writes, never followed: %s",
                    LOG_PREFIX, student, "; ".join(found))
    if dropped:
        log.info("%s %s: outputs kept as text only (dropped %s)", LOG_PREFIX, student, ", ".join(dropped))
    return nb, resources


def __getattr__(name):
    """`Seal`, the preprocessor named in nbgrader_config.py: nbconvert is imported only inside nbgrader."""
    if name != "Seal":
        raise AttributeError(name)
    from nbconvert.preprocessors import Preprocessor
    from traitlets import Bool

    class Seal(Preprocessor):
        enabled = Bool(True)  # nbconvert skips a preprocessor not enabled

        def preprocess(self, nb, resources):
            return seal(nb, resources, self.log)

    globals()["Seal"] = Seal
    return Seal


def become_subreaper():
    """nbgrader adopts the processes a notebook leaves behind, so `Seal` can kill them, and no process of
    the same user can trace it or read its memory (Linux)."""
    from ..grading import processes
    from .launch import shield

    processes.set_subreaper()
    shield()
