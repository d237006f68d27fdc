"""Chapter 04's concept questions: the size of Adam's first step, and what Adam's ε is for."""
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
             "b": "the source article says so, but a term in the denominator cannot pull weights anywhere: with "
                  "zero gradients Adam leaves every weight exactly where it is.",
             "c": "for large gradients √v̂ is far above ε, which then changes nothing; ε matters only where √v̂ is "
                  "near 0."},
    ),
)
