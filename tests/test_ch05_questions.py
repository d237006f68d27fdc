"""Chapter 05's concept questions whose answer key a computation can check: inverted dropout hands the next layer, on
average over its masks, exactly its input (so evaluation passes x on unchanged), and batch normalization of a batch of
two leaves ±1 of each unit, whatever the two values are."""
import itertools

import numpy as np

from autograder.learner.questions import get
from solutions import ch05_regularization as ch05


def choice_saying(question, text):
    letters = [letter for letter, choice in question.choices.items() if text in choice]
    assert len(letters) == 1, f"{question.id}: {text!r} is in {len(letters)} choices"
    return letters[0]


def test_inverted_dropouts_masks_average_to_one_so_evaluation_passes_x_unchanged():
    """Every mask of 4 entries at p = 0.2, weighted by its probability: the training outputs average to x, which is
    what the evaluation pass returns; x·0.8 is not."""
    x, p = np.array([[1.5, -2.0, 0.25, 4.0]]), 0.2
    average = sum(np.prod(np.where(np.array(kept) == 1, 1 - p, p)) * x * np.array(kept) / (1 - p)
                  for kept in itertools.product([0.0, 1.0], repeat=x.size))
    np.testing.assert_allclose(average, x, rtol=1e-12)
    layer = ch05.Dropout(p, np.random.default_rng(0)).eval()
    np.testing.assert_array_equal(layer.forward(x), x)
    assert not np.allclose(average, 0.8 * x)
    question = get("ch05.dropout_at_test")
    assert question.right == choice_saying(question, "pass x on unchanged")


def test_a_batch_of_two_leaves_only_the_sign_of_the_difference():
    question = get("ch05.batchnorm_batch_of_two")
    assert question.right == choice_saying(question, "+1 for the larger and −1 for the smaller")
    for a, b in ((0.3, 7.0), (-50.0, 50.0), (1e3, 999.0)):
        out, _, _ = ch05.batchnorm_forward(np.array([[a], [b]]), np.ones(1), np.zeros(1), np.zeros(1), np.ones(1))
        np.testing.assert_allclose(out[:, 0], [np.sign(a - b), np.sign(b - a)], atol=1e-4)
