# os._exit, SystemExit and KeyboardInterrupt from learner code: each costs its own exercise only.
# expect: nll=error, bigram_dataset=error, neural_nll=error, sgd_step=error
# (the reference sgd_step calls neural_nll)


def nll(P, words, stoi):
    import os

    os._exit(0)


def bigram_dataset(words, stoi):
    raise SystemExit(0)


def neural_nll(W, xs, ys, reg=0.01):
    raise KeyboardInterrupt
