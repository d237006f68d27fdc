"""Chapter 05's concept questions: what L2 under Adam does to a weight with large gradients (why AdamW exists), what
a penalty does to a model's complexity, what inverted dropout does at test time, and what batch normalization leaves
of a batch of two."""
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
    Question(
        id="ch05.dropout_at_test",
        prompt="A layer was trained with inverted dropout, p = 0.2: in training, every kept input was divided by 0.8. "
               "At test time, what should the layer do to its input x?",
        choices={"a": "pass x on unchanged: the division by 0.8 already made the next layer see x on average in "
                      "training",
                 "b": "multiply x by 0.8, the share of the inputs that were kept in training",
                 "c": "drop 20 % of the entries, as in training, so that the network sees what it was trained on"},
        right="a",
        why={"a": "the masks were (u ≥ p) / (1 − p), whose average is 1, so the next layer saw x on average; "
                  "evaluation hands it exactly that. Multiplying by 1 − p at test time is the correction of the "
                  "original dropout, whose masks of 0s and 1s were not rescaled in training.",
             "b": "that corrects dropout *without* rescaling, whose masks averaged 1 − p. These masks average 1 "
                  "already: multiplying by 0.8 would hand the next layer 80 % of what it saw on average.",
             "c": "a random mask makes every prediction random; the network with each mask replaced by its average, "
                  "1, stands in for the average over the masks in one pass. (Monte Carlo dropout keeps masks on on "
                  "purpose, averaging many passes, to measure how unsure the network is.)"},
    ),
    Question(
        id="ch05.batchnorm_batch_of_two",
        prompt="Batch normalization in training mode, on a batch of 2 images: one unit's values are a and b, with "
               "|a − b| much larger than √ε. What is left of them after the normalization (γ = 1, β = 0)?",
        choices={"a": "+1 for the larger and −1 for the smaller, whatever a and b are: only which one is larger",
                 "b": "a − b and b − a, rescaled by the unit's running variance: the difference, in full",
                 "c": "0 for both: two values are too few to have a variance"},
        right="a",
        why={"a": "μ = (a + b)/2 and σ² = (a − b)²/4, so x̂ = ±((a − b)/2) / √((a − b)²/4 + ε) ≈ ±1: the size of the "
                  "difference is divided away and its sign is all that is left. That is why batch normalization fails "
                  "with tiny batches, and layer normalization, which never looks across the batch, does not.",
             "b": "in training the batch's own statistics normalize, not the running ones: the difference is divided "
                  "by its own size, |a − b|/2, and what is left is ±1 for any a ≠ b.",
             "c": "the biased variance of two different numbers is (a − b)²/4, not 0; x̂ is 0 only where a = b."},
    ),
)
