# A blank nll. Top-level code (run only by nbgrader's kernel) displays HTML and JavaScript that
# would run in the browser of the instructor who opens this learner's feedback page, and a
# Markdown cell carries a script too.
# expect: nll=not attempted
from IPython.display import HTML, Javascript, display

display(HTML("<b id='hostile'>x</b><script>document.title = 'HOSTILE-JS'</script>"
             "<img src='x' onerror=\"document.title = 'HOSTILE-JS'\">"))
display(Javascript("document.title = 'HOSTILE-JS'"))


def nll(P, words, stoi):
    raise NotImplementedError()


# %% [markdown]
# <script>document.title = 'HOSTILE-JS'</script><img src=x onerror="document.title = 'HOSTILE-JS'">
