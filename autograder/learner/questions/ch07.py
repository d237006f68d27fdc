"""Chapter 07's concept questions: what eval() and no_grad() each do during evaluation, and why a resumed run can
drift from the run that never stopped."""
from autograder.learner.questions import Question, register

register(
    Question(
        id="ch07.eval_and_no_grad",
        prompt="During evaluation, which of model.eval() and torch.no_grad() changes the loss you compute?",
        choices={"a": "model.eval(): it turns dropout off and makes batch norm use its running statistics; no_grad() "
                      "only stops autograd from recording, which saves memory and time",
                 "b": "torch.no_grad(): without it the gradients flow into the loss",
                 "c": "both, in the same way: each is enough on its own"},
        right="a",
        why={"a": "eval() changes what some layers compute (dropout, batch norm); no_grad() changes nothing in the "
                  "numbers, only whether a graph is kept for a backward pass that evaluation never takes. Use both.",
             "b": "autograd records operations for a later backward(); recording does not change any value computed "
                  "in the forward pass, so the loss is the same with or without it.",
             "c": "they do different jobs: no_grad() leaves dropout on, so the loss changes from run to run; eval() "
                  "leaves autograd on, so memory grows with every batch for nothing."},
    ),
    Question(
        id="ch07.resume_diverges",
        prompt="A run saved its model's and its optimizer's state_dicts after epoch 5, and was resumed from them. "
               "With dropout, shuffled batches and augmentation, its weights after epoch 10 differ from those of "
               "the run that never stopped. What is missing?",
        choices={"a": "the generators' states: torch's global one (dropout), the loader's (shuffling), numpy's "
                      "(augmentation); and the schedule's state if the learning rate changes",
                 "b": "nothing: training is random, so two runs never end with the same weights",
                 "c": "the gradients of the last batch, which the optimizer needs for its next step"},
        right="a",
        why={"a": "the resumed run draws other dropout masks, other batches and other shifts from freshly seeded "
                  "generators, and a schedule without its state restarts; with every state saved, the resumed run "
                  "repeats the original bit for bit on the same machine.",
             "b": "random numbers in a program come from seeded generators: saving and restoring their states "
                  "makes the continuation exactly the same, as this chapter's test shows in a new process.",
             "c": "each step computes the gradients of its own batch afresh (zero_grad, backward); what carries over "
                  "between steps is the optimizer's state (moments, step count), which was saved."},
    ),
)
