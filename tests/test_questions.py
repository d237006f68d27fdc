"""Concept questions: every answer key agrees with a computation, and every choice is answered."""
import contextlib
import io

import numpy as np
import pytest
import torch
from sklearn.metrics import precision_score, recall_score

from autograder.instructor import notebooks
from autograder.learner.questions import Question, all_questions, answer, feedback, get
from solutions import ch02_gradient_descent as ch02
from solutions import ch03_backpropagation as ch03
from solutions.common import make_deterministic

QUESTIONS = all_questions()


def choice_saying(question, text):
    """The letter of the one choice whose text contains `text`."""
    letters = [letter for letter, choice in question.choices.items() if text in choice]
    assert len(letters) == 1, f"{question.id}: {text!r} is in {len(letters)} choices"
    return letters[0]


def test_every_chapter_has_questions():
    assert {question.chapter for question in QUESTIONS} >= set(notebooks.chapter_modules())


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda question: question.id)
def test_every_choice_gets_its_own_explanation_and_only_the_right_one_passes(question):
    for letter in question.choices:
        right, lines = feedback(question, letter)
        assert right == (letter == question.right)
        shown = " ".join(lines)
        assert ("✓ right" in shown) == right and " ".join(question.why[letter].split()) in " ".join(shown.split())
    assert len(set(question.why.values())) == len(question.why)


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda question: question.id)
def test_no_choice_yet_shows_the_question_and_a_wrong_letter_lists_the_choices(question):
    right, lines = feedback(question, "")
    assert not right and "run the cell again" in lines[-1] and all(f"{c})" in " ".join(lines) for c in question.choices)
    right, lines = feedback(question, "z")
    assert not right and "not one of the choices" in lines[-1]
    assert feedback(question, f" {question.right.upper()}) ")[0]  # "A)", "a", " a " all mean a


def test_answer_prints_and_returns_nothing_for_the_notebook_to_show():
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        assert answer("ch02.bias_gradient", "b") is None
    assert "✗ not quite, b:" in output.getvalue()


def test_an_unknown_question_names_the_chapters_questions():
    with pytest.raises(KeyError, match="ch02.bias_gradient"):
        get("ch02.bias_gradients")


def test_a_question_without_an_explanation_per_choice_is_refused():
    with pytest.raises(ValueError, match="explanation"):
        Question("ch09.q", "?", {"a": "x", "b": "y"}, "a", {"a": "because"})


# -- each answer key, decided by computation ------------------------------------------------------

def test_same_seed_gives_the_same_draws():
    first, second = make_deterministic(0).normal(size=3), make_deterministic(0).normal(size=3)
    assert np.array_equal(first, second) and get("ch00.same_seed").right == "a"


def test_precision_and_recall_of_the_spam_filter():
    truth = np.array([1] * 20 + [0] * 80)
    flagged = np.zeros(100, dtype=int)
    flagged[:8] = 1  # 8 spam flagged
    flagged[20:22] = 1  # and 2 legitimate e-mails
    precision, recall = precision_score(truth, flagged), recall_score(truth, flagged)
    question = get("ch01.precision_and_recall")
    assert question.right == choice_saying(question, f"precision {precision:g}, recall {recall:g}")


def diverges(lr, eigenvalues=(4.0, 0.1), steps=400):
    """Full-batch gradient descent on an MSE whose Hessian (2/n) XᵀX has these eigenvalues."""
    n = 2
    X = np.diag(np.sqrt(np.array(eigenvalues) * n / 2))
    y, w = np.zeros(n), np.ones(n)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            w = w - lr * ch02.mse_gradient(X, y, w, 0.0)[0]
    return not np.all(np.abs(w) < 1)


def test_the_stability_limit_is_two_over_the_largest_eigenvalue():
    low, high = 0.01, 30.0
    for _ in range(40):  # bisection on the learning rate where descent starts to diverge
        middle = (low + high) / 2
        low, high = (low, middle) if diverges(middle) else (middle, high)
    question = get("ch02.which_lr_diverges")
    assert question.right == choice_saying(question, f"= {round(high, 3):g}")
    assert not diverges(0.3)  # above 1/λ_max it zigzags but converges


def test_the_bias_gradient_is_the_mean_residual_times_two():
    rng = np.random.default_rng(0)
    X, y, w, b = rng.normal(size=(7, 3)), rng.normal(size=7), rng.normal(size=3), 0.3
    h = 1e-6
    numeric = (ch02.mse_loss(X, y, w, b + h) - ch02.mse_loss(X, y, w, b - h)) / (2 * h)
    assert numeric == pytest.approx(2 / 7 * np.sum(X @ w + b - y), rel=1e-6)
    question = get("ch02.bias_gradient")
    assert question.choices[question.right] == "(2/n) Σ (ŷᵢ − yᵢ)"


def test_relu_passes_no_gradient_at_zero_in_torch_and_in_the_course():
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    torch.relu(x).sum().backward()
    course = ch03.relu_backward(np.ones(3), np.zeros(3))
    question = get("ch03.relu_at_zero")
    said = float(question.choices[question.right].split(",")[0])
    assert said == x.grad[0].item() == course[0] == 0


def test_the_max_shift_leaves_softmax_unchanged_and_avoids_overflow():
    z = np.array([1000.0, 999.0, -5.0])
    shifted = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert np.allclose(shifted, torch.softmax(torch.tensor(z), 0).numpy())
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isnan(np.exp(z) / np.exp(z).sum()).any()
    assert get("ch03.softmax_minus_max").right == "a"


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda question: question.id)
def test_every_question_is_asked_once_in_its_chapter_with_no_answer_filled_in(question):
    cells = notebooks.read(notebooks.chapter_notebook(question.chapter)).cells
    asked = [cell.source for cell in cells if f'answer("{question.id}", ' in cell.source]
    assert len(asked) == 1 and f'answer("{question.id}", "")' in asked[0]


def test_adams_first_step_is_lr_whatever_the_gradients_size():
    from solutions import ch04_optimizers as ch04

    param, grad = np.zeros(2), np.array([1e-3, 1e3])
    new, _ = ch04.adam_step(param, grad, {}, lr=0.001)
    question = get("ch04.adam_first_step")
    assert np.allclose(np.abs(new), 0.001, rtol=1e-4) and question.right == choice_saying(question, "±lr")


def test_adams_eps_does_not_move_weights_when_the_gradient_is_zero():
    from solutions import ch04_optimizers as ch04

    param, state = np.array([3.0, -2.0]), {}
    for _ in range(10):
        param, state = ch04.adam_step(param, np.zeros(2), state, lr=0.1, eps=1e-2)
    question = get("ch04.adam_eps")
    assert np.array_equal(param, [3.0, -2.0]) and question.right == choice_saying(question, "does not regularize")
