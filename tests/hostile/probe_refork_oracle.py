# Crashes the probe in sample_name, so that the next probe is forked when the nll check first calls
# nll, after it computed `expected`: a blank nll then returned that value from the frames the new
# probe inherited (and -log of the one probability for the uniform model). A probe forked from the
# clean zygote finds no check frame and no expected value.
# expect: sample_name=error, nll=wrong
import gc
import math
import os
import sys


def sample_name(P, itos, generator):
    os._exit(0)


def _expected():
    frame = sys._getframe(1)
    while frame is not None:  # the frames this process inherited
        value = frame.f_locals.get("expected")
        if isinstance(value, float):
            return value
        frame = frame.f_back
    for obj in gc.get_objects():  # or any dict that kept it
        if isinstance(obj, dict) and isinstance(obj.get("expected"), float):
            return obj["expected"]
    return None


def nll(P, words, stoi):
    if bool((P == P[0, 0]).all()):  # the uniform model: its NLL is -log of its one probability
        return -math.log(P[0, 0].item())
    found = _expected()
    return found if found is not None else 0.0
