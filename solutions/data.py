"""Data sets the chapters train on. All ship with scikit-learn or are generated: nothing downloads."""
import numpy as np
from sklearn.datasets import load_diabetes, load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler


def diabetes(test_size=0.25, seed=0):
    """scikit-learn's diabetes data (442 patients, 10 features, disease progression a year later).

    Features are standardized with the training split's mean and standard deviation only (fitting
    on all rows would leak the test set into training; chapter 01 shows why). The target keeps its
    units.
    ->  X_train: (331, 10), X_test: (111, 10), y_train: (331,), y_test: (111,), feature_names
    """
    data = load_diabetes(scaled=False)
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=test_size, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    return (scaler.transform(X_train), scaler.transform(X_test), y_train.astype(np.float64),
            y_test.astype(np.float64), list(data.feature_names))


def digits(test_size=0.25, seed=0):
    """scikit-learn's handwritten digits: 1797 images of 8 x 8 pixels, labels 0-9.

    Pixels are scaled from 0..16 to [0, 1]; the split keeps each digit's share in both parts
    (stratified).
    ->  X_train: (1347, 64), X_test: (450, 64), y_train: (1347,) int64, y_test: (450,) int64
    """
    data = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        data.data / 16.0, data.target, test_size=test_size, random_state=seed, stratify=data.target)
    return X_train, X_test, y_train.astype(np.int64), y_test.astype(np.int64)
