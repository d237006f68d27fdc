"""The `nncourse` command line: a problem the user can fix is one line that says so, never a traceback."""
import subprocess
import sys

import pytest

from autograder.instructor.cli import main


@pytest.mark.parametrize("command", [["grade", "ch99"], ["release", "ch99"]])
def test_a_chapter_the_course_lacks_is_named_with_the_chapters_it_has(command, tmp_path, capsys):
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
    assert main(["release", "ch02", "--course-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("nncourse release: nbgrader generate_assignment ch02 --force failed:\n"
                                       "no nbgrader_config.py\n")


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
