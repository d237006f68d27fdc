"""nbgrader configuration for a course directory made from this repository.

The chapter notebooks in course/chNN/ are nbgrader's source assignments (one assignment per
chapter, named chNN). Run nbgrader from the repository root, or copy this file next to a `course/`
folder in a separate course directory (recommended for a real class, so that learners' code never
runs inside the repository).
"""
c = get_config()  # noqa: F821 (nbgrader provides get_config)

c.CourseDirectory.course_id = "nncourse"
c.CourseDirectory.source_directory = "course"
# A grading cell may train a small model: allow it more than nbgrader's default 30 s.
c.Execute.timeout = 120
# Learners' outputs stay readable in feedback but cannot flood the gradebook.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 50
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
