"""Chapter 03's concept questions: the ReLU's kink and the stable softmax."""
from autograder.learner.questions import Question, register

register(
    Question(
        id="ch03.relu_at_zero",
        prompt="ReLU has no derivative at x = 0. Which gradient does the backward pass send back there, "
               "in torch and in this course?",
        choices={"a": "0", "b": "1", "c": "0.5, the mean of the two one-sided slopes"},
        right="a",
        why={"a": "torch, and the course after it, treats x = 0 as inactive: relu'(0) = 0, a valid "
                  "subgradient, and a convention a gradient check must share.",
             "b": "any value in [0, 1] is a subgradient, but torch uses 0, and a from-scratch layer must "
                  "agree with it to pass the parity test.",
             "c": "0.5 is a subgradient too, but no framework uses it; torch's is 0."},
    ),
    Question(
        id="ch03.softmax_minus_max",
        prompt="How does softmax(z − max(z)) compare with softmax(z)?",
        choices={"a": "the same probabilities, and no overflow for large z",
                 "b": "different probabilities: shifting the scores changes them",
                 "c": "the same only when max(z) = 0"},
        right="a",
        why={"a": "exp(zᵢ − m) / Σ exp(zⱼ − m) = exp(zᵢ) / Σ exp(zⱼ) for any m: the factor exp(−m) "
                  "cancels, and with m = max(z) no exponent is positive, so none overflows.",
             "b": "softmax is unchanged by adding one constant to every score: the constant's factor "
                  "exp(−m) cancels between numerator and denominator.",
             "c": "the shift cancels for every m, not only m = 0."},
    ),
)
