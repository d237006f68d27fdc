"""Find and read a submission: the notebook in its folder, checked as nbformat (and so nbgrader) reads it.

Whatever a learner hands in is untrusted: a folder named like the notebook, a renamed notebook, a
file that is not JSON, a notebook nbformat rejects, a symbolic link (to the course's notebook, which
holds the references, or to another learner's), a file too big to read, a file name that is not UTF-8.
`take` reads what was handed in once, into a `Submission` that both grading paths grade alike (a local
thread, or a Dask worker that it travels to); it refuses a link at every level (the student's folder,
the chapter's folder, the notebook) and a notebook over MAX_NOTEBOOK_BYTES with a status and a reason
in the instructor's words, as `read_cells`' ValueError says why a file is not a notebook. Grading turns
each into that submission's own row; nothing here raises anything else on a bad submission.

Every name or text from a submission that may reach a result (file names, nbformat's complaint) is
`representable`: a name that is not UTF-8 shows its bytes as escapes ('r\\xe9sum\\xe9.txt'), so that no
strict UTF-8 writer (CSV, pages, gradebook) meets a lone surrogate.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from autograder.instructor import notebooks
from autograder.instructor.results import Status, graded_exercises
from autograder.learner.protocol import representable

# The largest notebook the grader reads. An honest notebook with big outputs (figures, a long training log)
# runs to tens of MiB (a 56 MB one was handed in); 256 MiB leaves such notebooks several times the room, while
# one file this size, read whole here (and on a Dask cluster sent whole with its task), stays small beside a
# grading machine's memory. Over it, a submission is refused with its size, on both paths alike.
MAX_NOTEBOOK_BYTES = 256 * 2**20

LINKS_REFUSED = "links are not graded"
NBGRADER_FILES = frozenset({"timestamp.txt", "submission_secret.txt"})  # what nbgrader's exchange adds: not extra
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)  # a FIFO never blocks the read


def shown_name(name: str) -> str:
    """A file or folder name as the grader writes it: itself when it is UTF-8, else with each byte that is not
    UTF-8 written as an escape (the Latin-1 b"r\\xe9sum\\xe9.txt", which Python lists as 'r\\udce9sum\\udce9.txt', shows as
    'r\\\\xe9sum\\\\xe9.txt')."""
    try:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    except UnicodeError:  # a lone surrogate that no file system byte gives
        return representable(name)


@dataclass(frozen=True)
class Submission:
    """What a learner handed in for one chapter, read once: grading reads nothing else, wherever it runs.

    `name` is the notebook's file name as shown ("" when none was found), `data` its bytes (none when
    refused), `notes` what was unusual ("extra files ignored: ...", "the notebook was renamed to ..."),
    and `refusal` the (status, reason) of a submission that is not graded at all, or None."""

    name: str = ""
    data: bytes = field(default=b"", repr=False)
    notes: tuple[str, ...] = ()
    refusal: tuple[Status, str] | None = None

    @property
    def sha256(self) -> str:
        """The notebook's SHA-256, as results keep it; "" for a refused submission (nothing was read)."""
        return "" if self.refusal else hashlib.sha256(self.data).hexdigest()


class _Refused(Exception):
    def __init__(self, status: Status, reason: str, name: str = "", notes: tuple[str, ...] = ()):
        super().__init__(reason)
        self.submission = Submission(name, b"", notes, (status, reason))


def take(folder: Path, chapter: str) -> Submission:
    """The submission in `folder`, nbgrader's submitted/<student>/<chapter>/, read once; never raises on
    anything a learner can hand in.

    Refused (not read): the student's folder, the chapter's folder or the notebook being a symbolic link,
    no notebook, a notebook that is a folder or not a regular file, and one over MAX_NOTEBOOK_BYTES. Each
    level is opened without following a link (O_NOFOLLOW), relative to the one above it, so nothing can
    be swapped for a link between the check and the read."""
    expected = notebooks.chapter_notebook(chapter).name
    folder = Path(os.path.abspath(folder))  # lexically: a link is never resolved
    opened: list[int] = []
    try:
        student = _open_folder(str(folder.parent), None,
                               f"the student's folder {shown_name(folder.parent.name)}", expected)
        opened.append(student)
        submission = _open_folder(folder.name, student, f"the chapter folder {shown_name(folder.name)}", expected)
        opened.append(submission)
        with os.scandir(submission) as entries:
            kinds = {entry.name: _kind(entry) for entry in entries}
        name, notes = _choose(kinds, expected)
        return Submission(shown_name(name), _read(name, submission, shown_name(name), notes), tuple(notes))
    except _Refused as refused:
        return refused.submission
    except OSError as error:
        return Submission(refusal=(Status.NO_NOTEBOOK, f"the submission folder could not be read ({_why(error)})"))
    finally:
        for fd in opened:
            os.close(fd)


def _why(error: OSError) -> str:
    return representable(error.strerror or type(error).__name__)


def _is_link(path: str, dir_fd: int | None) -> bool:
    try:
        return stat.S_ISLNK(os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _open_folder(path: str, dir_fd: int | None, what: str, expected: str) -> int:
    """The folder opened without following a link; _Refused when it is a link or there is no such folder."""
    try:
        return os.open(path, _FOLDER, dir_fd=dir_fd)
    except OSError as error:
        if _is_link(path, dir_fd):
            raise _Refused(Status.NO_NOTEBOOK, f"{what} is a symbolic link, not a folder: {LINKS_REFUSED}") from None
        if isinstance(error, (FileNotFoundError, NotADirectoryError)):
            raise _Refused(Status.NO_NOTEBOOK, f"no {expected} in the submission folder") from None
        raise


def _kind(entry: os.DirEntry) -> str:
    if entry.is_symlink():
        return "link"
    return "folder" if entry.is_dir(follow_symlinks=False) else "file"


def _link_refused(shown: str) -> _Refused:
    return _Refused(Status.NO_NOTEBOOK, f"{shown} in the submission folder is a symbolic link, not a notebook: "
                    f"{LINKS_REFUSED}", shown)


def _choose(kinds: dict[str, str], expected: str) -> tuple[str, list[str]]:
    """The notebook's name in the folder (as listed) and the notes on the folder; _Refused when there is none
    to read: the expected name or the one renamed notebook being a link or a folder, or no notebook."""
    if expected in kinds:
        if kinds[expected] == "link":
            raise _link_refused(expected)
        if kinds[expected] == "folder":
            raise _Refused(Status.NO_NOTEBOOK, f"{expected} in the submission folder is a folder, not a notebook")
        others = sorted(name for name in kinds if name != expected and name not in NBGRADER_FILES)
        return expected, [f"extra files ignored: {', '.join(shown_name(name) for name in others[:5])}"] if others else []
    candidates = sorted(name for name, kind in kinds.items()
                        if name.endswith(".ipynb") and not name.startswith(".") and kind != "folder")
    if len(candidates) == 1:
        if kinds[candidates[0]] == "link":
            raise _link_refused(shown_name(candidates[0]))
        return candidates[0], [f"the notebook was renamed to {shown_name(candidates[0])}; graded it anyway"]
    raise _Refused(Status.NO_NOTEBOOK, f"no {expected} in the submission folder")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def _read(name: str, folder_fd: int, shown: str, notes: list[str]) -> bytes:
    """The notebook's bytes, opened without following a link; _Refused when it is a link, not a regular file,
    over MAX_NOTEBOOK_BYTES, or cannot be read."""
    limit = MAX_NOTEBOOK_BYTES

    def refused(status: Status, reason: str) -> _Refused:
        return _Refused(status, reason, shown, tuple(notes))

    try:
        fd = os.open(name, _FILE, dir_fd=folder_fd)
    except OSError as error:
        if _is_link(name, folder_fd):
            raise _link_refused(shown) from None
        raise refused(Status.UNREADABLE, f"the notebook could not be read ({_why(error)})") from None
    try:
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise refused(Status.NO_NOTEBOOK, f"{shown} in the submission folder is not a regular file")
            if info.st_size > limit:
                raise refused(Status.UNREADABLE, f"the notebook is {_size(info.st_size)}, over the {_size(limit)} the "
                              "grader reads: it was not graded (its outputs are likely what made it so big)")
            data = file.read(limit + 1)
    except OSError as error:
        raise refused(Status.UNREADABLE, f"the notebook could not be read ({_why(error)})") from None
    if len(data) > limit:  # it grew after it was opened
        raise refused(Status.UNREADABLE, f"the notebook is over the {_size(limit)} the grader reads: it was not graded")
    return data


# --- what the gradebook's autograded copy reads again (nbgrader_bridge.write_autograded) -----------------


def submission_folder(folder: Path) -> Path:
    """`folder` (…/submitted/<student>/<chapter>), its student named as results show them: the folder on disk,
    whose name may not be UTF-8."""
    student = folder.parent
    if os.path.lexists(student) or not student.parent.is_dir():
        return folder
    matches = [name for name in os.listdir(student.parent) if shown_name(name) == student.name]
    return student.parent / matches[0] / folder.name if len(matches) == 1 else folder


def read_cells(data: bytes) -> list[dict]:
    """The cells of the notebook whose bytes these are, as plain dicts; ValueError with a readable reason if it
    is not a notebook that nbformat (and so nbgrader) accepts."""
    try:
        data = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise ValueError(f"the notebook is not valid JSON ({representable(str(error)[:200])})") from error
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        raise ValueError("the file has no list of cells: it is not a Jupyter notebook")
    _validate(data)
    return cells


def _validate(data: dict) -> None:
    """ValueError unless nbformat accepts the notebook: nbgrader's gradebook and formgrader read it with
    nbformat, which rejects, for one, an unknown format version or a cell without metadata. The reason may
    quote the learner's JSON: it is made `representable`."""
    import nbformat

    if data.get("nbformat") != 4:
        raise ValueError(f"nbformat rejects the notebook (format version "
                         f"{representable(str(data.get('nbformat'))[:20])}; Jupyter notebooks of this course are version 4)")
    try:
        nbformat.validate(nbformat.from_dict(data))
    except Exception as error:  # nbformat raises several kinds (ValidationError, NBFormatError, KeyError, ...)
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(f"nbformat rejects the notebook ({representable(first_line[:200])})") from error


def cell_source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def learner_cells(cells: list[dict], chapter: str) -> tuple[list[dict], list[str]]:
    """The code cells to run (every code cell but the graded test cells) and notes on the layout."""
    test_ids = {f"{e.grade_id}-test" for e in graded_exercises(chapter)}
    notes, seen, run = [], {}, []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        nbgrader = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell.get("metadata"), dict) else {}
        grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
        if grade_id:
            seen[grade_id] = seen.get(grade_id, 0) + 1
        if grade_id in test_ids or (isinstance(nbgrader, dict) and nbgrader.get("grade") and not nbgrader.get("solution")):
            continue
        run.append({"index": index, "source": cell_source(cell)})
    for exercise in graded_exercises(chapter):
        count = seen.get(exercise.grade_id, 0)
        if count == 0:
            notes.append(f"the solution cell of {exercise.id} is missing; graded whatever defines {exercise.name}")
        elif count > 1:
            notes.append(f"the solution cell of {exercise.id} appears {count} times; the last definition counts")
    return run, notes
