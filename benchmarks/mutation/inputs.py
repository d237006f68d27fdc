"""New inputs near an exercise's own cases, on which a surviving mutant and the reference are compared.

Every case's arguments (`case.make_args()`) go through every `Variant`: as given; with gaussian
noise of three sizes (float arrays get noise scaled to their spread, float numbers are multiplied by
a random factor near 1, random generators are reseeded); float arrays scaled by 1000, 1/1000 or −1;
rows resampled (fewer rows, or more with repeats, the same rows of every array of that length);
integers shifted by ±1 (arrays within their own range, numbers staying ≥ 1); flags toggled; in
lists of strings (documents), each cut to its first word, or all made the first, or both.
Arguments that are containers (a dict of parameters, a list of layers) are perturbed inside;
text is left as it is. Each variant draws from its own seed, so a perturbed case builds the same
inputs on every call, as `Case.make_args` must.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from autograder.learner.registry import Case, Exercise

NOISE_SCALES = (0.01, 0.3, 3.0)
ARRAY_SCALES = (1000.0, 0.001, -1.0)
SEEDS = (1, 2)
MAX_FACTOR_SPREAD = 0.5  # a float number is multiplied by exp(N(0, min(scale, this))), which keeps its sign
SHIFTED_SHARE = 0.3  # the share of an integer array's entries shifted by ±1
SHOWN_CHARS = 80  # longest text shown for one argument in a summary


@dataclass(frozen=True)
class Variant:
    """One way of changing a case's arguments: `apply(args, rng)` returns the new arguments."""

    label: str
    apply: Callable[[dict, np.random.Generator], dict]
    seed: int = 0


def perturbed_cases(exercise: Exercise) -> list[Case]:
    """Every case of `exercise` through every variant, as hidden cases named after both."""
    return [Case(f"case {case.name!r}, {variant.label}", perturbing(case.make_args, variant), hidden=True)
            for case in exercise.cases for variant in VARIANTS]


def perturbing(make_args: Callable[[], dict], variant: Variant) -> Callable[[], dict]:
    """A `make_args` for the perturbed case: fresh arguments, changed the same way on every call."""
    return lambda: variant.apply(make_args(), np.random.default_rng(variant.seed))


def each_value(value: Any, change: Callable[[Any], Any]) -> Any:
    """`value` with `change` applied to every value inside dicts, lists and tuples (to `value` itself when it is
    none of them)."""
    if isinstance(value, dict):
        return {key: each_value(item, change) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(each_value(item, change) for item in value)
    return change(value)


def is_float_array(value) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def is_int_array(value) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind in "iu"


def is_float(value) -> bool:
    return isinstance(value, (float, np.floating))


def is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def spread(array: np.ndarray) -> float:
    """The standard deviation of the array's finite entries, or 1 when they have none or are all equal."""
    finite = array[np.isfinite(array)]
    deviation = float(finite.std()) if finite.size else 0.0
    return deviation if deviation > 0 else 1.0


def reseeded(value, rng: np.random.Generator):
    """A random generator with a new seed drawn from `rng`; any other value as it is."""
    return np.random.default_rng(int(rng.integers(2 ** 32))) if isinstance(value, np.random.Generator) else value


def with_noise(scale: float) -> Callable[[dict, np.random.Generator], dict]:
    """Float arrays plus scale · (their spread) · N(0, 1); float numbers times a random factor near 1; generators
    reseeded."""
    def apply(args, rng):
        def change(value):
            if is_float_array(value):
                return (value + scale * spread(value) * rng.normal(size=value.shape)).astype(value.dtype)
            if is_float(value):
                return type(value)(value * np.exp(min(scale, MAX_FACTOR_SPREAD) * rng.normal()))
            return reseeded(value, rng)
        return each_value(args, change)
    return apply


def scaled(factor: float) -> Callable[[dict, np.random.Generator], dict]:
    """Float arrays times `factor`."""
    def apply(args, rng):
        return each_value(args, lambda value: (value * factor).astype(value.dtype) if is_float_array(value) else value)
    return apply


def rows_resampled(more: bool) -> Callable[[dict, np.random.Generator], dict]:
    """The arrays whose first axis has the most common length n get the same rows: n − 1 of them (never none), or
    n + 3 with repeats."""
    def apply(args, rng):
        shortest = 1 if more else 2
        lengths = collections.Counter(len(value) for value in args.values()
                                      if isinstance(value, np.ndarray) and value.ndim and len(value) >= shortest)
        if not lengths:
            return args
        n = lengths.most_common(1)[0][0]
        rows = rng.choice(n, size=n + 3) if more else np.sort(rng.choice(n, size=n - 1, replace=False))
        return {name: value[rows] if isinstance(value, np.ndarray) and value.ndim and len(value) == n else value
                for name, value in args.items()}
    return apply


def integers_shifted(args: dict, rng: np.random.Generator) -> dict:
    """Some entries of integer arrays (labels) ±1 within the array's own range; integer numbers ±1; generators
    reseeded."""
    def change(value):
        if is_int_array(value) and value.size:
            shifts = rng.choice([-1, 1], size=value.shape) * (rng.random(value.shape) < SHIFTED_SHARE)
            return np.clip(value + shifts, value.min(), value.max()).astype(value.dtype)
        if is_int(value):
            return shifted_number(value, rng)
        return reseeded(value, rng)
    return each_value(args, change)


def shifted_number(value: int, rng: np.random.Generator) -> int:
    """value ± 1, except that a count or a size (≥ 1) never drops below 1, and 0 becomes 1."""
    shifted = value + int(rng.choice([-1, 1]))
    if value == 0 or (value >= 1 and shifted < 1):
        shifted = value + 1
    return type(value)(shifted)


def flags_toggled(args: dict, rng: np.random.Generator) -> dict:
    """Every True False and every False True."""
    return each_value(args, lambda value: not value if isinstance(value, (bool, np.bool_)) else value)


def texts_changed(first_word: bool, all_first: bool) -> Callable[[dict, np.random.Generator], dict]:
    """In every list of strings: each string cut to its first word, and/or every string made the first one."""
    def change(texts):
        texts = [(text.split() or [""])[0] for text in texts] if first_word else list(texts)
        return [texts[0]] * len(texts) if all_first and texts else texts

    def apply(args, rng):
        return {name: change(value) if is_text_list(value) else value for name, value in args.items()}
    return apply


def is_text_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def as_given(args: dict, rng: np.random.Generator) -> dict:
    return args


VARIANTS = (
    Variant("as given", as_given),
    *(Variant(f"noise x{scale:g} (seed {seed})", with_noise(scale), seed) for scale in NOISE_SCALES for seed in SEEDS),
    *(Variant(f"float arrays x{factor:g}", scaled(factor)) for factor in ARRAY_SCALES),
    Variant("rows resampled, one fewer", rows_resampled(more=False), 1),
    Variant("rows resampled, 3 more with repeats", rows_resampled(more=True), 2),
    *(Variant(f"integers shifted by ±1 (seed {seed})", integers_shifted, seed) for seed in SEEDS),
    Variant("flags toggled", flags_toggled),
    Variant("texts cut to their first word", texts_changed(first_word=True, all_first=False)),
    Variant("texts all made the first", texts_changed(first_word=False, all_first=True)),
    Variant("texts all made the first one's first word", texts_changed(first_word=True, all_first=True)),
)


def summary(args: dict) -> str:
    """The arguments in one short line: arrays by shape and dtype, numbers and flags by value."""
    def short(value):
        if isinstance(value, np.ndarray):
            return f"{value.shape} {value.dtype}" if value.size > 6 else np.array2string(value, precision=4)
        if isinstance(value, (float, np.floating)):
            return f"{value:.6g}"
        if isinstance(value, (list, tuple, dict)) and len(value) > 6:
            return f"{type(value).__name__} of {len(value)}"
        return repr(value) if not isinstance(value, np.random.Generator) else "Generator"
    def clipped(text):
        text = " ".join(text.split())
        return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."
    return ", ".join(f"{name}={clipped(short(value))}" for name, value in args.items())
