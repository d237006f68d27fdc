"""Chapter 01 exercises: splits, scaling, missing values, categories, batches, metrics, folds, text, images."""
import collections
import functools
import math
import re

import numpy as np

from autograder.learner.drivers import epochs_of_batches, fit_then_transform
from autograder.learner.registry import Case, Exercise, Mistake, register
from solutions import ch01_data_preparation as ref
from solutions.data import DISTRICTS, apartments, breast_cancer, digit_images, training_corpus

# What these exercises ask you to write without (scikit-learn does what these exercises ask you to write): see autograder/learner/forbidden.py.
SKLEARN = ("sklearn",)


@functools.lru_cache(maxsize=1)
def _cancer():
    return breast_cancer()


@functools.lru_cache(maxsize=1)
def _digits():
    return digit_images()


@functools.lru_cache(maxsize=1)
def _apartments():
    return apartments()


def _fresh(**values):
    """Case arguments: the given values, arrays copied afresh on every call."""
    return lambda: {name: value.copy() if isinstance(value, np.ndarray) else value for name, value in values.items()}


def _with_rng(seed, **values):
    """Case arguments with a `rng` seeded with `seed`, new on every call."""
    make = _fresh(**values)
    return lambda: {**make(), "rng": np.random.default_rng(seed)}


# ---------------------------------------------------------------- stratified_split

def _split_variant(not_stratified=False, shuffled_twice=False, fraction_swapped=False, truncated=False,
                   half_up=False, sorted_output=True):
    """The reference split with one mistake switched on."""
    def split(y, test_size, rng):
        groups = [np.arange(len(y))] if not_stratified else [np.flatnonzero(y == label) for label in np.unique(y)]
        train, test = [], []
        for members in groups:
            share = (1 - test_size if fraction_swapped else test_size) * len(members)
            n_test = int(share) if truncated else math.floor(share + 0.5) if half_up else round(share)
            shuffled = rng.permutation(members)
            test.append(shuffled[:n_test])
            train.append((rng.permutation(members) if shuffled_twice else shuffled)[n_test:])
        train, test = np.concatenate(train), np.concatenate(test)
        return (np.sort(train), np.sort(test)) if sorted_output else (train, test)
    return split


def _split_by_positions(y, test_size, rng):
    """Shuffles positions within each class (the same stream as permuting the indices) and marks the test rows."""
    in_test = np.zeros(len(y), dtype=bool)
    for label in sorted(set(y.tolist())):
        members = np.nonzero(y == label)[0]
        positions = rng.permutation(len(members))
        in_test[members[positions[:int(np.round(test_size * len(members)))]]] = True
    return np.nonzero(~in_test)[0].astype(np.int64), np.nonzero(in_test)[0].astype(np.int64)


def _split_with_shuffle(y, test_size, rng):
    train, test = np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    for label in np.unique(y):
        members = np.where(y == label)[0]
        rng.shuffle(members)
        cut = round(len(members) * test_size)
        test, train = np.union1d(test, members[:cut]), np.union1d(train, members[cut:])
    return train, test


def _labels_by_hand():
    return {"y": np.array([0, 1, 0, 2, 0, 1, 0, 2, 1, 0]), "test_size": 0.3, "rng": np.random.default_rng(0)}


# labels 0, 1 and 2 with 5, 20 and 10 samples, shuffled: by frequency the order is 1, 2, 0 and by first appearance
# 2, 1, 0, neither the label order (a rule that walks the classes in either order draws other indices)
_OUT_OF_ORDER = np.random.default_rng(2).permutation(np.repeat([0, 1, 2], [5, 20, 10]))


def _cancer_labels(seed, test_size):
    return lambda: {"y": _cancer()[1].copy(), "test_size": test_size, "rng": np.random.default_rng(seed)}


def _digit_labels(seed, test_size):
    return lambda: {"y": _digits()[1].copy(), "test_size": test_size, "rng": np.random.default_rng(seed)}


register(Exercise(
    id="ch01.stratified_split", forbids=SKLEARN, points=2, reference=ref.stratified_split, outputs=("train_idx", "test_idx"),
    cases=(
        Case("10 labels by hand: classes of 5, 3 and 2, test_size 0.3", _labels_by_hand),
        Case("breast cancer: 212 malignant, 357 benign, test_size 0.25", _cancer_labels(1, 0.25)),
        Case("labels 0, 1, 2 with 5, 20 and 10 samples, test_size 0.5: class 0's 2.5 rounds (half to even) to 2",
             _with_rng(6, y=_OUT_OF_ORDER, test_size=0.5)),
        Case("digits: 10 classes, test_size 0.2", _digit_labels(2, 0.2), hidden=True),
        Case("imbalanced: 95 and 5", _with_rng(3, y=np.random.default_rng(4).permutation(np.repeat([1, 0], [95, 5])),
                                                   test_size=0.2), hidden=True),
        Case("labels 3, 7 and 9, test_size 0.5", _with_rng(5, y=np.array([9, 3, 7, 7, 3, 9, 9, 3, 7, 3, 9]),
                                                                test_size=0.5), hidden=True),
    ),
    mistakes=(
        Mistake("split not stratified", "Shuffle and cut each class separately, so that each keeps its share in "
                "both parts: for every label, rng.permutation of that class's indices.",
                _split_variant(not_stratified=True)),
        Mistake("train and test overlap", "Shuffle each class once and cut that one order in two: the first "
                "n_test indices go to the test set and the rest, from the same order, to training. Two shuffles "
                "put some samples in both sets and others in neither.", _split_variant(shuffled_twice=True)),
        Mistake("test_size read as the training share", "test_size is the test set's share: round(test_size * "
                "n_c) indices of each class go to the test set.", _split_variant(fraction_swapped=True)),
        Mistake("test count truncated", "int() rounds 1.5 down to 1; use round(test_size * n_c).",
                _split_variant(truncated=True)),
        Mistake("halves rounded up", "round() rounds a half to the even neighbour (round(2.5) is 2, round(3.5) is 4), "
                "as np.round does; int(x + 0.5) and math.floor(x + 0.5) round every half up. Use round(test_size * "
                "n_c).", _split_variant(half_up=True)),
        Mistake("indices not sorted", "Return np.sort(...) of each index array: then the result does not depend "
                "on the order in which the classes were collected.", _split_variant(sorted_output=False)),
    ),
    alternatives=(_split_by_positions, _split_with_shuffle),
))


# ---------------------------------------------------------------- Standardizer

class _StandardizerNoGuard:
    def fit(self, X):
        self.mean_, self.scale_ = X.mean(axis=0), X.std(axis=0)
        return self

    def transform(self, X):
        return (X - self.mean_) / self.scale_


class _StandardizerOwnStatistics(ref.Standardizer):
    def transform(self, X):
        return ref.Standardizer().fit(X).transform(X)


class _StandardizerSampleStd(ref.Standardizer):
    def fit(self, X):
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0, ddof=1)
        self.scale_ = np.where(std == 0, 1.0, std)
        return self


class _StandardizerVariance(ref.Standardizer):
    def fit(self, X):
        self.mean_ = X.mean(axis=0)
        variance = X.var(axis=0)
        self.scale_ = np.where(variance == 0, 1.0, variance)
        return self


class _StandardizerFitReturnsNone(ref.Standardizer):
    def fit(self, X):
        super().fit(X)


class _StandardizerLoops:
    def fit(self, X):
        n, d = X.shape
        eps = np.finfo(np.float64).eps
        self.mean_ = np.array([sum(X[:, j]) / n for j in range(d)])
        variances = [sum((X[:, j] - self.mean_[j]) ** 2) / n for j in range(d)]
        # constant up to rounding (Python's sum rounds the mean of 0.1, 0.1, ... its own way): scale 1
        self.scale_ = np.array([1.0 if var <= n * eps * var + (n * eps * mean) ** 2 else math.sqrt(var)
                                for var, mean in zip(variances, self.mean_)])
        return self

    def transform(self, X):
        return np.column_stack([(X[:, j] - self.mean_[j]) / self.scale_[j] for j in range(X.shape[1])])


class _StandardizerInPlaceCopy:
    def fit(self, X):
        self.mean_ = np.mean(X, axis=0)
        variance = np.mean((X - self.mean_) ** 2, axis=0)
        self.scale_ = np.sqrt(variance)
        n, eps = len(X), np.finfo(np.float64).eps
        self.scale_[variance <= n * eps * variance + (n * eps * self.mean_) ** 2] = 1.0
        return self

    def transform(self, X):
        Z = X.astype(np.float64, copy=True)
        Z -= self.mean_
        Z /= self.scale_
        return Z


def _scaling(X_train, X_test):
    return {"params": {}, "train": X_train, "test": X_test, "learned": ("mean_", "scale_")}


def _scaling_by_hand(X_train, X_test):
    return lambda: _scaling(np.array(X_train, dtype=np.float64), np.array(X_test, dtype=np.float64))


def _integer_features():
    """rooms and year of construction, as integers: the answer is float64 all the same (z-scores are fractions)"""
    return _scaling(np.array([[2, 1950], [3, 1972], [1, 2001], [4, 1988]], dtype=np.int64),
                    np.array([[2, 2020], [5, 1900]], dtype=np.int64))


def _cancer_rows(train, test):
    def make():
        X = _cancer()[0]
        return _scaling(X[:train].copy(), X[train:train + test].copy())
    return make


def _digit_pixels():
    images = _digits()[0].reshape(-1, 64)
    return _scaling(images[:150].copy(), images[150:170].copy())


def _large_values():
    return _scaling(1e6 + np.random.default_rng(6).normal(size=(50, 3)), 1e6 + np.ones((1, 3)))


register(Exercise(
    id="ch01.Standardizer", forbids=SKLEARN, points=2, reference=ref.Standardizer, call=fit_then_transform,
    outputs=("fit(train) returns self", "mean_", "scale_", "transform(test)"),
    cases=(
        Case("by hand: 3 rows, 2 features", _scaling_by_hand([[1, 10], [2, 20], [3, 60]], [[4, 0], [2, 30]])),
        Case("a constant column", _scaling_by_hand([[1, 5], [3, 5], [8, 5], [0, 5]], [[2, 5], [1, 7]])),
        Case("a column of 0.1s: its mean rounds to 0.10000000000000002 and X.std() to 1.4e-17, not 0",
             _scaling_by_hand([[0.1, 1], [0.1, 2], [0.1, 4]], [[0.1, 3], [0.3, 0]])),
        Case("breast cancer: fit on 100 tumours, transform 20 others", _cancer_rows(100, 20)),
        Case("digit pixels: some are 0 in every image", _digit_pixels, hidden=True),
        Case("one test row, values around 1e6", _large_values, hidden=True),
        Case("integer features (rooms, year built): z-scores in float64", _integer_features, hidden=True),
        Case("a column of 1e6 + 0.1 (std 1.2e-10 from rounding) and one of 2e-17 steps (a real spread)",
             _scaling_by_hand([[1e6 + 0.1, 0.0]] * 4 + [[1e6 + 0.1, 2e-17]] * 4, [[1e6, 1e-17], [1e6 + 1, 0.0]]),
             hidden=True),
    ),
    mistakes=(
        Mistake("no guard for constant columns", "A constant column has standard deviation 0 and (x − mean) / 0 is "
                "NaN or inf; use scale 1.0 there, as StandardScaler does.", _StandardizerNoGuard),
        Mistake("test set standardized with its own statistics", "transform must use the mean_ and scale_ learned "
                "in fit (on the training data). Recomputing them on the data being transformed gives the test set "
                "other units than the model was trained on.", _StandardizerOwnStatistics),
        Mistake("sample standard deviation (ddof=1)", "StandardScaler divides by n: X.std(axis=0) (numpy's default, "
                "ddof=0). pandas' .std() and np.std(ddof=1) divide by n − 1.", _StandardizerSampleStd),
        Mistake("divided by the variance", "Divide by the standard deviation, the square root of the variance.",
                _StandardizerVariance),
        Mistake("fit does not return self", "End fit with `return self`, so that Standardizer().fit(X).transform(X) "
                "works as in scikit-learn.", _StandardizerFitReturnsNone),
    ),
    alternatives=(_StandardizerLoops, _StandardizerInPlaceCopy),
))


# ---------------------------------------------------------------- Imputer

class _ImputerOwnStatistics(ref.Imputer):
    def transform(self, X):
        refitted = ref.Imputer(self.strategy, self.add_indicator).fit(X)
        refitted.indicator_features_ = self.indicator_features_
        return refitted.transform(X)


class _ImputerNanUnaware(ref.Imputer):
    def fit(self, X):
        super().fit(X)
        self.statistics_ = {"mean": np.mean, "median": np.median}[self.strategy](X, axis=0)
        return self


class _ImputerZeros(ref.Imputer):
    def transform(self, X):
        filled = np.where(np.isnan(X), 0.0, X)
        if not self.add_indicator:
            return filled
        return np.hstack([filled, np.isnan(X)[:, self.indicator_features_].astype(np.float64)])


class _ImputerAlwaysMean(ref.Imputer):
    def fit(self, X):
        super().fit(X)
        self.statistics_ = np.nanmean(X, axis=0)
        return self


class _ImputerIndicatorEveryColumn(ref.Imputer):
    def transform(self, X):
        filled = np.where(np.isnan(X), self.statistics_, X)
        return np.hstack([filled, np.isnan(X).astype(np.float64)]) if self.add_indicator else filled


class _ImputerIndicatorAfterFilling(ref.Imputer):
    def transform(self, X):
        filled = np.where(np.isnan(X), self.statistics_, X)
        if not self.add_indicator:
            return filled
        return np.hstack([filled, np.isnan(filled)[:, self.indicator_features_].astype(np.float64)])


class _ImputerIndicatorInverted(ref.Imputer):
    def transform(self, X):
        filled = np.where(np.isnan(X), self.statistics_, X)
        if not self.add_indicator:
            return filled
        return np.hstack([filled, ~np.isnan(X)[:, self.indicator_features_] * 1.0])


class _ImputerColumnLoop:
    def __init__(self, strategy="mean", add_indicator=False):
        self.strategy, self.add_indicator = strategy, add_indicator

    def fit(self, X):
        summary = np.mean if self.strategy == "mean" else np.median
        columns = [X[:, j][~np.isnan(X[:, j])] for j in range(X.shape[1])]
        self.statistics_ = np.array([summary(column) for column in columns])
        self.indicator_features_ = np.array([j for j in range(X.shape[1]) if len(columns[j]) < len(X)], dtype=np.int64)
        return self

    def transform(self, X):
        out = X.copy()
        rows, cols = np.nonzero(np.isnan(X))
        out[rows, cols] = self.statistics_[cols]
        if self.add_indicator:
            indicators = np.isnan(X[:, self.indicator_features_]).astype(float).reshape(len(X), -1)
            out = np.concatenate([out, indicators], axis=1)
        return out


_GAPPY_TRAIN = np.array([[1.0, 2.0, np.nan], [np.nan, 4.0, 6.0], [3.0, 8.0, 9.0], [8.0, 6.0, 1.0]])
_GAPPY_TEST = np.array([[np.nan, np.nan, 2.0], [7.0, 3.0, np.nan]])


def _imputing(X_train, X_test, strategy=None, add_indicator=None):
    """A parameter left at None is left out, so that the imputer's default is used."""
    params = {name: value for name, value in (("strategy", strategy), ("add_indicator", add_indicator))
              if value is not None}
    return lambda: {"params": dict(params), "train": X_train.copy(), "test": X_test.copy(),
                    "learned": ("statistics_", "indicator_features_")}


def _apartment_rows(train, test, strategy, add_indicator):
    def make():
        X = _apartments()[0]
        return _imputing(X[:train], X[train:train + test], strategy, add_indicator)()
    return make


register(Exercise(
    id="ch01.Imputer", forbids=SKLEARN, points=2, reference=ref.Imputer, call=fit_then_transform,
    outputs=("fit(train) returns self", "statistics_", "indicator_features_", "transform(test)"),
    cases=(
        Case("by hand: the default strategy, with indicators", _imputing(_GAPPY_TRAIN, _GAPPY_TEST, add_indicator=True)),
        Case("by hand: medians, indicators by default", _imputing(_GAPPY_TRAIN, _GAPPY_TEST, "median")),
        Case("apartments: 300 for fit, 100 to fill; medians, indicators", _apartment_rows(300, 100, "median", True)),
        Case("apartments: means, no indicators", _apartment_rows(200, 50, "mean", False), hidden=True),
        Case("nothing missing in fit: no indicator columns", _imputing(
            np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[np.nan, 1.0]]), "median", True), hidden=True),
    ),
    mistakes=(
        Mistake("statistics taken from the data being filled", "transform fills with the statistics_ learned in "
                "fit (on the training data); recomputing them on the test set leaks it into the preprocessing.",
                _ImputerOwnStatistics),
        Mistake("NaN not skipped in the statistics", "np.mean and np.median return NaN for a column with a NaN in "
                "it; use np.nanmean and np.nanmedian.", _ImputerNanUnaware),
        Mistake("missing values filled with 0", "Fill each column's NaN with that column's statistic, "
                "statistics_[j], not with 0.", _ImputerZeros),
        Mistake("strategy ignored: always the mean", "With strategy=\"median\" use np.nanmedian.", _ImputerAlwaysMean),
        Mistake("an indicator for every column", "Add indicators only for the features that had missing values "
                "during fit (indicator_features_), as SimpleImputer(add_indicator=True) does.",
                _ImputerIndicatorEveryColumn),
        Mistake("indicators computed after filling", "After filling there are no NaN left: take np.isnan(X) of "
                "the input before filling.", _ImputerIndicatorAfterFilling),
        Mistake("indicator marks the values present", "The indicator is 1.0 where the value is missing.",
                _ImputerIndicatorInverted),
    ),
    alternatives=(_ImputerColumnLoop,),
))


# ---------------------------------------------------------------- OneHotEncoder

class _EncoderValueAsColumn(ref.OneHotEncoder):
    def transform(self, x):
        return np.eye(int(self.categories_.max()) + 1)[x]


class _EncoderUnknownUndetected(ref.OneHotEncoder):
    def transform(self, x):
        columns = np.clip(np.searchsorted(self.categories_, x), 0, len(self.categories_) - 1)
        return np.eye(len(self.categories_))[columns]


class _EncoderFirstAppearance(ref.OneHotEncoder):
    def fit(self, x):
        self.categories_ = np.array(list(dict.fromkeys(x.tolist())), dtype=x.dtype)
        return self


class _EncoderFirstDropped(ref.OneHotEncoder):
    def transform(self, x):
        return super().transform(x)[:, 1:]


class _EncoderDictionary:
    def __init__(self, handle_unknown="error"):
        self.handle_unknown = handle_unknown

    def fit(self, x):
        self.categories_ = np.array(sorted(set(x.tolist())), dtype=x.dtype)
        return self

    def transform(self, x):
        column = {value: j for j, value in enumerate(self.categories_.tolist())}
        encoded = np.zeros((len(x), len(column)))
        for i, value in enumerate(x.tolist()):
            if value in column:
                encoded[i, column[value]] = 1.0
            elif self.handle_unknown == "error":
                raise ValueError(f"unknown category {value!r}")
        return encoded


class _EncoderSearchsorted:
    def __init__(self, handle_unknown="error"):
        self.handle_unknown = handle_unknown

    def fit(self, x):
        self.categories_ = np.unique(x)
        return self

    def transform(self, x):
        position = np.minimum(np.searchsorted(self.categories_, x), len(self.categories_) - 1)
        known = self.categories_[position] == x
        if self.handle_unknown == "error" and not known.all():
            raise ValueError("unknown category")
        return np.eye(len(self.categories_))[position] * known[:, None]


def _encoding(x_train, x_new, handle_unknown=None, raises=False):
    """handle_unknown=None leaves the parameter out, so that the encoder's default is used."""
    def make():
        params = {} if handle_unknown is None else {"handle_unknown": handle_unknown}
        args = {"params": params, "train": np.array(x_train), "test": np.array(x_new), "learned": ("categories_",)}
        return {**args, "raises": "ValueError"} if raises else args
    return make


def _district_codes():
    district = _apartments()[1]
    return np.searchsorted(DISTRICTS, district)


def _districts():
    codes = _district_codes()
    return _encoding(codes[:300], codes[300:], "error")()


def _district_names():
    district = _apartments()[1]
    return _encoding(district[:300], district[300:], "error")()


register(Exercise(
    id="ch01.OneHotEncoder", forbids=SKLEARN, points=2, reference=ref.OneHotEncoder, call=fit_then_transform,
    outputs=("fit(train) returns self", "categories_", "transform(test)"),
    cases=(
        Case("codes 0 to 2", _encoding([2, 0, 1, 1, 0], [1, 2, 0], "error")),
        Case("codes 1 to 3", _encoding([3, 1, 2, 2, 1], [1, 2, 3, 3], "error")),
        Case("an unseen code, handle_unknown=\"ignore\"", _encoding([2, 0, 1, 1], [1, 5, 0], "ignore")),
        Case("an unseen code, the default handle_unknown", _encoding([2, 0, 1, 1], [1, 5], raises=True)),
        Case("names as categories, non-ASCII ones too; unseen \"Altstadt-Süd\" and \"Ölberg\", handle_unknown="
             "\"ignore\"", _encoding(["Nord", "Süd", "am Hafen", "Altstadt", "Süd", "Nord", "Zentrum"],
                                    ["Süd", "Altstadt-Süd", "am Hafen", "Ölberg", "Altstadt"], "ignore")),
        Case("apartments' districts, coded 0 to 4", _districts, hidden=True),
        Case("apartments' district names", _district_names, hidden=True),
        Case("names, an unseen \"Zentrum-Ost\" with the default handle_unknown",
             _encoding(["Zentrum", "Süd", "Nord", "Süd"], ["Nord", "Zentrum-Ost"], raises=True), hidden=True),
        Case("codes 10, 20, 30 and an unseen 25, ignored", _encoding([30, 10, 20, 10], [25, 10, 30], "ignore"),
             hidden=True),
        Case("a single category", _encoding([7, 7], [7], "error"), hidden=True),
    ),
    mistakes=(
        Mistake("one-hot off by one", "Using the value itself as the column number (np.eye(max + 1)[x]) adds a "
                "column for a category that does not exist when the codes start at 1. Column j is for "
                "categories_[j]: compare x with categories_.", _EncoderValueAsColumn),
        Mistake("unknown category not detected", "np.searchsorted gives a position even for a value that is not "
                "in categories_; check that the value there equals x (or compare x with every category).",
                _EncoderUnknownUndetected),
        Mistake("categories in order of first appearance", "Sort the categories (np.unique does), as scikit-learn "
                "does, so that the columns do not depend on the order of the rows.", _EncoderFirstAppearance),
        Mistake("first category dropped", "One column per category, k in all: dropping one (dummy coding for "
                "linear models) is scikit-learn's drop=\"first\", not its default.", _EncoderFirstDropped),
    ),
    alternatives=(_EncoderDictionary, _EncoderSearchsorted),
))


# ---------------------------------------------------------------- prepare_features

def _prepare_variant(impute_on_all=False, scale_on_all=False, test_on_its_own=False, strategy="median",
                     add_indicator=True):
    def prepare(X_train, X_test, category_train, category_test):
        def pipeline(X_fit, category_fit, X_scale_fit):
            imputer = ref.Imputer(strategy=strategy, add_indicator=add_indicator).fit(X_fit)
            scaler = ref.Standardizer().fit(imputer.transform(X_scale_fit))
            encoder = ref.OneHotEncoder(handle_unknown="ignore").fit(category_fit)
            return lambda X, category: np.hstack([scaler.transform(imputer.transform(X)), encoder.transform(category)])

        everything = np.vstack([X_train, X_test])
        train_pipeline = pipeline(everything if impute_on_all else X_train, category_train,
                                  everything if scale_on_all else X_train)
        test_pipeline = pipeline(X_test, category_test, X_test) if test_on_its_own else train_pipeline
        return train_pipeline(X_train, category_train), test_pipeline(X_test, category_test)
    return prepare


def _prepare_with_numpy(X_train, X_test, category_train, category_test):
    """The same steps written out with numpy, without the classes."""
    medians = np.nanmedian(X_train, axis=0)
    gappy = np.isnan(X_train).any(axis=0)
    categories = np.unique(category_train)

    def numeric(X):
        return np.concatenate([np.where(np.isnan(X), medians, X), np.isnan(X[:, gappy]).astype(float)], axis=1)

    train_numeric = numeric(X_train)
    n, eps = len(X_train), np.finfo(np.float64).eps
    mean, var = train_numeric.mean(axis=0), train_numeric.var(axis=0)
    std = np.where(var <= n * eps * var + (n * eps * mean) ** 2, 1.0, np.sqrt(var))  # constant up to rounding

    def features(X, category):
        return np.concatenate([(numeric(X) - mean) / std, (category[:, None] == categories).astype(float)], axis=1)

    return features(X_train, category_train), features(X_test, category_test)


def _table_by_hand():
    return {"X_train": np.array([[50.0, np.nan], [80.0, 10.0], [np.nan, 30.0], [65.0, 20.0], [40.0, 5.0]]),
            "X_test": np.array([[120.0, np.nan], [np.nan, 100.0]]),
            "category_train": np.array([2, 0, 2, 3, 0]), "category_test": np.array([4, 3])}


def _apartment_table(train, test):
    def make():
        X, codes = _apartments()[0], _district_codes()
        return {"X_train": X[:train].copy(), "X_test": X[train:train + test].copy(),
                "category_train": codes[:train].copy(), "category_test": codes[train:train + test].copy()}
    return make


register(Exercise(
    id="ch01.prepare_features", points=1, reference=ref.prepare_features,
    outputs=("features_train", "features_test"), uses=("Imputer", "Standardizer", "OneHotEncoder"),
    cases=(
        Case("by hand: 5 training rows, 2 test rows, an unseen category", _table_by_hand),
        Case("apartments: 60 training rows, 20 test rows", _apartment_table(60, 20)),
        Case("apartments: 300 training rows, 100 test rows", _apartment_table(300, 100), hidden=True),
    ),
    mistakes=(
        Mistake("imputer fitted on all data", "Fit the Imputer on X_train only: medians taken over the test rows "
                "too let the test set shape the training features (leakage).", _prepare_variant(impute_on_all=True)),
        Mistake("scaler fitted on all data", "Fit the Standardizer on the training rows only, then transform both "
                "splits with it (leakage otherwise).", _prepare_variant(scale_on_all=True)),
        Mistake("test set fitted on its own", "Never fit on the test set: transform it with the imputer, scaler and "
                "encoder fitted on the training rows, so both splits are in the same units and columns.",
                _prepare_variant(test_on_its_own=True)),
        Mistake("mean instead of median", "Imputer(strategy=\"median\", add_indicator=True): the median is robust "
                "to the few very large apartments.", _prepare_variant(strategy="mean")),
        Mistake("missing indicators left out", "Imputer(..., add_indicator=True): whether a value was missing can "
                "itself predict the target.", _prepare_variant(add_indicator=False)),
    ),
    alternatives=(_prepare_with_numpy,),
))


# ---------------------------------------------------------------- BatchIterator

class _IteratorNeverReshuffles(ref.BatchIterator):
    def __init__(self, X, y, batch_size, rng, shuffle=True, drop_last=False):
        super().__init__(X, y, batch_size, rng, shuffle, drop_last)
        self.order = rng.permutation(len(y)) if shuffle else np.arange(len(y))

    def __iter__(self):
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            batch = self.order[start:start + self.batch_size]
            yield self.X[batch], self.y[batch]


class _IteratorXWithoutY(ref.BatchIterator):
    def __iter__(self):
        order = self.rng.permutation(len(self.y)) if self.shuffle else np.arange(len(self.y))
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield self.X[order[start:start + self.batch_size]], self.y[start:start + self.batch_size]


class _IteratorAlwaysDrops(ref.BatchIterator):
    def __len__(self):
        return len(self.y) // self.batch_size


class _IteratorNeverDrops(ref.BatchIterator):
    def __len__(self):
        return math.ceil(len(self.y) / self.batch_size)


class _IteratorLengthFloored(ref.BatchIterator):
    def __len__(self):
        return len(self.y) // self.batch_size

    def __iter__(self):
        order = self.rng.permutation(len(self.y)) if self.shuffle else np.arange(len(self.y))
        stop = len(self) * self.batch_size if self.drop_last else len(self.y)
        for start in range(0, stop, self.batch_size):
            batch = order[start:start + self.batch_size]
            yield self.X[batch], self.y[batch]


class _IteratorAlwaysShuffles(ref.BatchIterator):
    def __iter__(self):
        order = self.rng.permutation(len(self.y))
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            batch = order[start:start + self.batch_size]
            yield self.X[batch], self.y[batch]


class _IteratorShuffledCopies:
    def __init__(self, X, y, batch_size, rng, shuffle=True, drop_last=False):
        self.X, self.y, self.batch_size, self.rng = X, y, batch_size, rng
        self.shuffle, self.drop_last = shuffle, drop_last

    def __len__(self):
        full, rest = divmod(len(self.y), self.batch_size)
        return full + (rest > 0 and not self.drop_last)

    def __iter__(self):
        indices = np.arange(len(self.y))
        if self.shuffle:
            self.rng.shuffle(indices)
        X, y = self.X[indices], self.y[indices]
        size = self.batch_size
        return iter([(X[b * size:(b + 1) * size], y[b * size:(b + 1) * size]) for b in range(len(self))])


def _rows(n, batch_size, seed, **options):
    def make():
        X = np.column_stack([np.arange(n, dtype=np.float64), 10.0 * np.arange(n)])
        return {"X": X, "y": np.arange(n, dtype=np.int64) % 3, "batch_size": batch_size,
                "rng": np.random.default_rng(seed), **options, "epochs": 2}
    return make


def _digit_batches():
    images, labels = _digits()
    return {"X": images[:50].copy(), "y": labels[:50].copy(), "batch_size": 16, "rng": np.random.default_rng(9),
            "epochs": 2}


register(Exercise(
    id="ch01.BatchIterator", points=2, reference=ref.BatchIterator, call=epochs_of_batches,
    outputs=("len(iterator)", "epochs"),
    cases=(
        Case("10 rows, batches of 3 (the last has 1), 2 epochs", _rows(10, 3, 0)),
        Case("10 rows, batches of 4, drop_last=True", _rows(10, 4, 1, drop_last=True)),
        Case("5 rows, batches of 2, shuffle=False", _rows(5, 2, 2, shuffle=False)),
        Case("50 digit images (8 x 8), batches of 16", _digit_batches, hidden=True),
        Case("batch larger than the data", _rows(4, 10, 3), hidden=True),
        Case("batch larger than the data, drop_last=True: no batches", _rows(4, 10, 4, drop_last=True), hidden=True),
        Case("batches of 1", _rows(6, 1, 5), hidden=True),
    ),
    mistakes=(
        Mistake("never reshuffles", "Draw the order with rng.permutation(n) at the start of every epoch, in "
                "__iter__, not once in __init__: otherwise every epoch repeats the same batches.",
                _IteratorNeverReshuffles),
        Mistake("reshuffles X without y", "Index X and y with the same batch indices; y[start:stop] pairs the "
                "shuffled rows with the wrong labels.", _IteratorXWithoutY),
        Mistake("last partial batch always dropped", "Keep the smaller last batch unless drop_last=True: "
                "ceil(n / batch_size) batches.", _IteratorAlwaysDrops),
        Mistake("drop_last ignored", "With drop_last=True leave the smaller last batch out: n // batch_size "
                "batches.", _IteratorNeverDrops),
        Mistake("len counts only full batches", "len(iterator) is the number of batches an epoch yields, the "
                "smaller last one included unless drop_last=True.", _IteratorLengthFloored),
        Mistake("shuffles even when shuffle=False", "With shuffle=False walk the rows in order, np.arange(n), and "
                "draw nothing from rng.", _IteratorAlwaysShuffles),
    ),
    alternatives=(_IteratorShuffledCopies,),
))


# ---------------------------------------------------------------- confusion_matrix

def _confusion_transposed(y_true, y_pred, n_classes):
    return ref.confusion_matrix(y_pred, y_true, n_classes)


def _confusion_fancy_increment(y_true, y_pred, n_classes):
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    counts[y_true, y_pred] += 1
    return counts


def _confusion_sized_by_labels(y_true, y_pred, n_classes):
    return ref.confusion_matrix(y_true, y_pred, int(max(y_true.max(), y_pred.max())) + 1)


def _confusion_rates(y_true, y_pred, n_classes):
    counts = ref.confusion_matrix(y_true, y_pred, n_classes)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)


def _confusion_loop(y_true, y_pred, n_classes):
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    for truth, guess in zip(y_true, y_pred):
        counts[truth, guess] += 1
    return counts


def _confusion_bincount(y_true, y_pred, n_classes):
    # int64 first: in the labels' own dtype (uint8, int8) n_classes * y_true + y_pred would wrap around
    pairs = n_classes * y_true.astype(np.int64) + y_pred.astype(np.int64)
    return np.bincount(pairs, minlength=n_classes ** 2).reshape(n_classes, n_classes)


def _random_predictions(n, n_classes, seed, accuracy):
    def make():
        rng = np.random.default_rng(seed)
        y_true = rng.integers(0, n_classes, size=n)
        guess = rng.integers(0, n_classes, size=n)
        return {"y_true": y_true, "y_pred": np.where(rng.random(n) < accuracy, y_true, guess), "n_classes": n_classes}
    return make


register(Exercise(
    id="ch01.confusion_matrix", forbids=SKLEARN, points=1, reference=ref.confusion_matrix,
    cases=(
        Case("by hand: 3 classes, 7 samples", _fresh(y_true=np.array([0, 1, 2, 2, 1, 0, 0]),
                                                     y_pred=np.array([0, 2, 2, 1, 1, 0, 1]), n_classes=3)),
        Case("class 3 never occurs", _fresh(y_true=np.array([0, 1, 1, 2]), y_pred=np.array([0, 1, 2, 2]),
                                            n_classes=4)),
        Case("200 samples, 10 classes, 70 % right", _random_predictions(200, 10, 10, 0.7), hidden=True),
        Case("one sample", _fresh(y_true=np.array([1]), y_pred=np.array([0]), n_classes=2), hidden=True),
        Case("4 classes, class 1 never occurs; class 2 the most frequent, class 3 the first", _fresh(
            y_true=np.array([3, 2, 0, 2, 2, 3, 2, 0, 2, 3]), y_pred=np.array([3, 2, 2, 2, 0, 3, 2, 0, 3, 2]),
            n_classes=4), hidden=True),
        Case("uint8 labels, 20 classes: 19 · 20 + 19 does not fit in a uint8", lambda: {
            key: value.astype(np.uint8) if key != "n_classes" else value
            for key, value in _random_predictions(300, 20, 16, 0.6)().items()}, hidden=True),
    ),
    mistakes=(
        Mistake("rows and columns swapped", "Entry [i, j] counts true class i predicted as j: rows are the truth, "
                "as in sklearn.metrics.confusion_matrix.", _confusion_transposed),
        Mistake("repeated pairs counted once", "counts[y_true, y_pred] += 1 adds 1 only once per distinct pair "
                "(numpy buffers the fancy index); use np.add.at(counts, (y_true, y_pred), 1) or a loop.",
                _confusion_fancy_increment),
        Mistake("size taken from the largest label", "The matrix is n_classes x n_classes even when a class never "
                "occurs in this sample.", _confusion_sized_by_labels),
        Mistake("rates instead of counts", "Return the counts (int64); divide by the row sums only to plot "
                "recall per class.", _confusion_rates),
    ),
    alternatives=(_confusion_loop, _confusion_bincount),
))


# ---------------------------------------------------------------- precision_recall_f1

def _class_counts(y_true, y_pred, classes):
    tp = np.array([np.sum((y_pred == c) & (y_true == c)) for c in classes], dtype=np.float64)
    fp = np.array([np.sum((y_pred == c) & (y_true != c)) for c in classes], dtype=np.float64)
    fn = np.array([np.sum((y_pred != c) & (y_true == c)) for c in classes], dtype=np.float64)
    return tp, fp, fn


def _safe_ratio(numerator, denominator):
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


def _prf_swapped(y_true, y_pred, average="binary"):
    precision, recall, f1 = ref.precision_recall_f1(y_true, y_pred, average)
    return recall, precision, f1


def _prf_macro_micro_swapped(y_true, y_pred, average="binary"):
    return ref.precision_recall_f1(y_true, y_pred, {"macro": "micro", "micro": "macro"}.get(average, average))


def _prf_f1_of_averages(y_true, y_pred, average="binary"):
    precision, recall, _ = ref.precision_recall_f1(y_true, y_pred, average)
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _prf_nan_on_zero_division(y_true, y_pred, average="binary"):
    classes = np.array([1]) if average == "binary" else np.union1d(y_true, y_pred)
    tp, fp, fn = _class_counts(y_true, y_pred, classes)
    if average == "micro":
        tp, fp, fn = tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = tp / (tp + fp), tp / (tp + fn), 2 * tp / (2 * tp + fp + fn)
    return tuple(float(score.mean()) for score in scores)


def _prf_positive_zero(y_true, y_pred, average="binary"):
    if average == "binary":
        return ref.precision_recall_f1(1 - y_true, 1 - y_pred, average)
    return ref.precision_recall_f1(y_true, y_pred, average)


def _prf_from_confusion(y_true, y_pred, average="binary"):
    labels = np.union1d(y_true, y_pred)
    index = np.searchsorted(labels, y_true), np.searchsorted(labels, y_pred)
    counts = np.zeros((len(labels), len(labels)))
    np.add.at(counts, index, 1)
    tp = np.diag(counts)
    predicted, actual = counts.sum(axis=0), counts.sum(axis=1)
    if average == "binary":
        keep = labels == 1
        tp, predicted, actual = tp[keep], predicted[keep], actual[keep]
        if not keep.any():
            return 0.0, 0.0, 0.0
    if average == "micro":
        tp, predicted, actual = tp.sum(keepdims=True), predicted.sum(keepdims=True), actual.sum(keepdims=True)
    precision, recall = _safe_ratio(tp, predicted), _safe_ratio(tp, actual)
    f1 = _safe_ratio(2 * tp, predicted + actual)
    return precision.mean(), recall.mean(), f1.mean()


def _prf_loop(y_true, y_pred, average="binary"):
    classes = [1] if average == "binary" else sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    counts = [[0, 0, 0] for _ in classes]
    for truth, guess in zip(y_true.tolist(), y_pred.tolist()):
        for k, c in enumerate(classes):
            counts[k][0] += guess == c and truth == c
            counts[k][1] += guess == c and truth != c
            counts[k][2] += guess != c and truth == c
    if average == "micro":
        counts = [[sum(column) for column in zip(*counts)]]

    def share(a, b):
        return a / b if b else 0.0

    scores = [(share(tp, tp + fp), share(tp, tp + fn), share(2 * tp, 2 * tp + fp + fn)) for tp, fp, fn in counts]
    return tuple(sum(column) / len(scores) for column in zip(*scores))


_THREE_CLASSES = {"y_true": np.array([0, 0, 1, 1, 2, 2, 2]), "y_pred": np.array([0, 1, 1, 1, 0, 1, 1])}


def _random_labels(n, n_classes, seed, average):
    def make():
        rng = np.random.default_rng(seed)
        return {"y_true": rng.integers(0, n_classes, size=n), "y_pred": rng.integers(0, n_classes, size=n),
                "average": average}
    return make


register(Exercise(
    id="ch01.precision_recall_f1", forbids=SKLEARN, points=2, reference=ref.precision_recall_f1, outputs=("precision", "recall", "f1"),
    cases=(
        Case("binary by hand: TP 2, FP 1, FN 2 (the default average)", _fresh(
            y_true=np.array([1, 1, 1, 0, 0, 0, 0, 1]), y_pred=np.array([1, 0, 1, 1, 0, 0, 0, 0]))),
        Case("3 classes, macro; class 2 is never predicted", _fresh(**_THREE_CLASSES, average="macro")),
        Case("3 classes, micro", _fresh(**_THREE_CLASSES, average="micro")),
        Case("binary, nothing predicted positive", _fresh(y_true=np.array([0, 1, 1, 0]), y_pred=np.array([0, 0, 0, 0]),
                                                          average="binary")),
        Case("200 samples, 5 classes, macro", _random_labels(200, 5, 11, "macro"), hidden=True),
        Case("200 samples, 5 classes, micro", _random_labels(200, 5, 12, "micro"), hidden=True),
        Case("binary, 100 samples", _random_labels(100, 2, 13, "binary"), hidden=True),
        Case("labels 0, 1, 2 with 5, 20 and 10 samples, out of order by count and by first appearance, macro",
             lambda: {"y_true": _OUT_OF_ORDER.copy(), "y_pred": np.where(np.arange(35) % 4 == 0, (_OUT_OF_ORDER + 1) % 3,
                                                                          _OUT_OF_ORDER), "average": "macro"}, hidden=True),
        Case("one sample, macro", _fresh(y_true=np.array([2]), y_pred=np.array([0]), average="macro"), hidden=True),
        Case("one sample, the default average", _fresh(y_true=np.array([1]), y_pred=np.array([1])), hidden=True),
        Case("a class that only occurs in the predictions, macro", _fresh(
            y_true=np.array([0, 0, 1, 1]), y_pred=np.array([0, 3, 1, 1]), average="macro"), hidden=True),
    ),
    mistakes=(
        Mistake("precision and recall swapped", "Precision divides by what was predicted positive (TP + FP); recall "
                "by what is truly positive (TP + FN).", _prf_swapped),
        Mistake("macro and micro swapped", "Macro averages the per-class scores (each class counts the same); "
                "micro sums TP, FP and FN over the classes first (each sample counts the same).",
                _prf_macro_micro_swapped),
        Mistake("macro F1 from the averaged precision and recall", "Macro F1 is the mean of each class's F1, not "
                "the harmonic mean of macro precision and macro recall.", _prf_f1_of_averages),
        Mistake("0/0 gives NaN", "When a class is never predicted, TP + FP = 0: count that precision as 0.0, as "
                "scikit-learn does (with a warning), instead of dividing by zero.", _prf_nan_on_zero_division),
        Mistake("positive class taken as 0", "With average=\"binary\" the scores are those of class 1.",
                _prf_positive_zero),
    ),
    alternatives=(_prf_from_confusion, _prf_loop),
))


# ---------------------------------------------------------------- regression_errors

def _errors_summed(y_true, y_pred):
    total = float(np.sum((y_pred - y_true) ** 2))
    return total, math.sqrt(total)


def _errors_absolute(y_true, y_pred):
    return float(np.mean((y_pred - y_true) ** 2)), float(np.mean(np.abs(y_pred - y_true)))


def _errors_mean_first(y_true, y_pred):
    bias = float(np.mean(y_pred - y_true))
    return bias ** 2, abs(bias)


def _errors_without_root(y_true, y_pred):
    mse = float(np.mean((y_pred - y_true) ** 2))
    return mse, mse


def _errors_norm(y_true, y_pred):
    rmse = np.linalg.norm(y_true - y_pred) / math.sqrt(len(y_true))
    return rmse ** 2, rmse


def _errors_loop(y_true, y_pred):
    mse = sum((p - t) ** 2 for t, p in zip(y_true, y_pred)) / len(y_true)
    return mse, mse ** 0.5


def _regression_case(n, seed, scale=1.0):
    def make():
        rng = np.random.default_rng(seed)
        y_true = scale * rng.normal(size=n)
        return {"y_true": y_true, "y_pred": y_true + scale * (0.3 + 0.5 * rng.normal(size=n))}
    return make


register(Exercise(
    id="ch01.regression_errors", forbids=SKLEARN, points=1, reference=ref.regression_errors, outputs=("mse", "rmse"),
    cases=(
        Case("by hand: errors 0.5, 0 and −2", _fresh(y_true=np.array([1.0, 2.0, 3.0]),
                                                     y_pred=np.array([1.5, 2.0, 1.0]))),
        Case("50 random predictions", _regression_case(50, 14)),
        Case("perfect predictions", _fresh(y_true=np.array([3.0, -1.0]), y_pred=np.array([3.0, -1.0])), hidden=True),
        Case("rents around 1000 euros", _regression_case(100, 15, scale=1000.0), hidden=True),
        Case("one sample", _fresh(y_true=np.array([2.0]), y_pred=np.array([-1.0])), hidden=True),
    ),
    mistakes=(
        Mistake("sum instead of mean", "The MSE averages the squared errors: divide by n.", _errors_summed),
        Mistake("RMSE as the mean absolute error", "RMSE = √(mean of the squared errors); the mean of |error| is "
                "the MAE, a different (smaller or equal) number.", _errors_absolute),
        Mistake("mean error squared", "Square each error first, then average: errors of opposite sign must not "
                "cancel.", _errors_mean_first),
        Mistake("RMSE without the root", "RMSE = √MSE, in the target's units.", _errors_without_root),
    ),
    alternatives=(_errors_norm, _errors_loop),
))


# ---------------------------------------------------------------- kfold_indices

def _kfold_blocks_floored(y, n_splits, rng, stratify=False):
    if stratify:
        order = np.concatenate([rng.permutation(np.flatnonzero(y == label)) for label in np.unique(y)])
    else:
        order = rng.permutation(len(y))
    size = len(y) // n_splits
    everyone = np.arange(len(y))
    folds = []
    for k in range(n_splits):
        val = np.sort(order[k * size:(k + 1) * size])
        folds.append((np.setdiff1d(everyone, val), val))
    return folds


def _kfold_contiguous_blocks(y, n_splits, rng, stratify=False):
    if stratify:
        order = np.concatenate([rng.permutation(np.flatnonzero(y == label)) for label in np.unique(y)])
    else:
        order = rng.permutation(len(y))
    everyone = np.arange(len(y))
    return [(np.setdiff1d(everyone, block), np.sort(block)) for block in np.array_split(order, n_splits)]


def _kfold_reshuffled_per_fold(y, n_splits, rng, stratify=False):
    folds = []
    for k in range(n_splits):
        if stratify:
            order = np.concatenate([rng.permutation(np.flatnonzero(y == label)) for label in np.unique(y)])
        else:
            order = rng.permutation(len(y))
        val = np.sort(order[k::n_splits])
        folds.append((np.setdiff1d(np.arange(len(y)), val), val))
    return folds


def _kfold_train_keeps_val(y, n_splits, rng, stratify=False):
    return [(np.arange(len(y)), val) for _, val in ref.kfold_indices(y, n_splits, rng, stratify)]


def _kfold_stratify_ignored(y, n_splits, rng, stratify=False):
    return ref.kfold_indices(y, n_splits, rng, stratify=False)


def _kfold_membership(y, n_splits, rng, stratify=False):
    if stratify:
        order = np.concatenate([rng.permutation(np.nonzero(y == label)[0]) for label in sorted(set(y.tolist()))])
    else:
        order = rng.permutation(len(y))
    fold_of = np.empty(len(y), dtype=np.int64)
    fold_of[order] = np.arange(len(y)) % n_splits
    return [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(n_splits)]


def _kfold_sets(y, n_splits, rng, stratify=False):
    if stratify:
        order = []
        for label in np.unique(y):
            order += list(rng.permutation(np.where(y == label)[0]))
    else:
        order = list(rng.permutation(len(y)))
    folds = []
    for k in range(n_splits):
        val = sorted(order[k::n_splits])
        train = sorted(set(range(len(y))) - set(val))
        folds.append((np.array(train, dtype=np.int64), np.array(val, dtype=np.int64)))
    return folds


register(Exercise(
    id="ch01.kfold_indices", forbids=SKLEARN, points=2, reference=ref.kfold_indices,
    cases=(
        Case("10 samples, 3 folds", _with_rng(0, y=np.zeros(10, dtype=np.int64), n_splits=3)),
        Case("stratified: classes of 6, 4 and 2, 3 folds", _with_rng(
            1, y=np.array([2, 0, 1, 0, 0, 1, 2, 0, 1, 0, 1, 0]), n_splits=3, stratify=True)),
        Case("breast cancer labels, 5 stratified folds", lambda: {
            "y": _cancer()[1].copy(), "n_splits": 5, "rng": np.random.default_rng(2), "stratify": True}, hidden=True),
        Case("leave one out: 5 samples, 5 folds", _with_rng(3, y=np.array([0, 1, 0, 1, 1]), n_splits=5), hidden=True),
        Case("stratified: labels 0, 1, 2 with 5, 20 and 10 samples, out of order by count and by first appearance, "
             "4 folds", _with_rng(5, y=_OUT_OF_ORDER, n_splits=4, stratify=True), hidden=True),
        Case("digits labels, 10 folds", lambda: {"y": _digits()[1][:300].copy(), "n_splits": 10,
                                                 "rng": np.random.default_rng(4)}, hidden=True),
    ),
    mistakes=(
        Mistake("folds miss samples", "Blocks of n // k samples leave the last n mod k samples out of every "
                "validation fold. Deal the shuffled order instead: position p goes to fold p mod k.",
                _kfold_blocks_floored),
        Mistake("folds cut in contiguous blocks", "np.array_split(order, k) cuts the shuffled order into k runs: "
                "every sample is validated once, but not in the fold this exercise asks for. Deal the order like "
                "cards instead: position p goes to fold p mod k (order[fold::n_splits]).", _kfold_contiguous_blocks),
        Mistake("folds overlap: a new shuffle for every fold", "Shuffle once, before the loop over folds; with a "
                "new order per fold some samples are validated twice and others never.", _kfold_reshuffled_per_fold),
        Mistake("validation fold left in the training set", "train_idx is every sample that is not in this fold's "
                "val_idx; a model that trains on its validation samples scores too well.", _kfold_train_keeps_val),
        Mistake("stratify ignored", "With stratify=True build the order class by class: each class's indices "
                "shuffled with rng.permutation, classes in increasing order.", _kfold_stratify_ignored),
    ),
    alternatives=(_kfold_membership, _kfold_sets),
))


# ---------------------------------------------------------------- tfidf_features

def _tfidf_variant(tokenize=lambda text: re.findall(r"(?u)\b\w\w+\b", text.lower()),
                   idf=lambda n, df: np.log((1 + n) / (1 + df)) + 1, normalize=True, norm_order=2):
    def tfidf(documents):
        tokenized = [tokenize(document) for document in documents]
        vocabulary = sorted({token for tokens in tokenized for token in tokens})
        if not vocabulary:
            raise ValueError("empty vocabulary")
        column = {term: j for j, term in enumerate(vocabulary)}
        counts = np.zeros((len(documents), len(vocabulary)), dtype=np.int64)
        for i, tokens in enumerate(tokenized):
            for token in tokens:
                counts[i, column[token]] += 1
        weighted = counts * idf(len(documents), (counts > 0).sum(axis=0))
        if not normalize:
            return vocabulary, counts, weighted
        lengths = np.linalg.norm(weighted, ord=norm_order, axis=1, keepdims=True)
        return vocabulary, counts, np.divide(weighted, lengths, out=np.zeros_like(weighted), where=lengths > 0)
    return tfidf


def _tfidf_with_counter(documents):
    bags = [collections.Counter(re.findall(r"(?u)\b\w\w+\b", document.lower())) for document in documents]
    vocabulary = sorted(set().union(*bags))
    if not vocabulary:
        raise ValueError("empty vocabulary")
    counts = np.array([[bag[term] for term in vocabulary] for bag in bags], dtype=np.int64).reshape(len(bags), -1)
    idf = 1 + np.log((len(documents) + 1) / (np.count_nonzero(counts, axis=0) + 1))
    weighted = counts * idf
    lengths = np.sqrt((weighted ** 2).sum(axis=1, keepdims=True))
    return vocabulary, counts, weighted / np.where(lengths == 0, 1.0, lengths)


_THREE_DOCUMENTS = ["The cat sat.", "The cat sat on the mat!", "A dog, a cat; I ran 2 km."]
_BEYOND_ASCII = ["Die Größe zählt, nicht die GRÖSSE.", "A naïve model: naïve Bayes, a naive guess.",
                 "日本 and 東京; 日本語 too"]


register(Exercise(
    id="ch01.tfidf_features", forbids=SKLEARN, points=2, reference=ref.tfidf_features,
    outputs=("vocabulary", "counts", "tfidf"),
    cases=(
        Case("three short documents", lambda: {"documents": list(_THREE_DOCUMENTS)}),
        Case("the course corpus: 16 sentences", lambda: {"documents": training_corpus()}),
        Case("letters beyond a-z: Größe and GRÖSSE (lower-cased: größe, grösse), naïve, 日本",
             lambda: {"documents": list(_BEYOND_ASCII)}),
        Case("an empty document and one without a word of two letters",
             lambda: {"documents": ["", "a b c", "Loss, loss, LOSS."]}, hidden=True),
        Case("digits and underscores", lambda: {"documents": ["lr_max 0.1 and lr_min 0.01", "batch 32, epoch 10",
                                                              "lr_max 3e-4"]}, hidden=True),
        Case("a document that is one word found in every document: its row has length exactly 1",
             lambda: {"documents": ["loss", "the loss falls", "Loss and accuracy"]}),
    ),
    mistakes=(
        Mistake("text not lower-cased", "TfidfVectorizer lower-cases before it tokenizes: \"The\" and \"the\" are "
                "one term. Tokenize text.lower().", _tfidf_variant(tokenize=lambda t: re.findall(r"(?u)\b\w\w+\b", t))),
        Mistake("one-letter words kept", "The default token pattern (?u)\\b\\w\\w+\\b keeps words of two or more "
                "characters; \\w+ also keeps \"a\" and \"I\".",
                _tfidf_variant(tokenize=lambda t: re.findall(r"(?u)\b\w+\b", t.lower()))),
        Mistake("only ASCII letters in the tokens", "\\w matches every letter and digit of every script (ö, ï, 日), "
                "not only a-z: [a-z0-9]{2,} cuts \"größe\" apart and drops \"日本\". Use the pattern (?u)\\b\\w\\w+\\b "
                "as it is.", _tfidf_variant(tokenize=lambda t: re.findall(r"[a-z0-9_]{2,}", t.lower()))),
        Mistake("split on spaces", "str.split() keeps punctuation on the words (\"sat.\" and \"sat\" differ); use "
                "re.findall with the token pattern.", _tfidf_variant(tokenize=lambda t: t.lower().split())),
        Mistake("idf not smoothed", "scikit-learn's default smooth_idf=True adds 1 to n and to every df, as if one "
                "more document held every term: ln((1 + n) / (1 + df)) + 1.",
                _tfidf_variant(idf=lambda n, df: np.log(n / df) + 1)),
        Mistake("idf without the + 1", "idf = ln((1 + n) / (1 + df)) + 1: without the + 1 a term in every "
                "document gets weight 0.", _tfidf_variant(idf=lambda n, df: np.log((1 + n) / (1 + df)))),
        Mistake("rows not normalized", "Divide each row of counts · idf by its Euclidean length (norm=\"l2\").",
                _tfidf_variant(normalize=False)),
        Mistake("rows divided by their sum", "The default norm is \"l2\": divide by √(Σ x²), not by Σ |x|.",
                _tfidf_variant(norm_order=1)),
        Mistake("log base 10", "The idf uses the natural logarithm, np.log.",
                _tfidf_variant(idf=lambda n, df: np.log10((1 + n) / (1 + df)) + 1)),
    ),
    alternatives=(_tfidf_with_counter,),
))


# ---------------------------------------------------------------- augment_digits

def _augment_variant(move, flip_axis=2, clip=True, one_shift=False):
    """The reference with one step replaced: move(image, dy, dx) shifts one image."""
    def augment(images, rng, max_shift=1, flip_prob=0.0, noise_std=0.0):
        n = len(images)
        shifts = rng.integers(-max_shift, max_shift + 1, size=2 if one_shift else (n, 2))
        flips = rng.random(n) < flip_prob
        noise = rng.normal(0.0, noise_std, size=images.shape)
        moved = np.stack([move(image, *(shifts if one_shift else shifts[i])) for i, image in enumerate(images)])
        moved = np.where(flips[:, None, None], np.flip(moved, axis=flip_axis), moved)
        return np.clip(moved + noise, 0.0, 1.0) if clip else moved + noise
    return augment


def _shift_with_zeros(image, dy, dx):
    height, width = image.shape
    dy, dx = max(-height, min(int(dy), height)), max(-width, min(int(dx), width))  # past the edge: all lost
    out = np.zeros((height, width))
    out[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
        image[max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return out


def _shift_wrapping(image, dy, dx):
    return np.roll(image, (dy, dx), axis=(0, 1)).astype(np.float64)


def _shift_backwards(image, dy, dx):
    return _shift_with_zeros(image, -dy, -dx)


def _augment_roll_and_clear(images, rng, max_shift=1, flip_prob=0.0, noise_std=0.0):
    """np.roll, then zero the rows and columns that wrapped around."""
    n, height, width = images.shape
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
    flips = rng.random(n) < flip_prob
    noise = rng.normal(0.0, noise_std, size=images.shape)
    out = np.zeros((n, height, width))
    for i in range(n):
        # a shift of the whole height (width) or more moves every pixel out: clamp it there, or np.roll
        # would wrap it around to a small shift and clear too little
        dy, dx = max(-height, min(int(shifts[i, 0]), height)), max(-width, min(int(shifts[i, 1]), width))
        rolled = np.roll(images[i], (dy, dx), axis=(0, 1)).astype(float)
        rolled[:dy if dy > 0 else 0] = 0
        rolled[height + dy if dy < 0 else height:] = 0
        rolled[:, :dx if dx > 0 else 0] = 0
        rolled[:, width + dx if dx < 0 else width:] = 0
        out[i] = np.fliplr(rolled) if flips[i] else rolled
    return np.minimum(np.maximum(out + noise, 0.0), 1.0)


def _images(n, seed, offset=0, **options):
    def make():
        return {"images": _digits()[0][offset:offset + n].copy(), "rng": np.random.default_rng(seed), **options}
    return make


def _tiny_images():
    return {"images": np.arange(48, dtype=np.float64).reshape(3, 4, 4) / 48, "rng": np.random.default_rng(20)}


register(Exercise(
    id="ch01.augment_digits", points=1, reference=ref.augment_digits,
    cases=(
        Case("three 4 x 4 images, the default options (shifts of at most 1)", _tiny_images),
        Case("6 digits: shifts, flips (p = 0.5) and noise", _images(6, 21, max_shift=1, flip_prob=0.5, noise_std=0.1)),
        Case("20 digits, shifts up to 2, noise", _images(20, 22, offset=100, max_shift=2, noise_std=0.05), hidden=True),
        Case("nothing to do: max_shift 0, no noise", _images(5, 23, max_shift=0), hidden=True),
        Case("every image flipped", _images(4, 24, offset=40, max_shift=1, flip_prob=1.0), hidden=True),
    ),
    mistakes=(
        Mistake("np.roll wraps pixels around", "np.roll moves the pixels that fall off one edge back in at the "
                "other; the uncovered pixels must be 0.", _augment_variant(_shift_wrapping)),
        Mistake("shifted the wrong way", "A shift (dy, dx) moves the pixel at (r, c) to (r + dy, c + dx): positive "
                "dy moves the digit down.", _augment_variant(_shift_backwards)),
        Mistake("flipped upside down", "Mirror left to right (reverse the columns, image[:, ::-1] or np.fliplr); "
                "upside down turns a 6 into something else entirely.",
                _augment_variant(_shift_with_zeros, flip_axis=1)),
        Mistake("noise not clipped", "Clip the pixels to [0, 1] after adding the noise.",
                _augment_variant(_shift_with_zeros, clip=False)),
        Mistake("one shift for the whole batch", "Draw a shift for every image: rng.integers(..., size=(n, 2)).",
                _augment_variant(_shift_with_zeros, one_shift=True)),
    ),
    alternatives=(_augment_variant(_shift_with_zeros), _augment_roll_and_clear),
))
