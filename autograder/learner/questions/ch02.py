"""Chapter 02's concept questions: the stability limit and the bias's gradient."""
from autograder.learner.questions import Question, register

register(
    Question(
        id="ch02.which_lr_diverges",
        prompt="The mean squared error of a linear model has a Hessian whose largest eigenvalue is 4 and "
               "smallest 0.1. From which fixed learning rate on does full-batch gradient descent diverge?",
        choices={"a": "above 2 / 4 = 0.5",
                 "b": "above 2 / 0.1 = 20",
                 "c": "above 1 / 4 = 0.25"},
        right="a",
        why={"a": "along the steepest direction each step multiplies the error by (1 − lr·λ_max); its size "
                  "exceeds 1, and the error grows, once lr > 2/λ_max.",
             "b": "the flattest direction is the slowest to converge, but the steepest one is the first to "
                  "blow up: lr must stay below 2/λ_max.",
             "c": "above 1/λ_max the factor (1 − lr·λ_max) turns negative and the iterates zigzag, but they "
                  "still shrink until lr reaches 2/λ_max."},
    ),
    Question(
        id="ch02.bias_gradient",
        prompt="For ŷ = Xw + b and J = (1/n) Σ (ŷᵢ − yᵢ)², what is ∂J/∂b?",
        choices={"a": "(2/n) Σ (ŷᵢ − yᵢ)",
                 "b": "(2/n) Σ (ŷᵢ − yᵢ) xᵢ",
                 "c": "(2/n) Σ (yᵢ − ŷᵢ)"},
        right="a",
        why={"a": "∂ŷᵢ/∂b = 1, so the bias's gradient is the mean residual times 2: one number.",
             "b": "that is the weights' gradient; b multiplies no feature, so no x appears in its gradient.",
             "c": "the sign is flipped: with (y − ŷ) a descent step climbs the loss."},
    ),
)
