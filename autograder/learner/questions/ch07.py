"""Chapter 07's concept questions: what eval() and no_grad() each do during evaluation, why a resumed run can
drift from the run that never stopped, and what early stopping adds to a checkpoint."""
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
    Question(
        id="ch07.early_stopping_state",
        prompt="A run with early stopping (patience 4) is resumed after epoch 10 from a checkpoint that holds the "
               "model's, the optimizer's and the scheduler's state_dicts, the epoch and every generator's state. Its "
               "weights after each epoch are those of the run that never stopped, yet that run stopped after epoch 12 "
               "and the resumed one trains on, and keeps other weights as its best. What is missing?",
        choices={"a": "early stopping's state: the best validation loss with its epoch and a copy of its weights, and "
                      "how many epochs in a row have not improved on it",
                 "b": "the validation loader's generator, so that the validation batches come in the same order",
                 "c": "nothing: two runs with the same weights after every epoch can still stop at different epochs, "
                      "by floating-point chance"},
        right="a",
        why={"a": "started from nothing, early stopping takes the first epoch after the resume as its best and counts "
                  "its patience from there: it stops later, and its best weights are the best since the resume only. "
                  "Its state is a few numbers and one copy of the weights: save it with the rest, as save_run does.",
             "b": "the validation loss is the mean over every validation example, whatever their order, and evaluation "
                  "draws no random numbers (eval mode: no dropout). Both runs measure the same losses; what differs is "
                  "what the loop does with them.",
             "c": "with the same weights both runs measure the same validation losses, bit for bit; the decisions "
                  "differ because the loop's own variables (best loss, epochs without improvement) began again at "
                  "their starting values."},
    ),
)

