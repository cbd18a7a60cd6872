# Returns objects that claim to equal anything, and a float subclass that compares equal to all.
# expect: build_vocab=wrong, nll=wrong, sample_name=wrong


class _Yes(dict):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


class _AlwaysClose(float):
    def __sub__(self, other):
        return 0.0

    def __rsub__(self, other):
        return 0.0

    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


class _Str(str):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = str.__hash__


def build_vocab(words):
    return _Yes(), _Yes()


def nll(P, words, stoi):
    return _AlwaysClose(0.0)


def sample_name(P, itos, generator):
    return _Str("zzz")
