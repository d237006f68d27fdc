"""Chapter 08's concept questions: what an all-reduce sum without the division does to training, what forgetting
set_epoch does to a distributed sampler, what batch normalization does to W ranks against one process, and what
DistributedSampler's padding does to an evaluation."""
from autograder.learner.questions import Question, register

register(
    Question(
        id="ch08.sum_without_dividing",
        prompt="4 ranks train with SGD, lr = 0.1, and average their gradients with all_reduce (a sum) but forget to "
               "divide by the world size. Which single run without that bug takes the same steps?",
        choices={"a": "one process on all 4 ranks' rows at lr = 0.4",
                 "b": "one process on all 4 ranks' rows at lr = 0.1",
                 "c": "one process on one rank's rows at lr = 0.1"},
        right="a",
        why={"a": "the sum is 4 times the average gradient, so every step is that of lr = 0.4 on the whole batch: "
                  "with plain SGD it is the same as a 4 times larger learning rate (with Adam, which divides by the "
                  "gradient's size, it would hardly show).",
             "b": "that is what dividing by the world size gives; the sum is 4 times that gradient.",
             "c": "every rank's gradient enters the sum, so the step uses all 4 ranks' rows, 4 times too long."},
    ),
    Question(
        id="ch08.set_epoch",
        prompt="A training loop with a DistributedSampler(shuffle=True) never calls sampler.set_epoch(epoch). What "
               "happens?",
        choices={"a": "every epoch, each rank reads the same rows in the same order as in the first epoch",
                 "b": "the ranks read overlapping rows, because their shuffles differ",
                 "c": "the data is not shuffled at all"},
        right="a",
        why={"a": "the order is drawn from a generator seeded with seed + epoch, and epoch stays 0: the shards are "
                  "disjoint and shuffled once, but the same every epoch.",
             "b": "all ranks seed the same generator the same way, so they always agree on the order and their "
                  "shards never overlap; without set_epoch they just never change.",
             "c": "the first epoch's order is shuffled (seed + 0); it is only never reshuffled."},
    ),
    Question(
        id="ch08.batch_norm_ranks",
        prompt="A network with BatchNorm1d layers trains on 4 ranks of 8 rows each, DDP averaging the gradients. "
               "Against one process that trains on the same 32 rows at each step, what holds?",
        choices={"a": "the steps are the same: averaging the gradients makes 4 ranks equal one process",
                 "b": "the steps are the same once the learning rate is multiplied by 4",
                 "c": "the steps differ: each rank normalizes with the mean and variance of its own 8 rows"},
        right="c",
        why={"a": "that holds when each row's loss depends on its own row only; with batch normalization each "
                  "rank's outputs, and so its gradients, already come from its own 8 rows' statistics.",
             "b": "the learning rate sets the size of the step; it cannot change the statistics each rank "
                  "normalizes with.",
             "c": "batch normalization makes each row's output depend on the other rows of its batch: here the "
                  "rank's 8, not the 32. Statistics summed over the ranks (torch.nn.SyncBatchNorm) restore the "
                  "equality."},
    ),
    Question(
        id="ch08.padded_evaluation",
        prompt="450 test rows are evaluated on 4 ranks, each reading its part from DistributedSampler(shuffle=False); "
               "the ranks' counts of rows are summed with all_reduce. What is the sum?",
        choices={"a": "450", "b": "452", "c": "448"},
        right="b",
        why={"a": "that is what counting each row once gives; the sampler pads 450 to 4 · 113 = 452, and counted "
                  "as read, the 2 repeated rows count twice.",
             "b": "each rank reads ⌈450 / 4⌉ = 113 rows: the sampler pads the order to 452 with its first 2 rows "
                  "again, and counted as read they count twice. Leave the padding's positions out to count 450.",
             "c": "448 = 4 · 112 is what drop_last=True reads; without it the sampler pads up, not down."},
    ),
)
