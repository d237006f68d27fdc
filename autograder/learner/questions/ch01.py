"""Chapter 01's concept questions: leakage and the metrics."""
from autograder.learner.questions import Question, register

register(
    Question(
        id="ch01.where_to_fit_the_scaler",
        prompt="You split the data into a training and a test set. On which rows do you fit the "
               "Standardizer's mean_ and scale_?",
        choices={"a": "on all rows, before splitting, so both splits use the same statistics",
                 "b": "on the training rows only, then transform both splits with them",
                 "c": "on each split separately"},
        right="b",
        why={"a": "statistics fitted on all rows carry information about the test rows into training "
                  "(leakage), and the test score is then optimistic.",
             "b": "the test set stands for data the model has never seen, so nothing, its mean and spread "
                  "included, may be learned from it.",
             "c": "the test split would then be shifted and scaled differently from the data the model was "
                  "trained on, and with one test row it cannot even be standardized."},
    ),
    Question(
        id="ch01.precision_and_recall",
        prompt="A spam filter flags 10 e-mails; 8 of them are spam. The mailbox holds 20 spam e-mails in all. "
               "What are the filter's precision and recall for spam?",
        choices={"a": "precision 0.8, recall 0.4",
                 "b": "precision 0.4, recall 0.8",
                 "c": "precision 0.8, recall 0.5"},
        right="a",
        why={"a": "precision = true positives / flagged = 8/10; recall = true positives / all spam = 8/20.",
             "b": "precision and recall are swapped: precision divides by what was flagged (10), recall by "
                  "what should have been (20).",
             "c": "recall divides the 8 spam found by all 20 spam e-mails, not by 16."},
    ),
)
