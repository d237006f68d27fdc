"""The comparison rules, one at a time."""
import numpy as np
import torch

from autograder.learner.compare import Tolerance, differences


def test_equal_values_have_no_differences():
    assert differences(np.arange(3.0), np.arange(3.0)) == []
    assert differences((1.0, np.ones(2)), (1.0, np.ones(2))) == []
    assert differences({"a": 1}, {"a": 1}) == []


def test_tolerance_is_relative_and_absolute():
    assert differences(1.0 + 1e-9, 1.0) == []
    assert differences(1.0 + 1e-5, 1.0) != []
    assert differences(1e-12, 0.0) == []


def test_float32_gets_float32_tolerance_unless_strict():
    expected = np.linspace(0, 1000, 7)
    got = expected.astype(np.float32)
    assert differences(got, expected) == []
    assert "wrong dtype" in str(differences(got, expected, Tolerance(strict_dtype=True))[0])


def test_integers_must_match_exactly_and_stay_integers():
    assert differences(np.array([1, 2]), np.array([1, 2])) == []
    assert "first at index (1,)" in str(differences(np.array([1, 3]), np.array([1, 2]))[0])
    assert "Counts and indices are integers" in str(differences(np.array([1.0, 2.0]), np.array([1, 2]))[0])


def test_tuple_length_and_names():
    problems = differences((1.0,), (1.0, 2.0), names=("loss", "grad"))
    assert "expected a tuple of 2 values (loss, grad), got 1 values" in str(problems[0])
    problems = differences((1.0, 3.0), (1.0, 2.0), names=("loss", "grad"))
    assert str(problems[0]).startswith("grad: expected 2")


def test_expected_nan_matches_nan():
    assert differences(np.array([np.nan, 1.0]), np.array([np.nan, 1.0])) == []


def test_dict_keys():
    assert "missing ['b']" in str(differences({"a": 1.0}, {"a": 1.0, "b": 2.0})[0])


def test_tensors_compare_dtype_device_and_values():
    assert differences(torch.ones(2), torch.ones(2)) == []
    assert "expected a torch.Tensor" in str(differences(np.ones(2), torch.ones(2))[0])
    assert "wrong dtype" in str(differences(torch.ones(2, dtype=torch.int64), torch.ones(2))[0])
    assert "differs at 1 of 2" in str(differences(torch.tensor([1.0, 3.0]), torch.tensor([1.0, 2.0]))[0])
    assert "requires_grad" in str(differences(torch.ones(2, requires_grad=True), torch.ones(2))[0])


def test_numpy_expected_but_tensor_returned():
    assert "this exercise works in numpy" in str(differences(torch.ones(2), np.ones(2))[0])


# ---------------------------------------------------------------- inputs changed in place, leaf by leaf

def test_every_leaf_is_compared_by_value():
    from autograder.learner.compare import same_values

    assert not same_values(["The cat", "A dog"], ["the cat", "A dog"])
    assert not same_values({"city": "Paris"}, {"city": "paris"})
    assert not same_values({"tags": {"a", "b"}}, {"tags": {"a"}})
    assert not same_values([b"raw", None, True, 3], [b"raw", None, False, 3])
    assert not same_values([None], [0])
    assert same_values(["The cat", {"n": 3, "x": float("nan")}, None], ["The cat", {"n": 3, "x": float("nan")}, None])


def test_an_object_is_compared_by_its_attributes_to_a_depth_bound():
    from autograder.learner.compare import same_values

    class Config:
        def __init__(self, lr, names):
            self.lr, self.names = lr, names

    assert same_values(Config(0.1, ["a"]), Config(0.1, ["a"]))
    assert not same_values(Config(0.1, ["a"]), Config(0.2, ["a"]))
    assert not same_values(Config(0.1, ["a"]), Config(0.1, ["A"]))
    looped = []
    looped.append(looped)
    assert same_values(looped, [[[looped]]])  # too deep to tell: counts as unchanged, and never recurses forever


def test_an_object_that_raises_when_compared_never_crashes_and_counts_as_changed_only_if_it_shows():
    from autograder.learner.compare import same_values

    class Touchy:
        def __eq__(self, other):
            raise RuntimeError("do not compare me")

        __hash__ = None

    class Opaque:
        __slots__ = ()

    assert same_values([Touchy(), "x"], [Touchy(), "x"])  # cannot tell: unchanged
    assert not same_values([Touchy(), "x"], [Touchy(), "y"])  # the string beside it did change
    assert not same_values([Touchy()], ["not a Touchy"])  # another type: demonstrably changed
    assert same_values(Opaque(), Opaque())  # no attributes, no == of its own: nothing to tell them apart


# ---------------------------------------------------------------- sequences of strings

def test_a_list_a_unicode_array_and_an_object_array_of_the_same_strings_are_the_same():
    words = ["cat", "dog", "mat"]
    forms = [words, np.array(words), np.array(words, dtype=object), tuple(words), [np.str_(w) for w in words]]
    for expected in forms[:3]:
        for got in forms:
            assert differences(got, expected) == [], (type(got), type(expected))


def test_strings_stay_strict_on_shape_and_on_every_string():
    words = ["cat", "dog", "mat"]
    assert "expected 3 strings, got 2 strings" in str(differences(["cat", "dog"], np.array(words, dtype=object))[0])
    assert "strings of shape (1, 3)" in str(differences(np.array([words]), words)[0])
    problem = differences(np.array(["cat", "Dog", "mat"], dtype=object), words)[0]
    assert "differs at 1 of 3 strings; first at index (1,): expected 'dog', got 'Dog'" in str(problem)
    assert "'dog'" not in problem.without_values()
    assert "expected 3 strings" in str(differences(np.array([1.0, 2.0, 3.0]), words)[0])
    assert "expected 3 strings" in str(differences(["cat", 2, "mat"], words)[0])


def test_a_str_subclass_cannot_lie_about_its_value():
    class Always(str):
        def __eq__(self, other):
            return True

        __hash__ = str.__hash__

    assert "expected 'cat', got 'dog'" in str(differences([Always("dog")], ["cat"])[0])


# ---------------------------------------------------------------- precision

def test_float16_is_too_little_precision_where_float64_is_expected_however_close():
    expected = np.array([0.1, 0.25, 0.5])
    for got in (expected * 1.03, expected):
        problem = str(differences(got.astype(np.float16), expected)[0])
        assert "too little precision: float16 keeps about 3 significant digits" in problem
        assert "accepts float32 at the least" in problem
    assert "too little precision" in str(differences(torch.tensor([0.5], dtype=torch.float16), torch.tensor([0.5]))[0])


def test_a_float32_reference_gives_float32_answers_float32_tolerance_even_when_strict():
    expected = np.float32([1.0, 2.0, 3.0])
    got = expected * np.float32(1 + 4e-7)  # a few float32 roundings apart
    assert differences(got, expected, Tolerance(strict_dtype=True)) == []
    assert differences(got.astype(np.float64), expected) == []
    assert differences(expected * np.float32(1.001), expected, Tolerance(strict_dtype=True)) != []


def test_float32_widens_the_tolerance_to_its_precision_and_no_further():
    """A float32 answer is compared within 50 float32 epsilons (relative) and 10 of them times the values' scale,
    at least 1 (absolute): its own rounding passes; 1 % off, or off by 1e-4 of that scale, fails, at any scale."""
    rng = np.random.default_rng(0)
    for scale in (1e-3, 1.0, 1e6):
        expected = scale * rng.standard_normal(50)
        assert differences(expected.astype(np.float32), expected, Tolerance(1e-7, 1e-10)) == []
        assert differences((expected * 1.01).astype(np.float32), expected, Tolerance(1e-7, 1e-10)) != []
        shifted = expected + 1e-4 * max(scale, 1.0)
        assert differences(shifted.astype(np.float32), expected, Tolerance(1e-7, 1e-10)) != []
