"""Data sets the chapters train on. All ship with scikit-learn or are generated: nothing downloads."""
import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
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


def breast_cancer():
    """scikit-learn's breast-cancer data: 569 tumours, 30 measurements of their cell nuclei each.

    The label is 1 for malignant (212 tumours) and 0 for benign (357), so that "positive" means
    the finding a screening test is looking for. (scikit-learn's own target codes it the other
    way round.) Nothing is split or scaled: chapter 01 does both.
    ->  X: (569, 30) float64, y: (569,) int64, feature_names: list of 30 str
    """
    data = load_breast_cancer()
    return data.data.astype(np.float64), (data.target == 0).astype(np.int64), [str(name) for name in data.feature_names]


def digit_images():
    """scikit-learn's handwritten digits as images: 1797 of them, 8 x 8 pixels scaled to [0, 1].

    ->  images: (1797, 8, 8) float64, labels: (1797,) int64 in 0..9
    """
    data = load_digits()
    return data.images / 16.0, data.target.astype(np.int64)


APARTMENT_FEATURES = ["area_m2", "rooms", "building_age", "distance_km"]
DISTRICTS = ["centre", "east", "north", "south", "west"]
_DISTRICT_PREMIUM = {"centre": 250.0, "east": -40.0, "north": 80.0, "south": 0.0, "west": 40.0}


def apartments(n=400, seed=0):
    """A generated table of apartments for rent, with missing values and a categorical column.

    Numeric columns (APARTMENT_FEATURES): floor area in m², number of rooms, age of the building
    in years, distance to the city centre in km. The categorical column is the district (one of
    DISTRICTS). The target is the monthly rent in euros:

        rent = 400 + 11·area + 40·rooms − 4·age − 20·distance + premium[district] + noise (sd 60)

    Some values are missing, as in real records: 5 % of the areas and 10 % of the distances at
    random, and building ages the more often the older the building (from 2 % for a new one to 70 %
    for one a century old: old records get lost), so that a missing age itself says something
    about the rent.
    ->  X: (n, 4) float64 with NaN, district: (n,) str, rent: (n,) float64
    """
    rng = np.random.default_rng(seed)
    district = rng.choice(DISTRICTS, size=n)
    area = np.clip(rng.lognormal(np.log(65), 0.35, size=n), 18, 220)
    rooms = np.clip(np.round(area / 25 + rng.normal(0, 0.6, size=n)), 1, 7)
    age = rng.uniform(0, 100, size=n)
    in_centre = district == "centre"
    distance = np.where(in_centre, rng.uniform(0.2, 2.5, size=n), rng.uniform(2.0, 14.0, size=n))
    premium = np.array([_DISTRICT_PREMIUM[d] for d in district])
    rent = 400 + 11 * area + 40 * rooms - 4 * age - 20 * distance + premium + rng.normal(0, 60, size=n)
    X = np.column_stack([area, rooms, age, distance])
    X[rng.random(n) < 0.05, 0] = np.nan
    X[rng.random(n) < 0.02 + 0.68 * (age / 100) ** 2, 2] = np.nan
    X[rng.random(n) < 0.10, 3] = np.nan
    return X, district, rent


def training_corpus():
    """Sixteen short sentences about training neural networks, written for this course.

    ->  list of 16 str
    """
    return [
        "A neural network learns its weights from data.",
        "Gradient descent moves the weights against the gradient of the loss.",
        "The learning rate sets the size of each gradient step.",
        "Too large a learning rate makes the loss diverge; too small a rate makes training slow.",
        "Mini-batches give a noisy but cheap estimate of the gradient.",
        "Backpropagation computes every gradient with the chain rule.",
        "Adam keeps running averages of the gradient and of its square.",
        "Weight decay pulls the weights towards zero and limits the model's complexity.",
        "Dropout switches off random units during training, never at test time.",
        "A model that fits the training data but fails on new data overfits.",
        "The test set is kept apart to estimate how well the model does on new data.",
        "Standardize the inputs with statistics from the training set only.",
        "Data augmentation shows the network shifted and noisy copies of each image.",
        "On a GPU, training runs many matrix products in parallel.",
        "Early stopping keeps the weights with the best validation loss.",
        "I check the gradient numerically before I trust the backward pass.",
    ]
