"""nbgrader configuration for a course directory made from this repository.

The chapter notebooks in course/chNN/ are nbgrader's source assignments (one assignment per
chapter, named chNN). `nncourse lab --course-dir DIR` makes a course directory from this file and
course/ and opens JupyterLab there with the Formgrader; running nbgrader from the repository root
works too, but a real class is better graded in a directory of its own, so that learners' code
never runs inside the repository.
"""
import os

c = get_config()  # noqa: F821 (nbgrader provides get_config)

c.CourseDirectory.course_id = "nncourse"
c.CourseDirectory.source_directory = "course"
# The exchange (where released assignments wait and submissions arrive) lives beside this file, so
# the Formgrader's release and collect and the learner's Assignment List work on one machine with no
# system-wide /srv/nbgrader/exchange. A class on a shared server sets a common folder here instead.
c.Exchange.root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exchange")
os.makedirs(c.Exchange.root, exist_ok=True)
# A grading cell may train a small model: allow it more than nbgrader's default 30 s.
c.Execute.timeout = 120
# Learners' outputs stay readable in feedback but cannot flood the gradebook.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 50
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
# Exercises that ask learners to write something without the library call that does it (ch07.conv2d without
# F.conv2d, ch04's optimizers without torch.optim; autograder/learner/forbidden.py) give no points to code that
# calls it. List here the exercises for which such a call is fine in your class, or ["all"]; grade again with
# --regrade after a change, and release again so that the learners' inline checks agree.
c.NNCourse.allow_library_calls = []
