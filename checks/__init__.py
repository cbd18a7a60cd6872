"""The course's checks: checks/lessonNN/exercises.py holds a lesson's checks, test_*.py is pytest's
front end to them, and checks/conftest.py is the judge (see CONTRIBUTING.md)."""

import os

# hypothesis runs, at its import, the plugins other packages register. trio's (selenium's, in the
# instructor extra) imports trio and pytest: it doubled the import's cost and put pytest into every
# process that imports lessons 05-07's checks (a fresh zygote, the nbgrader judge). The checks'
# properties use no plugin. Set here, before any check module imports hypothesis, on every route.
os.environ.setdefault("HYPOTHESIS_NO_PLUGINS", "1")
