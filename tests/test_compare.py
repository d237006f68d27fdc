"""The comparison rules, one at a time."""
import numpy as np
import torch

from autograder.compare import Tolerance, differences


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
