"""The one error the `nncourse` tools raise for a problem the person running them can fix.

A chapter that does not exist, a course directory nbgrader rejects, a notebook whose solution
markers do not pair up, a working copy that cannot be made: each is a `CourseError` (or a kind of
one) whose message says what was wrong and what to do. The command line prints that message after
the command's name, without a traceback, and exits 2; anything else is the course's own bug and
keeps its traceback.
"""


class CourseError(Exception):
    """A problem with the course's files, the course directory or the command's arguments; the message
    says how to fix it."""
