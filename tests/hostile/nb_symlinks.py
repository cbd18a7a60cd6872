# A blank nll. Top-level code (run only by nbgrader's kernel, whose working directory is the
# learner's own autograded/LEARNER/NN_name/ folder) plants what uncontained nbgrader would follow
# afterwards: its own notebook as a symbolic link to another learner's submitted notebook (nbgrader
# writes the executed notebook through it: that learner would be graded on this blank nll), a link
# and a hard link to the gradebook (generate_feedback copies them into this learner's feedback and
# chmods them) and a FIFO (a copy of it never ends).
# expect: nll=not attempted
import os


def _plant():
    here = os.getcwd()
    course = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    me, lesson = os.path.basename(os.path.dirname(here)), os.path.basename(here)
    try:
        others = sorted(p for p in os.listdir(os.path.join(course, "submitted")) if p != me)
    except OSError:
        others = []
    plants = [("symlink", os.path.join(course, "gradebook.db"), "gradebook.db"),
              ("link", os.path.join(course, "gradebook.db"), "gradebook-copy.db"),
              ("fifo", None, "pipe")]
    if others:
        victim = os.path.join(course, "submitted", others[-1], lesson, "bigram.ipynb")
        plants.insert(0, ("symlink", victim, "bigram.ipynb"))
    for kind, target, name in plants:
        try:
            if os.path.lexists(name):
                os.remove(name)
            if kind == "symlink":
                os.symlink(target, name)
            elif kind == "link":
                os.link(target, name)
            else:
                os.mkfifo(name)
        except OSError:
            pass


_plant()


def nll(P, words, stoi):
    raise NotImplementedError()
