"""Chapter 08's concept questions: what an all-reduce sum without the division does to training, and what
forgetting set_epoch does to a distributed sampler."""
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
)
