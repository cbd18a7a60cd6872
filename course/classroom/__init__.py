"""Grade the course with nbgrader: release, collect, autograde, feedback, grades.

One nbgrader course folder (default `course-nbgrader/` at the top of the
repository, git-ignored) serves every lesson present in solutions/:

    nbgrader_config.py                    kernel, per-cell timeout, stderr filter, missing cells
    jupyter/kernels/llm-from-scratch/     the grading kernel: this environment's python, the repo on PYTHONPATH
    source/NN_name/name.ipynb             from solutions/NN_name/name.py: notebooks only, no jupytext pairing
    release/NN_name/name.ipynb            nbgrader generate_assignment: no solutions, no hidden tests
    submitted/LEARNER/NN_name/name.ipynb  `collect`: each learner's file, checked and repaired
    snapshots/NN_name/LEARNER/name.ipynb  the same, read-only and hashed at collect time: what the judge grades
    autograded/ feedback/ gradebook.db grades.csv   nbgrader autograde, generate_feedback, export
    reports/NN_name.csv                   one line per learner: score, outcome, what went wrong
    logs/NN_name/LEARNER.log              nbgrader's own log of each learner's autograde

One module per stage, in the order an instructor runs them:

    setup      the course folder: settings, grading kernel, source/; how nbgrader is run in it
    release    nbgrader generate_assignment, refused when it leaks a solution or hidden test
    collect    learners' files into submitted/, checked and repaired
    autograde  nbgrader autograde, watched: a log per learner, a wall-clock limit per learner
    shards     `--jobs N`: nbgrader's notebook runs in N shards side by side
    grade      the batch: autograde for the feedback, the judge's points as the grade of record
    parallel   the judges, `--jobs N` at a time on this machine
    cluster    the judges on a Dask cluster (`--cluster`)
    feedback   `--feedback verdicts`: the learner's notebook with each verdict, nothing run
    report     reports/NN_name.csv and the feedback page of a learner who could not be graded
    mistakes   `course nbgrader report NN`: the class's failures grouped by mistake
    launch     nbgrader's own processes: python -s, an allow-listed environment, a private HOME, no leftovers
    start_nbgrader  nbgrader's command line, without an optional import that costs 0.9 s a process
    seal       trust nothing learner code wrote: snapshots, links never followed, script-free feedback
    cli        `course nbgrader init | release | collect | grade | report | points`

nbgrader runs in a subprocess (`python -s -m course.classroom.start_nbgrader ...`, see launch)
with this environment's bin/ first on PATH (it shells out to `alembic`). A watcher
splits autograde's log per learner and stops a learner's kernel past a
wall-clock limit, so one submission can never stop the batch.
"""
