"""The grading code's own promises, each pinned by a case that a small change to that code fails.

Each test names the promise it keeps; the mutants of the grading code that a maintainer's mutation run
found surviving (a stub read as malformed, stages in reverse, an ungraded submission scoring points,
limits off by one, a check of a network's parameters that one layer satisfies, ...) fail here.
"""
import numpy as np
import pytest

from autograder.instructor import bundle, grading, results
from autograder.instructor.results import Status, graded_exercises, ungraded
from autograder.learner import drivers, registry
from autograder.learner.display import show
from autograder.learner.in_sandbox import BoundedText
from autograder.learner.judge import Ran
from autograder.learner.protocol import MAX_LINE_CHARS, MAX_LINES, CaseRecord, _lines
from tests.test_grading_untrusted import TARGET, grade_with, submission  # noqa: F401 - a fixture

CHAPTERS = sorted({e.chapter for e in registry.all_exercises()})


def test_an_untouched_stub_read_back_from_its_record_is_not_written():
    record = CaseRecord.of(Ran(not_written=True, warnings=["UserWarning: w"]), {})
    assert record.event() == {"not_written": True, "warnings": ["UserWarning: w"]}
    outcome = grading._outcome([{"event": "case_end", **record.event()}], {}, False,
                               grading.SubmittedText.of([]))
    assert outcome.not_written and not outcome.trace


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_each_exercise_is_graded_in_a_stage_after_every_exercise_it_uses(chapter):
    exercises = graded_exercises(chapter)
    stages = grading.grading_stages(exercises)
    assert sorted(e.id for stage in stages for e in stage) == sorted(e.id for e in exercises)
    stage_of = {e.name: number for number, stage in enumerate(stages) for e in stage}
    for number, stage in enumerate(stages):
        for exercise in stage:
            assert all(stage_of[name] < number for name in exercise.uses if name in stage_of), exercise.id


def test_chapter_02_is_graded_in_two_stages_the_fits_last():
    stages = grading.grading_stages(graded_exercises("ch02"))
    assert [sorted(e.name for e in stage) for stage in stages][1] == ["fit_linear_regression", "minibatch_sgd"]
    assert len(stages) == 2


def test_the_visible_cases_of_a_stage_go_to_the_sandbox_before_any_hidden_one():
    lines = [grading._case_lines(e)[0] for e in graded_exercises("ch02")[:3]]
    order = grading.in_sandbox_order(lines)
    hidden = {(line["exercise"], line["case"]) for exercise in lines for is_hidden, line in exercise if is_hidden}
    flags = [(line["exercise"], line["case"]) in hidden for line in order]
    assert flags == sorted(flags) and True in flags and False in flags  # every False before every True
    assert len(order) == sum(len(exercise) for exercise in lines)


def test_a_case_that_crashes_fails_the_rest_of_its_exercise_and_the_others_are_still_judged(monkeypatch, submission):
    second = registry.get(TARGET).cases[1].name

    def records_for(exercise_id, case):
        return [] if (exercise_id, case) == (TARGET, second) else [{"not_written": True}]
    grade = grade_with(monkeypatch, submission, records_for)
    target = next(e for e in grade.exercises if e.id == TARGET)
    assert target.reason == "not written"  # its first case met the stub
    lines = {case.name: case.lines for case in target.case_grades}
    assert lines[second] == ["your code killed the process (SIGKILL) on this case"]
    assert all(lines[case.name][0].startswith("not run: an earlier case of this exercise killed the process")
               for case in registry.get(TARGET).cases[2:])
    assert all(e.not_written for e in grade.exercises if e.id != TARGET)  # judged, not "not run"


def test_an_ungraded_submission_scores_zero_of_its_full_points():
    grade = ungraded("someone", "ch02", Status.UNREADABLE, "not JSON")
    assert grade.score == 0 and grade.max_score == sum(e.points for e in graded_exercises("ch02")) > 0
    assert all(e.score == 0 and e.reason == "not graded: not JSON" for e in grade.exercises)


def test_an_exercise_worth_no_points_is_never_graded():
    free = [e for e in registry.all_exercises() if e.points == 0]
    assert free, "the course has a practice exercise worth no points (ch00.sigmoid)"
    for exercise in free:
        assert exercise not in graded_exercises(exercise.chapter)


def test_a_traceback_keeps_exactly_its_limits():
    assert (MAX_LINES, MAX_LINE_CHARS) == (40, 300)  # the feedback's documented bounds
    whole = [f"line {number}" for number in range(MAX_LINES)]
    assert _lines(whole) == whole
    longer = whole + ["one more"]
    half = MAX_LINES // 2
    assert _lines(longer) == longer[:half] + ["... 1 lines left out ..."] + longer[-half:]
    assert _lines(["x" * MAX_LINE_CHARS]) == ["x" * MAX_LINE_CHARS]
    assert _lines(["x" * (MAX_LINE_CHARS + 1)]) == ["x" * MAX_LINE_CHARS + " ..."]


def test_printed_output_keeps_exactly_its_limit():
    output = BoundedText(10)
    output.write("x" * 7)
    output.write("y" * 4)
    assert output.text() == "x" * 7 + "y" * 3 + "\n[... 1 more characters not kept]"
    exact = BoundedText(10)
    exact.write("z" * 10)
    assert exact.text() == "z" * 10


def test_a_request_for_a_case_is_at_most_its_bytes_and_exactly_the_sandboxs_form():
    """The sandbox asks for the next case with {"event": "case_wanted"}; the grader reads any line the learner's
    process wrote, so it takes a request only up to MAX_REQUEST_BYTES long and only in that form."""
    from autograder.learner.protocol import MAX_REQUEST_BYTES, is_case_request

    request = b'{"event": "case_wanted"}'
    padded = lambda size: request[:-1] + b" " * (size - len(request)) + b"}"  # noqa: E731
    assert len(padded(MAX_REQUEST_BYTES)) == MAX_REQUEST_BYTES == 256
    assert is_case_request(request) and is_case_request(padded(MAX_REQUEST_BYTES))
    assert not is_case_request(padded(MAX_REQUEST_BYTES + 1))
    for forged in (b'{"event": "case_end", "note": "case_wanted"}', b'["case_wanted"]', b'{"event": "case_wanted"',
                   b"[" * 200 + b'"case_wanted"' + b"]" * 40):
        assert not is_case_request(forged), forged


def test_an_exercise_needs_distinct_case_names_a_visible_case_and_an_id_of_its_chapter():
    exercise = registry.get("ch02.mse_loss")
    fields = dict(id=exercise.id, points=1, reference=exercise.reference, mistakes=(), alternatives=())
    twice = (exercise.cases[0], exercise.cases[0])
    with pytest.raises(ValueError, match="two cases share a name"):
        registry.Exercise(cases=twice, **fields)
    with pytest.raises(ValueError, match="at least one visible case"):
        registry.Exercise(cases=tuple(c for c in exercise.cases if c.hidden), **fields)
    with pytest.raises(ValueError, match="not of the form"):
        registry.Exercise(**{**fields, "id": "mse_loss"}, cases=exercise.cases)


def test_the_bundle_refuses_an_exercise_whose_call_is_not_a_driver(monkeypatch, tmp_path):
    exercise = registry.get("ch02.mse_loss")
    odd = registry.Exercise(id="ch02.odd", points=1, reference=exercise.reference, cases=exercise.cases,
                            mistakes=(), alternatives=(), call=lambda fn, args: fn(**args))
    monkeypatch.setattr(registry, "all_exercises", lambda: [odd])
    with pytest.raises(ValueError, match="must be a driver"):
        bundle.build(tmp_path / "bundle", {"ch02"})


def test_an_array_shown_in_part_gives_its_range_only_when_every_entry_is_finite():
    many = np.arange(1000, dtype=float)
    assert "(min 0, max 999)" in show(many)
    many[3] = np.nan
    assert "min" not in show(many) and "nan" in show(many)


class _FirstLayerOnly:
    """A network whose params() lists only its first layer's arrays."""

    def __init__(self, *layers):
        self.layers = layers

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def params(self):
        return self.layers[0].params()

    def grads(self):
        return [g for layer in self.layers for g in layer.grads()]


def test_a_network_whose_params_list_one_layer_of_two_is_told_apart():
    rng = np.random.default_rng(0)
    layers = [{"kind": "linear", "W": rng.standard_normal((3, 4)), "b": np.zeros(4)}, {"kind": "relu"},
              {"kind": "linear", "W": rng.standard_normal((4, 2)), "b": np.zeros(2)}]
    args = {"layers": layers, "x": rng.standard_normal((5, 3)), "grad_out": rng.standard_normal((5, 2))}
    assert drivers.through_layers(_FirstLayerOnly, args)[3] is False


def test_results_round_trip_through_their_json():
    grade = ungraded("someone", "ch02", Status.NO_NOTEBOOK, "no notebook")
    assert results.SubmissionGrade.from_json(grade.to_json()) == grade


def test_a_cell_that_stops_the_sandbox_is_skipped_on_the_next_start_and_named_in_the_notes(monkeypatch, submission):
    cells = [index for index, cell in enumerate(__import__("nbformat").read(
        next(submission.glob("*.ipynb")), as_version=4).cells) if cell.cell_type == "code"]
    grade = grade_with(monkeypatch, submission, lambda exercise_id, case: [{"not_written": True}],
                       last_events=[{"event": "cell_start", "index": cells[0]}], in_cells=True)
    assert f"cell {cells[0]} was skipped: it killed the process (SIGKILL)" in grade.notes


def test_a_hidden_frame_is_shown_only_from_the_submissions_own_cells():
    from autograder.instructor.hidden_feedback import SubmittedText, frames

    submitted = SubmittedText.of(["def mse_loss(X, y, w, b):\n    return helper(X)\n"])
    trace = ["line 2 of your cell, in mse_loss:", "    return helper(X)",
             "line 9 of leak.py, in mse_loss:", "    return helper(X)",
             "line 3 of your cell, in LEAK_123:", "    return helper(X)",
             "line 4 of your cell, in mse_loss:", "    LEAK 1 2 3",
             "... 3 lines left out ...", "anything else"]
    assert frames(trace, submitted) == ["line 2 of your cell, in mse_loss:", "    return helper(X)",
                                        "line 4 of your cell, in mse_loss:", "... 3 lines left out ..."]


def test_the_cells_grading_runs_leave_out_every_test_cell_by_its_id_or_its_metadata():
    from autograder.instructor.intake import learner_cells

    exercise = graded_exercises("ch02")[0]
    def code(source, **nbgrader):
        return {"cell_type": "code", "source": source, "metadata": {"nbgrader": nbgrader} if nbgrader else {}}
    cells = [code("import numpy"), code("check()", grade_id=f"{exercise.grade_id}-test", grade=False),
             code("assert True", grade_id="renamed-test", grade=True, solution=False),
             code("def f(): pass", grade_id=exercise.grade_id, grade=False, solution=True)]
    run, _ = learner_cells(cells, "ch02")
    assert [cell["index"] for cell in run] == [0, 3]


def test_a_class_with_no_graded_submission_has_no_mean_and_no_failed_case():
    from autograder.instructor import reports

    grades = [ungraded("someone", "ch02", Status.NO_NOTEBOOK, "no notebook")]
    assert all(stats.mean_score == 0.0 and stats.graded == 0 for stats in reports.class_stats("ch02", grades))
    assert "No case failed." in reports.report_page("ch02", grades)


def test_a_case_is_named_with_hidden_said():
    from autograder.learner.check import case_label

    assert (case_label("two points", False), case_label("large values", True)) == ("two points",
                                                                                   "large values (hidden)")


def test_an_output_of_the_wrong_kind_is_named_for_what_was_expected():
    from autograder.learner.compare import _plain_array

    assert _plain_array("text", False)[1] == "expected a numpy array, got str"
    assert _plain_array([1.0], True)[1] == "expected a number, got list"
    assert _plain_array([1.0], False)[1].startswith("returned a list; return a numpy array")


def _moved(value):
    """`value` with every number moved by one, its structure kept."""
    if isinstance(value, dict):
        return {key: _moved(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_moved(item) for item in value)
    return value + 1


def test_a_hidden_case_names_at_most_three_problems_and_never_their_values():
    from autograder.learner.judge import Outcome, judge

    exercise = registry.get("ch03.two_layer_loss_and_grads")
    case = next(c for c in exercise.cases if c.hidden)
    got = _moved(exercise.expected_output(case))
    result = judge(exercise, case, Outcome(got), case.make_args())
    assert not result.passed and len(result.lines) == 3
    assert all("expected" not in line or "got" not in line for line in result.lines)


def test_the_summary_figure_says_no_known_mistake_was_made_only_when_none_was():
    from autograder.instructor import reports
    from tests.test_reports import mistake, submission as graded_submission

    def texts(grades):
        figure = reports.summary_figure("ch02", grades)
        return [text.get_text() for axes in figure.axes for text in axes.texts]
    assert "no known mistake was made" in texts([graded_submission("ada", {})])
    flipped = {"ch02.mse_gradient": mistake("ch02.mse_gradient", "gradient sign flipped")}
    made = texts([graded_submission("ada", {}), graded_submission("ben", flipped)])
    assert "no known mistake was made" not in made and any("gradient sign flipped" in text for text in made)


def test_a_grade_id_spells_the_exercise_id_with_a_hyphen_one_to_one():
    assert registry.grade_id_of("ch02.mse_loss") == "ch02-mse_loss"
    ids = [e.id for e in registry.all_exercises()]
    assert len({registry.grade_id_of(i) for i in ids}) == len(ids)


def test_a_stored_exercise_without_a_mistakes_output_says_so():
    from autograder.learner import stored

    exercise = stored.from_json(stored.to_json(registry.get("ch02.mse_loss")))
    case = exercise.cases[0]
    with pytest.raises(LookupError, match="no stored output of 'made up' on"):
        exercise.mistake_output(registry.Mistake("made up", "", None), case)


def test_a_notebook_as_released_has_no_layout_note_and_a_doubled_solution_cell_has_one():
    import nbformat

    from autograder.instructor import notebooks
    from autograder.instructor.intake import learner_cells

    cells = [dict(cell) for cell in nbformat.read(notebooks.chapter_notebook("ch02"), as_version=4).cells]
    assert learner_cells(cells, "ch02")[1] == []
    first = next(cell for cell in cells if cell.get("metadata", {}).get("nbgrader", {}).get("solution"))
    grade_id = first["metadata"]["nbgrader"]["grade_id"]
    exercise = next(e for e in graded_exercises("ch02") if e.grade_id == grade_id)
    assert learner_cells(cells + [first], "ch02")[1] == [
        f"the solution cell of {exercise.id} appears 2 times; the last definition counts"]


def test_the_score_histogram_has_one_bar_centred_on_each_score():
    from autograder.instructor import reports
    from tests.test_reports import mistake, submission as graded_submission

    flipped = {"ch02.mse_gradient": mistake("ch02.mse_gradient", "gradient sign flipped")}
    grades = [graded_submission("ada", {}), graded_submission("ben", flipped), graded_submission("cy", {})]
    axes = reports.score_figure(grades).axes[0]
    bars = {round(bar.get_x() + bar.get_width() / 2, 6): bar.get_height() for bar in axes.patches if bar.get_height()}
    assert bars == {float(grade.score): [g.score for g in grades].count(grade.score) for grade in grades}
