"""Shared hypothesis strategies and settings for the property-based differential tests (tests/test_properties_*).

One place for the inputs the chapters' references, their registered alternatives and their library
counterparts are compared on: float arrays of given shapes with controlled magnitudes, columns that
are constant or nearly so, NaN-holed tables for imputation, labels of three or more classes whose
frequency order differs from their label order, categories as numbers or (non-ASCII) strings,
short documents with non-ASCII words, and the boundary values the references guard against.

`budget(n)` gives the settings every property uses: `n` examples, no deadline (the first call of a
torch function is slow), and `derandomize=True`, so that CI tries the same inputs on every run.
No profile is loaded globally: importing this module changes nothing for other tests.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, settings  # noqa: F401  (assume re-exported for the tests)
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from autograder.learner import registry


def alternatives(exercise_id):
    """pytest params, one per registered alternative of `exercise_id` ([] for an exercise that has none).

    An id that names no exercise (a typo, an exercise renamed) raises at collection: an empty parametrization
    would skip its tests silently."""
    try:
        found = registry.get(exercise_id).alternatives
    except KeyError as error:
        raise LookupError(f"tests/strategies.alternatives: unknown exercise id {exercise_id!r} ({error})") from None
    return [pytest.param(alternative, id=alternative.__name__) for alternative in found]


def tolerances(exercise_id):
    """The exercise's own rtol and atol, to compare with as its check does."""
    exercise = registry.get(exercise_id)
    return {"rtol": exercise.rtol, "atol": exercise.atol}

_BASE = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.filter_too_much])


def budget(max_examples):
    """Settings for one property: `max_examples` inputs, deterministic, no deadline."""
    return settings(_BASE, max_examples=max_examples)


# ---------------------------------------------------------------- numbers and arrays

def floats(magnitude=1e3, min_abs=0.0):
    """Finite float64 values in [-magnitude, magnitude], no subnormals; with min_abs, |x| >= min_abs or x == 0."""
    values = st.floats(-magnitude, magnitude, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if min_abs:
        values = values.filter(lambda x: x == 0 or abs(x) >= min_abs)
    return values


def arrays(shape, magnitude=1e3, dtype=np.float64, elements=None):
    """Arrays of `shape` (a tuple or a strategy of tuples) with finite entries in [-magnitude, magnitude]."""
    if elements is None:
        elements = floats(magnitude)
        if dtype == np.float32:
            elements = st.floats(-magnitude, magnitude, width=32, allow_nan=False, allow_infinity=False,
                                 allow_subnormal=False)
    return hnp.arrays(dtype, shape, elements=elements)


@st.composite
def scaled_arrays(draw, shape, exponents=(-3, 3), dtype=np.float64):
    """Well-conditioned arrays with a controlled magnitude: entries in [-1, 1] (at least one of size >= 0.25)
    times 10**k, k drawn from `exponents` (inclusive). Entries exactly 0 are kept (kinks)."""
    shape = draw(shape) if isinstance(shape, st.SearchStrategy) else shape
    unit = draw(hnp.arrays(np.float64, shape, elements=st.one_of(
        st.just(0.0), st.floats(-1, 1, allow_subnormal=False).filter(lambda x: abs(x) >= 1e-3))))
    if unit.size:
        unit.flat[draw(st.integers(0, unit.size - 1))] = draw(st.sampled_from([-1.0, -0.5, 0.25, 1.0]))
    exponent = draw(st.integers(*exponents))
    return (unit * 10.0 ** exponent).astype(dtype)


def shapes(min_rows=1, max_rows=8, min_cols=1, max_cols=5):
    """(rows, cols) pairs; min_rows=1 keeps a batch of one in play."""
    return st.tuples(st.integers(min_rows, max_rows), st.integers(min_cols, max_cols))


@st.composite
def standardizer_tables(draw, min_rows=1, max_rows=12, max_cols=4):
    """(n, d) tables whose columns are of one of these kinds: ordinary values of a drawn magnitude; exactly
    constant (a value such as 0.1, whose mean numpy may not compute exactly); a spread of exactly 1e-17 around
    0 ([0, 2e-17] repeated: std exactly 1e-17, far below 10·eps); a spread of one ulp around a large value;
    integer counts."""
    n = draw(st.integers(min_rows, max_rows))
    d = draw(st.integers(1, max_cols))
    columns = []
    for _ in range(d):
        kind = draw(st.sampled_from(["ordinary", "constant", "std 1e-17", "one ulp", "integers"]))
        if kind == "ordinary":
            column = draw(scaled_arrays((n,), exponents=(-2, 6)))
        elif kind == "constant":
            column = np.full(n, draw(st.sampled_from([0.0, 1.0, 0.1, -3.7, 1e6 + 0.1, 2.0 / 3.0])))
        elif kind == "std 1e-17":
            column = np.resize([0.0, 2e-17], n) if n % 2 == 0 else np.full(n, 0.0)
        elif kind == "one ulp":
            base = draw(st.sampled_from([1.0, 1e3, 1e6]))
            column = base + np.resize([0.0, np.spacing(base)], n)
        else:
            column = np.array(draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n)), dtype=np.float64)
        columns.append(column)
    return np.column_stack(columns)


@st.composite
def nan_holed_tables(draw, min_rows=1, max_rows=10, max_cols=4, magnitude_exponents=(-2, 4)):
    """(X_fit, X_new): tables with NaN holes. Every column of X_fit keeps at least one value (the Imputer's
    precondition); some columns have no hole at all; X_new may have holes where X_fit had none."""
    n = draw(st.integers(min_rows, max_rows))
    m = draw(st.integers(1, 6))
    d = draw(st.integers(1, max_cols))
    exponent = draw(st.integers(*magnitude_exponents))
    values = st.floats(-1, 1, allow_subnormal=False).map(lambda x: round(x * 10.0 ** exponent, 6 - exponent))
    X_fit = np.array(draw(st.lists(st.lists(values, min_size=d, max_size=d), min_size=n, max_size=n)))
    X_new = np.array(draw(st.lists(st.lists(values, min_size=d, max_size=d), min_size=m, max_size=m)))
    holes_fit = np.array(draw(st.lists(st.lists(st.booleans(), min_size=d, max_size=d), min_size=n, max_size=n)))
    holes_new = np.array(draw(st.lists(st.lists(st.booleans(), min_size=d, max_size=d), min_size=m, max_size=m)))
    for j in range(d):
        if holes_fit[:, j].all():
            holes_fit[draw(st.integers(0, n - 1)), j] = False
    X_fit[holes_fit] = np.nan
    X_new[holes_new] = np.nan
    return X_fit.reshape(n, d), X_new.reshape(m, d)


# ---------------------------------------------------------------- labels and categories

@st.composite
def labels(draw, min_classes=2, max_classes=5, min_size=1, max_size=40, scrambled=True, dtype=np.int64):
    """Integer class labels. With `scrambled`, three or more classes are given counts whose order differs from
    their label order (the most frequent class is not the smallest label), in an order where the classes do not
    first appear in label order either."""
    k = draw(st.integers(min_classes, max_classes))
    counts = draw(st.lists(st.integers(1, max(1, max_size // k)), min_size=k, max_size=k))
    label_values = sorted(draw(st.lists(st.integers(0, 9), min_size=k, max_size=k, unique=True)))
    if scrambled and k >= 3:
        counts = sorted(counts)  # the smallest label is the rarest, the largest the most frequent
        assume(counts[0] < counts[-1])
    y = np.repeat(label_values, counts)
    y = y[draw(st.permutations(range(len(y))))] if draw(st.booleans()) else y[::-1].copy()
    assume(min_size <= len(y))
    return y.astype(dtype)


@st.composite
def prediction_pairs(draw, min_classes=2, max_classes=6, max_size=30, dtypes=(np.int64,)):
    """(y_true, y_pred, n_classes): labels in 0..n_classes-1, both ends of the range reachable, any int dtype."""
    n_classes = draw(st.integers(min_classes, max_classes))
    n = draw(st.integers(1, max_size))
    label = st.integers(0, n_classes - 1)
    dtype = draw(st.sampled_from(dtypes))
    y_true = np.array(draw(st.lists(label, min_size=n, max_size=n)), dtype=dtype)
    y_pred = np.array(draw(st.lists(label, min_size=n, max_size=n)), dtype=dtype)
    return y_true, y_pred, n_classes


NON_ASCII_WORDS = ["café", "naïve", "Straße", "ΣΊΣΥΦΟΣ", "Ärger", "ärger", "İstanbul", "東京", 
                   "日本語",
                   "ǅemal", "ﬁnal", "x²", "٣٤٥", "ﬀ", "Ωmega", "ωmega", "e\u0301te", "été"]
ASCII_WORDS = ["the", "The", "cat", "sat", "on", "mat", "a", "I", "lr_max", "0.01", "42", "A1", "x", "loss", "LOSS"]


def categories(kind=None):
    """A strategy of 1-D category arrays: small integers, floats, ASCII strings or non-ASCII strings."""
    kinds = {
        "int": st.integers(-3, 6),
        "float": st.sampled_from([-1.5, 0.0, 0.5, 2.0, 1e9]),
        "ascii": st.sampled_from(["a", "b", "B", "ab", "", "zz", "Z9"]),
        "unicode": st.sampled_from(["é", "e", "ß", "ss", "東京", "Ω", "ω", "z", "ä", "a\u0308"]),
    }
    chosen = [kinds[kind]] if kind else list(kinds.values())
    return st.one_of(*[st.lists(values, min_size=1, max_size=12).map(np.array) for values in chosen])


@st.composite
def category_pairs(draw, kind=None):
    """(x_fit, x_new) of one kind: x_new mixes seen values and (maybe) unseen ones."""
    kind = kind or draw(st.sampled_from(["int", "float", "ascii", "unicode"]))
    fit = draw(categories(kind))
    new = draw(categories(kind))
    if draw(st.booleans()):
        new = fit[np.array(draw(st.lists(st.integers(0, len(fit) - 1), min_size=1, max_size=8)))]
    return fit, new


def documents(min_docs=1, max_docs=5):
    """Short documents of ASCII and non-ASCII words with punctuation; empty documents included."""
    word = st.sampled_from(ASCII_WORDS + NON_ASCII_WORDS)
    separator = st.sampled_from([" ", ", ", ". ", "! ", "-", "_", "\n", "; ", "'"])
    document = st.lists(st.tuples(word, separator), max_size=8).map(lambda parts: "".join(w + s for w, s in parts))
    return st.lists(document, min_size=min_docs, max_size=max_docs)


# ---------------------------------------------------------------- values at a guard's boundary

@st.composite
def with_kinks(draw, shape, exponents=(-2, 2)):
    """Arrays where some entries are exactly 0 (ReLU's kink) or exactly -0.0, the rest ordinary."""
    x = draw(scaled_arrays(shape, exponents=exponents))
    mask = draw(hnp.arrays(np.int8, x.shape, elements=st.integers(0, 3)))
    return np.where(mask == 0, 0.0, np.where(mask == 1, -0.0, x))


def non_finite_arrays(shape):
    """Arrays mixing ordinary values with +inf, -inf and NaN."""
    return hnp.arrays(np.float64, shape, elements=st.one_of(
        st.sampled_from([np.inf, -np.inf, np.nan, 0.0]), st.floats(-50, 50, allow_subnormal=False)))


def half_ties():
    """(test_size, n_c) pairs whose product is exactly k + 0.5, where half to even and half up differ."""
    return st.sampled_from([(0.5, 1), (0.5, 3), (0.5, 5), (0.5, 7), (0.25, 2), (0.25, 6), (0.25, 10),
                            (0.125, 4), (0.125, 12), (0.75, 2), (0.75, 6)])
