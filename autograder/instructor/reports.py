"""What a graded class gives its instructor and its learners: exports, pages, a figure, a summary.

Inside an nbgrader course directory, for a chapter such as ch02:

    nncourse/ch02_grades.csv                one row per learner and exercise, plus a total
    nncourse/ch02_mistakes.csv              per exercise, how many learners made each known mistake
    nncourse/ch02_summary.png               pass rate per exercise and the most common mistakes
    nncourse/ch02_report.html               the instructor's report: the class at a glance
    nncourse/feedback/ch02/<student>.html   each learner's feedback page
    nncourse/feedback/ch02_summary.html     the class summary without names, linked from every feedback page

The statistics count graded submissions only: a submission that could not be graded is listed
apart with its status and reason, never counted as a plain 0. Pages are self-contained HTML (the
style sheet and images embedded, no script). Everything on them that may come from a learner (their
id, outputs, tracebacks, notes) is escaped, and a hidden case appears by name only: the grader's
feedback never holds a hidden case's inputs or expected values, and the pages add none.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from autograder.learner import registry
from autograder.learner.check import KNOWN_MISTAKE, count_line
from autograder.instructor.classroom import work_dir
from autograder.instructor.results import CaseGrade, ExerciseGrade, SubmissionGrade, graded_exercises

GRADED = "graded"
TOP_MISTAKES = 8  # mistakes shown in the figure and the printed summary
TOP_CASES = 3  # most failed cases shown per exercise
# Every file here is written as UTF-8, whatever the locale. Learner strings reach the grades representable
# (protocol.representable, intake.shown_name); should one slip through with a lone surrogate, it is written as
# its escape rather than stopping the whole class's exports.
UNREPRESENTABLE = "backslashreplace"


# --- one exercise --------------------------------------------------------------------------------------


def passed(exercise: ExerciseGrade) -> bool:
    return exercise.score == exercise.points


def known_mistake(exercise_id: str, name: str) -> registry.Mistake | None:
    """The registered mistake of that name (for its hint), or None if the registry no longer has it."""
    return next((m for m in registry.get(exercise_id).mistakes if m.name == name), None)


def failed_cases(exercise: ExerciseGrade) -> list[str]:
    """The labels of the cases a learner's written code failed (none for an exercise left as the stub,
    which fails every case alike and would say nothing about which cases are hard)."""
    return [] if exercise.not_written else [case.label for case in exercise.case_grades if not case.passed]


# --- the class in numbers ------------------------------------------------------------------------------


@dataclass
class ExerciseStats:
    """How the graded submissions did on one exercise."""

    exercise: registry.Exercise
    graded: int  # submissions graded
    passed: int  # ... with full marks on this exercise
    mean_score: float
    mistakes: list[tuple[registry.Mistake, int]]  # every known mistake and how many learners made it, most first
    failed_cases: list[tuple[str, int]]  # case labels and how many learners who wrote it failed each, most first

    @property
    def pass_rate(self) -> float:
        return self.passed / self.graded if self.graded else 0.0

    def share(self, learners: int) -> float:
        return learners / self.graded if self.graded else 0.0


def graded_only(grades: list[SubmissionGrade]) -> list[SubmissionGrade]:
    return [grade for grade in grades if grade.status == GRADED]


def class_stats(chapter: str, grades: list[SubmissionGrade]) -> list[ExerciseStats]:
    """Per exercise of `chapter`: pass rate, mean score, known mistakes made, cases failed most."""
    results = [{e.id: e for e in grade.exercises} for grade in graded_only(grades)]
    stats = []
    for exercise in graded_exercises(chapter):
        mine = [result[exercise.id] for result in results if exercise.id in result]
        made = Counter(name for e in mine for name in e.mistakes)
        failed = Counter(label for e in mine for label in failed_cases(e))
        stats.append(ExerciseStats(
            exercise, len(mine), sum(map(passed, mine)), sum(e.score for e in mine) / len(mine) if mine else 0.0,
            sorted(((m, made[m.name]) for m in exercise.mistakes), key=lambda pair: -pair[1]),
            failed.most_common()))
    return stats


@dataclass
class MistakeCount:
    exercise: registry.Exercise
    mistake: registry.Mistake
    learners: int
    share: float  # of the graded submissions

    def label(self) -> str:
        """"31 % gradient sign flipped"."""
        return f"{round(100 * self.share)} % {self.mistake.name}"


def mistake_counts(stats: list[ExerciseStats]) -> list[MistakeCount]:
    """Every known mistake of the chapter, in exercise order, the most made first within each."""
    return [MistakeCount(s.exercise, mistake, made, s.share(made)) for s in stats for mistake, made in s.mistakes]


def most_common_mistakes(stats: list[ExerciseStats], top: int = TOP_MISTAKES) -> list[MistakeCount]:
    """The mistakes made by the most learners, across the chapter (only those someone made)."""
    made = [count for count in mistake_counts(stats) if count.learners]
    return sorted(made, key=lambda count: -count.learners)[:top]


def _learners(n: int) -> str:
    return f"{n} learner{'s' if n != 1 else ''}"


def status_counts(grades: list[SubmissionGrade]) -> str:
    """"6 graded, 1 no notebook"."""
    return ", ".join(f"{n} {status}" for status, n in sorted(Counter(grade.status for grade in grades).items()))


def median_score(grades: list[SubmissionGrade]) -> float | None:
    """The median total of the graded submissions (of an even number, the mean of the middle two); None for none."""
    totals = [grade.score for grade in graded_only(grades)]
    return statistics.median(totals) if totals else None


def median_text(grades: list[SubmissionGrade]) -> str:
    """"median 12 of 16", "median 7.5 of 11", or "no score" when nothing was graded."""
    median = median_score(grades)
    return "no score" if median is None else f"median {median:g} of {graded_only(grades)[0].max_score}"


# --- exports -------------------------------------------------------------------------------------------


def export_csv(course_dir: Path, chapter: str, grades: list[SubmissionGrade]) -> Path:
    """One row per learner and exercise, then a TOTAL row per learner; status says if it was graded."""
    path = work_dir(course_dir) / f"{chapter}_grades.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8", errors=UNREPRESENTABLE) as file:
        writer = csv.writer(file)
        writer.writerow(["student_id", "chapter", "exercise", "score", "max_score", "status", "reason"])
        for grade in grades:
            for exercise in grade.exercises:
                why = "" if passed(exercise) else (exercise.reason or grade.reason or
                                                   f"{exercise.cases - exercise.cases_passed} of {exercise.cases} "
                                                   "cases failed")
                writer.writerow([grade.student, chapter, exercise.id, exercise.score, exercise.points,
                                 grade.status, why])
            writer.writerow([grade.student, chapter, "TOTAL", grade.score, grade.max_score, grade.status,
                             grade.reason])
    return path


def export_mistakes(course_dir: Path, chapter: str, grades: list[SubmissionGrade]) -> Path:
    """One row per exercise and known mistake: how many graded learners made it, and their share."""
    path = work_dir(course_dir) / f"{chapter}_mistakes.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8", errors=UNREPRESENTABLE) as file:
        writer = csv.writer(file)
        writer.writerow(["exercise", "mistake", "learners", "share"])
        for count in mistake_counts(class_stats(chapter, grades)):
            writer.writerow([count.exercise.id, count.mistake.name, count.learners, f"{count.share:.3f}"])
    return path


def summary(chapter: str, grades: list[SubmissionGrade]) -> str:
    """The class in a few lines for the terminal: statuses, what could not be graded and why, each
    exercise's pass rate and mean score, the median total, the most common mistakes and failed cases."""
    lines = [f"{chapter}: {len(grades)} submissions, {status_counts(grades)}"]
    lines += [f"  {grade.student}: {grade.status} ({grade.reason})" for grade in grades if grade.status != GRADED]
    stats = class_stats(chapter, grades)
    if not graded_only(grades):
        return "\n".join(lines)
    lines.append(f"  exercise                          pass rate   mean score   (of {len(graded_only(grades))} graded)")
    lines += [f"  {s.exercise.id:32}  {s.passed:3d}/{s.graded:<3d}    {s.mean_score:.2f} / {s.exercise.points}"
              for s in stats]
    lines.append(f"  total: {median_text(grades)}")
    common = most_common_mistakes(stats)
    if common:
        lines.append("  most common mistakes:")
        lines += [f"    {count.label()} ({_learners(count.learners)}, {count.exercise.id})" for count in common]
    failing = [(s.exercise.id, *s.failed_cases[0]) for s in stats if s.failed_cases]
    if failing:
        lines.append("  case failed most, per exercise:")
        lines += [f"    {exercise_id}: {case} ({_learners(n)})" for exercise_id, case, n in failing]
    return "\n".join(lines)


# --- figures -------------------------------------------------------------------------------------------


def _figure(width: float, height: float, columns: int = 1):
    """A matplotlib figure drawn off screen (no pyplot: nothing global changes), and its axes."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(1, columns)


def _as_percent(axes) -> None:
    """Shares from 0 to 1 on the x axis, written as percentages."""
    from matplotlib.ticker import PercentFormatter

    axes.set_xlim(0, 1)
    axes.xaxis.set_major_formatter(PercentFormatter(1.0))


def summary_figure(chapter: str, grades: list[SubmissionGrade]):
    """The class summary's figure: each exercise's pass rate, and the most common mistakes as labelled bars."""
    stats = class_stats(chapter, grades)
    common = most_common_mistakes(stats)
    figure, (rates, mistakes) = _figure(13, 0.9 + 0.38 * max(len(stats), len(common), 3), columns=2)
    rates.barh([s.exercise.name for s in stats], [s.pass_rate for s in stats], color="#2da44e")
    _as_percent(rates)
    rates.set(xlabel=f"share of the {len(graded_only(grades))} graded learners with full marks",
              title=f"{chapter}: pass rate per exercise")
    rates.invert_yaxis()
    mistakes.barh(range(len(common)), [count.share for count in common], color="#d4a72c")
    for row, count in enumerate(common):
        mistakes.annotate(count.label(), (0, row), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
    _as_percent(mistakes)
    mistakes.set(xlabel="share of the graded learners", title="most common known mistakes",
                 yticks=range(len(common)), yticklabels=[count.exercise.name for count in common])
    mistakes.invert_yaxis()
    if not common:
        mistakes.text(0.5, 0.5, "no known mistake was made", ha="center", va="center", transform=mistakes.transAxes)
    return figure


def plot_summary(course_dir: Path, chapter: str, grades: list[SubmissionGrade]) -> Path:
    """`<chapter>_summary.png`: `summary_figure`, saved."""
    path = work_dir(course_dir) / f"{chapter}_summary.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    summary_figure(chapter, grades).savefig(path, dpi=100)
    return path


def score_figure(grades: list[SubmissionGrade]):
    """The graded submissions' total scores, one bar per score, centred on it."""
    graded = graded_only(grades)
    figure, axes = _figure(7, 3)
    top = max((grade.max_score for grade in grades), default=0)
    axes.hist([grade.score for grade in graded], bins=[score - 0.5 for score in range(top + 2)], color="#0969da",
              rwidth=0.85)
    axes.set(xlabel="total score", ylabel="learners", title=f"scores of the {len(graded)} graded submissions",
             xlim=(-0.5, top + 0.5))
    axes.yaxis.get_major_locator().set_params(integer=True)
    return figure


def score_histogram(grades: list[SubmissionGrade]) -> bytes:
    """`score_figure` as a PNG."""
    buffer = io.BytesIO()
    score_figure(grades).savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


# --- pages ---------------------------------------------------------------------------------------------

STYLE = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --pass: #1a7f37; --fail: #cf222e;
        --link: #0969da; }
* { box-sizing: border-box; }
body { margin: 2.5rem auto; max-width: 58rem; padding: 0 1.25rem; color: var(--ink); background: #fff;
       font: 16px/1.6 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { margin-bottom: 1.5rem; }
.kicker { margin: 0; color: var(--muted); font-size: .8rem; letter-spacing: .06em; text-transform: uppercase; }
h1 { margin: .15rem 0 .5rem; font-size: 2rem; line-height: 1.2; }
h2 { margin: 2.5rem 0 .75rem; padding-bottom: .3rem; border-bottom: 1px solid var(--line); font-size: 1.3rem; }
a { color: var(--link); text-decoration: none; } a:hover { text-decoration: underline; }
table { width: 100%; margin: .75rem 0 1.25rem; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: .45rem .65rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { color: var(--muted); font-size: .75rem; font-weight: 600; letter-spacing: .05em; text-transform: uppercase; }
.num { text-align: right; white-space: nowrap; }
.badge { display: inline-block; padding: .05rem .6rem; border-radius: 1rem; font-size: .85rem; font-weight: 600;
         white-space: nowrap; }
.badge.pass { background: #dafbe1; color: var(--pass); } .badge.fail { background: #ffebe9; color: var(--fail); }
.mark { display: inline-block; width: 1.3rem; font-weight: 700; }
.mark.pass { color: var(--pass); } .mark.fail { color: var(--fail); }
.tag { margin-left: .4rem; padding: 0 .4rem; border: 1px solid var(--line); border-radius: .3rem; color: var(--muted);
       font-size: .75rem; }
.callout { margin: 1rem 0; padding: .75rem 1rem; border-left: 4px solid #bf8700; border-radius: 0 .4rem .4rem 0;
           background: #fff8c5; }
.callout.alert { border-color: var(--fail); background: #ffebe9; }
.callout p { margin: .2rem 0; } .callout .title { font-weight: 600; }
ul.cases { margin: .5rem 0; padding: 0; list-style: none; } ul.cases > li { margin: .35rem 0; }
pre { margin: .35rem 0 .75rem 1.3rem; padding: .7rem .9rem; overflow-x: auto; border-radius: .4rem;
      background: var(--soft); font: .82rem/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.muted { color: var(--muted); }
.meter { display: inline-block; width: 8rem; height: .6rem; margin-right: .5rem; border-radius: .3rem;
         background: var(--soft); vertical-align: middle; }
.meter span { display: block; height: 100%; border-radius: .3rem; background: var(--pass); }
img { max-width: 100%; height: auto; }
"""


def _e(text) -> str:
    """Text escaped for HTML (and for a quoted attribute)."""
    return html.escape(str(text), quote=True)


def _page(title: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{_e(title)}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _header(kicker: str, title: str, *lines: str) -> str:
    """A page's header; `lines` are HTML already escaped."""
    return (f'<header><p class="kicker">{_e(kicker)}</p><h1>{_e(title)}</h1>'
            + "".join(f"<p>{line}</p>" for line in lines) + "</header>")


NUMERIC = ' class="num"'


def _table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """A table; `head` is plain text, `rows` hold HTML already escaped; columns in `numeric` align right."""
    def cells(tag, row):
        return "".join(f"<{tag}{NUMERIC if i in numeric else ''}>{cell}</{tag}>" for i, cell in enumerate(row))

    return (f"<table><thead><tr>{cells('th', [_e(h) for h in head])}</tr></thead><tbody>"
            + "".join(f"<tr>{cells('td', row)}</tr>" for row in rows) + "</tbody></table>")


def _total(grade: SubmissionGrade) -> str:
    """"7 / 10 points", or "not graded" (never a 0 for a submission that could not be graded)."""
    return f"{grade.score} / {grade.max_score} points" if grade.status == GRADED else "not graded"


def _score_badge(exercise: ExerciseGrade) -> str:
    return f'<span class="badge {"pass" if passed(exercise) else "fail"}">{exercise.score} / {exercise.points}</span>'


def _png(data: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _anchor(exercise_id: str) -> str:
    return registry.grade_id_of(exercise_id)


def _mistake_callout(exercise_id: str, name: str) -> str:
    mistake = known_mistake(exercise_id, name)
    hint = f"<p>{_e(mistake.hint)}</p>" if mistake else ""
    return f'<aside class="callout"><p class="title">{KNOWN_MISTAKE} {_e(name)}</p>{hint}</aside>'


def feedback_folder(course_dir: Path, chapter: str) -> Path:
    return work_dir(course_dir) / "feedback" / chapter


def class_page_name(chapter: str) -> str:
    return f"{chapter}_summary.html"


def class_page_path(course_dir: Path, chapter: str) -> Path:
    """The class summary page, beside the chapter's feedback folder (so no learner's id can clash with it)."""
    return work_dir(course_dir) / "feedback" / class_page_name(chapter)


def feedback_page(grade: SubmissionGrade) -> str:
    """One learner's page: a table of exercises and scores, failing first, then each exercise's cases in
    the inline check's format, its known mistake's hint set apart, and a link to the class summary."""
    order = sorted(grade.exercises, key=passed)  # failing first; sorting is stable, so the chapter's order within
    ungraded = grade.status != GRADED
    header = _header(f"{grade.chapter} · feedback for {grade.student}", _total(grade).capitalize(),
                     f'<a href="../{_e(quote(class_page_name(grade.chapter)))}">How the class did</a>')
    alert = (f'<aside class="callout alert"><p class="title">Your notebook could not be graded: {_e(grade.status)}'
             f"</p><p>{_e(grade.reason)}</p><p>Your instructor's report lists it: this is not a score of 0.</p>"
             "</aside>") if ungraded else ""
    notes = (f'<h2>About your notebook</h2><ul>{"".join(f"<li>{_e(note)}</li>" for note in grade.notes)}</ul>'
             if grade.notes else "")
    rows = [[_e(e.id), "—", "not graded", ""] if ungraded else _exercise_row(e) for e in order]
    table = _table(["exercise", "score", "cases passed", "known mistake"], rows, numeric={1, 2})
    sections = "" if ungraded else "".join(_exercise_section(e) for e in order)
    return _page(f"{grade.chapter} feedback: {grade.student}", header + alert + table + notes + sections)


def _exercise_row(exercise: ExerciseGrade) -> list[str]:
    """A graded exercise's row in a feedback page's table, linked to its section below."""
    return [f'<a href="#{_e(_anchor(exercise.id))}">{_e(exercise.id)}</a>', _score_badge(exercise),
            f"{exercise.cases_passed} of {exercise.cases}", _e(", ".join(exercise.mistakes))]


def _exercise_section(exercise: ExerciseGrade) -> str:
    """An exercise's part of a feedback page: its known mistake's callout, its cases as the inline check lists
    them, and the check's count ("3 of 5 passed.")."""
    callouts = "".join(_mistake_callout(exercise.id, name) for name in exercise.mistakes)
    closing = count_line(exercise.id, exercise.cases_passed, exercise.cases, exercise.not_written)
    return (f'<section id="{_e(_anchor(exercise.id))}"><h2>{_e(exercise.id)} {_score_badge(exercise)}</h2>'
            f'{callouts}<ul class="cases">{"".join(map(_case_item, exercise.case_grades))}</ul>'
            f'<p class="muted">{_e(closing)}</p></section>')


def _case_item(case: CaseGrade) -> str:
    mark = '<span class="mark pass">✓</span>' if case.passed else '<span class="mark fail">✗</span>'
    tag = '<span class="tag">hidden</span>' if case.hidden else ""
    explanation = f"<pre>{_e(chr(10).join(case.lines))}</pre>" if case.lines else ""
    return f"<li>{mark}{_e(case.name)}{tag}{explanation}</li>"


def _class_sections(chapter: str, grades: list[SubmissionGrade]) -> str:
    """The class at a glance, without names: the score distribution, each exercise's pass rate, the most
    common mistakes with their hints, and the cases failed most."""
    stats = class_stats(chapter, grades)
    graded = len(graded_only(grades))
    scores = _png(score_histogram(grades), f"histogram of the {graded} graded scores") if graded else \
        "<p>No submission could be graded.</p>"
    return (f"<h2>Scores</h2>{scores}"
            f'<h2>Pass rate per exercise</h2><p class="muted">Of the {graded} graded submissions.</p>'
            f"{_pass_rates(stats)}<h2>Most common mistakes</h2>{_common_mistakes(stats)}"
            f"<h2>Cases failed most</h2>{_cases_failed_most(stats)}")


def _pass_rates(stats: list[ExerciseStats]) -> str:
    return _table(["exercise", "full marks", "pass rate", "mean score"],
                  [[_e(s.exercise.id), f"{s.passed} of {s.graded}",
                    f'<span class="meter"><span style="width: {100 * s.pass_rate:.0f}%"></span></span>'
                    f"{100 * s.pass_rate:.0f} %", f"{s.mean_score:.2f} / {s.exercise.points}"] for s in stats],
                  numeric={1, 3})


def _common_mistakes(stats: list[ExerciseStats]) -> str:
    common = most_common_mistakes(stats)
    if not common:
        return "<p>No learner made a known mistake.</p>"
    return _table(["learners", "exercise", "mistake and its hint"],
                  [[f"{count.learners} ({round(100 * count.share)} %)", _e(count.exercise.id),
                    f"<strong>{_e(count.mistake.name)}</strong><br>{_e(count.mistake.hint)}"] for count in common],
                  numeric={0})


def _cases_failed_most(stats: list[ExerciseStats]) -> str:
    rows = [[_e(s.exercise.id), "<br>".join(f'{_e(case)} <span class="muted">({learners})</span>'
                                            for case, learners in s.failed_cases[:TOP_CASES])]
            for s in stats if s.failed_cases]
    return _table(["exercise", "cases failed most (learners)"], rows) if rows else "<p>No case failed.</p>"


def class_page(chapter: str, grades: list[SubmissionGrade]) -> str:
    """The class summary a learner may see: no names, only counts."""
    header = _header(f"{chapter} · the class", f"How the class did on {chapter}",
                     f"{len(graded_only(grades))} submissions graded; score {median_text(grades)}.")
    return _page(f"{chapter}: the class", header + _class_sections(chapter, grades))


def write_feedback(course_dir: Path, chapter: str, grades: list[SubmissionGrade]) -> list[Path]:
    """Each learner's feedback page, and the class summary page they link to; returns the learners' pages."""
    folder = feedback_folder(course_dir, chapter)
    folder.mkdir(parents=True, exist_ok=True)
    class_page_path(course_dir, chapter).write_text(class_page(chapter, grades), encoding="utf-8",
                                                 errors=UNREPRESENTABLE)
    written = []
    for grade in grades:
        path = folder / f"{grade.student}.html"
        path.write_text(feedback_page(grade), encoding="utf-8", errors=UNREPRESENTABLE)
        written.append(path)
    return written


def report_page(chapter: str, grades: list[SubmissionGrade]) -> str:
    """The instructor's report: the submissions that could not be graded first, then the class at a glance,
    then every learner with a link to their feedback page."""
    header = _header(f"{chapter} · instructor's report", f"{chapter}: {len(grades)} submissions",
                     f"{_e(status_counts(grades))}; score {median_text(grades)}.")
    ungraded = [grade for grade in grades if grade.status != GRADED]
    problems = _table(["learner", "status", "reason"],
                      [[_learner_link(chapter, g), _e(g.status), _e(g.reason)] for g in ungraded]) \
        if ungraded else "<p>Every submission was graded.</p>"
    learners = _table(["learner", "status", "score", "exercises failed"],
                      [[_learner_link(chapter, g), _e(g.status), _total(g), _failed_list(g)]
                       for g in grades], numeric={2})
    return _page(f"{chapter}: instructor's report",
                 header + f"<h2>Could not be graded</h2>{problems}" + _class_sections(chapter, grades)
                 + f"<h2>Learners</h2>{learners}")


def _learner_link(chapter: str, grade: SubmissionGrade) -> str:
    return f'<a href="feedback/{_e(quote(chapter))}/{_e(quote(grade.student))}.html">{_e(grade.student)}</a>'


def _failed_list(grade: SubmissionGrade) -> str:
    """The exercises a graded learner failed, each with the known mistake it matched, if any."""
    if grade.status != GRADED:
        return '<span class="muted">not graded</span>'
    return "<br>".join(_e(e.id) + (f' <span class="muted">({_e(", ".join(e.mistakes))})</span>' if e.mistakes else "")
                       for e in grade.exercises if not passed(e))


def write_report(course_dir: Path, chapter: str, grades: list[SubmissionGrade]) -> Path:
    """`<chapter>_report.html`, the instructor's report."""
    path = work_dir(course_dir) / f"{chapter}_report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report_page(chapter, grades), encoding="utf-8", errors=UNREPRESENTABLE)
    return path


def write_all(course_dir: Path, chapter: str, grades: list[SubmissionGrade]) -> dict[str, Path]:
    """Every export, page and figure of a graded chapter; returns where each is, by what it is."""
    write_feedback(course_dir, chapter, grades)
    return {"report": write_report(course_dir, chapter, grades),
            "grades": export_csv(course_dir, chapter, grades),
            "mistakes": export_mistakes(course_dir, chapter, grades),
            "feedback": feedback_folder(course_dir, chapter),
            "summary plot": plot_summary(course_dir, chapter, grades)}
