"""`python -s -m course.classroom.start_nbgrader ARGS`: nbgrader's command line, as `launch` starts it.

nbgrader imports nbformat, which imports jsonschema, which imports the
optional IRI checker `rfc3987_syntax` when it is installed (JupyterLab's
jupyter-events pulls it in). That module builds a parser when imported:
0.9 s of CPU in every nbgrader process (an autograde, each feedback and
export), 8 times the rest of nbformat's import. No notebook schema checks an
IRI, so the course marks it missing and jsonschema goes on without it.
"""

import runpy
import sys


def skip_iri_checker():
    """Make `import rfc3987_syntax` fail (jsonschema imports it optionally); only before jsonschema's import."""
    sys.modules.setdefault("rfc3987_syntax", None)


if __name__ == "__main__":
    skip_iri_checker()
    sys.argv[0] = "nbgrader"
    runpy.run_module("nbgrader", run_name="__main__", alter_sys=True)
