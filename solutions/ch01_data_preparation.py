"""Chapter 01: preparing data for training, from scratch in numpy.

Splits, scaling, missing values, categories, mini-batches, metrics, cross-validation folds, text
features and image augmentation. Every function returns new arrays and leaves its inputs
untouched. Randomness comes in as a `numpy.random.Generator`, drawn from exactly as each docstring
says, so that a result can be repeated. The classes mirror scikit-learn's: `fit(X)` learns from
the training data and returns the object itself, `transform(X)` applies what was learned, and
what was learned is kept in attributes whose names end with an underscore (`mean_`).
"""
import re

import numpy as np


def stratified_split(y, test_size, rng):
    """Split the sample indices into a training and a test set that keep every class's share.

    For each class, in increasing order of its label: shuffle the indices of its samples with
    `rng.permutation`, and send the first round(test_size · n_c) of them to the test set and the
    rest to the training set (n_c is the class's count; Python's `round`, which rounds halves to
    even, like `np.round`).
    y: (n,) int labels, test_size: float in (0, 1), rng: numpy Generator
    ->  (train_idx, test_idx): int64 arrays, each sorted; together they hold 0..n-1 once each.
    """
    ### BEGIN SOLUTION
    train, test = [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_test = round(test_size * len(members))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
    ### END SOLUTION


class Standardizer:
    """Rescale every feature to mean 0 and standard deviation 1 on the data it was fitted on.

    z = (x − mean_) / scale_, like scikit-learn's StandardScaler. Fit it on the training split
    only, then transform the training and the test split with the same mean_ and scale_.
    Attributes after fit: mean_: (d,); scale_: (d,), each column's standard deviation (dividing by
    n, not n − 1), or 1.0 for a column that is constant up to rounding. A constant column's
    computed variance need not be 0 (the mean of [0.1, 0.1, 0.1] is 0.10000000000000002), so, as
    StandardScaler does, a column counts as constant when its variance var is within the rounding
    error of computing it: var ≤ n·eps·var + (n·eps·mean)², with eps = np.finfo(np.float64).eps.
    A constant column then maps to 0, up to that rounding of its mean.
    """

    def fit(self, X):
        """Learn mean_ and scale_ from X: (n, d).  ->  self"""
        ### BEGIN SOLUTION
        n, eps = len(X), np.finfo(np.float64).eps
        self.mean_ = X.mean(axis=0)
        variance = X.var(axis=0)
        constant = variance <= n * eps * variance + (n * eps * self.mean_) ** 2
        self.scale_ = np.where(constant, 1.0, np.sqrt(variance))
        return self
        ### END SOLUTION

    def transform(self, X):
        """X: (m, d)  ->  (m, d), standardized with the fitted mean_ and scale_."""
        ### BEGIN SOLUTION
        return (X - self.mean_) / self.scale_
        ### END SOLUTION


class Imputer:
    """Fill missing values (NaN) with each column's mean or median on the data it was fitted on.

    Like scikit-learn's SimpleImputer(strategy=..., add_indicator=...). With add_indicator=True,
    transform appends one column for each feature that had missing values during fit (in the
    features' order): 1.0 where that feature's value is missing, 0.0 where it is present.
    Attributes after fit: statistics_: (d,), the fill values; indicator_features_: (k,) int64, the
    features that had missing values during fit. Every column needs at least one value in fit.
    """

    def __init__(self, strategy="mean", add_indicator=False):
        self.strategy = strategy
        self.add_indicator = add_indicator

    def fit(self, X):
        """Learn the fill values from X: (n, d), which may hold NaN.  ->  self"""
        ### BEGIN SOLUTION
        statistic = {"mean": np.nanmean, "median": np.nanmedian}[self.strategy]
        self.statistics_ = statistic(X, axis=0)
        self.indicator_features_ = np.flatnonzero(np.isnan(X).any(axis=0))
        return self
        ### END SOLUTION

    def transform(self, X):
        """X: (m, d), which may hold NaN  ->  (m, d) without NaN, or (m, d + k) with the indicators."""
        ### BEGIN SOLUTION
        missing = np.isnan(X)
        filled = np.where(missing, self.statistics_, X)
        if not self.add_indicator:
            return filled
        return np.hstack([filled, missing[:, self.indicator_features_].astype(np.float64)])
        ### END SOLUTION


class OneHotEncoder:
    """Encode one categorical column as 0/1 columns, one for each category seen in fit.

    Like scikit-learn's OneHotEncoder(sparse_output=False) on a single column. The categories are
    sorted (np.unique's order), and output column j is 1.0 where the value equals categories_[j].
    A value that fit never saw raises a ValueError when handle_unknown="error", and becomes a row
    of zeros when handle_unknown="ignore".
    Attributes after fit: categories_: (k,), the sorted distinct values.
    """

    def __init__(self, handle_unknown="error"):
        self.handle_unknown = handle_unknown

    def fit(self, x):
        """Learn the categories from x: (n,), numbers or strings.  ->  self"""
        ### BEGIN SOLUTION
        self.categories_ = np.unique(x)
        return self
        ### END SOLUTION

    def transform(self, x):
        """x: (m,)  ->  (m, k) float64 of 0.0 and 1.0, k = len(categories_)."""
        ### BEGIN SOLUTION
        encoded = (x[:, None] == self.categories_[None, :]).astype(np.float64)
        unknown = encoded.sum(axis=1) == 0
        if self.handle_unknown == "error" and unknown.any():
            raise ValueError(f"categories not seen in fit: {np.unique(x[unknown]).tolist()}")
        return encoded
        ### END SOLUTION


def prepare_features(X_train, X_test, category_train, category_test):
    """Numeric features for a model from a table with missing values and a categorical column.

    Every step is fitted on the training rows only, then applied to both splits:
    the numeric columns are filled with the training medians, with missing indicators appended
    (Imputer(strategy="median", add_indicator=True)), and all those columns are standardized
    (Standardizer); the categorical column is one-hot encoded (OneHotEncoder with
    handle_unknown="ignore") and appended on the right.
    X_train: (n, d) with NaN, X_test: (m, d) with NaN, category_train: (n,), category_test: (m,)
    ->  (features_train: (n, p), features_test: (m, p)), p = d + (features with missing values in
        training) + (categories in training)
    """
    ### BEGIN SOLUTION
    imputer = Imputer(strategy="median", add_indicator=True).fit(X_train)
    scaler = Standardizer().fit(imputer.transform(X_train))
    encoder = OneHotEncoder(handle_unknown="ignore").fit(category_train)

    def features(X, category):
        return np.hstack([scaler.transform(imputer.transform(X)), encoder.transform(category)])

    return features(X_train, category_train), features(X_test, category_test)
    ### END SOLUTION


class BatchIterator:
    """Mini-batches of (X, y), one epoch per pass, like torch's DataLoader(shuffle=True).

    Each `for X_batch, y_batch in iterator` is one epoch. At its start it draws a new order of the
    rows with `rng.permutation(n)` (with shuffle=False, the rows in order 0..n-1), then walks that
    order in consecutive batches of batch_size rows, indexing X and y with the same indices. When
    batch_size does not divide n the last batch is smaller; drop_last=True leaves it out.
    X: (n, ...), y: (n,), batch_size: int >= 1, rng: numpy Generator
    """

    def __init__(self, X, y, batch_size, rng, shuffle=True, drop_last=False):
        self.X, self.y = X, y
        self.batch_size, self.rng = batch_size, rng
        self.shuffle, self.drop_last = shuffle, drop_last

    def __len__(self):
        """The number of batches in one epoch."""
        ### BEGIN SOLUTION
        n = len(self.y)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        ### END SOLUTION

    def __iter__(self):
        """Yield (X_batch: (b, ...), y_batch: (b,)) for every batch of one epoch."""
        ### BEGIN SOLUTION
        order = self.rng.permutation(len(self.y)) if self.shuffle else np.arange(len(self.y))
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            batch = order[start:start + self.batch_size]
            yield self.X[batch], self.y[batch]
        ### END SOLUTION


def confusion_matrix(y_true, y_pred, n_classes):
    """How often each true class is predicted as each class.

    y_true: (n,) int in 0..n_classes-1, y_pred: (n,) int in 0..n_classes-1, n_classes: int
    ->  (n_classes, n_classes) int64, whose entry [i, j] counts the samples of true class i
        predicted as class j (rows: truth, columns: prediction, as sklearn.metrics has it).
    """
    ### BEGIN SOLUTION
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts
    ### END SOLUTION


def precision_recall_f1(y_true, y_pred, average="binary"):
    """Precision, recall and F1 score, as sklearn.metrics.precision_recall_fscore_support has them.

    For one class: precision = TP / (TP + FP), recall = TP / (TP + FN) and
    F1 = 2·TP / (2·TP + FP + FN), the harmonic mean of the two. A ratio with denominator 0 is 0.0.
    average="binary": the scores of class 1 (the labels are 0 and 1).
    average="macro": the plain mean of every class's scores, over the classes that occur in y_true
    or y_pred.
    average="micro": TP, FP and FN summed over those classes first, then the three ratios.
    y_true: (n,) int, y_pred: (n,) int, average: "binary", "macro" or "micro"
    ->  (precision, recall, f1): floats
    """
    ### BEGIN SOLUTION
    def ratio(numerator, denominator):
        return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)

    classes = np.array([1]) if average == "binary" else np.union1d(y_true, y_pred)
    tp = np.array([np.sum((y_pred == c) & (y_true == c)) for c in classes])
    fp = np.array([np.sum((y_pred == c) & (y_true != c)) for c in classes])
    fn = np.array([np.sum((y_pred != c) & (y_true == c)) for c in classes])
    if average == "micro":
        tp, fp, fn = tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True)
    precision, recall, f1 = ratio(tp, tp + fp), ratio(tp, tp + fn), ratio(2 * tp, 2 * tp + fp + fn)
    return float(precision.mean()), float(recall.mean()), float(f1.mean())
    ### END SOLUTION


def regression_errors(y_true, y_pred):
    """The mean squared error and its square root, which is in the target's own units.

    MSE = (1/n) Σᵢ (ŷᵢ − yᵢ)², RMSE = √MSE.
    y_true: (n,), y_pred: (n,)  ->  (mse, rmse): floats
    """
    ### BEGIN SOLUTION
    mse = float(np.mean((y_pred - y_true) ** 2))
    return mse, float(np.sqrt(mse))
    ### END SOLUTION


def kfold_indices(y, n_splits, rng, stratify=False):
    """The folds of K-fold cross-validation: every sample is validated in exactly one fold.

    Put the samples in a random order, then deal that order to the folds like cards: the sample at
    position p goes to fold p mod n_splits. With stratify=False the order is rng.permutation(n).
    With stratify=True it is each class's indices shuffled with rng.permutation, the classes one
    after the other in increasing order of their label, so that every fold gets its share of each
    class.
    y: (n,) int labels, n_splits: int in 2..n, rng: numpy Generator, stratify: bool
    ->  list of n_splits tuples (train_idx, val_idx) of sorted int64 arrays: fold i's val_idx are
        the samples dealt to fold i, its train_idx all the others.
    """
    ### BEGIN SOLUTION
    if stratify:
        order = np.concatenate([rng.permutation(np.flatnonzero(y == label)) for label in np.unique(y)])
    else:
        order = rng.permutation(len(y))
    folds = []
    for fold in range(n_splits):
        in_fold = np.zeros(len(y), dtype=bool)
        in_fold[order[fold::n_splits]] = True
        folds.append((np.flatnonzero(~in_fold), np.flatnonzero(in_fold)))
    return folds
    ### END SOLUTION


def tfidf_features(documents):
    r"""Bag-of-words counts and TF-IDF features, as scikit-learn's TfidfVectorizer() makes them.

    Tokens: the words of two or more letters or digits of the lower-cased text,
    re.findall(r"(?u)\b\w\w+\b", text.lower()). Vocabulary: every token of the corpus once, sorted.
    counts[i, j]: how often term j occurs in document i (the bag of words). With n documents, df_j
    of which contain term j, idf_j = ln((1 + n) / (1 + df_j)) + 1, and each row of counts · idf is
    divided by its Euclidean length (a row of zeros stays zeros). A corpus without a single token
    (no documents, or only words of one letter) raises a ValueError, as TfidfVectorizer does.
    documents: list of n str
    ->  (vocabulary: list of v str, v >= 1, counts: (n, v) int64, tfidf: (n, v) float64)
    """
    ### BEGIN SOLUTION
    tokenized = [re.findall(r"(?u)\b\w\w+\b", document.lower()) for document in documents]
    vocabulary = sorted({token for tokens in tokenized for token in tokens})
    if not vocabulary:
        raise ValueError("empty vocabulary: no document has a word of two or more letters or digits")
    column = {term: j for j, term in enumerate(vocabulary)}
    counts = np.zeros((len(documents), len(vocabulary)), dtype=np.int64)
    for i, tokens in enumerate(tokenized):
        for token in tokens:
            counts[i, column[token]] += 1
    document_frequency = (counts > 0).sum(axis=0)
    weighted = counts * (np.log((1 + len(documents)) / (1 + document_frequency)) + 1)
    lengths = np.linalg.norm(weighted, axis=1, keepdims=True)
    tfidf = np.divide(weighted, lengths, out=np.zeros_like(weighted), where=lengths > 0)
    return vocabulary, counts, tfidf
    ### END SOLUTION


def augment_digits(images, rng, max_shift=1, flip_prob=0.0, noise_std=0.0):
    """Random variants of small grey images: shifted, perhaps mirrored, with noise added.

    Draw, in this order and always all three (also when a parameter is 0):
        shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2)), rows (dy) then columns (dx);
        flips = rng.random(n) < flip_prob;
        noise = rng.normal(0.0, noise_std, size=images.shape).
    Image i is moved by shifts[i] = (dy, dx): the pixel at (r, c) goes to (r + dy, c + dx); pixels
    moved past the edge are lost and the uncovered ones are 0 (nothing wraps around). Then, where
    flips[i], the image is mirrored left to right. Last, the noise is added and every pixel
    clipped to [0, 1].
    images: (n, h, w) in [0, 1], rng: numpy Generator, max_shift: int >= 0, flip_prob and
    noise_std: floats >= 0  ->  (n, h, w) float64
    """
    ### BEGIN SOLUTION
    n, height, width = images.shape
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
    flips = rng.random(n) < flip_prob
    noise = rng.normal(0.0, noise_std, size=images.shape)
    padded = np.pad(images.astype(np.float64), ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    moved = np.empty((n, height, width))
    for i, (dy, dx) in enumerate(shifts):
        top, left = max_shift - dy, max_shift - dx
        window = padded[i, top:top + height, left:left + width]
        moved[i] = window[:, ::-1] if flips[i] else window
    return np.clip(moved + noise, 0.0, 1.0)
    ### END SOLUTION
