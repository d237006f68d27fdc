"""Chapter 04's concept questions: the size of Adam's first step, what Adam's ε is for, the largest stable learning
rate of gradient descent on a quadratic, and the best rate per step that momentum 0.9 allows."""
from autograder.learner.questions import Question, register

register(
    Question(
        id="ch04.adam_first_step",
        prompt="Adam's first step (bias-corrected, eps small) with lr = 0.001: how far does a parameter move whose "
               "gradient is 1e-3, and one whose gradient is 1e3?",
        choices={"a": "both about 0.001: the first step is ±lr whatever the gradient's size",
                 "b": "1e-6 and 1: lr times the gradient, as in SGD",
                 "c": "both about 0.0001: lr times (1 − β₁)"},
        right="a",
        why={"a": "at t = 1, m̂ = g and v̂ = g², so the step is lr · g / (|g| + eps) ≈ ±lr: Adam divides the "
                  "gradient's size out.",
             "b": "that is plain SGD; Adam divides m̂ by √v̂, which has the gradient's size, so the size cancels.",
             "c": "that is the first step without bias correction of m (and with v corrected); the correction "
                  "1 / (1 − β₁) puts the factor back."},
    ),
    Question(
        id="ch04.adam_eps",
        prompt="What does ε do in Adam's update lr · m̂ / (√v̂ + ε)?",
        choices={"a": "it keeps the division finite where √v̂ is 0 or tiny; it does not regularize",
                 "b": "it is a regularization term that pulls the weights towards 0",
                 "c": "it is a second learning rate for parameters with large gradients"},
        right="a",
        why={"a": "ε only guards the denominator: with a zero gradient the step is 0 / ε = 0, so the weights do "
                  "not move at all. Pulling weights to 0 is weight decay's job (AdamW).",
             "b": "it is sometimes described so, but a term in the denominator cannot pull weights anywhere: with "
                  "zero gradients Adam leaves every weight exactly where it is.",
             "c": "for large gradients √v̂ is far above ε, which then changes nothing; ε matters only where √v̂ is "
                  "near 0."},
    ),
    Question(
        id="ch04.largest_lr",
        prompt="Plain gradient descent on L(x, y) = ½ (x² + 100 y²): for which learning rates does it converge from "
               "every starting point?",
        choices={"a": "lr < 0.02, that is 2 / 100: 2 over the largest curvature",
                 "b": "lr < 2, that is 2 over the smallest curvature",
                 "c": "lr < 0.01, that is 1 / 100: beyond it the steps overshoot"},
        right="a",
        why={"a": "each step multiplies y by 1 − 100 · lr, which shrinks it only while |1 − 100 · lr| < 1, so "
                  "lr < 2/100; x, with curvature 1, would allow up to 2. The steepest direction sets the limit.",
             "b": "x converges for any lr below 2, but y is multiplied by 1 − 100 · lr, below −1 once lr > 0.02: "
                  "the zigzag across the valley grows at every step.",
             "c": "from lr = 0.01 on, y's factor 1 − 100 · lr is negative, so y zigzags, but until lr = 0.02 the "
                  "factor stays above −1 and the zigzag shrinks: it overshoots and still converges."},
    ),
    Question(
        id="ch04.momentum_rate",
        prompt="Heavy-ball momentum with μ = 0.9 (torch's SGD, momentum=0.9) on a quadratic: along any direction, by "
               "what factor per step can the error shrink at best, whatever the learning rate?",
        choices={"a": "about 0.949, that is √0.9: the two eigenvalues of a step multiply to μ",
                 "b": "0.9, that is μ itself",
                 "c": "any factor: a small enough learning rate makes it as fast as one likes"},
        right="a",
        why={"a": "along a direction the step multiplies (θ, b) by a 2 x 2 matrix whose determinant is μ, so its "
                  "larger eigenvalue is at least √μ in size, and exactly √μ where the run spirals in.",
             "b": "the buffer decays by μ per step, but the error's rate is the larger eigenvalue of the step's "
                  "2 x 2 matrix, whose two eigenvalues multiply to μ: one of them is at least √0.9 ≈ 0.949 in size.",
             "c": "a small learning rate makes the flat directions slower, not faster: the eigenvalues multiply to "
                  "μ whatever lr is, so no lr gets below √μ ≈ 0.949."},
    ),
)
