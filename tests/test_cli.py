"""The `nncourse` command line: a problem the user can fix is one line that says so, never a traceback."""
import json
import subprocess
import sys

import pytest

from autograder.instructor.cli import main


@pytest.mark.parametrize("command", [["grade", "ch99"], ["release", "ch99"]])
def test_a_chapter_the_course_lacks_is_named_with_the_chapters_it_has(command, tmp_path, capsys):
    (tmp_path / "nbgrader_config.py").write_text("")
    (tmp_path / "submitted" / "alice" / "ch99").mkdir(parents=True)
    assert main([*command, "--course-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nncourse {command[0]}: the course has no chapter 'ch99'; its chapters are ch00, ch01")
    assert not (tmp_path / "nncourse").exists() and not (tmp_path / "release").exists()


def test_a_failing_nbgrader_step_is_a_message(tmp_path, monkeypatch, capsys):
    from autograder.instructor import nbgrader_bridge

    def failing(course_dir, *args, check=True):
        raise nbgrader_bridge.CourseError("nbgrader generate_assignment ch02 --force failed:\nno nbgrader_config.py")

    monkeypatch.setattr(nbgrader_bridge, "nbgrader", failing)
    (tmp_path / "nbgrader_config.py").write_text("")
    assert main(["release", "ch02", "--course-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("nncourse release: nbgrader generate_assignment ch02 --force failed:\n"
                                       "no nbgrader_config.py\n")


@pytest.mark.parametrize("command", [["grade", "ch04"], ["release", "ch04"]])
def test_an_instructor_command_outside_a_course_directory_says_so_first(command, tmp_path, capsys, monkeypatch):
    (tmp_path / "submitted" / "alice" / "ch04").mkdir(parents=True)  # even with submissions: no config, no course
    monkeypatch.chdir(tmp_path)
    assert main(command) == 2
    assert capsys.readouterr().err == (f"nncourse {command[0]}: this folder is not a course directory (no "
                                       f"nbgrader_config.py in {tmp_path}): cd into the course directory or pass "
                                       "--course-dir DIR\n")
    missing = tmp_path / "nowhere"
    assert main([*command, "--course-dir", str(missing)]) == 2
    assert f"{missing} is not a course directory" in capsys.readouterr().err
    assert not (tmp_path / "nncourse").exists() and not (tmp_path / "release").exists()


def test_a_course_directory_that_is_not_one_is_a_message(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a course")
    assert main(["lab", "--course-dir", str(tmp_path)]) == 2
    assert "is not empty and has no nbgrader_config.py" in capsys.readouterr().err


def test_unbalanced_solution_markers_are_a_message(monkeypatch, capsys):
    import nbformat

    from autograder.instructor import learner_copy, sync

    def unbalanced(write):
        learner_copy.learner_form(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1")]))

    monkeypatch.setattr(sync, "sync", unbalanced)
    assert main(["sync", "--check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nncourse sync: ### BEGIN SOLUTION without ### END SOLUTION") and "Traceback" not in err


def test_a_closed_pipe_ends_the_listing_quietly():
    listing = subprocess.run(f"{sys.executable} -m autograder.instructor.cli list | head -1", shell=True,
                             capture_output=True, text=True, timeout=120)
    assert listing.stdout.startswith("ch00.sigmoid") and listing.stderr == ""


def test_a_bug_of_the_course_keeps_its_traceback(monkeypatch):
    from autograder.instructor import cli

    monkeypatch.setattr(cli, "_list", lambda args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["list"])


# --- nncourse grade: what it promises before any sandbox runs ---------------------------------------------

@pytest.fixture
def one_submission(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text("")
    (tmp_path / "submitted" / "alice" / "ch02").mkdir(parents=True)
    return tmp_path


@pytest.fixture
def grading_stub(monkeypatch):
    """`classroom.grade_class` and the reports replaced: the arguments the command passes, without grading."""
    from autograder.instructor import classroom, reports

    calls = []
    monkeypatch.setattr(classroom, "grade_class",
                        lambda *args, **kwargs: calls.append((args, kwargs)) or classroom.ClassGrades([], unchanged=2))
    monkeypatch.setattr(reports, "write_all", lambda course_dir, chapter, grades: {})
    monkeypatch.setattr(reports, "summary", lambda chapter, grades: f"summary of {chapter}")
    return calls


def test_grade_help_states_the_defaults_the_code_uses(capsys):
    from autograder.instructor import sandbox

    with pytest.raises(SystemExit) as exit:
        main(["grade", "--help"])
    assert exit.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    # the README's figures (60 s), the sandbox's own defaults, and what --help says: one set
    assert sandbox.Limits().seconds == 60 and sandbox.Limits().memory_bytes == 6 * 2**30
    assert "--timeout TIMEOUT seconds a sandbox may run (default: 60)" in shown
    assert "--memory-gb MEMORY_GB address space per sandbox (default: 6)" in shown
    assert "--workers WORKERS submissions graded at once (default: cores)" in shown


def test_grade_passes_the_default_limits_and_regrade(one_submission, grading_stub, capsys):
    from autograder.instructor import sandbox

    assert main(["grade", "ch02", "--course-dir", str(one_submission)]) == 0
    assert main(["grade", "ch02", "--course-dir", str(one_submission), "--regrade", "--timeout", "5",
                 "--memory-gb", "1.5", "--workers", "3"]) == 0
    (first_args, first), (_, second) = grading_stub
    assert first_args == (one_submission, "ch02")
    assert first == {"workers": None, "limits": sandbox.Limits(), "regrade": False, "scheduler": None}
    assert first["limits"] == sandbox.Limits(seconds=60.0, memory_bytes=6 * 2**30)
    assert second == {"workers": 3, "limits": sandbox.Limits(seconds=5.0, memory_bytes=int(1.5 * 2**30)),
                      "regrade": True, "scheduler": None}
    out = capsys.readouterr().out
    assert "summary of ch02" in out
    assert out.count("2 submissions unchanged since graded, not graded again (--regrade grades every one again)") == 2


def test_grade_without_workers_grades_on_as_many_threads_as_cores(one_submission, monkeypatch):
    """`--workers` left out: classroom.grade_class's local pool has one thread per core."""
    from contextlib import nullcontext

    from autograder.instructor import classroom, reports, sandbox

    pools = []
    monkeypatch.setattr(classroom.os, "cpu_count", lambda: 7)
    monkeypatch.setattr(sandbox, "prewarmed", lambda *args, **kwargs: nullcontext())
    monkeypatch.setattr(classroom, "_on_threads",
                        lambda todo, chapter, bundle, hide, limits, workers, lifted: pools.append(workers) or [])
    monkeypatch.setattr(reports, "write_all", lambda course_dir, chapter, grades: {})
    assert main(["grade", "ch02", "--course-dir", str(one_submission)]) == 0
    assert pools == [7]


def test_grading_without_isolation_warns(one_submission, grading_stub, monkeypatch, capsys):
    from autograder.instructor import sandbox

    monkeypatch.setattr(sandbox, "isolation_available", lambda: False)
    assert main(["grade", "ch02", "--course-dir", str(one_submission)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("warning: this machine does not allow user namespaces (unshare), so learners' code runs "
                          "without network isolation") and "for a class you do not trust" in err
    monkeypatch.setattr(sandbox, "isolation_available", lambda: True)
    assert main(["grade", "ch02", "--course-dir", str(one_submission)]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("course", ["no submitted folder", "other chapters only", "empty submitted folder"])
def test_grade_with_no_submissions_fails_and_says_where_it_looked(course, tmp_path, grading_stub, capsys):
    (tmp_path / "nbgrader_config.py").write_text("")
    if course == "other chapters only":
        (tmp_path / "submitted" / "alice" / "ch01").mkdir(parents=True)
    elif course == "empty submitted folder":
        (tmp_path / "submitted").mkdir()
    assert main(["grade", "ch02", "--course-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"nncourse grade: no submissions of ch02 in {tmp_path / 'submitted'}/*/ch02/")
    assert ("does not exist" in err) == (course == "no submitted folder") and "collect them there first" in err
    assert grading_stub == [] and not (tmp_path / "nncourse").exists()


def test_grade_with_no_submissions_exits_non_zero_from_the_shell(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text("")
    done = subprocess.run([sys.executable, "-m", "autograder.instructor.cli", "grade", "ch02", "--course-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "no submissions of ch02" in done.stderr, (done.returncode, done.stderr)


def test_a_solution_is_read_from_its_chapters_file_as_the_registry_holds_it():
    """`nncourse solution` reads the reference without importing the course (well under a second), and what it
    prints is the registry's reference, for every exercise; a name that is not an exercise gets the registry's
    answer."""
    import inspect

    from autograder.instructor.cli import reference_source
    from autograder.learner import registry

    def shown(source):
        return [line for line in source.rstrip().splitlines() if line.strip() not in ("### BEGIN SOLUTION",
                                                                                      "### END SOLUTION")]
    for exercise in registry.all_exercises():
        assert shown(reference_source(exercise.id)) == shown(inspect.getsource(exercise.reference)), exercise.id
    assert reference_source("ch02.no_such_exercise") is None and reference_source("ch99.mse_loss") is None
    assert reference_source("ch02._fit_with") is None  # a helper of the references, not an exercise


def test_a_solution_is_printed_without_importing_torch_or_scikit_learn():
    """What made it take 2-13 s: the registry imports every chapter's references and their libraries."""
    script = ("import contextlib, io, sys\nfrom autograder.instructor.cli import main\n"
              "with contextlib.redirect_stdout(io.StringIO()) as out:\n    code = main(['solution', 'ch02.mse_loss'])\n"
              "print(code, out.getvalue().splitlines()[0], sorted({'torch', 'sklearn', 'scipy'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "0 def mse_loss(X, y, w, b): []", done.stderr


def test_the_listing_prints_what_the_registry_holds_without_importing_torch_or_scikit_learn():
    """`nncourse list` reads the index `nncourse sync` writes (it took 2.2 s importing every chapter's exercises);
    each line is the one the registry's exercise gives. A stale index fails here and in test_sync.py."""
    from autograder.learner import registry

    script = ("import contextlib, io, json, sys\nfrom autograder.instructor.cli import main\n"
              "with contextlib.redirect_stdout(io.StringIO()) as out:\n    code = main(['list'])\n"
              "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'sklearn', 'scipy')\n"
              "               or m.startswith('autograder.instructor.exercises'))\n"
              "print(json.dumps([code, out.getvalue().splitlines(), heavy]))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    code, lines, heavy = json.loads(done.stdout)
    expected = [f"{e.id:32} {e.points} pt  {len(e.visible_cases())} visible + "
                f"{len(e.cases) - len(e.visible_cases())} hidden cases, {len(e.mistakes)} known mistakes"
                for e in registry.all_exercises()]
    assert (code, heavy) == (0, [])
    assert lines == expected, "autograder/instructor/exercise_index.py is stale: run `nncourse sync`"


@pytest.mark.parametrize("index", ["missing", "not valid Python"])
def test_a_missing_or_broken_exercise_index_says_how_to_write_it_again(index, tmp_path, monkeypatch, capsys):
    """An index lost, or left with a merge conflict's markers in it, stands in for the course's here."""
    from autograder.instructor import cli

    if index == "not valid Python":
        (tmp_path / "conflicted_index.py").write_text('EXERCISES = (\n<<<<<<< HEAD\n    {"id": "ch00.sigmoid"},\n)\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "INDEX_MODULE", "conflicted_index" if index == "not valid Python" else "lost_index")
    assert main(["list"]) == 2
    out, err = capsys.readouterr()
    problem = "is missing" if index == "missing" else "is not valid Python (line 2: "  # the parser's words follow
    assert out == "" and err.startswith(f"nncourse list: the exercise index, autograder/instructor/exercise_index.py, "
                                        f"{problem}") and err.count("\n") == 1
    assert err.endswith(": run `nncourse sync` to write it from the registry\n")
