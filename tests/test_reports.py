"""The reports on a graded class: feedback pages, the class summary, the mistakes export, the figure,
and the instructor's report.

A small chapter-02 class is built by hand, without a sandbox: each learner's functions are judged in
this process by the inline check on every case, hidden ones included, and grading's own
`grade_from_results` makes the grade of them, as it does of the sandbox's; two more submissions could not
be graded.
"""
import csv
import html
import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from autograder.instructor import grading, reports
from autograder.learner import registry
from autograder.learner.check import KNOWN_MISTAKE
from autograder.learner.judge import run_cases
from autograder.learner.display import show
from autograder.instructor.results import ExerciseGrade, SubmissionGrade, graded_exercises, ungraded

CHAPTER = "ch02"
SCRIPT = "<script>alert('x')</script>"
ODD_STUDENT = "o'brien & <co>"  # a folder name may hold any character but "/"


def _not_written(*args, **kwargs):
    raise NotImplementedError


def _raises_script(X, y, w, b):
    raise ValueError(SCRIPT)


def _fits_only_the_visible_cases(X, y, w, b):
    return float(np.mean((X @ w + b - y) ** 2)) if len(y) <= 40 else 0.0


def mistake(exercise_id, name):
    return next(m.fn for m in registry.get(exercise_id).mistakes if m.name == name)


def graded_by_hand(exercise_id, fn) -> ExerciseGrade:
    """What grading records for `fn` on every case of the exercise, hidden ones included."""
    exercise = registry.get(exercise_id)
    return grading.grade_from_results(exercise, run_cases(exercise, fn, hidden=True))


def submission(student, answers, notes=()) -> SubmissionGrade:
    """A graded submission: the reference for every exercise but those in `answers` ({id: fn})."""
    exercises = [graded_by_hand(e.id, answers.get(e.id, e.reference)) for e in graded_exercises(CHAPTER)]
    return SubmissionGrade(student, CHAPTER, "graded", "", exercises, list(notes), True, 1.0)


@pytest.fixture(scope="module")
def grades():
    return [
        submission("ada", {}),
        submission("ben", {exercise_id: mistake(exercise_id, "gradient sign flipped")
                           for exercise_id in ("ch02.mse_gradient", "ch02.fit_linear_regression")}),
        submission("cy", {"ch02.mse_gradient": mistake("ch02.mse_gradient", "gradient sign flipped"),
                          "ch02.mse_loss": mistake("ch02.mse_loss", "sum instead of mean")}),
        submission("dee", {"ch02.mse_loss": _fits_only_the_visible_cases}),
        submission("eve", {e.id: _not_written for e in graded_exercises(CHAPTER)}),
        submission(ODD_STUDENT, {"ch02.mse_loss": _raises_script}, notes=[f"cell 3 was skipped: {SCRIPT}"]),
        ungraded("fay", CHAPTER, "no notebook", "no ch02_gradient_descent.ipynb in the submission folder"),
        ungraded("gus", CHAPTER, "unreadable notebook", f"the notebook is not valid JSON ({SCRIPT})"),
    ]


@pytest.fixture(scope="module")
def written(grades, tmp_path_factory):
    course_dir = tmp_path_factory.mktemp("class")
    return course_dir, reports.write_all(course_dir, CHAPTER, grades)


def feedback(written, student) -> str:
    return (written[1]["feedback"] / f"{student}.html").read_text()


def every_page(written) -> dict[Path, str]:
    course_dir, paths = written
    pages = [paths["report"], reports.class_page_path(course_dir, CHAPTER), *paths["feedback"].glob("*.html")]
    return {page: page.read_text() for page in pages}


def test_every_learner_gets_a_page_and_the_class_a_summary(written, grades):
    course_dir, paths = written
    assert {page.name for page in paths["feedback"].glob("*.html")} == {f"{g.student}.html" for g in grades}
    assert reports.class_page_path(course_dir, CHAPTER).exists()


def test_feedback_opens_with_a_table_of_scores_failing_exercises_first(written):
    page = feedback(written, "cy")
    table = page[page.index("<table>"):page.index("</table>")]
    rows = re.findall(r'<a href="#([^"]+)">', table)
    assert rows[:2] == ["ch02-mse_gradient", "ch02-mse_loss"]  # the two failing ones, in the chapter's order
    assert len(rows) == len(graded_exercises(CHAPTER))
    sections = re.findall(r'<section id="([^"]+)"', page)
    assert sections == rows
    assert page.index("</table>") < page.index("<section")


def test_a_known_mistake_is_named_with_its_hint_in_a_callout(written):
    page = feedback(written, "ben")
    hint = next(m.hint for m in registry.get("ch02.mse_gradient").mistakes if m.name == "gradient sign flipped")
    callouts = re.findall(r'<aside class="callout">(.*?)</aside>', page, re.S)
    assert any("gradient sign flipped" in c and reports._e(hint) in c for c in callouts)
    assert page.count(KNOWN_MISTAKE) == len(callouts) == 2  # check.report's own line became the callout


def test_feedback_keeps_the_inline_checks_format(written, grades):
    page = feedback(written, "ben")
    text = next(e.feedback for e in grades[1].exercises if e.id == "ch02.mse_gradient")
    lines = text.splitlines()  # the exercise, the verdict and its mistake, then the cases, as the inline check writes
    assert lines[1] == "  1 of 5 passed. This looks like a known mistake: gradient sign flipped."
    first = next(i for i, line in enumerate(lines) if line.startswith("  ✗ "))
    explanation = lines[first + 1:first + 3]  # the first failing case's first lines
    assert all(reports._e(line.strip()) in page for line in explanation)


def test_pages_stand_alone_and_escape_learner_strings(written):
    for path, page in every_page(written).items():
        assert "<script" not in page, path  # no script of ours, and none of a learner's
        assert not re.search(r'(src|href)="(https?:)?//|<link', page), path  # nothing fetched from elsewhere
    assert "&lt;script&gt;" in feedback(written, ODD_STUDENT)
    assert "o&#x27;brien &amp; &lt;co&gt;" in written[1]["report"].read_text()


def shown_values(hidden: bool) -> set[str]:
    """The lines of 16 characters or more that `show` writes for the inputs and expected outputs of the
    chapter's hidden (or visible) cases: what a page must not hold when they are hidden."""
    lines = set()
    for exercise in graded_exercises(CHAPTER):
        for case in (c for c in exercise.cases if c.hidden == hidden):
            values = [*case.make_args().values(), exercise.expected_output(case)]
            lines |= {line.strip() for value in values for line in show(value).splitlines() if len(line.strip()) >= 16}
    return lines


def test_hidden_cases_are_named_but_their_values_never_shown(written):
    secrets = shown_values(hidden=True) - shown_values(hidden=False)  # hidden cases may reuse visible data (diabetes)
    assert len(secrets) > 20
    for path, page in every_page(written).items():
        leaked = [secret for secret in secrets if reports._e(secret) in page]
        assert not leaked, (path, leaked[:3])
    page = feedback(written, "dee")
    names = [c.name for c in registry.get("ch02.mse_loss").cases if c.hidden]
    assert all(f'{reports._e(name)}<span class="tag">hidden</span>' in page for name in names)


def test_feedback_links_to_the_class_summary(written):
    page_path = written[1]["feedback"] / "ada.html"
    link = re.search(r'<a href="([^"#]+)">How the class did</a>', page_path.read_text()).group(1)
    assert (page_path.parent / link).resolve() == reports.class_page_path(written[0], CHAPTER).resolve()


def test_an_ungraded_submission_says_why_and_is_not_a_zero(written):
    page = feedback(written, "fay")
    assert "could not be graded: no notebook" in page and "not a score of 0" in page
    assert "<section" not in page


def test_mistakes_csv_counts_learners_per_known_mistake(written):
    with open(written[1]["mistakes"]) as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["exercise", "mistake", "learners", "share"]
    counts = {(row["exercise"], row["mistake"]): (int(row["learners"]), float(row["share"])) for row in rows}
    graded = 6
    assert counts[("ch02.mse_gradient", "gradient sign flipped")] == (2, round(2 / graded, 3))
    assert counts[("ch02.mse_loss", "sum instead of mean")] == (1, round(1 / graded, 3))
    assert counts[("ch02.fit_linear_regression", "gradient sign flipped")] == (1, round(1 / graded, 3))
    assert len(rows) == sum(len(e.mistakes) for e in graded_exercises(CHAPTER))  # every known mistake, made or not
    assert sum(learners for learners, _ in counts.values()) == 4


def test_grades_csv_says_why_each_exercise_lost_its_points(written):
    with open(written[1]["grades"]) as file:
        reasons = {(row["student_id"], row["exercise"]): row["reason"] for row in csv.DictReader(file)}
    assert reasons[("dee", "ch02.mse_loss")] == "2 of 5 cases failed"  # grading's own words, per exercise
    assert reasons[("cy", "ch02.mse_gradient")].endswith("cases failed; gradient sign flipped")
    assert reasons[("fay", "TOTAL")].startswith("no ch02_")
    assert reasons[("ada", "ch02.mse_loss")] == ""


def test_cases_failed_most_leave_out_unwritten_exercises(grades):
    stats = {s.exercise.id: s for s in reports.class_stats(CHAPTER, grades)}
    mse_loss = dict(stats["ch02.mse_loss"].failed_cases)
    hidden = [f"{c.name} (hidden)" for c in registry.get("ch02.mse_loss").cases if c.hidden]
    assert all(mse_loss[label] == 3 for label in hidden)  # cy, dee and the learner whose code raised; not eve's stub
    assert stats["ch02.mse_gradient"].passed == 3 and stats["ch02.mse_gradient"].graded == 6


def test_report_shows_the_class_at_a_glance(written, grades):
    page = written[1]["report"].read_text()
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings == ["Could not be graded", "Scores", "Pass rate per exercise", "Most common mistakes",
                        "Cases failed most", "Learners"]
    problems = page[page.index("Could not be graded"):page.index("<h2>Scores")]
    assert "fay" in problems and "no notebook" in problems and "unreadable notebook" in problems
    assert re.search(r'<img alt="histogram[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}">', page)
    hint = next(m.hint for m in registry.get("ch02.mse_gradient").mistakes if m.name == "gradient sign flipped")
    assert reports._e(hint) in page and "2 (33 %)" in page
    links = re.findall(r'<a href="(feedback/[^"]+)">', page)
    assert len(links) >= len(grades)
    for link in links:
        assert (written[0] / "nncourse" / unquote(html.unescape(link))).exists(), link


def test_the_summary_figure_is_written(written):
    png = written[1]["summary plot"]
    assert png.name == f"{CHAPTER}_summary.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_printed_summary_lists_the_top_mistakes(grades):
    text = reports.summary(CHAPTER, grades)
    assert text.startswith(f"{CHAPTER}: 8 submissions, 6 graded, 1 no notebook, 1 unreadable notebook")
    assert "most common mistakes:" in text and "33 % gradient sign flipped (2 learners, ch02.mse_gradient)" in text
    assert "fay: no notebook" in text


def class_with_totals(*totals, points=11):
    """Graded submissions of one exercise worth `points` scoring `totals`, after one that could not be graded
    (whose maximum is 0: it has no exercises)."""
    graded = [SubmissionGrade(f"learner{k}", CHAPTER, "graded", "",
                              [ExerciseGrade("ch02.mse_loss", points, total, 0, 1, "")], [], True, 1.0)
              for k, total in enumerate(totals)]
    return [SubmissionGrade("zed", CHAPTER, "no notebook", "no notebook file", [], [], True, 0.0), *graded]


@pytest.mark.parametrize("totals, median", [
    ((4, 11), "median 7.5 of 11"),  # an even class: the mean of the middle two, not the upper one
    ((11, 4, 9), "median 9 of 11"),  # an odd class, handed in out of order
    ((3, 5, 8, 6), "median 5.5 of 11"),
    ((7,), "median 7 of 11"),
    ((), "no score"),
])
def test_the_median_total_is_the_median_in_the_summary_the_report_and_the_class_page(totals, median):
    grades = class_with_totals(*totals)
    assert reports.median_text(grades) == median
    assert (f"total: {median}" in reports.summary(CHAPTER, grades)) == bool(totals)  # no total line when none graded
    for page in (reports.report_page(CHAPTER, grades), reports.class_page(CHAPTER, grades)):
        assert f"score {median}." in page
