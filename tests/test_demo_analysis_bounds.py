"""The demonstration analysis (demos.py) reads learner text in the grader's own process: it is bounded.

A submission built to break the analysis (nesting that exhausts the parser, a cell of megabytes, thousands
of cells, IPython syntax that makes its transformer loop, a source that is not text) gets nothing skipped,
quickly and without an exception, so every cell runs and the grade is what it would have been. The course's
own notebook, even with a long learner cell beside it, still has its demonstrations skipped.
"""
import time

import nbformat
import pytest

from autograder.instructor import demos, grading, notebooks

CHAPTER = "ch02"
SECONDS = 5  # generous, for a slow CI machine: the analysis gives up after demos.ANALYSIS_SECONDS of CPU time


def course_cells():
    """ch02's code cells, as grading builds them from a notebook."""
    notebook = notebooks.read(notebooks.chapter_notebook(CHAPTER))
    return [{"index": i, "source": cell.source} for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]


def demo_indices():
    notebook = notebooks.read(notebooks.chapter_notebook(CHAPTER))
    return {index for index, cell in enumerate(notebook.cells) if demos.is_demo(cell)}


@pytest.fixture(autouse=True, scope="module")
def warm():
    """What a grader does once per process, not per submission: import IPython, read the course's notebook."""
    demos.cells_to_skip(course_cells(), CHAPTER, grading.exercise_names(CHAPTER))


def skipped(cells, capsys):
    needed = grading.exercise_names(CHAPTER)
    start = time.monotonic()
    result = demos.cells_to_skip(cells, CHAPTER, needed)
    elapsed = time.monotonic() - start
    assert elapsed < SECONDS, elapsed
    assert capsys.readouterr() == ("", "")
    return result


def with_learner_cell(source):
    cells = course_cells()
    return cells + [{"index": cells[-1]["index"] + 1, "source": source}]


def just_under(line_of, limit=demos.MAX_ANALYSED_CHARS - 1):
    """Ordinary code of exactly `limit` characters: lines from `line_of(i)`, then a comment to fill up."""
    lines, size, i = [], 0, 0
    while size + len(line_of(i)) < limit - 2:
        lines.append(line_of(i))
        size += len(lines[-1])
        i += 1
    source = "".join(lines) + "#"
    return source + "x" * (limit - len(source))


MAX = demos.MAX_ANALYSED_CHARS
ATTACKS = {
    "3000 nested lambdas": "f = " + "lambda: " * 3000 + "0",
    "nested lambdas under the bound": "f = " + "lambda: " * ((MAX - 10) // 8) + "0",
    "nested unary minus under the bound": "x = " + "-" * (MAX - 10) + "1",
    "100k nested parentheses": "x = " + "(" * 100_000 + "0" + ")" * 100_000,
    "100k nested lists": "x = " + "[" * 100_000 + "]" * 100_000,
    "50k nested calls": "x = " + "f(" * 50_000 + ")" * 50_000,
    "100k attribute chain": "x = a" + ".b" * 100_000,
    "attribute chain under the bound": "x = a" + ".b" * ((MAX - 10) // 2),
    "addition chain under the bound": "x = 1" + "+1" * ((MAX - 10) // 2),
    "a 2.9 MB cell": "x = 1 + 2\n" * 290_000,
    "500k statements": "x = 1\n" * 500_000,
    "IPython magics under the bound (a transformer pass each)": "%time\n" * ((MAX - 10) // 6),
    "shell commands under the bound": "!ls\n" * ((MAX - 10) // 4),
}


@pytest.mark.parametrize("source", ATTACKS.values(), ids=ATTACKS.keys())
def test_a_cell_built_to_break_the_analysis_skips_nothing(source, capsys):
    assert skipped(with_learner_cell(source), capsys) == set()


@pytest.mark.parametrize("depth", [50, 150, 1000])
def test_deep_nesting_python_rejects_is_quick_and_raises_nothing(depth, capsys):
    """Nesting past the parser's own limits is a SyntaxError: that cell never runs (and reads nothing), and a
    depth it accepts is analysed; either way the answer is a subset of the demonstrations, never an error."""
    for source in ("x = " + "(" * depth + "0" + ")" * depth,
                   "".join(" " * i + "if x:\n" for i in range(min(depth, 150))) + " " * min(depth, 150) + "pass\n",
                   "x = " + "f'{" * depth + "1" + "}'" * depth):
        assert skipped(with_learner_cell(source), capsys) <= demo_indices()


def test_many_cells_skip_nothing_past_the_total_bound(capsys):
    cells = course_cells()
    many = cells + [{"index": 1000 + i, "source": f"v{i} = {i}"} for i in range(100_000)]
    assert sum(len(cell["source"]) for cell in many) > demos.MAX_TOTAL_ANALYSED
    assert skipped(many, capsys) == set()


def test_many_cells_under_the_total_bound_end_in_time(capsys):
    """5,000 small cells are analysed (or, on a slow machine, run out of time: then nothing is skipped); 15,000
    distinct ones of two lines cost more than the time limit allows."""
    cells = course_cells()
    some = cells + [{"index": 1000 + i, "source": f"v{i} = {i}"} for i in range(5_000)]
    assert skipped(some, capsys) in (set(), demo_indices())
    many = cells + [{"index": 1000 + i, "source": f"w{i}=1\n" * 2} for i in range(15_000)]
    assert sum(len(cell["source"]) for cell in many) <= demos.MAX_TOTAL_ANALYSED
    assert skipped(many, capsys) in (set(), demo_indices())


@pytest.mark.parametrize("source", [None, 42, b"x = 1", ["x = 1\n", "y = 2"], {"x": 1}],
                         ids=["None", "int", "bytes", "list", "dict"])
def test_a_source_that_is_not_text_skips_nothing(source, capsys):
    assert skipped(with_learner_cell(source), capsys) == set()
    assert demos.cell_names(source).unknown


@pytest.mark.parametrize("shape", ["missing source", "not a dict", "unhashable index", "cells is None"])
def test_a_malformed_cell_list_skips_nothing(shape, capsys):
    cells = course_cells()
    if shape == "missing source":
        cells.append({"index": 999})
    elif shape == "not a dict":
        cells.append("x = 1")
    elif shape == "unhashable index":
        cells[0] = {"index": [0], "source": cells[0]["source"]}
    else:
        cells = None
    assert skipped(cells, capsys) == set()


def test_the_course_notebook_still_has_its_demonstrations_skipped(capsys):
    assert skipped(course_cells(), capsys) == demo_indices() != set()


@pytest.mark.parametrize("line_of", [lambda i: f"pad_{i} = np.zeros({i % 7}) * {i}\n",
                                     lambda i: f"def helper_{i}(x):\n    return x + {i}\n"],
                         ids=["assignments", "functions"])
def test_a_learner_cell_just_under_the_bound_keeps_the_demonstrations_skipped(line_of, capsys):
    source = just_under(line_of)
    assert len(source) == demos.MAX_ANALYSED_CHARS - 1
    assert not demos.cell_names(source).unknown
    assert skipped(with_learner_cell(source), capsys) == demo_indices()
    too_long = source + "\n" + "#" * 2
    assert skipped(with_learner_cell(too_long), capsys) == set()


def test_bounds_leave_the_course_a_wide_margin():
    sources = [cell.source for path in notebooks.all_notebooks() for cell in notebooks.read(path).cells
               if cell.cell_type == "code"]
    longest = max(map(len, sources))
    largest = max(sum(len(cell.source) for cell in notebooks.read(path).cells if cell.cell_type == "code")
                  for path in notebooks.all_notebooks())
    assert 2 * longest < demos.MAX_ANALYSED_CHARS and 5 * largest < demos.MAX_TOTAL_ANALYSED, (longest, largest)


def test_a_long_text_never_reaches_the_cache():
    before = demos._cell_names.cache_info().currsize
    assert demos.cell_names("x = 1\n" * demos.MAX_ANALYSED_CHARS).unknown
    assert demos._cell_names.cache_info().currsize == before


def test_out_of_time_skips_nothing_and_is_not_remembered(monkeypatch, capsys):
    source = f"learner_value_{time.monotonic_ns()} = 1"  # a text no earlier test analysed
    monkeypatch.setattr(demos, "ANALYSIS_SECONDS", 0.0)
    assert skipped(with_learner_cell(source), capsys) == set()
    assert demos.cell_names(source).unknown
    monkeypatch.undo()
    assert not demos.cell_names(source).unknown
    assert skipped(with_learner_cell(source), capsys) == demo_indices()


def test_a_syntax_error_still_binds_nothing_and_the_demonstrations_are_skipped(capsys):
    assert demos.cell_names("def f(:\n") == demos.Names(frozenset(), frozenset(), False)
    assert skipped(with_learner_cell("def f(:\n"), capsys) == demo_indices()
