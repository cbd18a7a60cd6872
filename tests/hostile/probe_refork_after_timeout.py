# Like probe_refork_oracle, but the probe is killed for time: sample_name loops and swallows the
# interrupt, so the probe is killed at the limit and the next one is forked when the nll check first
# calls nll, after it computed `expected`. A blank nll then returned it from the inherited frames.
# expect: sample_name=timeout, nll=wrong
import math
import sys
import time


def sample_name(P, itos, generator):
    while True:
        try:
            while True:
                time.sleep(0.05)  # asleep or busy, the probe is killed at the limit
        except BaseException:
            pass


def nll(P, words, stoi):
    if bool((P == P[0, 0]).all()):  # the uniform model: its NLL is -log of its one probability
        return -math.log(P[0, 0].item())
    frame = sys._getframe(1)
    while frame is not None:
        value = frame.f_locals.get("expected")
        if isinstance(value, float):
            return value
        frame = frame.f_back
    return 0.0
