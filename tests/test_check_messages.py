"""What `check` says about each kind of bad learner output, and that it cannot be fooled."""
import contextlib
import io

import numpy as np
import pytest

from autograder import check
from solutions import ch02_gradient_descent as ref


def run(exercise_id, fn):
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        passed = check(exercise_id, fn)
    return passed, output.getvalue()


def test_passing_prints_one_line_per_case_and_returns_true():
    passed, output = run("ch02.mse_loss", ref.mse_loss)
    assert passed is True
    assert output.count("✓") == 3 and "all 3 passed" in output


def test_not_written_yet():
    def mse_loss(X, y, w, b):
        raise NotImplementedError()

    passed, output = run("ch02.mse_loss", mse_loss)
    assert passed is False
    assert "not written yet" in output and output.count("✗") == 1


def test_none_returned():
    passed, output = run("ch02.mse_loss", lambda X, y, w, b: None)
    assert not passed and "Did you forget `return`?" in output


def test_wrong_shape_says_both_shapes():
    passed, output = run("ch02.mse_gradient", lambda X, y, w, b: (ref.mse_gradient(X, y, w, b)[0][:, None],
                                                                  ref.mse_gradient(X, y, w, b)[1]))
    assert not passed
    assert "wrong shape: expected (1,), got (1, 1)" in output and "(n,) versus (n, 1)" in output


def test_scalar_expected_but_array_returned():
    passed, output = run("ch02.mse_loss", lambda X, y, w, b: np.array([ref.mse_loss(X, y, w, b)]))
    assert not passed and "Return a single number" in output


def test_wrong_dtype():
    passed, output = run("ch02.gradient_step", lambda w, b, grad_w, grad_b, lr:
                         ((w - lr * grad_w).astype(int), b - lr * grad_b))
    assert not passed and "wrong dtype: expected float values" in output


def test_nan_is_reported_with_its_index():
    def with_nan(X, y, w, b):
        grad_w, grad_b = ref.mse_gradient(X, y, w, b)
        grad_w = grad_w.copy()
        grad_w[-1] = np.nan
        return grad_w, grad_b

    passed, output = run("ch02.mse_gradient", with_nan)
    assert not passed and "got NaN at 1 of" in output and "Usual causes" in output


def test_inf_is_reported():
    passed, output = run("ch02.mse_loss", lambda X, y, w, b: float("inf"))
    assert not passed and "got inf where a finite number was expected" in output


def test_exception_traceback_shows_only_the_learners_lines():
    def mse_loss(X, y, w, b):
        return np.mean((X @ w.reshape(1, -1) + b - y) ** 2)  # a shape slip

    passed, output = run("ch02.mse_loss", mse_loss)
    assert not passed
    assert "your code raised an exception" in output and "in mse_loss" in output
    assert "ValueError" in output and "matmul" in output
    assert "autograder" not in output and "site-packages" not in output


def test_input_changed_in_place_is_named():
    def gradient_step(w, b, grad_w, grad_b, lr):
        w -= lr * grad_w
        return w, b - lr * grad_b

    passed, output = run("ch02.gradient_step", gradient_step)
    assert not passed and "changed its input w in place" in output


def test_a_known_mistake_is_named_with_its_hint():
    passed, output = run("ch02.mse_loss", lambda X, y, w, b: float(np.sum((X @ w + b - y) ** 2)))
    assert not passed
    assert "known mistake: sum instead of mean. The MSE averages" in output
    assert "expected 1.25" in output and "got      2.5" in output


def test_float32_answer_passes_where_float64_is_expected():
    def gradient_step(w, b, grad_w, grad_b, lr):
        return (w.astype(np.float32) - np.float32(lr) * grad_w.astype(np.float32)), b - lr * grad_b

    assert run("ch02.gradient_step", gradient_step)[0]


def test_object_whose_eq_always_says_true_fails():
    class Liar:
        def __eq__(self, other):
            return True

        __hash__ = None

    passed, output = run("ch02.mse_loss", lambda X, y, w, b: Liar())
    assert not passed and "expected a number, got Liar" in output


def test_ndarray_subclass_that_lies_fails():
    class LyingArray(np.ndarray):
        def __eq__(self, other):
            return np.ones(np.shape(self), dtype=bool)

        def __array_ufunc__(self, *args, **kwargs):
            return True

    def gradient_step(w, b, grad_w, grad_b, lr):
        return np.zeros_like(w).view(LyingArray), b

    passed, output = run("ch02.gradient_step", gradient_step)
    assert not passed and "differs at" in output


def test_unknown_exercise_suggests_the_closest():
    with pytest.raises(KeyError, match="ch02.mse_loss"):
        check("ch02.mse_los", ref.mse_loss)


def test_not_a_function():
    passed, output = run("ch02.mse_loss", 3.0)
    assert not passed and "Pass the function itself" in output


def test_warnings_are_reported_without_failing():
    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    passed, output = run("ch00.sigmoid", sigmoid)
    assert passed and "note: your code warned RuntimeWarning: overflow encountered in exp" in output


def test_each_exercise_is_judged_on_its_own():
    """A wrong mse_gradient in the learner's namespace does not fail fit_linear_regression."""
    namespace = {"np": np, "mse_loss": ref.mse_loss, "gradient_step": ref.gradient_step,
                 "mse_gradient": lambda X, y, w, b: (0 * w, 0.0)}
    exec(__import__("inspect").getsource(ref.fit_linear_regression), namespace)
    assert run("ch02.fit_linear_regression", namespace["fit_linear_regression"])[0]
    assert namespace["mse_gradient"](np.ones((1, 1)), np.ones(1), np.ones(1), 0.0)[1] == 0.0  # restored


def test_an_output_that_breaks_when_compared_is_a_message_not_a_crash():
    class Treacherous(tuple):
        def __len__(self):
            raise RuntimeError("gotcha")

        def __repr__(self):
            raise RuntimeError("no repr either")

    passed, output = run("ch02.mse_gradient", lambda X, y, w, b: Treacherous((w, b)))
    assert not passed and "could not be compared" in output
