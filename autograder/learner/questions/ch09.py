"""Chapter 09's concept questions: what the T² in the distillation loss is for, and what FSDP shards that data
parallelism replicates."""
from autograder.learner.questions import Question, register

register(
    Question(
        id="ch09.distillation_t_squared",
        prompt="The distillation loss multiplies KL(p_teacher ‖ p_student), both softened by a temperature T, by T². "
               "Why?",
        choices={"a": "softening by T shrinks the soft term's gradients by about 1/T²; the T² restores their size, "
                      "so that alpha keeps the same meaning whatever T is",
                 "b": "it makes the soft targets sharper, so that the student copies the teacher's top class",
                 "c": "it converts the KL from nats to bits"},
        right="a",
        why={"a": "the gradient of the softened KL with respect to a logit is (q − p) / T, and for large T, q − p is "
                  "itself about (z_s − z_t) / (N T): together 1/T². Without the T², raising T would quietly hand "
                  "the whole loss to the hard labels.",
             "b": "a larger T makes the targets softer, not sharper, and T² multiplies the loss after the softmax, "
                  "so it changes no probability.",
             "c": "nats to bits is a factor 1 / ln 2, a constant; T² grows with the temperature."},
    ),
    Question(
        id="ch09.fsdp_shards",
        prompt="Data parallelism (DDP) on N GPUs keeps a full copy of the model on each. What does FSDP (ZeRO stage "
               "3) change?",
        choices={"a": "each GPU keeps 1/N of the parameters, gradients and optimizer state, and gathers a layer's "
                      "full parameters only while it computes that layer",
                 "b": "each GPU trains a different layer of the model, one after the other (pipeline parallelism)",
                 "c": "each GPU gets 1/N of each example's features instead of 1/N of the batch"},
        right="a",
        why={"a": "the batch is still split as in DDP, so the result is the same training; what changes is that no "
                  "GPU holds the whole model's state at once, at the price of an all-gather before each layer and "
                  "a reduce-scatter of its gradients after.",
             "b": "that is pipeline (model) parallelism; FSDP still runs every layer on every GPU, on its share of "
                  "the batch.",
             "c": "splitting inside a layer's matrices is tensor parallelism; FSDP splits the batch like DDP and "
                  "shards the state."},
    ),
)
