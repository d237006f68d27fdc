"""The course's autograder: exercise checks for learners, and grading for instructors.

Learners call `check("chNN.name", my_function)` inline in a chapter notebook.
"""
from autograder.check import check

__all__ = ["check"]
