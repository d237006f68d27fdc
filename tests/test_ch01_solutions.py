"""Chapter 01's references against independent ones: scikit-learn, torch's DataLoader, scipy, counting by hand.

Where the reference draws from a Generator in its own documented way, scikit-learn's splitters
cannot give the same indices; there the tests compare the guarantees both promise (class shares,
fold sizes, disjoint folds that cover every sample once).
"""
import math
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.metrics import (accuracy_score, confusion_matrix, mean_squared_error, precision_recall_fscore_support,
                             root_mean_squared_error)
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from solutions import ch01_data_preparation as ch01
from solutions.data import DISTRICTS, apartments, breast_cancer, digit_images, training_corpus


@pytest.fixture(scope="module")
def cancer():
    return breast_cancer()


@pytest.fixture(scope="module")
def table():
    return apartments()


# ---------------------------------------------------------------- the data

def test_breast_cancer_codes_malignant_as_positive(cancer):
    X, y, names = cancer
    assert X.shape == (569, 30) and y.dtype == np.int64 and len(names) == 30
    assert y.sum() == 212, "212 of the tumours are malignant"


def test_digit_images_are_scaled_8x8_images():
    images, labels = digit_images()
    assert images.shape == (1797, 8, 8) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0 and set(labels) == set(range(10))


def test_apartments_are_reproducible_and_have_what_the_chapter_needs(table):
    X, district, rent = table
    again = apartments()
    np.testing.assert_array_equal(X, again[0])
    np.testing.assert_array_equal(district, again[1])
    assert X.shape == (400, 4) and set(district) == set(DISTRICTS)
    missing = np.isnan(X).mean(axis=0)
    assert missing[1] == 0 and 0 < missing[0] < 0.1 and 0.15 < missing[2] < 0.4 and 0.05 < missing[3] < 0.2
    age = X[:, 2]
    assert rent[np.isnan(age)].mean() < rent[~np.isnan(age)].mean(), "a missing age hints at an old building"
    assert not np.isnan(apartments(n=50, seed=1)[2]).any()


def test_corpus_is_short_english_sentences():
    corpus = training_corpus()
    assert 10 <= len(corpus) <= 20 and all(isinstance(s, str) and s.endswith(".") for s in corpus)


# ---------------------------------------------------------------- stratified_split

@pytest.mark.parametrize("test_size", [0.2, 0.25, 0.3])
def test_stratified_split_keeps_shares_like_scikit_learn(cancer, test_size):
    y = cancer[1]
    train, test = ch01.stratified_split(y, test_size, np.random.default_rng(0))
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(len(y)))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0), "sorted, no index twice"
    _, sk_test = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y, random_state=0)
    for label in (0, 1):
        assert abs(np.sum(y[test] == label) - np.sum(y[sk_test] == label)) <= 1


# three classes whose order by count (1, 2, 0) and by first appearance (2, 1, 0) both differ from label order
THREE_OUT_OF_ORDER = np.random.default_rng(2).permutation(np.repeat([0, 1, 2], [5, 20, 10]))


@pytest.mark.parametrize("test_size", [0.5, 0.3, 0.1])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stratified_split_relation_to_train_test_split_on_three_classes(test_size, seed):
    """What the chapter says next to the exercise: the course rounds each class on its own, round(test_size · n_c),
    halves to even; scikit-learn first fixes the whole test set's size, ceil(test_size · n), and then gives each
    class the floor or the ceiling of its share of it. So the totals can differ (0.5 of 5, 20 and 10: 2 + 10 + 5 = 17
    against ceil(17.5) = 18), and each class's count differs by at most one. (tests/test_properties_ch01.py checks
    the same relation on random labels of 2 to 4 classes.)"""
    y, n = THREE_OUT_OF_ORDER, len(THREE_OUT_OF_ORDER)
    _, test = ch01.stratified_split(y, test_size, np.random.default_rng(seed))
    _, sk_test = train_test_split(np.arange(n), test_size=test_size, stratify=y, random_state=seed)
    assert len(sk_test) == math.ceil(test_size * n)
    for label, n_c in zip((0, 1, 2), (5, 20, 10)):
        assert np.sum(y[test] == label) == round(test_size * n_c)
        share = len(sk_test) * n_c / n
        assert math.floor(share) <= np.sum(y[sk_test] == label) <= math.ceil(share)
    if test_size == 0.5:
        assert len(test) == 17 and len(sk_test) == 18


def test_stratified_split_is_reproducible_and_seed_dependent():
    y = digit_images()[1]
    first = ch01.stratified_split(y, 0.2, np.random.default_rng(3))
    again = ch01.stratified_split(y, 0.2, np.random.default_rng(3))
    other = ch01.stratified_split(y, 0.2, np.random.default_rng(4))
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])
    assert first[0].dtype == first[1].dtype == np.int64


# ---------------------------------------------------------------- Standardizer, Imputer, OneHotEncoder

def test_standardizer_matches_standard_scaler_with_constant_columns():
    images = digit_images()[0].reshape(-1, 64)
    train, test = images[:1000], images[1000:]
    ours = ch01.Standardizer().fit(train)
    theirs = StandardScaler().fit(train)
    assert (theirs.scale_ == 1.0).any(), "the digits have constant pixels"
    np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.scale_, theirs.scale_, rtol=1e-12)
    np.testing.assert_allclose(ours.transform(test), theirs.transform(test), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("strategy", ["mean", "median"])
@pytest.mark.parametrize("add_indicator", [False, True])
def test_imputer_matches_simple_imputer(table, strategy, add_indicator):
    X = table[0]
    ours = ch01.Imputer(strategy, add_indicator).fit(X[:300])
    theirs = SimpleImputer(strategy=strategy, add_indicator=add_indicator).fit(X[:300])
    np.testing.assert_allclose(ours.statistics_, theirs.statistics_, rtol=1e-12)
    np.testing.assert_allclose(ours.transform(X[300:]), theirs.transform(X[300:]), rtol=1e-12)
    if add_indicator:
        np.testing.assert_array_equal(ours.indicator_features_, theirs.indicator_.features_)


@pytest.mark.parametrize("handle_unknown", ["error", "ignore"])
def test_one_hot_encoder_matches_scikit_learn(table, handle_unknown):
    district = table[1]
    ours = ch01.OneHotEncoder(handle_unknown).fit(district[:300])
    theirs = OneHotEncoder(handle_unknown=handle_unknown, sparse_output=False).fit(district[:300, None])
    np.testing.assert_array_equal(ours.categories_, theirs.categories_[0])
    np.testing.assert_array_equal(ours.transform(district[300:]), theirs.transform(district[300:, None]))


@pytest.mark.parametrize("handle_unknown", ["error", "ignore"])
def test_one_hot_encoder_matches_scikit_learn_on_names_beyond_ascii(handle_unknown):
    train = np.array(["Nord", "Süd", "am Hafen", "Altstadt", "Süd", "Nord", "Zentrum", "Ölberg"])
    new = np.array(["Süd", "Altstadt-Süd", "am Hafen", "Ölberg", "Altstadt"])  # "Altstadt-Süd" was never seen
    ours = ch01.OneHotEncoder(handle_unknown).fit(train)
    theirs = OneHotEncoder(handle_unknown=handle_unknown, sparse_output=False).fit(train[:, None])
    assert ours.categories_.tolist() == theirs.categories_[0].tolist()  # code point order: "Zentrum" < "am Hafen" < "Ölberg"
    if handle_unknown == "error":
        with pytest.raises(ValueError):
            ours.transform(new)
        with pytest.raises(ValueError):
            theirs.transform(new[:, None])
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns that it saw an unknown category
        expected = theirs.transform(new[:, None])
    np.testing.assert_array_equal(ours.transform(new), expected)
    assert not expected[1].any()


def test_one_hot_encoder_unknown_categories_as_scikit_learn_handles_them():
    train, new = np.array([3, 1, 2]), np.array([2, 9, 1])
    with pytest.raises(ValueError):
        ch01.OneHotEncoder("error").fit(train).transform(new)
    with pytest.raises(ValueError):
        OneHotEncoder(handle_unknown="error").fit(train[:, None]).transform(new[:, None])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns that it saw an unknown category
        theirs = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(train[:, None]).transform(new[:, None])
    np.testing.assert_array_equal(ch01.OneHotEncoder("ignore").fit(train).transform(new), theirs)


def test_prepare_features_matches_a_scikit_learn_pipeline(table):
    X, district, _ = table
    ours_train, ours_test = ch01.prepare_features(X[:300], X[300:], district[:300], district[300:])
    data = np.empty((len(X), 5), dtype=object)
    data[:, :4], data[:, 4] = X, district
    pipeline = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
         [0, 1, 2, 3]),
        ("district", OneHotEncoder(handle_unknown="ignore", sparse_output=False), [4]),
    ]).fit(data[:300])
    np.testing.assert_allclose(ours_train, pipeline.transform(data[:300]).astype(float), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours_test, pipeline.transform(data[300:]).astype(float), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- BatchIterator

@pytest.mark.parametrize("drop_last", [False, True])
def test_batches_match_torch_data_loader_on_the_same_order(drop_last):
    X, y = np.random.default_rng(0).normal(size=(23, 3)), np.arange(23)
    iterator = ch01.BatchIterator(X, y, 5, np.random.default_rng(1), drop_last=drop_last)
    orders = np.random.default_rng(1)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    for _ in range(3):
        loader = torch.utils.data.DataLoader(dataset, batch_size=5, sampler=orders.permutation(23).tolist(),
                                             drop_last=drop_last)
        ours = list(iterator)
        assert len(ours) == len(loader) == len(iterator)
        for (X_batch, y_batch), (X_torch, y_torch) in zip(ours, loader):
            np.testing.assert_array_equal(X_batch, X_torch.numpy())
            np.testing.assert_array_equal(y_batch, y_torch.numpy())


def test_every_epoch_is_a_new_order_of_all_rows():
    y = np.arange(20)
    iterator = ch01.BatchIterator(y[:, None] * 1.0, y, 6, np.random.default_rng(2))
    epochs = [np.concatenate([y_batch for _, y_batch in iterator]) for _ in range(3)]
    for seen in epochs:
        np.testing.assert_array_equal(np.sort(seen), y)
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])


# ---------------------------------------------------------------- metrics

@pytest.mark.parametrize("seed", range(5))
def test_confusion_matrix_and_accuracy_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y_true, y_pred = rng.integers(0, 6, size=300), rng.integers(0, 6, size=300)
    ours = ch01.confusion_matrix(y_true, y_pred, 7)
    np.testing.assert_array_equal(ours, confusion_matrix(y_true, y_pred, labels=range(7)))
    assert ours.dtype == np.int64
    assert np.trace(ours) / ours.sum() == pytest.approx(accuracy_score(y_true, y_pred))


def prf_cases():
    rng = np.random.default_rng(7)
    sizes = [(2, 50), (3, 40), (5, 200), (10, 30)]
    cases = [(rng.integers(0, k, size=n), rng.integers(0, k, size=n)) for k, n in sizes]
    cases += [(np.array([0, 1, 1, 0]), np.array([0, 0, 0, 0])),   # nothing predicted positive
              (np.array([0, 0, 0]), np.array([0, 0, 0])),         # no positive at all
              (np.array([0, 0, 1, 1]), np.array([0, 3, 1, 1])),   # a class only in the predictions
              (np.array([2, 2, 2]), np.array([0, 1, 1]))]         # nothing right
    return cases


@pytest.mark.parametrize("average", ["binary", "macro", "micro"])
def test_precision_recall_f1_match_scikit_learn_including_zero_division(average):
    for y_true, y_pred in prf_cases():
        if average == "binary" and max(y_true.max(), y_pred.max()) > 1:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            expected = precision_recall_fscore_support(y_true, y_pred, average=average)[:3]
        np.testing.assert_allclose(ch01.precision_recall_f1(y_true, y_pred, average), expected, rtol=1e-12)


def test_regression_errors_match_scikit_learn():
    rng = np.random.default_rng(8)
    y_true, y_pred = rng.normal(size=80) * 100, rng.normal(size=80) * 100
    mse, rmse = ch01.regression_errors(y_true, y_pred)
    assert mse == pytest.approx(mean_squared_error(y_true, y_pred), rel=1e-12)
    assert rmse == pytest.approx(root_mean_squared_error(y_true, y_pred), rel=1e-12)


# ---------------------------------------------------------------- kfold_indices

def assert_folds_partition(folds, n):
    validated = np.concatenate([val for _, val in folds])
    np.testing.assert_array_equal(np.sort(validated), np.arange(n))  # every sample validated exactly once
    for train, val in folds:
        np.testing.assert_array_equal(np.union1d(train, val), np.arange(n))
        assert len(np.intersect1d(train, val)) == 0
        assert np.all(np.diff(val) > 0) and np.all(np.diff(train) > 0)


@pytest.mark.parametrize("n, k", [(10, 3), (569, 5), (7, 7), (100, 10)])
def test_kfold_has_scikit_learns_fold_sizes_and_covers_every_sample_once(n, k):
    folds = ch01.kfold_indices(np.zeros(n, dtype=np.int64), k, np.random.default_rng(0))
    assert_folds_partition(folds, n)
    theirs = KFold(k, shuffle=True, random_state=0).split(np.zeros(n))
    assert sorted(len(val) for _, val in folds) == sorted(len(val) for _, val in theirs)


# On 3 or more classes the course deals the classes in label order and StratifiedKFold in order of first appearance,
# so the folds' class counts agree only once scikit-learn sees the classes in label order: that relation is
# tests/test_properties_ch01.py::test_stratified_kfold_relation_to_stratified_kfold, with a 3-class example.
@pytest.mark.parametrize("k", [3, 5, 10])
def test_stratified_kfold_has_scikit_learns_class_counts_per_fold(cancer, k):
    y = cancer[1]
    folds = ch01.kfold_indices(y, k, np.random.default_rng(1), stratify=True)
    assert_folds_partition(folds, len(y))
    ours = sorted(tuple(np.bincount(y[val], minlength=2)) for _, val in folds)
    theirs = sorted(tuple(np.bincount(y[val], minlength=2))
                    for _, val in StratifiedKFold(k, shuffle=True, random_state=1).split(np.zeros(len(y)), y))
    assert ours == theirs


# ---------------------------------------------------------------- tfidf_features

@pytest.mark.parametrize("documents", [training_corpus(), ["", "a b c", "Loss, loss, LOSS.", "lr_max 0.1 of 10 runs"],
                                       ["Die Größe zählt, nicht die GRÖSSE.", "A naïve model: naïve Bayes, a naive guess.",
                                        "日本 and 東京; 日本語 too"]])
def test_tfidf_matches_tfidf_vectorizer_defaults(documents):
    vocabulary, counts, tfidf = ch01.tfidf_features(documents)
    vectorizer = TfidfVectorizer().fit(documents)
    assert vocabulary == list(vectorizer.get_feature_names_out())
    np.testing.assert_array_equal(counts, CountVectorizer().fit_transform(documents).toarray())
    np.testing.assert_allclose(tfidf, vectorizer.transform(documents).toarray(), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- augment_digits

def draws(seed, n, max_shift, flip_prob):
    rng = np.random.default_rng(seed)
    return rng.integers(-max_shift, max_shift + 1, size=(n, 2)), rng.random(n) < flip_prob, rng


@pytest.mark.parametrize("max_shift, flip_prob", [(1, 0.0), (2, 0.5), (3, 1.0)])
def test_shifts_and_flips_match_scipy_ndimage(max_shift, flip_prob):
    images = digit_images()[0][:30]
    augmented = ch01.augment_digits(images, np.random.default_rng(5), max_shift, flip_prob, noise_std=0.0)
    shifts, flips, _ = draws(5, len(images), max_shift, flip_prob)
    for image, out, shift, flip in zip(images, augmented, shifts, flips):
        moved = ndimage.shift(image, shift, order=0, mode="constant", cval=0.0)
        np.testing.assert_array_equal(out, np.fliplr(moved) if flip else moved)


def test_noise_is_the_generators_third_draw_and_is_clipped():
    images = np.full((50, 8, 8), 0.5)
    augmented = ch01.augment_digits(images, np.random.default_rng(6), max_shift=0, noise_std=0.2)
    _, _, rng = draws(6, 50, 0, 0.0)
    noise = rng.normal(0.0, 0.2, size=images.shape)
    np.testing.assert_allclose(augmented, np.clip(0.5 + noise, 0, 1), rtol=1e-15)
    assert augmented.min() == 0.0 and augmented.max() == 1.0, "0.5 ± 2.5σ reaches both ends and is clipped"


# ---------------------------------------------------------------- purity

def test_nothing_is_changed_in_place(table):
    X, district, _ = table
    X_copy, district_copy = X.copy(), district.copy()
    ch01.prepare_features(X[:300], X[300:], district[:300], district[300:])
    ch01.Imputer("median", True).fit(X).transform(X)
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(district, district_copy)
    images = digit_images()[0][:10]
    before = images.copy()
    ch01.augment_digits(images, np.random.default_rng(0), 2, 0.5, 0.1)
    np.testing.assert_array_equal(images, before)
