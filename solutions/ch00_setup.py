"""Chapter 00: the practice exercise that shows how checks work (not graded)."""
import numpy as np


def sigmoid(x):
    """The logistic function σ(x) = 1 / (1 + e^(−x)), element-wise, without overflow.

    x: array of any shape  ->  array of the same shape, values in [0, 1]
    """
    ### BEGIN SOLUTION
    out = np.empty_like(x, dtype=np.float64)
    positive = x >= 0
    out[positive] = 1 / (1 + np.exp(-x[positive]))
    exp_x = np.exp(x[~positive])
    out[~positive] = exp_x / (1 + exp_x)
    return out
    ### END SOLUTION
