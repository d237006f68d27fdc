"""Mutation testing of the exercise checks (`python -m benchmarks mutation`): the mutator, the runner's
classification, and the mutants of every exercise, none of which a check may let through unless no input tells it
from the reference. The default run classifies an evenly spread sample of each exercise's mutants (at most
DEFAULT_SAMPLE, spread over its lines: about 25 s in all); `-m extended` classifies every one of them (about a
minute). One test class per chapter and run."""
import contextlib
import inspect
import io
import re

import numpy as np
import pytest

from autograder.learner import registry
from autograder.learner.compare import same_values
from benchmarks.mutation.inputs import perturbed_cases
from benchmarks.mutation.mutants import mutants_of
from benchmarks.mutation.report import main
from benchmarks.mutation.runner import EQUIVALENT, KILLED, NOT_EQUIVALENT, classify, run_exercise


def tiny(x, k, flag=True):
    """A toy with one of every kind of change."""
    doubled = 2 * x  # outside the solution region: never mutated
    ### BEGIN SOLUTION
    head = x[:k]
    total = np.sum(head, axis=0) / 2
    if k >= 1 and flag:
        return min(total, -doubled[k])
    return total
    ### END SOLUTION


def relu_total(x):
    """The sum of the positive entries of x: (n,)."""
    ### BEGIN SOLUTION
    positive = x > 0
    return float(np.sum(x * positive))
    ### END SOLUTION


def count_up(n):
    """0 + 1 + ... + (n - 1), by a loop."""
    ### BEGIN SOLUTION
    total, i = 0, 0
    while i < n:
        total += i
        i += 1
    return total
    ### END SOLUTION


class Doubler:
    """A class whose one method the learner writes."""

    def __init__(self, factor=2):
        self.factor = factor

    def apply(self, x):
        ### BEGIN SOLUTION
        return x * self.factor
        ### END SOLUTION

    def twice(self, x):
        return Doubler(self.factor).apply(self.apply(x))


def test_the_mutator_makes_one_mutant_per_change_inside_the_solution_region():
    changes = [mutant.change for mutant in mutants_of(tiny)]
    assert sorted(changes) == sorted([
        "'head = x[:k]' -> 'pass'", "'x[:k]' -> '-x[:k]'", "'x[:k]' -> 'x[:k - 1]'", "'x[:k]' -> 'x[:k + 1]'",
        "'total = np.sum(head, axis=0) / 2' -> 'pass'", "'np.sum(head, axis=0) / 2' -> '-(np.sum(head, axis=0) / 2)'",
        "'/' -> '*'", "'/' -> '//'", "'axis=0' -> 'axis=1'", "'axis=0' -> (removed)", "'np.sum' -> 'np.mean'",
        "'2' -> '3'", "'2' -> '1'", "'0' -> '-1'",
        "'if k >= 1 and flag:' -> 'pass'", "'and' -> 'or'", "'>=' -> '>'", "'1' -> '2'", "'1' -> '0'",
        "'return min(total, -doubled[k])' -> 'pass'", "'min(total, -doubled[k])' -> '-min(total, -doubled[k])'",
        "'min' -> 'max'", "'-doubled[k]' -> 'doubled[k]'", "'doubled[k]' -> 'doubled[k + 1]'",
        "'return total' -> 'pass'", "'total' -> '-total'",
    ])


def test_mutants_stay_in_the_region_and_carry_the_files_line_numbers():
    lines, first = inspect.getsourcelines(tiny)
    begin = first + next(i for i, line in enumerate(lines) if "BEGIN SOLUTION" in line)
    end = first + next(i for i, line in enumerate(lines) if "END SOLUTION" in line)
    mutants = mutants_of(tiny)
    assert all(begin < mutant.line < end for mutant in mutants)
    assert next(m for m in mutants if m.change == "'and' -> 'or'").description == f"line {begin + 3}: 'and' -> 'or'"


def test_a_built_mutant_behaves_as_changed_and_leaves_the_reference_alone():
    x = np.array([1.0, 2.0, 3.0])
    mutant = next(m for m in mutants_of(tiny) if m.change == "'min' -> 'max'").build()
    assert mutant(x, 2) == 1.5 and tiny(x, 2) == -6.0
    assert mutant is not tiny and mutant.__name__ == "tiny"


def test_a_class_is_mutated_one_method_at_a_time_and_its_own_name_means_the_mutant():
    mutants = mutants_of(Doubler)
    assert [m.change for m in mutants] == ["'return x * self.factor' -> 'pass'",
                                           "'x * self.factor' -> '-(x * self.factor)'", "'*' -> '/'"]
    negated = mutants[1].build()
    assert negated().twice(3.0) == 12.0  # Doubler(...) inside the mutated class builds the mutated class
    assert Doubler().twice(3.0) == 12.0 and Doubler().apply(3.0) == 6.0 and negated().apply(3.0) == -6.0


@pytest.fixture
def toy_exercises(monkeypatch):
    """Two exercises of this file, registered for the test only."""
    registry.all_exercises()  # load the course's own first
    toys = {
        "ch99.relu_total": registry.Exercise(
            id="ch99.relu_total", points=0, reference=relu_total, mistakes=(), alternatives=(),
            cases=(registry.Case("one positive entry", lambda: {"x": np.array([3.0])}),)),
        "ch99.count_up": registry.Exercise(
            id="ch99.count_up", points=0, reference=count_up, mistakes=(), alternatives=(),
            cases=(registry.Case("n = 5", lambda: {"n": 5}),)),
    }
    for exercise_id, exercise in toys.items():
        monkeypatch.setitem(registry._REGISTRY, exercise_id, exercise)
    return toys


def test_the_runner_tells_killed_from_equivalent_from_not_equivalent(toy_exercises):
    exercise = toy_exercises["ch99.relu_total"]
    results = {result.mutant.change: result for result in run_exercise(exercise).results}
    assert results["'return float(np.sum(x * positive))' -> 'pass'"].status == KILLED
    assert results["'>' -> '>='"].status == EQUIVALENT  # x * (x >= 0) is x * (x > 0): they differ only at 0
    told_apart = results["'np.sum' -> 'np.mean'"]  # the only case has one entry, where a sum is a mean
    assert told_apart.status == NOT_EQUIVALENT
    assert "rows resampled" in told_apart.detail and "input x=" in told_apart.detail


def test_a_mutant_that_loops_forever_is_killed_by_the_time_limit(toy_exercises):
    exercise = toy_exercises["ch99.count_up"]
    endless = next(m for m in mutants_of(count_up) if m.change == "'i += 1' -> 'pass'")
    result = classify(exercise, endless, limit_s=0.2)
    assert (result.status, result.detail) == (KILLED, "ran past the 0.2 s limit")


@pytest.mark.parametrize("exercise", registry.all_exercises(), ids=lambda exercise: exercise.id)
def test_perturbed_cases_build_the_same_inputs_on_every_call(exercise):
    """The reference and the mutant must see the same perturbed input, as with the exercise's own cases."""
    for case in perturbed_cases(exercise)[:20]:
        assert same_values(case.make_args(), case.make_args()), case.name


def test_the_command_prints_each_exercise_and_the_chapters_score():
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        main(["--exercise", "ch02.gradient_step"])
    text = output.getvalue()
    assert re.search(r"^ch02\.gradient_step: \d+ mutants, \d+ killed, \d+ probably equivalent, \d+ not equivalent",
                     text, re.MULTILINE)
    assert re.search(r"^ch02( +\d+){4} +[01]\.\d{3}$", text, re.MULTILINE)


DEFAULT_SAMPLE = 8  # mutants per exercise in the default run


class _NoSurvivors:
    """The mutants of every exercise of one chapter (`sample` of each, or all when None): each is killed by its
    exercise's check or probably equivalent; a survivor that some input tells apart is a case the exercise lacks.
    One class per chapter below, so that pytest-xdist (which keeps a class on one worker) spreads the chapters over
    workers."""

    chapter = ""
    sample: int | None = None

    def test_no_check_lets_a_mutant_through(self):
        survivors = [f"{result.exercise_id} {survivor.mutant.description}: {survivor.detail}"
                     for result in (run_exercise(exercise, sample=self.sample) for exercise in registry.all_exercises()
                                    if exercise.chapter == self.chapter)
                     for survivor in result.with_status(NOT_EQUIVALENT)]
        assert not survivors, "\n".join(survivors)


for _chapter in sorted({exercise.chapter for exercise in registry.all_exercises()}):
    for _name, _sample, _marks in [(f"TestMutantsOf{_chapter.upper()}", DEFAULT_SAMPLE, []),
                                   (f"TestEveryMutantOf{_chapter.upper()}", None, [pytest.mark.extended])]:
        globals()[_name] = type(_name, (_NoSurvivors,), {"chapter": _chapter, "sample": _sample, "pytestmark": _marks})
