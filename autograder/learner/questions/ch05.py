"""Chapter 05's concept questions: what L2 under Adam does to a weight with large gradients (why AdamW exists), and
what a penalty does to a model's complexity."""
from autograder.learner.questions import Question, register

register(
    Question(
        id="ch05.decay_under_adam",
        prompt="Two weights of the same size, one with large steady gradients, one with tiny ones. Adam with "
               "weight_decay = λ (L2 added to the gradient) or AdamW with the same λ and lr: which shrinks the "
               "weight with the large gradients more, per step, by its decay?",
        choices={"a": "AdamW: its decay lr · λ · θ is the same for both weights, while Adam divides λ · θ by √v̂, "
                      "which is large for that weight",
                 "b": "Adam: the L2 term is added to a large gradient, so it is amplified",
                 "c": "neither: both add λ · θ to the gradient, so they decay every weight alike"},
        right="a",
        why={"a": "Adam's step is lr · m̂ / (√v̂ + ε): the L2 term λθ inside m̂ is divided by the root of the "
                  "weight's own squared-gradient average, so a weight with large gradients is barely decayed and one "
                  "with tiny gradients strongly. AdamW decays θ by lr · λ · θ outside that division, the same "
                  "relative amount for every weight, as L2 does under plain SGD.",
             "b": "the sum g + λθ is divided by √v̂ ≈ |g|: the larger the gradient, the smaller the share of the "
                  "step that the decay gets.",
             "c": "only Adam adds λθ to the gradient; AdamW shrinks the weights directly, θ ← θ (1 − lr λ), and "
                  "then takes an Adam step without decay."},
    ),
    Question(
        id="ch05.penalty_and_complexity",
        prompt="An L2 penalty (λ/2)·‖θ‖² is added to the loss of a network that overfits. What does it do to the "
               "functions the network ends up computing?",
        choices={"a": "it limits their complexity: large weights now cost loss, so training settles on smaller "
                      "weights and smoother functions, fitting the noise in the training set less",
                 "b": "it increases their complexity, so the network can represent the validation data too",
                 "c": "nothing to the function: it only makes training converge faster"},
        right="a",
        why={"a": "a penalty restricts the weights to a smaller effective region (for L2 a ball whose radius "
                  "shrinks as λ grows): the network can express fewer, smoother functions, so the training loss "
                  "rises a little and the validation loss falls.",
             "b": "the article this course started from says so, but it is the other way round: regularization "
                  "removes freedom from the model; a model that needs more capacity needs less of it.",
             "c": "the penalty changes the minimum itself: with λ > 0 the best weights are smaller than without "
                  "it, so the function changes; the speed of training is a side effect at most."},
    ),
)
