"""The mutation run of the grading code (`python -m benchmarks.mutation.grading_code`): each mutant points at its own
statement, the traced run selects the tests that execute it (and never fewer than a shared fixture needs), and a
forked pytest run tells a killed mutant from a survivor, on a toy package of a few lines."""
import ast
import json
import subprocess
import sys
import textwrap

import pytest

from benchmarks.mutation.grading_code import ROOT, GradingMutant, Trace, mutants_of

TOY = textwrap.dedent('''
    """A toy module."""
    LIMIT = 3


    def clipped(values, limit=LIMIT):
        """values, each at most `limit`."""
        kept = []
        for value in values:
            if value > limit:
                value = limit
            kept.append(value)
        return kept


    def untested(a, b):
        return (a +
                b)
''')


def test_each_mutant_names_the_statement_it_changes_in_the_module_as_unparsed():
    """The traced run sees the module as `ast.unparse` writes it (one line per statement, no comments): a mutant's
    `statement_line` must be the line of the changed statement there, its `line` the line in the committed text."""
    unparsed = ast.unparse(ast.parse(TOY)).splitlines()
    committed = TOY.splitlines()
    mutants = mutants_of("toy.py", TOY)
    assert len(mutants) > 10
    for mutant in mutants:
        changed = [i + 1 for i, (old, new) in enumerate(zip(unparsed, mutant.source.splitlines())) if old != new]
        if len(mutant.source.splitlines()) == len(unparsed):  # a dropped statement becomes `pass`: same length
            assert changed == [mutant.statement_line], mutant.change
        assert committed[mutant.line - 1].strip(), mutant.change
    two_lines = [m for m in mutants if m.change == "'+' -> '-'"]
    assert [(m.line, unparsed[m.statement_line - 1].strip()) for m in two_lines] == [(17, "return a + b")]
    assert not [m for m in mutants if m.line == 2], "the docstring is never mutated"


def toy_mutant(statement_line):
    return GradingMutant("m.py", statement_line, 0, statement_line, "'>' -> '>='", "")


def test_the_trace_selects_the_tests_that_run_a_statement_fastest_first():
    trace = Trace(lines={"m.py": {"5": ["t.py::slow", "t.py::fast"], "6": ["", "t.py::fast"], "7": []}},
                  seconds={"t.py::slow": 2.0, "t.py::fast": 0.1, "t.py::other": 0.5, "u.py::far": 1.0},
                  shared={})
    assert trace.tests_for(toy_mutant(5)) == ["t.py::fast", "t.py::slow"]
    assert trace.tests_for(toy_mutant(6)) is None, "run at import too: every test may depend on it"
    assert trace.tests_for(toy_mutant(7)) is None, "run by no test in this process: the whole list"
    assert trace.tests_for(toy_mutant(8)) is None
    assert trace.tests_in(["t.py"]) == ["t.py::fast", "t.py::other", "t.py::slow"]
    assert trace.time_for(["t.py::fast", "t.py::slow"]) == pytest.approx(60 + 21)


def test_a_statement_run_while_setting_up_a_shared_fixture_selects_every_test_that_uses_it():
    trace = Trace(lines={"m.py": {"5": ["t.py::first"]}}, seconds={"t.py::first": 1, "t.py::second": 1},
                  shared={"t.py::first": ["t.py::first", "t.py::second"]})
    assert trace.tests_for(toy_mutant(5)) == ["t.py::first", "t.py::second"]


TOY_TEST = textwrap.dedent('''
    import pytest
    from toy import clipped


    @pytest.fixture(scope="module")
    def clipped_once():
        return clipped([1, 5])


    def test_clips(clipped_once):
        assert clipped_once == [1, 3]


    def test_uses_the_same_result(clipped_once):
        assert len(clipped_once) == 2


    def test_nothing_clipped():
        assert clipped([0]) == [0]
''')

DRIVER = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import benchmarks.mutation.forked_pytest as forked
    forked.HEAVY = ()
    folder, out = Path(sys.argv[1]), Path(sys.argv[2])
    preloaded = forked.Preloaded()
    found = forked.traced(preloaded, folder, ["tests/test_toy.py"], "toy", out / "trace.json", 120)
    runs = {}
    for name, source in (("original", None), ("mutant", sys.argv[3])):
        if source:
            (folder / "toy" / "__init__.py").write_text(source)
        result = preloaded.run(folder, ["tests/test_toy.py::test_clips"], 120, out / (name + ".log"))
        runs[name] = [result.failed, result.timed_out, result.first_failure]
    print(json.dumps({"trace": found, "runs": runs}))
''')


@pytest.mark.slow
def test_the_traced_run_and_a_forked_run_on_a_toy_package(tmp_path):
    """End to end on a toy package: the trace names the tests of each line (and that the module-scoped fixture's
    user depends on what its setter ran), a forked run passes the original and fails a mutant, naming the test."""
    folder = tmp_path / "project"
    (folder / "toy").mkdir(parents=True)
    (folder / "tests").mkdir()
    (folder / "toy" / "__init__.py").write_text(TOY)
    (folder / "tests" / "test_toy.py").write_text(TOY_TEST)
    (folder / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    mutant = next(m for m in mutants_of("toy.py", TOY) if m.change == "'value = limit' -> 'pass'")
    run = subprocess.run([sys.executable, "-c", DRIVER, str(folder), str(tmp_path), mutant.source], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.splitlines()[-1])
    trace = Trace({"toy.py": found["trace"]["lines"]["__init__.py"]}, found["trace"]["seconds"],
                  found["trace"]["shared"])
    assert found["trace"]["failed"] == []
    assert sorted(trace.seconds) == [f"tests/test_toy.py::{name}" for name in
                                     ("test_clips", "test_nothing_clipped", "test_uses_the_same_result")]
    comparison = next(m for m in mutants_of("toy.py", TOY) if m.change == "'>' -> '>='")
    assert trace.tests_for(comparison) == sorted(trace.seconds, key=lambda test: (trace.seconds[test], test))
    untested = next(m for m in mutants_of("toy.py", TOY) if m.change == "'+' -> '-'")
    assert trace.tests_for(untested) is None
    assert trace.tests_for(next(m for m in mutants_of("toy.py", TOY) if m.line == 3)) is None, "run at import"
    assert found["runs"]["original"] == [False, False, None]
    assert found["runs"]["mutant"] == [True, False, "tests/test_toy.py::test_clips"]


@pytest.mark.parametrize("code, log, expected", [
    (0, "3 passed", (False, None)),
    (1, "FAILED tests/t.py::test_a[x-1] - AssertionError\n1 failed", (True, "tests/t.py::test_a[x-1]")),
    (1, "ERROR tests/t.py::test_b - RuntimeError\n1 error", (True, "tests/t.py::test_b")),
    (2, "ERROR collecting tests/t.py\nInterrupted: 1 error during collection", (True, "collection error")),
    (4, "ERROR: found no collectors for tests/t.py::test_a", (True, "collection error")),
    (-9, "", (True, None)),
])
def test_a_childs_exit_status_and_output_tell_a_kill_and_the_test_that_made_it(tmp_path, code, log, expected):
    from benchmarks.mutation.forked_pytest import outcome

    (tmp_path / "log").write_text(log)
    result = outcome(code, tmp_path / "log", 1.5)
    assert (result.failed, result.first_failure) == expected
    assert not result.timed_out and result.seconds == 1.5
