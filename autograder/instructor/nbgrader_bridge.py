"""What the course hands to and takes from nbgrader: its commands, the release, and the gradebook.

`nncourse grade` judges submissions itself; nbgrader keeps what instructors already use it for:
the learner versions (`release`), the gradebook that `nbgrader export` and the formgrader read
(`record_in_gradebook`), and the autograded notebooks its feedback is made from (`write_autograded`).
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import warnings
from pathlib import Path

from autograder.instructor import bundle, intake, notebooks
from autograder.instructor.errors import CourseError
from autograder.instructor.results import Status, SubmissionGrade
from autograder.learner import registry


def record_in_gradebook(course_dir: Path, chapter: str, grades: list[SubmissionGrade]) -> int:
    """Write the scores into nbgrader's gradebook, so that `nbgrader export` and the formgrader show them.

    Needs the chapter in the gradebook (`nncourse release` puts it there). A submission that could
    not be graded gets no automatic score, which nbgrader shows as needing manual grading rather
    than as 0. This process is the gradebook's only writer. Each submission is its own transaction:
    one that fails to be recorded (it is named on stderr) keeps its earlier entry and costs no other
    learner theirs. Returns the number of submissions recorded."""
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings(), Gradebook(f"sqlite:///{course_dir.resolve() / 'gradebook.db'}") as gradebook:
        warnings.simplefilter("ignore", category=SAWarning)  # nbgrader's own, raised as it adds a submission
        try:
            gradebook.find_assignment(chapter)
        except MissingEntry:
            raise CourseError(f"{chapter} is not in {course_dir / 'gradebook.db'}: run `nncourse release {chapter}` "
                               "(or nbgrader generate_assignment) in the course directory first") from None
        recorded = 0
        for grade in grades:
            try:
                _record_submission(gradebook, course_dir, chapter, grade)
                gradebook.db.commit()
                recorded += 1
            except Exception as error:  # whatever one submission's entry or notebook raises, the others go on
                gradebook.db.rollback()
                print(f"nncourse: {grade.student} was not recorded in the gradebook ({type(error).__name__}: "
                      f"{str(error)[:300]})", file=sys.stderr)
    return recorded


def _record_submission(gradebook, course_dir: Path, chapter: str, grade: SubmissionGrade) -> None:
    """One submission's entry: its scores, or, when it could not be graded, none and a flag for manual grading;
    and for a graded one, its autograded notebook."""
    from nbgrader.api import MissingEntry

    gradebook.update_or_create_student(grade.student)
    try:
        gradebook.remove_submission(chapter, grade.student)
    except MissingEntry:
        pass
    submitted_at = submission_timestamp(intake.submission_folder(course_dir / "submitted" / grade.student / chapter))
    gradebook.add_submission(chapter, grade.student, **({"timestamp": submitted_at} if submitted_at else {}))
    graded = grade.status == Status.GRADED
    for exercise in grade.exercises:
        cell = gradebook.find_grade(f"{registry.grade_id_of(exercise.id)}-test",
                                    notebooks.chapter_notebook(chapter).stem, chapter, grade.student)
        cell.auto_score = exercise.score if graded else None
        cell.needs_manual_grade = not graded
    if graded:
        write_autograded(course_dir, chapter, grade)


def submission_timestamp(folder: Path):
    """When the learner handed the submission in, as nbgrader's `collect` wrote it (`timestamp.txt` in the
    submission's folder), parsed as `nbgrader autograde` parses it, so that due dates and late penalties work
    (`submission.total_seconds_late`); None when there is none, it is a link, or it is not a time. The file
    is the learner's side of the exchange: it is read without following a link, and at most 100 bytes."""
    from nbgrader.utils import parse_utc

    if os.path.islink(folder) or os.path.islink(folder.parent):  # a link is not a submission (intake.take)
        return None
    try:
        fd = os.open(folder / "timestamp.txt", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        text = file.read(100).decode("utf-8", "replace").strip() if stat.S_ISREG(os.fstat(fd).st_mode) else ""
    try:
        return parse_utc(text) if text else None
    except (ValueError, OverflowError, TypeError):
        return None


def write_autograded(course_dir: Path, chapter: str, grade: SubmissionGrade) -> Path:
    """nbgrader's autograded/<student>/<chapter>/ copy of a graded submission, for the formgrader and
    `nbgrader generate_feedback`: the learner's notebook, each test cell back to its released
    source (learners may have edited theirs) and showing our feedback for its exercise as output.

    The notebook is the one that was graded: read again as grading read it (`intake.take`: no link followed,
    never past its size limit) and used only when its SHA-256 is the one the grade recorded. CourseError
    when it changed since, or can no longer be read: the feedback must never sit beside another notebook."""
    import nbformat

    submission = intake.take(intake.submission_folder(course_dir / "submitted" / grade.student / chapter), chapter)
    if submission.refusal or submission.sha256 != grade.notebook_sha256:
        raise CourseError(f"{grade.student}'s {chapter} notebook is no longer the one that was graded "
                          f"({submission.refusal[1] if submission.refusal else 'it changed since'}): grade again "
                          f"with `nncourse grade {chapter} --regrade`")
    submitted = nbformat.reads(submission.data, as_version=4)
    released_path = course_dir / "release" / chapter / notebooks.chapter_notebook(chapter).name
    released = notebooks.cells_by_grade_id(nbformat.read(released_path, as_version=4)) if released_path.exists() else {}
    feedback = {f"{registry.grade_id_of(e.id)}-test": e.feedback for e in grade.exercises}
    for cell in submitted.cells:
        gid = notebooks.grade_id(cell)
        if gid in feedback:
            if gid in released:
                cell.source, cell.metadata = released[gid].source, released[gid].metadata
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=feedback[gid])]
    destination = course_dir / "autograded" / grade.student / chapter / notebooks.chapter_notebook(chapter).name
    destination.parent.mkdir(parents=True, exist_ok=True)
    aside = destination.with_suffix(".ipynb.partial")
    with open(aside, "w", encoding="utf-8", errors="backslashreplace") as file:  # a lone surrogate in the learner's
        nbformat.write(submitted, file)  # text becomes its JSON escape ("\udc80"): the same notebook, read back
    os.replace(aside, destination)
    return destination


def nbgrader(course_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run an nbgrader command in the course directory (its alembic migrations need our bin on PATH).

    With check=False a non-zero exit is returned, not raised: `nbgrader autograde` exits 1 when it
    skips a malformed notebook, though it graded the others."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=env,
                            capture_output=True, text=True)
    if check and result.returncode != 0:
        raise CourseError(f"nbgrader {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


def release(course_dir: Path, chapters: list[str]) -> Path:
    """nbgrader's learner versions of `chapters` in release/, and the learner's bundle beside them (checking
    without the rules the instructor lifted, `classroom.lifted_rules`); a CourseError before anything is
    written when the course lacks one of them or the setting is wrong."""
    from autograder.instructor.classroom import lifted_rules

    lifted = lifted_rules(course_dir)
    for chapter in chapters:
        notebooks.chapter_notebook(chapter)
    for chapter in chapters:
        nbgrader(course_dir, "generate_assignment", chapter, "--force")
    return bundle.build(course_dir / "release" / "nncourse-learner", chapters=set(chapters), lifted=lifted)
