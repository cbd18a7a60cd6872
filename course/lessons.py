"""Where things are: the lesson table and the repository's folders.

A lesson is a folder `NN_name/` holding one lesson script `name.py` (jupytext
py:percent), in `solutions/` (the reference, the single source) and in
`lessons/` (the learner's copy, generated, with its paired `name.ipynb`).
"""

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LESSONS = [
    ("01", "bigram", "Bigram model: counts, sampling, NLL, a first neural net"),
    ("02", "mlp", "MLP language model (Bengio et al. 2003)"),
    ("03", "batchnorm", "Initialisation, BatchNorm, diagnostics"),
    ("04", "backprop", "Manual backprop through the whole MLP"),
    ("05", "wavenet", "WaveNet-like hierarchy, causal dilated convolutions"),
    ("06", "gpt", "GPT: self-attention to a trained Transformer"),
    ("07", "bpe", "Byte-level BPE tokenizer, parity with tiktoken"),
]


@dataclass(frozen=True)
class Lesson:
    number: str  # "01"
    name: str  # "bigram"
    title: str

    @property
    def folder(self):
        return f"{self.number}_{self.name}"

    def script(self, root):
        """The lesson script under `root` (lessons/, solutions/ or a copy)."""
        return Path(root) / self.folder / f"{self.name}.py"

    def notebook(self, root):
        return Path(root) / self.folder / f"{self.name}.ipynb"


def all_lessons():
    return [Lesson(*row) for row in LESSONS]


def get(key):
    """A lesson by number ("1", "01", "lesson01") or name ("bigram")."""
    key = str(key).removeprefix("lesson")
    for lesson in all_lessons():
        if key in (lesson.number, lesson.number.lstrip("0"), lesson.name, lesson.folder):
            return lesson
    raise KeyError(f"no lesson {key!r}; lessons are " + ", ".join(l.folder for l in all_lessons()))


def solutions_dir():
    return ROOT / "solutions"


def lessons_dir():
    """The learner folder the checks grade: $COURSE_LESSONS, else lessons/."""
    return Path(os.environ.get("COURSE_LESSONS", ROOT / "lessons")).resolve()


def available(root):
    """The lessons whose script exists under `root`."""
    return [l for l in all_lessons() if l.script(root).exists() or l.notebook(root).exists()]
