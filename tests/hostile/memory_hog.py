# Allocates far more than the memory limit (the tests set it low): an error for that exercise only.
# expect: count_bigrams=error


def count_bigrams(words, stoi):
    import torch

    hog = torch.ones(3 << 30, dtype=torch.uint8)  # 3 GiB
    return hog
