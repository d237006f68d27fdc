"""What `check` says about each kind of bad learner output, and that it cannot be fooled."""
import contextlib
import inspect
import io
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from autograder import check
from autograder.instructor import sync
from autograder.learner import judge, registry
from autograder.learner.check import ExerciseFailed
from autograder.learner.compare import differences
from autograder.learner.display import show, show_pair
from solutions import ch00_setup
from solutions import ch02_gradient_descent as ref


def run(exercise_id, fn, full=False):
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        passed = check(exercise_id, fn, full=full)
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
    assert "\n  1 of 3 passed. This looks like a known mistake: sum instead of mean.\n    The MSE averages" in output
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


def test_a_warning_of_several_lines_is_one_note_line():
    def sigmoid(x):
        warnings.warn("overflow ahead.\n  Consider clipping x first.\n(Triggered at sigmoid)", RuntimeWarning)
        return ch00_setup.sigmoid(x)

    passed, output = run("ch00.sigmoid", sigmoid)
    notes = [line.strip() for line in output.splitlines() if "note: your code warned" in line]
    assert passed and notes and all(note == "note: your code warned RuntimeWarning: overflow ahead. Consider clipping "
                                            "x first. (Triggered at sigmoid)" for note in notes)
    assert "Consider clipping" not in output.replace(notes[0], "")


def notebook(*sources, **names):
    """A learner's notebook namespace (module __main__) holding `names`, after running `sources` in it."""
    namespace = {"__name__": "__main__", "np": np, **names}
    for source in sources:
        exec(source, namespace)
    return namespace


def test_each_exercise_is_judged_on_its_own():
    """A wrong mse_gradient in the learner's notebook does not fail fit_linear_regression."""
    namespace = notebook("def mse_gradient(X, y, w, b):\n    return 0 * w, 0.0",
                         inspect.getsource(ref.fit_linear_regression),
                         mse_loss=ref.mse_loss, gradient_step=ref.gradient_step)
    assert run("ch02.fit_linear_regression", namespace["fit_linear_regression"])[0]
    assert namespace["mse_gradient"](np.ones((1, 1)), np.ones(1), np.ones(1), 0.0)[1] == 0.0  # restored


def test_an_earlier_exercise_left_undefined_is_the_reference_while_checked_and_gone_after():
    namespace = notebook(inspect.getsource(ref.fit_linear_regression), mse_loss=ref.mse_loss,
                         gradient_step=ref.gradient_step)
    assert run("ch02.fit_linear_regression", namespace["fit_linear_regression"])[0]
    assert "mse_gradient" not in namespace


LEARNER_PREPARE_FEATURES_WITH_SKLEARN = """
from sklearn.preprocessing import OneHotEncoder

def prepare_features(X_train, X_test, category_train, category_test):
    imputer = Imputer(strategy="median", add_indicator=True).fit(X_train)
    scaler = Standardizer().fit(imputer.transform(X_train))
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(category_train.reshape(-1, 1))
    def features(X, category):
        return np.hstack([scaler.transform(imputer.transform(X)), encoder.transform(category.reshape(-1, 1))])
    return features(X_train, category_train), features(X_test, category_test)
"""


def test_a_library_class_imported_under_an_earlier_exercises_name_stays_the_learners_choice():
    """prepare_features uses Imputer, Standardizer and OneHotEncoder: the learner's own Imputer and Standardizer
    give way to the references while it is checked, but scikit-learn's OneHotEncoder, imported under that name,
    is the learner's choice and is what their prepare_features calls."""
    from sklearn.preprocessing import OneHotEncoder

    from solutions import ch01_data_preparation as ch01

    namespace = notebook(inspect.getsource(ch01.Imputer), inspect.getsource(ch01.Standardizer),
                         LEARNER_PREPARE_FEATURES_WITH_SKLEARN)
    passed, output = run("ch01.prepare_features", namespace["prepare_features"])
    assert passed, output
    assert namespace["OneHotEncoder"] is OneHotEncoder


def test_the_grading_sandbox_swaps_by_the_same_rule():
    """In the sandbox as inline: the learner's own Imputer gives way to the reference, scikit-learn's
    OneHotEncoder stays, and Standardizer, never defined, is the reference during the calls and gone after."""
    from types import SimpleNamespace

    from sklearn.preprocessing import OneHotEncoder

    from autograder.instructor import grading
    from autograder.instructor.hidden_feedback import SubmittedText
    from autograder.learner import in_sandbox
    from autograder.learner.judge import judge

    exercise = registry.get("ch01.prepare_features")
    lines, inputs = grading._case_lines(exercise)
    namespace = notebook("class Imputer:\n    pass", LEARNER_PREPARE_FEATURES_WITH_SKLEARN)
    events = []
    for _, line in lines:
        in_sandbox.run_case(SimpleNamespace(user_ns=namespace), line, lambda **event: events.append(event))
    records = [event for event in events if event["event"] == "case_end"]
    assert len(records) == len(exercise.cases)
    for case, record in zip(exercise.cases, records):
        outcome = grading._outcome([record], inputs[case.name], case.hidden, SubmittedText.of([]))
        assert judge(exercise, case, outcome, inputs[case.name]).passed, record
    assert namespace["OneHotEncoder"] is OneHotEncoder and not hasattr(namespace["Imputer"], "fit")  # put back
    assert "Standardizer" not in namespace


def test_an_output_that_breaks_when_compared_is_a_message_not_a_crash():
    class Treacherous(tuple):
        def __len__(self):
            raise RuntimeError("gotcha")

        def __repr__(self):
            raise RuntimeError("no repr either")

    passed, output = run("ch02.mse_gradient", lambda X, y, w, b: Treacherous((w, b)))
    assert not passed and "could not be compared" in output


# ---------------------------------------------------------------- the graded test cell

def test_a_failing_graded_check_ends_in_one_line_naming_the_exercise_and_the_count():
    output = io.StringIO()
    with contextlib.redirect_stdout(output), pytest.raises(ExerciseFailed) as failure:
        check("ch02.mse_loss", lambda X, y, w, b: float(np.sum((X @ w + b - y) ** 2)), graded=True)
    assert str(failure.value) == "ch02.mse_loss: 2 of 3 cases failed; it looks like sum instead of mean (details above)"
    assert isinstance(failure.value, AssertionError)  # still an assertion, as `assert check(...)` was
    assert "known mistake: sum instead of mean." in output.getvalue()  # the details above


def test_a_graded_check_of_a_stub_says_not_written_and_a_passing_one_returns_true():
    def mse_loss(X, y, w, b):
        raise NotImplementedError()

    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(ExerciseFailed, match="is not written yet"):
        check("ch02.mse_loss", mse_loss, graded=True)
    with contextlib.redirect_stdout(io.StringIO()):
        assert check("ch02.mse_loss", ref.mse_loss, graded=True, hidden=True) is True


IPYTHON_CELLS = """
from traitlets.config import Config
from IPython.core.interactiveshell import InteractiveShell

config = Config()
config.HistoryManager.enabled = False
shell = InteractiveShell(config=config)
shell.run_cell("from autograder import check\\ndef mse_loss(X, y, w, b):\\n    return 0.0")
shell.run_cell('check("ch02.mse_loss", mse_loss, graded=True)')
"""


def test_ipython_shows_exercise_failed_as_its_line_alone_without_a_traceback():
    """The shell a Jupyter kernel runs (IPython's) prints the report, then that one line: no traceback."""
    result = subprocess.run([sys.executable, "-c", IPYTHON_CELLS], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    shown = result.stdout.rstrip().splitlines()
    assert shown[-1] == "ExerciseFailed: ch02.mse_loss: 3 of 3 cases failed (details above)", result.stdout
    assert shown[-2] == "  0 of 3 passed."
    assert "Traceback" not in result.stdout + result.stderr and "Cell In" not in result.stdout


def test_the_graded_test_cell_fails_with_that_line_and_passes_silently():
    source = sync.test_cell_source(registry.get("ch02.mse_loss"))
    assert 'check("ch02.mse_loss", mse_loss, graded=True)\n' in source and "assert" not in source
    assert 'check("ch02.mse_loss", mse_loss, graded=True, hidden=True)' in source.split("### BEGIN HIDDEN TESTS")[1]
    with contextlib.redirect_stdout(io.StringIO()):
        exec(source, {"check": check, "mse_loss": ref.mse_loss})
        with pytest.raises(ExerciseFailed, match="^ch02.mse_loss: 3 of 3 cases failed"):
            exec(source, {"check": check, "mse_loss": lambda X, y, w, b: 0.0})


# ---------------------------------------------------------------- expected and got, lined up

def test_expected_and_got_line_up_entry_by_entry_in_one_number_format():
    passed, output = run("ch02.gradient_step", lambda w, b, grad_w, grad_b, lr: (w + lr * grad_w, b - lr * grad_b))
    lines = output.splitlines()
    expected = next(line for line in lines if "w  expected" in line)
    got = lines[lines.index(expected) + 1]
    assert expected.index("[") == got.index("[") and expected.index("]") == got.index("]")
    assert [i for i, c in enumerate(expected) if c == ","] == [i for i, c in enumerate(got) if c == ","]
    assert not re.search(r"\d\.[,\] ]", expected + got)  # numbers as messages write them (0, 1.5), not numpy's 0.


def test_two_numbers_that_differ_never_read_the_same():
    assert show_pair(1.234567, 1.234568) == ("1.234567", "1.234568")  # 6 digits would say 1.23457 twice
    assert show_pair(np.array([1.234567, 2.0]), np.array([1.234568, 2.0])) == \
        ("float64 array (2,) [1.234567, 2]", "float64 array (2,) [1.234568, 2]")
    assert show_pair(0.5, 0.25) == ("0.5", "0.25")


def test_a_long_array_is_cut_between_numbers_never_inside_one():
    text = show(np.linspace(-1, 1, 40) * 1234.5678)
    assert "\n" not in text and text.count("...") == 1
    for token in text.split("[")[1].split("]")[0].split(", ")[:-1]:
        float(token)  # every entry shown is a whole number


def test_a_2d_input_is_shown_as_rows_with_its_shape():
    passed, output = run("ch02.mse_loss", lambda X, y, w, b: 0.0, full=True)
    lines = output.splitlines()
    header = next(i for i, line in enumerate(lines) if "X = float64 array (40, 10)" in line)
    rows = lines[header + 1:header + 6]
    assert rows[0].strip().startswith("[[") and rows[1].strip().startswith("[") and rows[4].strip() == "...]"
    assert all(row.index("[") == rows[0].index("[") + 1 for row in rows[1:4])


def test_a_tuple_shows_one_line_per_named_part_the_differing_part_first():
    def linear_backward(dout, x, W):
        return dout @ W.T, x.T @ dout, dout.sum(axis=0) * 2

    passed, output = run("ch03.linear_backward", linear_backward)
    lines = [line.strip() for line in output.splitlines()]
    first = lines.index(next(line for line in lines if line.startswith("db  expected")))
    assert lines[first + 1].startswith("got") and lines[first + 2:first + 4] == ["dx  as expected", "dW  as expected"]


def test_a_schedule_is_shown_step_by_step_and_the_wrong_steps_are_marked():
    def cosine_schedule(step, total_steps, lr_max, lr_min=0.0):
        return lr_min + 0.5 * (lr_max - lr_min) * (1 + np.cos(np.pi * step / total_steps))

    passed, output = run("ch02.cosine_schedule", cosine_schedule)
    lines = [line.strip() for line in output.splitlines()]
    assert "step  expected  got" in lines
    assert "4  0         0" in lines and "5  0         0.146447  ✗" in lines


# ---------------------------------------------------------------- naming a known mistake

def numerical_gradient_without_restoring(work_on_a_copy):
    """The registered answer that never puts its perturbed entries back: on a copy, or on the caller's x."""
    name = "perturbed entries not put back" if work_on_a_copy else "x left perturbed"
    return next(m.fn for m in registry.get("ch03.numerical_gradient").mistakes if m.name == name)


def test_an_untouched_input_is_never_called_left_perturbed():
    passed, output = run("ch03.numerical_gradient", numerical_gradient_without_restoring(work_on_a_copy=True))
    assert not passed and "x left perturbed" not in output and "changed its input" not in output
    assert "known mistake: perturbed entries not put back." in output
    passed, output = run("ch03.numerical_gradient", numerical_gradient_without_restoring(work_on_a_copy=False))
    assert "changed its input x in place" in output and "known mistake: x left perturbed." in output


def test_a_chunked_kfold_is_not_called_folds_miss_samples():
    def kfold_indices(y, n_splits, rng, stratify=False):
        order = np.concatenate([rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]) if stratify \
            else rng.permutation(len(y))
        return [(np.setdiff1d(np.arange(len(y)), chunk), np.sort(chunk)) for chunk in np.array_split(order, n_splits)]

    passed, output = run("ch01.kfold_indices", kfold_indices)
    assert not passed and "folds miss samples" not in output
    assert "known mistake: folds cut in contiguous blocks." in output


def test_keepdims_is_not_called_a_bias_gradient_not_summed_over_the_batch():
    passed, output = run("ch03.linear_backward", lambda dout, x, W: (dout @ W.T, x.T @ dout,
                                                                    dout.sum(axis=0, keepdims=True)))
    assert not passed and "not summed over the batch" not in output and "known mistake" not in output
    assert "An axis of length 1 is extra or missing" in output


def test_losses_recorded_before_each_step_are_not_called_a_missing_starting_loss():
    def fit_linear_regression(X, y, lr, n_steps):
        w, b, losses = np.zeros(X.shape[1]), 0.0, []
        for _ in range(n_steps):
            losses.append(ref.mse_loss(X, y, w, b))
            grad_w, grad_b = ref.mse_gradient(X, y, w, b)
            w, b = ref.gradient_step(w, b, grad_w, grad_b, lr)
        return w, b, np.array(losses)

    passed, output = run("ch02.fit_linear_regression", fit_linear_regression)
    assert not passed and "starting loss not recorded" not in output
    assert "known mistake: losses recorded before each step." in output


def test_a_mistake_that_explains_only_some_failing_cases_is_not_named():
    """sum instead of mean explains the first two cases; the third fails differently."""
    def mse_loss(X, y, w, b):
        return float(np.sum((X @ w + b - y) ** 2)) if len(y) > 1 else -1.0

    passed, output = run("ch02.mse_loss", mse_loss)
    assert not passed and "known mistake" not in output


def test_the_learners_bundle_names_mistakes_by_the_same_rule(tmp_path):
    """Stored cases keep which inputs a mistake changes in place and which exception it raises."""
    import json

    from autograder.learner import stored
    from autograder.learner.check import report
    from autograder.learner.judge import run_cases

    for exercise_id, fn, name in [
            ("ch03.numerical_gradient", numerical_gradient_without_restoring(work_on_a_copy=True),
             "perturbed entries not put back"),
            ("ch03.numerical_gradient", numerical_gradient_without_restoring(work_on_a_copy=False),
             "x left perturbed"),
            ("ch01.OneHotEncoder", registry.get("ch01.OneHotEncoder").mistakes[0].fn, "one-hot off by one")]:
        exercise = stored.from_json(json.loads(json.dumps(stored.to_json(registry.get(exercise_id)))))
        assert f"known mistake: {name}." in report(exercise, run_cases(exercise, fn))


# ---------------------------------------------------------------- shape hints

def test_a_residual_broadcast_to_n_by_n_is_named_as_a_broadcast():
    for expected in (np.zeros(5), 0.0):
        message = str(differences(np.zeros((5, 5)), expected)[0])
        assert "(5, 5) array where" in message and "broadcasts to (n, n)" in message and "y[:, None]" in message
        assert "which axis you reduce over" not in message
    passed, output = run("ch02.mse_loss", lambda X, y, w, b: float(np.mean((X @ w + b - y.reshape(-1, 1)) ** 2)))
    assert "known mistake: residual broadcast to (n, n)." in output


def test_the_reduce_over_an_axis_hint_only_where_an_axis_is_the_cause():
    assert "which axis you reduce over" in str(differences(np.zeros((4, 3)), np.zeros(3))[0])  # an axis kept
    assert "which axis you reduce over" in str(differences(np.zeros(3), np.zeros((4, 3)))[0])  # one too many reduced
    assert "which axis you reduce over" not in str(differences(np.zeros(20), np.zeros(21))[0])
    assert "which axis you reduce over" not in str(differences(np.zeros((2, 3)), np.zeros((3, 4)))[0])


# ---------------------------------------------------------------- gaps the check once had

def test_a_list_of_strings_changed_in_place_is_named():
    from solutions import ch01_data_preparation as ch01

    def tfidf_features(documents):
        for i, document in enumerate(documents):
            documents[i] = document.lower()
        return ch01.tfidf_features(documents)

    passed, output = run("ch01.tfidf_features", tfidf_features)
    assert not passed and "changed its input documents in place" in output


def test_a_vocabulary_as_an_object_array_or_a_unicode_array_passes():
    from solutions import ch01_data_preparation as ch01

    for dtype in (object, str):
        def tfidf_features(documents):
            vocabulary, counts, tfidf = ch01.tfidf_features(documents)
            return np.array(vocabulary, dtype=dtype), counts, tfidf

        passed, output = run("ch01.tfidf_features", tfidf_features)
        assert passed, output


def test_a_vocabulary_with_a_wrong_word_fails_and_says_which():
    from solutions import ch01_data_preparation as ch01

    def tfidf_features(documents):
        vocabulary, counts, tfidf = ch01.tfidf_features(documents)
        return np.array([word.upper() if word == "cat" else word for word in vocabulary], dtype=object), counts, tfidf

    passed, output = run("ch01.tfidf_features", tfidf_features)
    assert not passed and "expected 'cat', got 'CAT'" in output and re.search(r"tfidf +as expected", output)


def test_a_float32_schedule_gets_float32_tolerance_and_a_float16_one_is_too_coarse():
    def schedule_in(dtype):
        def cosine_schedule(step, total_steps, lr_max, lr_min=0.0):
            progress = dtype(min(step, total_steps) / total_steps)
            return dtype(lr_min) + dtype(0.5) * dtype(lr_max - lr_min) * (dtype(1) + np.cos(dtype(np.pi) * progress))
        return cosine_schedule

    exercise = registry.get("ch02.cosine_schedule")
    got = exercise.call(schedule_in(np.float32), {"total_steps": 10, "lr_max": 0.1, "lr_min": 0.001})
    assert got.dtype == np.float32  # the driver keeps the learner's precision
    with contextlib.redirect_stdout(io.StringIO()):
        assert check("ch02.cosine_schedule", schedule_in(np.float32), hidden=True)
    passed, output = run("ch02.cosine_schedule", schedule_in(np.float16))
    assert not passed and "too little precision: float16" in output


def test_a_float16_answer_three_percent_off_fails():
    def mse_loss(X, y, w, b):
        return np.float16(1.03 * ref.mse_loss(X, y, w, b))

    passed, output = run("ch02.mse_loss", mse_loss)
    assert not passed and "too little precision: float16" in output


def test_a_standardizer_with_the_variance_in_scale_fails_though_its_transform_is_right():
    class Standardizer:
        def fit(self, X):
            self.mean_ = X.mean(axis=0)
            std = X.std(axis=0)
            self.scale_ = np.where(std == 0, 1.0, std) ** 2  # the variance, stored where the std belongs
            return self

        def transform(self, X):
            return (X - self.mean_) / np.sqrt(self.scale_)

    passed, output = run("ch01.Standardizer", Standardizer)
    assert not passed and re.search(r"scale_ +expected", output) and re.search(r"transform\(test\) +as expected", output)


def test_an_imputer_with_wrong_indicator_features_fails_though_its_transform_is_right():
    from solutions import ch01_data_preparation as ch01

    class Imputer(ch01.Imputer):
        def fit(self, X):
            super().fit(X)
            self.indicator_features_ = np.isnan(X).any(axis=0)  # a mask, where the docstring promises indices
            return self

    passed, output = run("ch01.Imputer", Imputer)
    assert not passed and "indicator_features_: wrong shape" in output
    assert re.search(r"transform\(test\) +as expected", output)


def test_every_fit_then_transform_case_compares_every_attribute_its_docstring_promises():
    from autograder.learner.drivers import fit_then_transform

    for exercise in registry.all_exercises():
        if exercise.call is not fit_then_transform:
            continue
        promised = re.findall(r"(\w+_):", exercise.reference.__doc__.split("Attributes after fit:")[1])
        assert promised, f"{exercise.id}: its docstring lists no attributes after fit"
        assert list(exercise.outputs[1:-1]) == promised, exercise.id
        for case in exercise.cases:
            assert list(case.make_args()["learned"]) == promised, f"{exercise.id} / {case.name}"


FIRST_CHECK_STOPPED = """
import sys
from autograder.learner import registry

registered = registry.register
calls = []


def stopped_on_the_third(*exercises):  # Ctrl-C while the chapter's module runs, after two exercises registered
    calls.append(exercises)
    if len(calls) == 3:
        raise KeyboardInterrupt
    registered(*exercises)


registry.register = stopped_on_the_third
try:
    registry.get("ch04.adam_step")
except KeyboardInterrupt:
    print("stopped")
registry.register = registered
print(sorted(registry._REGISTRY), sorted(registry._LOADED))
print(registry.get("ch04.adam_step").id, len(registry._REGISTRY), sorted(registry._LOADED))
print("ch02 imported:", "autograder.instructor.exercises.ch02" in sys.modules)
"""


def test_a_first_check_stopped_halfway_leaves_nothing_and_the_next_one_loads_its_chapter_whole():
    result = subprocess.run([sys.executable, "-c", FIRST_CHECK_STOPPED], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    stopped, after_stop, loaded, other_chapter = result.stdout.splitlines()
    assert stopped == "stopped" and after_stop == "[] []"  # none of the chapter's exercises stayed registered
    chapter_04 = len([e for e in registry.all_exercises() if e.chapter == "ch04"])
    assert loaded == f"ch04.adam_step {chapter_04} ['ch04']"  # the whole chapter, and only it
    assert other_chapter == "ch02 imported: False"


def test_an_unknown_id_is_suggested_from_every_chapter():
    with pytest.raises(KeyError, match="ch04.adam_step"):
        registry.get("ch02.adam_step")


def test_a_checkpoint_torch_cannot_load_names_the_key_and_the_type_it_holds():
    """An object saved in place of its state (the numpy Generator itself): the first line says which key holds
    what, and no known mistake about another key (the model object) is named."""
    import torch

    def save_checkpoint(path, model, optimizer, scheduler, epoch, generator, rng):
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "epoch": epoch, "torch_rng": torch.get_rng_state(),
                    "loader_rng": generator.get_state(), "numpy_rng": rng}, path)

    passed, output = run("ch07.save_checkpoint", save_checkpoint)
    assert not passed and """got      "'numpy_rng' holds a numpy.random._generator.Generator, which""" in output
    assert "known mistake" not in output

    def saves_the_model(path, model, optimizer, scheduler, epoch, generator, rng):
        save_checkpoint(path, model, optimizer, scheduler, epoch, generator, rng.bit_generator.state)
        contents = torch.load(path, weights_only=True)
        torch.save({**contents, "model": model}, path)

    passed, output = run("ch07.save_checkpoint", saves_the_model)
    assert not passed and "'model' holds a torch.nn" in output and "known mistake: the model object saved" in output


# ---------------------------------------------------------------- device contracts, on a simulated GPU

def learner(source):
    """The function a learner's cell `source` defines, in a notebook namespace holding torch."""
    import torch

    namespace = notebook(source, torch=torch)
    return namespace[source.split("def ", 1)[1].split("(", 1)[0]]


TO_DEVICE_INTO_THE_CALLERS_DICT = """
def to_device(batch, device):
    if torch.is_tensor(batch):
        return batch.to(device)
    if isinstance(batch, dict):
        batch.update({key: to_device(value, device) for key, value in batch.items()})
        return batch
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_device(value, device) for value in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch
"""


def test_a_to_device_that_moves_the_callers_own_batch_fails_and_says_so():
    passed, output = run("ch06.to_device", learner(TO_DEVICE_INTO_THE_CALLERS_DICT))
    assert not passed and "known mistake: the batch passed in changed." in output
    assert "the batch passed in, afterwards  expected \"{'x': tensor on cpu" in output
    assert "got      \"{'x': tensor on cuda" in output


def test_a_namedtuple_rebuilt_from_one_iterable_or_as_a_plain_tuple_fails():
    one_iterable = TO_DEVICE_INTO_THE_CALLERS_DICT.replace(
        "batch.update({key: to_device(value, device) for key, value in batch.items()})\n        return batch",
        "return {key: to_device(value, device) for key, value in batch.items()}").replace(
        "if isinstance(batch, tuple) and hasattr(batch, \"_fields\"):", "if False:")
    passed, output = run("ch06.to_device", learner(one_iterable))
    assert not passed and "known mistake: a namedtuple rebuilt from one iterable." in output
    assert "TypeError: Batch.__new__() missing 2 required positional arguments" in output
    plain = one_iterable.replace("return type(batch)(to_device(value, device) for value in batch)",
                                 "return (tuple if isinstance(batch, tuple) else list)(map(to_device, batch, "
                                 "[device] * len(batch)))")
    passed, output = run("ch06.to_device", learner(plain))
    assert not passed and "expected 'Batch(tensor on cuda, tensor on cuda, [int 7, int 8, int 9])'" in output


def test_a_to_device_written_otherwise_that_keeps_the_contract_passes():
    passed, output = run("ch06.to_device", learner("""
def to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device=device)
    if isinstance(batch, dict):
        return dict((key, to_device(value, device)) for key, value in batch.items())
    if isinstance(batch, tuple) and hasattr(batch, "_make"):
        return batch._make(to_device(value, device) for value in batch)
    if isinstance(batch, (tuple, list)):
        return type(batch)([to_device(value, device) for value in batch])
    return batch
"""))
    assert passed, output
    assert "✓ a namedtuple Batch(x, y, ids)" in output


MIXED_PRECISION_ON = """
def mixed_precision_step(model, x, y, optimizer, loss_fn, dtype=None, scaler=None):
    dtype = autocast_dtype(x.device) if dtype is None else dtype
    optimizer.zero_grad()
    with torch.autocast(device_type=DEVICE, dtype=dtype):
        loss = loss_fn(model(x), y)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return loss.item()
"""


def mixed_precision_step_on(device: str):
    """The step as the notebook's cell has it (autocast_dtype imported), autocasting the device `device` names."""
    return learner("from solutions.common import autocast_dtype\n" + MIXED_PRECISION_ON.replace("DEVICE", device))


def test_a_mixed_precision_step_that_autocasts_the_cpu_fails_on_a_gpu_and_says_so():
    passed, output = run("ch06.mixed_precision_step", mixed_precision_step_on('"cpu"'))
    assert not passed and "known mistake: autocast on the CPU while the tensors are on the GPU." in output
    assert "autocast in the forward pass: expected 'cuda float16', got 'cpu float16'" in output


def test_a_mixed_precision_step_that_autocasts_whatever_is_available_fails_on_the_cpu_of_a_gpu_machine():
    passed, output = run("ch06.mixed_precision_step",
                         mixed_precision_step_on('"cuda" if torch.cuda.is_available() else "cpu"'))
    assert not passed and "✗ the CPU of a machine with a GPU (simulated)" in output
    assert "expected 'cpu bfloat16'" in output and "got      'cuda bfloat16'" in output


def test_a_mixed_precision_step_that_autocasts_the_models_device_passes():
    passed, output = run("ch06.mixed_precision_step", mixed_precision_step_on("next(model.parameters()).device.type"))
    assert passed, output


EVALUATE = """
def evaluate(model, loader):
    was_training = model.training
    model.eval()
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            MOVE
            scores = model(x)
            total += torch.nn.functional.cross_entropy(scores, y, reduction="sum").item()
            correct += (scores.argmax(dim=1) == y).sum().item()
            count += len(y)
    model.train(was_training)
    return total / count, correct / count
"""


def test_an_evaluate_that_leaves_the_batches_on_the_cpu_fails_on_a_gpu_and_says_so():
    passed, output = run("ch07.evaluate", learner(EVALUATE.replace("MOVE", "pass")))
    assert not passed and "known mistake: batches left on the CPU while the model is on the GPU." in output
    assert "✗ the model on a GPU (simulated), the batches on the CPU" in output
    assert "Expected all tensors to be on the same device" in output


def test_an_evaluate_that_moves_the_model_to_the_batches_fails_and_one_that_moves_the_batches_passes():
    passed, output = run("ch07.evaluate", learner(EVALUATE.replace("MOVE", "model.to(x.device)")))
    assert not passed and "where the model lies afterwards  expected 'cuda'" in output
    moved = "x, y = (t.to(next(iter(model.state_dict().values())).device) for t in (x, y))"
    passed, output = run("ch07.evaluate", learner(EVALUATE.replace("MOVE", moved)))
    assert passed, output


LOAD_CHECKPOINT = """
def load_checkpoint(path, model, optimizer, scheduler, generator, rng):
    checkpoint = torch.load(path, weights_only=True MAP)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    torch.set_rng_state(checkpoint["torch_rng"])
    generator.set_state(checkpoint["loader_rng"])
    rng.bit_generator.state = checkpoint["numpy_rng"]
    return checkpoint["epoch"] + 1
"""


def test_a_checkpoint_loaded_without_map_location_fails_on_a_gpus_file_and_says_so():
    passed, output = run("ch07.load_checkpoint", learner(LOAD_CHECKPOINT.replace(" MAP", "")))
    assert not passed and "known mistake: a GPU checkpoint loaded without map_location." in output
    assert "✗ saved on a GPU (every tensor tagged cuda:0), resumed on a machine without one" in output
    for where in ("{'cuda:0': 'cpu'}", "torch.device('cpu')", "lambda storage, location: storage"):
        passed, output = run("ch07.load_checkpoint",
                             learner(LOAD_CHECKPOINT.replace(" MAP", f", map_location={where}")))
        assert passed, output


def test_the_device_cases_travel_to_the_grading_sandbox_and_are_judged_there_as_inline():
    """The namedtuple case and the caller's batch: the sandbox's own code runs each case (here, in this process), its
    records come back through the wire, and the grader gives every case the verdict the inline check gives."""
    from types import SimpleNamespace

    from autograder.instructor import grading
    from autograder.instructor.hidden_feedback import SubmittedText
    from autograder.learner import in_sandbox, wire
    from autograder.learner.judge import judge, run_cases

    exercise = registry.get("ch06.to_device")
    lines, inputs = grading._case_lines(exercise)
    named = next(line for _, line in lines if line["case"] == "a namedtuple Batch(x, y, ids)")
    assert type(wire.decode(named["args"])["batch"]) is wire.namedtuple_type("Batch", ("x", "y", "ids"))
    fn = learner(TO_DEVICE_INTO_THE_CALLERS_DICT)
    events = []
    for _, line in lines:
        in_sandbox.run_case(SimpleNamespace(user_ns={"to_device": fn}), line, lambda **event: events.append(event))
    records = [event for event in events if event["event"] == "case_end"]
    graded = [judge(exercise, case, grading._outcome([record], inputs[case.name], case.hidden, SubmittedText.of([])),
                    inputs[case.name]).passed for case, record in zip(exercise.cases, records)]
    assert graded == [result.passed for result in run_cases(exercise, fn, hidden=True)]
    assert not all(graded) and graded[[case.name for case in exercise.cases].index(named["case"])]


def adam_without_bias_correction(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    beta1, beta2 = betas
    grad = grad + weight_decay * param
    m = beta1 * state.get("exp_avg", np.zeros_like(param)) + (1 - beta1) * grad
    v = beta2 * state.get("exp_avg_sq", np.zeros_like(param)) + (1 - beta2) * grad ** 2
    return param - lr * m / (np.sqrt(v) + eps), {"step": state.get("step", 0) + 1, "exp_avg": m, "exp_avg_sq": v}


def test_a_failing_report_opens_with_its_verdict_and_hint_then_one_case_in_full_and_the_rest_in_a_line():
    passed, output = run("ch04.adam_step", adam_without_bias_correction)
    lines = output.splitlines()
    mistake = next(m for m in registry.get("ch04.adam_step").mistakes if m.name == "Adam without bias correction")
    assert not passed and lines[1] == "  0 of 4 passed. This looks like a known mistake: Adam without bias correction."
    hint = lines[2:lines.index(next(line for line in lines if line.startswith("  ✗ ")))]
    assert " ".join(line.strip() for line in hint) == mistake.hint and all(line.startswith("    ") for line in hint)
    assert all(len(line) <= 104 for line in hint)
    cases = [i for i, line in enumerate(lines) if line.startswith("  ✗ ")]
    assert len(cases) == 4 and "input" in lines[cases[0] + 1] and "expected" in output.split(lines[cases[1]])[0]
    for start, end in zip(cases[1:], cases[2:] + [len(lines) - 2]):
        assert end - start == 2 and lines[start + 1].endswith("(and 2 more)"), lines[start:end]
    assert lines[-2] == "  (the first failing case of each kind is shown in full, the others in short: " \
                        "check('ch04.adam_step', ..., full=True) shows each in full)"
    assert lines[-1] == "  0 of 4 passed."
    _, in_full = run("ch04.adam_step", adam_without_bias_correction, full=True)
    assert in_full.count("input    ") == 4 and "in short" not in in_full


def test_each_kind_of_failure_is_shown_in_full_once():
    """A wrong value in the first case and an exception in the next: the exception's traceback is not cut to a
    line, or the learner would not see where their code failed."""
    def mse_loss(X, y, w, b):
        return np.mean((X @ w.reshape(1, -1) + b - y) ** 2)

    _, output = run("ch02.mse_loss", mse_loss)
    assert output.count("your code raised an exception:") == 1 and "in mse_loss" in output
    assert output.count("expected 1.25") >= 1
    assert "your code raised ValueError: matmul" in output  # the third case, the same exception, in short


def test_a_long_value_is_cut_to_a_line_and_a_passing_report_is_unchanged():
    passed, output = run("ch04.adam_step", lambda param, grad, state, **kw: (param, state), full=True)
    shown = [line for line in output.splitlines() if re.match(r" {8}\w+ = ", line)]  # the inputs, one line each
    assert not passed and shown and all(len(line) <= 6 + judge.MAX_VALUE_LINE for line in shown)
    assert any(line.endswith(" …") for line in shown)  # the list of three gradients
    passed, output = run("ch02.mse_loss", ref.mse_loss)
    assert passed and output == "ch02.mse_loss: 3 cases\n" + "".join(
        f"  ✓ {case.name}\n" for case in registry.get("ch02.mse_loss").visible_cases()) + "  all 3 passed.\n"


def test_a_mistake_that_would_fail_a_case_the_learner_passed_is_not_named():
    """An answer that fails two cases exactly as "rounded down" does, but gets right a case that rounding down gets
    wrong, is not rounding down: naming that mistake would send the learner after the wrong bug."""
    from autograder.learner.judge import run_cases

    def halve(x):
        return x / 2

    exercise = registry.Exercise(
        id="ch00.toy_halve", points=1, reference=halve,
        cases=tuple(registry.Case(name, lambda x=x: {"x": x}) for name, x in
                    (("even", 4.0), ("odd", 5.0), ("negative odd", -3.0), ("one", 1.0))),
        mistakes=(registry.Mistake("rounded down", "halve with /, not //.", lambda x: x // 2),), alternatives=())
    rounds_down = run_cases(exercise, lambda x: x // 2)
    assert [r.passed for r in rounds_down] == [True, False, False, False]
    assert {r.mistake.name for r in rounds_down if not r.passed} == {"rounded down"}
    right_at_one = run_cases(exercise, lambda x: x / 2 if x == 1 else x // 2)
    assert [r.passed for r in right_at_one] == [True, False, False, True]
    assert all(r.mistake is None for r in right_at_one)


def toy_exercise(hint="", cases=(("one", 1.0),)):
    return registry.Exercise(
        id="ch00.toy_halve", points=1, reference=lambda x: x / 2,
        cases=tuple(registry.Case(name, lambda x=x: {"x": x}) for name, x in cases),
        mistakes=(registry.Mistake("rounded down", hint or "halve with /.", lambda x: x // 2),), alternatives=())


@pytest.mark.parametrize("first_line, lines", [(100, 1), (101, 2)])
def test_a_hint_wraps_at_exactly_its_width(first_line, lines):
    """A hint whose words fill a line of exactly HINT_WIDTH characters (with its 4 spaces of indent) stays on one
    line; one character more and its last word goes to the next."""
    from autograder.learner.check import HINT_WIDTH, report
    from autograder.learner.judge import run_cases

    assert HINT_WIDTH == 100
    hint = "x" * (first_line - 4 - 5) + " yyyy"
    exercise = toy_exercise(hint)
    text = report(exercise, run_cases(exercise, lambda x: x // 2))
    shown = text.splitlines()[2:2 + lines]
    assert " ".join(line.strip() for line in shown) == hint and all(line.startswith("    ") for line in shown)
    assert text.splitlines()[2 + lines].startswith("  ✗ "), "the hint is exactly these lines"


def test_one_case_is_one_case_in_the_header():
    from autograder.learner.check import report
    from autograder.learner.judge import run_cases

    for cases, header in (((("one", 1.0),), "ch00.toy_halve: 1 case"),
                          ((("one", 1.0), ("two", 2.0)), "ch00.toy_halve: 2 cases"),
                          ((("one", 1.0), ("two", 2.0), ("three", 3.0)), "ch00.toy_halve: 3 cases")):
        exercise = toy_exercise(cases=cases)
        assert report(exercise, run_cases(exercise, lambda x: x / 2)).splitlines()[0] == header


def test_by_default_the_check_and_the_graders_report_shorten_the_repeated_failures():
    """check(id, fn) and report(exercise, results), as a graded exercise's feedback is written, shorten by default."""
    from autograder.learner.check import report
    from autograder.learner.judge import run_cases

    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        check("ch04.adam_step", adam_without_bias_correction)
    assert "the others in short" in output.getvalue()
    exercise = registry.get("ch04.adam_step")
    assert "the others in short" in report(exercise, run_cases(exercise, adam_without_bias_correction))


def test_a_hint_breaks_neither_a_long_word_nor_at_a_hyphen():
    from autograder.learner.check import report
    from autograder.learner.judge import run_cases

    url = "https://example.org/" + "a" * 100
    hyphenated = "x" * 85 + " cross-entropy"  # 4 + 85 + 1 + 13 = 103: breaking at its hyphen would fit "cross-"
    for hint, expected in ((f"see {url} now", ["    see", f"    {url}", "    now"]),
                           (hyphenated, ["    " + "x" * 85, "    cross-entropy"])):
        exercise = toy_exercise(hint)
        assert report(exercise, run_cases(exercise, lambda x: x // 2)).splitlines()[2:4 + (len(expected) == 3)] == \
            expected


def test_a_shortened_case_shows_its_first_difference():
    _, output = run("ch04.adam_step", adam_without_bias_correction)
    short = [line for line in output.splitlines() if line.endswith("(and 2 more)")]
    assert short and all(line.strip().startswith("parameter after each step[0]:") for line in short)


def test_a_case_that_changes_its_input_after_a_wrong_value_is_shown_in_full_too():
    exercise = registry.Exercise(
        id="ch00.toy_halve", points=1, reference=lambda x: x / 2,
        cases=(registry.Case("ones", lambda: {"x": np.ones(2)}), registry.Case("twos", lambda: {"x": np.full(2, 2.0)})),
        mistakes=(), alternatives=())

    def halves_in_place_after_the_first(x):
        if x[0] == 1:
            return x * 3
        x *= 0.5
        return x

    from autograder.learner.check import report
    from autograder.learner.judge import run_cases
    lines = report(exercise, run_cases(exercise, halves_in_place_after_the_first)).splitlines()
    second = lines.index("  ✗ twos")
    assert "changed its input x in place" in lines[second + 1] and lines[second + 2].startswith("      input")


def test_an_exercise_left_unwritten_after_a_passing_case_says_not_written():
    from autograder.learner.check import report
    from autograder.learner.judge import run_cases

    def half_written(x):
        if x == 1.0:
            return 0.5
        raise NotImplementedError()

    exercise = toy_exercise(cases=(("one", 1.0), ("two", 2.0)))
    assert report(exercise, run_cases(exercise, half_written)).splitlines()[-1] == "  ch00.toy_halve is not written yet."


# ---------------------------------------------------------------- every spelling of a listed mistake gets its hint

def spelt(source, name):
    """What a learner's notebook cell `source` defines as `name`, beside numpy, math, torch and F."""
    import math

    import torch
    import torch.nn.functional as F

    return notebook(source, math=math, torch=torch, F=F)[name]


def gives_the_hint(output, exercise_id, name):
    """Whether the report names the known mistake `name` of `exercise_id` and gives its hint (which the report wraps:
    compared with every line break read as a space)."""
    hint = next(mistake.hint for mistake in registry.get(exercise_id).mistakes if mistake.name == name)
    return f"known mistake: {name}." in output and " ".join(hint.split()) in " ".join(output.split())


ADAM_COUNTING_FROM_0 = """
def adam_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    beta1, beta2 = betas
    t = state.get("step", 0)
    g = grad + weight_decay * param
    m = beta1 * state.get("exp_avg", np.zeros_like(param)) + (1 - beta1) * g
    v = beta2 * state.get("exp_avg_sq", np.zeros_like(param)) + (1 - beta2) * g ** 2
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), {"step": t + 1, "exp_avg": m, "exp_avg_sq": v}
"""
ADAM_AS_TORCH_COUNTING_FROM_0 = """
def adam_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    b1, b2 = betas
    step = state["step"] if "step" in state else 0
    if weight_decay != 0:
        grad = grad + weight_decay * param
    exp_avg = b1 * state.get("exp_avg", 0.0) + (1 - b1) * grad
    exp_avg_sq = b2 * state.get("exp_avg_sq", 0.0) + (1 - b2) * grad * grad
    step_size = lr / (1 - b1 ** step)
    denom = np.sqrt(exp_avg_sq) / math.sqrt(1 - b2 ** step) + eps
    return param - step_size * exp_avg / denom, {"step": step + 1, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
"""
CLIP_RETURNING_THE_CLIPPED_NORM = """
def clip_grad_norm(grads, max_norm):
    total = math.sqrt(sum(float(np.sum(g ** 2)) for g in grads))
    coef = min(max_norm / (total + 1e-6), 1.0)
    clipped = [g * coef for g in grads]
    return clipped, math.sqrt(sum(float(np.sum(c ** 2)) for c in clipped))
"""
CLIP_BY_A_NORM_FUNCTION = """
def clip_grad_norm(grads, max_norm):
    def global_norm(arrays):
        return float(np.sqrt(sum(np.sum(np.square(a)) for a in arrays)))

    coef = min(max_norm / (global_norm(grads) + 1e-6), 1.0)
    clipped = [g * coef for g in grads]
    return clipped, global_norm(clipped)
"""
CLIP_BY_LINALG_AFTER_CLIPPING = """
def clip_grad_norm(grads, max_norm):
    total = np.sqrt(sum(np.linalg.norm(g) ** 2 for g in grads))
    clipped = [g * min(1.0, max_norm / (total + 1e-6)) for g in grads]
    return clipped, float(np.sqrt(sum(np.linalg.norm(c) ** 2 for c in clipped)))
"""
EVALUATE_BY_BATCH = """
def evaluate(model, loader):
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    losses, accuracies = [], []
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            scores = model(x)
            losses.append(F.cross_entropy(scores, y).item())
            accuracies.append(ACCURACY)
    model.train(was_training)
    return sum(losses) / len(losses), sum(accuracies) / len(accuracies)
"""
EVALUATE_BY_BATCH_IN_TENSORS = """
def evaluate(model, loader):
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    total_loss, total_accuracy, batches = 0.0, 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            out = model(x)
            total_loss += F.cross_entropy(out, y)
            total_accuracy += (out.argmax(1) == y).float().mean()
            batches += 1
    model.train(was_training)
    return (total_loss / batches).item(), (total_accuracy / batches).item()
"""
DROPOUT_REDRAWING_IN_BACKWARD = """
class Dropout:
    def __init__(self, p, rng):
        self.p, self.rng, self.training, self.mask = p, rng, True, None

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self

    def forward(self, x):
        if not self.training:
            self.mask = np.ones(x.shape, dtype=x.dtype)
            return x * self.mask
        keep = (self.rng.random(x.shape) >= self.p).astype(x.dtype)
        self.mask = keep / (1 - self.p) if self.p < 1 else keep
        return x * self.mask

    def backward(self, dout):
BACKWARD
"""
DP_SGD_CLIPPING_THE_MEAN_BY_VMAP = """
def dp_sgd_gradient(loss_fn, params, X, y, max_norm, noise_multiplier, generator):
    per_example = torch.func.vmap(torch.func.grad(loss_fn), in_dims=(None, 0, 0))(params, X, y)
    mean = {name: g.mean(dim=0) for name, g in per_example.items()}
    norm = torch.sqrt(sum((g ** 2).sum() for g in mean.values()))
    factor = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    noisy = {}
    for name, p in params.items():
        z = torch.randn(p.shape, generator=generator, dtype=p.dtype, device=generator.device).to(p.device)
        noisy[name] = mean[name] * factor + NOISE
    return noisy
"""
DP_SGD_CLIPPING_THE_MEAN_BY_AUTOGRAD = """
def dp_sgd_gradient(loss_fn, params, X, y, max_norm, noise_multiplier, generator):
    leaves = {name: p.detach().clone().requires_grad_(True) for name, p in params.items()}
    loss = sum(loss_fn(leaves, X[i], y[i]) for i in range(len(X))) / len(X)
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    norm = torch.sqrt(sum(g.pow(2).sum() for g in grads.values()))
    factor = min(1.0, max_norm / (norm.item() + 1e-6))
    out = {}
    for name, p in params.items():
        z = torch.randn(p.shape, generator=generator, dtype=p.dtype, device=generator.device).to(p.device)
        out[name] = (grads[name] * factor * len(X) + noise_multiplier * max_norm * z) / len(X)
    return out
"""
QUANTIZE_BY_A_SCALE = """
def quantize_int8(x, axis=None, scale=None):
    if scale is None:
        amax = x.abs().max() if axis is None else x.abs().reshape(x.shape[0], -1).max(dim=1).values
        scale = torch.where(amax > 0, amax / LEVELS, torch.ones_like(amax))
    s = scale if axis is None else scale.reshape(-1, *([1] * (x.dim() - 1)))
    return torch.round(x / s).clamp(LOW, 127).to(torch.int8), scale.to(x.dtype).clone()
"""
TRAINING_MEMORY_TALLIED = """
def training_memory(sizes, batch_size, optimizer="adam", dtype_bytes=4):
    n = sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    params = n * dtype_bytes
    opt = {"sgd": 0, "momentum": 1, "adam": 2}[optimizer] * params
    if optimizer == "adam":
        opt += STEP_COUNTS
    acts = batch_size * sum(sizes) * dtype_bytes + dtype_bytes + LABELS
    memory = dict(parameters=params, gradients=params, optimizer=opt, activations=acts)
    memory["total"] = 2 * params + opt + acts
    return memory
"""

SPELLINGS_OF_LISTED_MISTAKES = [
    pytest.param("ch04.adam_step", "adam_step", ADAM_COUNTING_FROM_0,
                 "step counter starting at 0, m̂ = m / (1 − β₁ᵗ) on arrays", id="ch04-adam-from-0-hats"),
    pytest.param("ch04.adam_step", "adam_step", ADAM_COUNTING_FROM_0.replace(
        "g = grad + weight_decay * param", "g = grad + weight_decay * param if weight_decay else grad"),
                 "step counter starting at 0, m̂ = m / (1 − β₁ᵗ) on arrays, weight decay added only when set",
                 id="ch04-adam-from-0-hats-decay-if-set"),
    pytest.param("ch04.adam_step", "adam_step", ADAM_AS_TORCH_COUNTING_FROM_0, "step counter starting at 0",
                 id="ch04-adam-from-0-torch-form-divides-by-zero"),
    pytest.param("ch04.adam_step", "adam_step", ADAM_AS_TORCH_COUNTING_FROM_0.replace(
        "step_size = lr / (1 - b1 ** step)", "step_size = lr / (1 - np.power(b1, step))"),
                 "step counter starting at 0, m̂ = m / (1 − β₁ᵗ) on arrays, weight decay added only when set",
                 id="ch04-adam-from-0-torch-form-in-numpy"),
    pytest.param("ch05.sgd_l2_step", "sgd_l2_step", """
def sgd_l2_step(param, grad, lr, weight_decay):
    return param - lr * grad - 2 * weight_decay * param
""", "the quoted article's update, θ − lr·∇J − 2λθ", id="ch05-sgd-l2-as-quoted"),
    pytest.param("ch05.sgd_l2_step", "sgd_l2_step", """
def sgd_l2_step(param, grad, lr, weight_decay):
    return param - (lr * grad + 2 * weight_decay * param)
""", "the quoted article's update, θ − lr·∇J − 2λθ", id="ch05-sgd-l2-as-quoted-grouped"),
    pytest.param("ch05.sgd_l2_step", "sgd_l2_step", """
def sgd_l2_step(param, grad, lr, weight_decay):
    return param * (1 - 2 * weight_decay) - lr * grad
""", "the quoted article's update, θ − lr·∇J − 2λθ", id="ch05-sgd-l2-as-quoted-as-a-decay-factor"),
    pytest.param("ch04.clip_grad_norm", "clip_grad_norm", CLIP_RETURNING_THE_CLIPPED_NORM,
                 "the clipped gradients' norm returned", id="ch04-clip-norm-recomputed"),
    pytest.param("ch04.clip_grad_norm", "clip_grad_norm", CLIP_BY_A_NORM_FUNCTION,
                 "the clipped gradients' norm returned", id="ch04-clip-norm-by-a-helper"),
    pytest.param("ch04.clip_grad_norm", "clip_grad_norm", CLIP_BY_LINALG_AFTER_CLIPPING,
                 "the clipped gradients' norm returned", id="ch04-clip-norm-by-linalg"),
    pytest.param("ch04.clip_grad_norm", "clip_grad_norm", """
def clip_grad_norm(grads, max_norm):
    total = float(np.sqrt(sum(np.sum(g * g) for g in grads)))
    return [g * min(max_norm / (total + 1e-6), 1.0) for g in grads], min(total, max_norm)
""", "the norm returned after clipping", id="ch04-clip-norm-capped"),
    pytest.param("ch07.evaluate", "evaluate", EVALUATE_BY_BATCH.replace(
        "ACCURACY", "(scores.argmax(1) == y).float().mean().item()"),
                 "loss and accuracy both as means of the batch means", id="ch07-evaluate-float32-means"),
    pytest.param("ch07.evaluate", "evaluate", EVALUATE_BY_BATCH_IN_TENSORS,
                 "loss and accuracy both as means of the batch means (summed in a float32 tensor)",
                 id="ch07-evaluate-summed-in-tensors"),
    pytest.param("ch07.evaluate", "evaluate", EVALUATE_BY_BATCH.replace(
        "ACCURACY", "(scores.argmax(1) == y).sum().item() / len(y)"),
                 "loss and accuracy both as means of the batch means (hits / size per batch)",
                 id="ch07-evaluate-fractions"),
    pytest.param("ch07.evaluate", "evaluate", EVALUATE_BY_BATCH.replace(
        "ACCURACY", "(scores.argmax(dim=1) == y).double().mean().item()"),
                 "loss and accuracy both as means of the batch means (hits / size per batch)",
                 id="ch07-evaluate-float64-means"),
    pytest.param("ch05.Dropout", "Dropout", DROPOUT_REDRAWING_IN_BACKWARD.replace("BACKWARD", """\
        if not self.training:
            return dout
        keep = (self.rng.random(dout.shape) >= self.p).astype(dout.dtype)
        return dout * (keep / (1 - self.p) if self.p < 1 else keep)"""), "a new mask in backward",
                 id="ch05-dropout-redrawn-while-training"),
    pytest.param("ch05.Dropout", "Dropout", DROPOUT_REDRAWING_IN_BACKWARD.replace("BACKWARD", """\
        if self.training:
            keep = (self.rng.random(dout.shape) >= self.p).astype(dout.dtype)
            self.mask = keep / (1 - self.p) if self.p < 1 else keep
        return dout * self.mask"""), "a new mask in backward", id="ch05-dropout-mask-redrawn-into-self"),
    pytest.param("ch09.dp_sgd_gradient", "dp_sgd_gradient", DP_SGD_CLIPPING_THE_MEAN_BY_VMAP.replace(
        "NOISE", "noise_multiplier * max_norm * z / len(X)"), "the mean gradient clipped, not each example's",
                 id="ch09-dp-sgd-mean-clipped-by-vmap"),
    pytest.param("ch09.dp_sgd_gradient", "dp_sgd_gradient", DP_SGD_CLIPPING_THE_MEAN_BY_AUTOGRAD,
                 "the mean gradient clipped, not each example's", id="ch09-dp-sgd-mean-clipped-by-autograd"),
    pytest.param("ch09.quantize_int8", "quantize_int8", QUANTIZE_BY_A_SCALE.replace("LEVELS", "128").replace(
        "LOW", "-127"), "scale max|x| / 128", id="ch09-quantize-over-128"),
    pytest.param("ch09.quantize_int8", "quantize_int8", QUANTIZE_BY_A_SCALE.replace("LEVELS", "2 ** 7").replace(
        "LOW", "-128"), "the range −128 … 127 with scale max|x| / 128", id="ch09-quantize-over-128-down-to-minus-128"),
    pytest.param("ch09.quantize_int8", "quantize_int8", QUANTIZE_BY_A_SCALE.replace("LEVELS", "255").replace(
        "LOW", "-127"), "scale max|x| / 255", id="ch09-quantize-over-255"),
    pytest.param("ch09.quantize_int8", "quantize_int8", QUANTIZE_BY_A_SCALE.replace("LEVELS", "255.0").replace(
        "LOW", "-128"), "scale max|x| / 255, clamped to −128 … 127", id="ch09-quantize-over-255-down-to-minus-128"),
    pytest.param("ch09.training_memory", "training_memory", TRAINING_MEMORY_TALLIED.replace(
        "STEP_COUNTS", "0").replace("LABELS", "8 * batch_size"), "Adam's step counts left out",
                 id="ch09-memory-without-step-counts"),
    pytest.param("ch09.training_memory", "training_memory", TRAINING_MEMORY_TALLIED.replace(
        "STEP_COUNTS", "4 * 2 * (len(sizes) - 1)").replace("LABELS", "0"), "the labels left out",
                 id="ch09-memory-without-labels"),
]


@pytest.mark.parametrize("exercise_id, name, source, mistake", SPELLINGS_OF_LISTED_MISTAKES)
def test_each_spelling_of_a_listed_mistake_gets_its_hint(exercise_id, name, source, mistake):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the NaN of a step counted from 0, raised in the check
        passed, output = run(exercise_id, spelt(source, name))
    assert not passed
    assert gives_the_hint(output, exercise_id, mistake), output


RIGHT_ANSWERS_WRITTEN_OTHERWISE = [
    pytest.param("ch04.adam_step", "adam_step", ADAM_COUNTING_FROM_0.replace(
        't = state.get("step", 0)', 't = state.get("step", 0) + 1').replace(
        '"step": t + 1', '"step": t').replace(
        "g = grad + weight_decay * param", "g = grad + weight_decay * param if weight_decay else grad"),
                 id="ch04-adam-counting-from-1-decay-if-set"),
    pytest.param("ch05.sgd_l2_step", "sgd_l2_step", """
def sgd_l2_step(param, grad, lr, weight_decay):
    return param * (1 - lr * weight_decay) - lr * grad
""", id="ch05-sgd-l2-as-a-decay-factor"),
    pytest.param("ch04.clip_grad_norm", "clip_grad_norm", """
def clip_grad_norm(grads, max_norm):
    total = float(np.sqrt(sum(np.linalg.norm(g) ** 2 for g in grads)))
    return [g * min(1.0, max_norm / (total + 1e-6)) for g in grads], total
""", id="ch04-clip-by-linalg"),
    pytest.param("ch07.evaluate", "evaluate", """
def evaluate(model, loader):
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    total, hits, count = 0.0, 0, 0
    with torch.inference_mode():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            scores = model(x)
            total += F.cross_entropy(scores, y).item() * len(y)
            hits += (scores.argmax(1) == y).sum().item()
            count += len(y)
    model.train(was_training)
    return total / count, hits / count
""", id="ch07-evaluate-by-weighted-batch-means"),
    pytest.param("ch05.Dropout", "Dropout", DROPOUT_REDRAWING_IN_BACKWARD.replace("BACKWARD", """\
        return np.where(self.mask != 0, dout * self.mask, 0).astype(dout.dtype)"""), id="ch05-dropout-mask-kept"),
    pytest.param("ch09.dp_sgd_gradient", "dp_sgd_gradient", """
def dp_sgd_gradient(loss_fn, params, X, y, max_norm, noise_multiplier, generator):
    total = {name: torch.zeros_like(p) for name, p in params.items()}
    for i in range(len(X)):
        leaves = {name: p.detach().clone().requires_grad_(True) for name, p in params.items()}
        grads = torch.autograd.grad(loss_fn(leaves, X[i], y[i]), list(leaves.values()))
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
        factor = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        for name, g in zip(leaves, grads):
            total[name] = total[name] + g * factor
    out = {}
    for name, p in params.items():
        z = torch.randn(p.shape, generator=generator, dtype=p.dtype, device=generator.device).to(p.device)
        out[name] = (total[name] + noise_multiplier * max_norm * z) / len(X)
    return out
""", id="ch09-dp-sgd-by-a-loop"),
    pytest.param("ch09.quantize_int8", "quantize_int8", QUANTIZE_BY_A_SCALE.replace("LEVELS", "127.0").replace(
        "LOW", "-127"), id="ch09-quantize-over-127"),
    pytest.param("ch09.training_memory", "training_memory", TRAINING_MEMORY_TALLIED.replace(
        "STEP_COUNTS", "4 * 2 * (len(sizes) - 1)").replace("LABELS", "8 * batch_size"), id="ch09-memory-tallied"),
]


@pytest.mark.parametrize("exercise_id, name, source", RIGHT_ANSWERS_WRITTEN_OTHERWISE)
def test_a_right_answer_written_otherwise_still_passes(exercise_id, name, source):
    passed, output = run(exercise_id, spelt(source, name))
    assert passed, output


@pytest.mark.parametrize("exercise_id, name, source", [
    pytest.param("ch09.dp_sgd_gradient", "dp_sgd_gradient", DP_SGD_CLIPPING_THE_MEAN_BY_VMAP.replace(
        "NOISE", "noise_multiplier * max_norm * z"), id="ch09-dp-sgd-mean-clipped-and-noise-not-divided"),
    pytest.param("ch09.quantize_int8", "quantize_int8", QUANTIZE_BY_A_SCALE.replace("LEVELS", "255").replace(
        "LOW", "-127").replace("torch.round(x / s)", "(x / s)"), id="ch09-quantize-over-255-and-truncated"),
])
def test_a_listed_mistake_made_with_another_gets_no_hint(exercise_id, name, source):
    passed, output = run(exercise_id, spelt(source, name))
    assert not passed and "known mistake" not in output


@pytest.mark.parametrize("exercise_id, name, source, mistake", SPELLINGS_OF_LISTED_MISTAKES)
def test_each_spelling_gets_its_hint_from_a_learners_bundle_too(exercise_id, name, source, mistake):
    """A graded class's bundle keeps each mistake's outputs under its name: each spelling has a name of its own."""
    import json

    from autograder.learner import stored
    from autograder.learner.check import report
    from autograder.learner.judge import run_cases

    exercise = stored.from_json(json.loads(json.dumps(stored.to_json(registry.get(exercise_id)))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        output = report(exercise, run_cases(exercise, spelt(source, name)))
    assert gives_the_hint(output, exercise_id, mistake), output
