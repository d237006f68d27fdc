"""Chapter 00's concept questions: repeatable runs and what a passing check means."""
from autograder.learner.questions import Question, register

register(
    Question(
        id="ch00.same_seed",
        prompt="Two fresh Python sessions each run `rng = make_deterministic(0)` and then "
               "`rng.normal(size=3)`. What do they print?",
        choices={"a": "the same three numbers",
                 "b": "different numbers: a seed only fixes the first draw",
                 "c": "different numbers, since each session starts its clock at another time"},
        right="a",
        why={"a": "a generator seeded with the same number produces the same sequence of draws, "
                  "in every session and on every machine with the same numpy.",
             "b": "a seed fixes the whole sequence, not only its first draw: every later draw repeats too.",
             "c": "a seeded generator never reads the clock; only an unseeded one takes its start from the "
                  "operating system."},
    ),
    Question(
        id="ch00.what_a_pass_means",
        prompt="`check(\"ch00.sigmoid\", sigmoid)` prints all cases passed. What does that tell you?",
        choices={"a": "sigmoid is right for every possible input",
                 "b": "sigmoid agrees with the reference on the visible cases; hidden cases of the same "
                      "kind decide the grade",
                 "c": "sigmoid runs without raising an exception, whatever it returns"},
        right="b",
        why={"a": "no finite set of cases proves a function right everywhere; the cases are chosen to catch "
                  "the mistakes learners make, edge cases included.",
             "b": "the visible cases are a sample; grading adds hidden cases of the same kind, so an answer "
                  "fitted to the visible ones fails there.",
             "c": "check compares what your function returns with the reference's output, value by value; a "
                  "function that runs but returns the wrong numbers fails."},
    ),
)
