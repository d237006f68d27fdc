"""The exercise registry: one `Exercise` per id `chNN.name`, declared in `autograder/instructor/exercises/chNN.py`.

An exercise holds everything needed to judge a learner's function: the reference from
`solutions/`, the cases (visible ones for the inline check, hidden ones for grading), the known
mistakes with the feedback each should produce, other correct ways to write it, and the
comparison rules.
"""
from __future__ import annotations

import copy
import difflib
import importlib
import pkgutil
import re
import traceback
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from autograder.learner import drivers
from autograder.learner.compare import changed_inputs

ID_PATTERN = re.compile(r"^ch(\d\d)\.([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class Case:
    """One input on which the learner's function is compared with the reference.

    `make_args` builds fresh keyword arguments on every call, so that an in-place change by one
    implementation cannot leak into the next and every random `Generator` starts from its seed.
    """

    name: str
    make_args: Callable[[], dict[str, Any]]
    hidden: bool = False


@dataclass(frozen=True)
class Mistake:
    """A wrong implementation learners really write, and the feedback that names it."""

    name: str
    hint: str
    fn: Callable


@dataclass(frozen=True)
class MistakeRun:
    """What a known mistake did on one case: what it returned and the names of the inputs it changed in
    place, or, when it raised, the exception's last line ("IndexError: index 5 is out of bounds ...")."""

    output: Any = None
    changed: tuple[str, ...] = ()
    raised: str = ""


@dataclass(frozen=True)
class Exercise:
    """Everything the autograder knows about one exercise.

    `call(fn, args)` runs an implementation on a case's arguments: a driver from
    `autograder/learner/drivers.py` (the default is `fn(**args)`); exercises on classes or schedules name
    another one there. `outputs` names the parts of a tuple result for messages, e.g.
    `("grad_w", "grad_b")`. Floating results are compared with `rtol`/`atol`, at the coarser of
    the answer's and the reference's precision, float32 at the coarsest: a float16 answer where
    float64 is expected fails as too little precision, and `strict_dtype` allows no coarser dtype.
    `uses` names earlier exercises the function may call (`fit` calls `mse_gradient`): while it is
    checked, those names resolve to the references where the learner left them undefined or bound
    them to their own code (never where they imported a library's object under that name), so
    each exercise is judged on its own and one mistake costs one exercise's points.
    `forbids` names what the exercise asks the learner to write without ("torch.nn.functional.conv2d",
    "torch.optim"): a case whose code called one fails with that reason (autograder/learner/forbidden.py),
    unless the instructor lifted the rule (`c.NNCourse.allow_library_calls` in nbgrader_config.py).
    """

    id: str
    points: int
    reference: Callable
    cases: tuple[Case, ...]
    mistakes: tuple[Mistake, ...]
    alternatives: tuple[Callable, ...]
    outputs: tuple[str, ...] | None = None
    rtol: float = 1e-7
    atol: float = 1e-10
    strict_dtype: bool = False
    call: Callable[[Callable, dict], Any] = drivers.keywords
    uses: tuple[str, ...] = ()
    forbids: tuple[str, ...] = ()

    def __post_init__(self):
        if not ID_PATTERN.match(self.id):
            raise ValueError(f"exercise id {self.id!r} is not of the form 'chNN.name'")
        names = [case.name for case in self.cases]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.id}: two cases share a name")
        if not any(not case.hidden for case in self.cases):
            raise ValueError(f"{self.id}: needs at least one visible case for the inline check")

    @property
    def chapter(self) -> str:
        return self.id.split(".")[0]

    @property
    def name(self) -> str:
        return self.id.split(".")[1]

    @property
    def grade_id(self) -> str:
        """The nbgrader grade_id of the solution cell (see `grade_id_of`)."""
        return grade_id_of(self.id)

    def forbids_in_force(self, lifted: frozenset[str] = frozenset()) -> tuple[str, ...]:
        """What this exercise asks to write without, unless the instructor `lifted` its rule (by exercise id)."""
        return () if self.id in lifted else self.forbids

    def visible_cases(self) -> tuple[Case, ...]:
        return tuple(case for case in self.cases if not case.hidden)

    def expected_output(self, case: Case):
        """What the reference returns on `case`."""
        return self.call(self.reference, case.make_args())

    def mistake_output(self, mistake: Mistake, case: Case) -> MistakeRun:
        """What a known mistake does on `case`: what a learner who makes this mistake sees there."""
        args = case.make_args()
        before = copy.deepcopy(args)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                output = self.call(mistake.fn, args)
        except Exception as error:
            return MistakeRun(raised=traceback.format_exception_only(type(error), error)[-1].strip())
        return MistakeRun(output, tuple(changed_inputs(before, args)))


def grade_id_of(exercise_id: str) -> str:
    """`ch02.mse_loss` -> `ch02-mse_loss`.

    nbgrader's formgrader selects cells with `$("#" + grade_id)`, where a dot would be read as a
    CSS class, so the notebook spells the id with a hyphen. The mapping is one-to-one.
    """
    return exercise_id.replace(".", "-", 1)


def exercise_id_of(grade_id: str) -> str:
    """`ch02-mse_loss` -> `ch02.mse_loss`; the inverse of `grade_id_of`."""
    return grade_id.replace("-", ".", 1)


_REGISTRY: dict[str, Exercise] = {}
_LOADED: set[str] = set()  # the chapters whose exercises are all registered


def register(*exercises: Exercise) -> None:
    for exercise in exercises:
        if exercise.id in _REGISTRY:
            raise ValueError(f"exercise {exercise.id} is registered twice")
        _REGISTRY[exercise.id] = exercise


# The full exercises (references, hidden cases), where the instructor's half of the course is installed.
# Named, not imported: the learner's half never imports the instructor's.
FULL_EXERCISES = "autograder.instructor.exercises"


def _full_exercises():
    """The package of the full exercises, or None in a learner's bundle (visible cases and outputs, no references)."""
    try:
        return importlib.import_module(FULL_EXERCISES)
    except ModuleNotFoundError as missing:
        if missing.name not in ("autograder.instructor", FULL_EXERCISES):
            raise
        return None


def _load(chapters: list[str] | None = None) -> None:
    """Register the exercises of `chapters` (of every chapter when None), each chapter once and whole.

    A check loads its own chapter only. A load stopped halfway (Ctrl-C during the first check of a kernel, while a
    chapter's module imports torch) leaves none of that chapter's exercises registered, and the next call loads
    the chapter again instead of finding it half there."""
    from autograder.learner import stored

    package = _full_exercises()
    available = stored.chapters() if package is None else sorted(
        module.name for module in pkgutil.iter_modules(package.__path__))
    for chapter in available if chapters is None else [c for c in chapters if c in available]:
        if chapter in _LOADED:
            continue
        before = set(_REGISTRY)
        try:
            if package is None:
                register(*stored.load(chapter=chapter))
            else:
                importlib.import_module(f"{FULL_EXERCISES}.{chapter}")
        except BaseException:
            for exercise_id in set(_REGISTRY) - before:
                del _REGISTRY[exercise_id]
            raise
        _LOADED.add(chapter)


def get(exercise_id: str) -> Exercise:
    """The exercise with this id; a KeyError that suggests the closest ids otherwise."""
    _load([str(exercise_id).split(".")[0]])
    if exercise_id not in _REGISTRY:
        _load()  # the closest ids may lie in another chapter
        close = difflib.get_close_matches(str(exercise_id), _REGISTRY, n=3)
        suggestion = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"No exercise is called {exercise_id!r}.{suggestion} "
                       "Exercise ids look like 'ch02.mse_loss'.")
    return _REGISTRY[exercise_id]


def all_exercises() -> list[Exercise]:
    _load()
    return sorted(_REGISTRY.values(), key=lambda exercise: exercise.id)
