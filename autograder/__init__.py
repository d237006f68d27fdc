"""The course's autograder, in two halves that the tree keeps apart:

    autograder/learner/      what a learner's copy holds, shipped whole in a graded class's bundle:
                             `check` and its report, the judge, the comparison and display of values,
                             the drivers that call an implementation, the wire format and protocol of
                             the grading sandbox, the code that runs inside it, the concept questions
    autograder/instructor/   never shipped to a graded class: the exercises (references' cases, hidden
                             cases, known mistakes), the grader and its sandbox, class reports, the
                             bundle and release, and the `nncourse` tools that build the course

Nothing in learner/ imports from instructor/ (tests/test_bundle.py); the one lookup the other way,
the registry taking the full exercises where the instructor's half is installed, is by name.

In a notebook:

    from autograder import answer, check
    check("ch02.mse_loss", mse_loss)         # run an exercise's visible cases, say what is wrong
    answer("ch02.which_lr_diverges", "b")    # a concept question's feedback
"""
from autograder.learner.check import check
from autograder.learner.questions import answer

__all__ = ["answer", "check"]
