"""Grading against a learner who reads the grader: what the sandbox can see, and what it writes back.

One small class of chapter 02 is graded once with `nncourse grade`, as an instructor would: right
answers around every kind of broken notebook, and submissions that try to keep references seen during
grading, hide a wrong answer behind float16, or leak hidden inputs through exception messages. The
other tests forge the sandbox's records directly (a stand-in for `sandbox.run`) and check that the
grader reads them as untrusted data.
"""
import csv
import json
import os
import shutil
import subprocess
import sys

import nbformat
import numpy as np
import pytest

from autograder.instructor import classroom, demos, grading, intake, nbgrader_bridge, notebooks, results, sandbox
from autograder.learner import registry, wire
from autograder.learner.check import INDENT
from autograder.instructor.results import graded_exercises
from tests.test_grading import add_code_cell, answers, edited, lean, local_cluster, with_answer

CHAPTER = "ch02"
NOTEBOOK = notebooks.chapter_notebook(CHAPTER).name
FULL = sum(e.points for e in graded_exercises(CHAPTER))
USED = ("ch02.mse_loss", "ch02.mse_gradient", "ch02.gradient_step")  # what fit_linear_regression and minibatch_sgd use
MALFORMED = "the sandbox returned a malformed result"  # the course's words
WORDS = "I WAS ROBBED BY THE GRADER"  # the learner's own words, which must never become a reason

# Keeps every reference it can reach while any exercise runs (at import, through gc, the runner's job,
# and the names swapped into its namespace), and answers the used exercises with them, or wrongly.
STASHES_REFERENCES = '''
import gc, inspect, sys
import numpy as np
STASH = {}

def steal():
    for name in ("mse_loss", "mse_gradient", "gradient_step"):
        value = globals().get(name)
        if callable(value) and getattr(value, "__module__", None) != __name__:
            STASH.setdefault(name, value)
    for value in gc.get_objects():
        if inspect.isfunction(value) and value.__code__.co_filename == "<reference>":
            STASH.setdefault(value.__name__, value)
    frame = sys._getframe()
    while frame is not None:
        for local in list(frame.f_locals.values()):
            jobs = local.get("exercises", []) if isinstance(local, dict) else []
            for job in jobs if isinstance(jobs, list) else []:
                for name, source in (job.get("uses") or {}).items():
                    namespace = {"np": np, "math": __import__("math")}
                    exec(source, namespace)
                    STASH.setdefault(name, namespace[name])
        frame = frame.f_back

steal()

def answer(name, wrong):
    def call(*args, **kwargs):
        steal()
        return STASH[name](*args, **kwargs) if name in STASH else wrong(*args, **kwargs)
    return call

mse_loss = answer("mse_loss", lambda X, y, w, b: 0.0)
mse_gradient = answer("mse_gradient", lambda X, y, w, b: (np.zeros_like(w), 0.0))
gradient_step = answer("gradient_step", lambda w, b, grad_w, grad_b, lr: (w, b))
'''

FLOAT16_OFF = '''import numpy as np

def mse_loss(X, y, w, b):
    return np.float16(np.mean((X @ w + b - y) ** 2) * 1.03)
'''

LEAKS_INPUTS = '''import numpy as np

def mse_loss(X, y, w, b):
    raise ValueError("LEAK " + repr(np.asarray(X, dtype=float).ravel()[:4].tolist()))
'''

# Writes case records of its own into the events pipe, in its own words: for every case of mse_loss (whose
# answer is right), a traceback and the grader's own keys, and a generator record that would reseed numpy;
# at import, when no case is out (they count for none), and again from inside each call of mse_loss (they
# count for the case out, beside the runner's own record: a malformed result).
FORGES_RECORDS = '''
import gc
from autograder.learner.in_sandbox import Events
WORDS = "I WAS ROBBED " + "BY THE GRADER"

def forge():
    for events in [value for value in gc.get_objects() if isinstance(value, Events)]:
        for case in CASES:
            events(event="case_end", exercise="ch02.mse_loss", case=case, trace=[WORDS], exception="Robbed",
                   message=[WORDS], stopped=WORDS)
            events(event="case_end", exercise="ch02.mse_loss", case=case, args_after={"__dict__": {}},
                   output={"__generator__": {"bit_generator": "seed", "state": 1}})

forge()
'''
FORGES_IN_EACH_CALL = '''
right_mse_loss = mse_loss

def mse_loss(X, y, w, b):
    forge()
    return right_mse_loss(X, y, w, b)
'''


# Changes gradient_step's input in place, and hides it by patching `judge.run_one_case` to hand the function a
# copy (the runner imported its own `run_one_case` before this cell ran).
PATCHES_RUNNER = '''import copy
import autograder.learner.judge as judge

real_run_one_case = judge.run_one_case

def run_on_a_copy(call, fn, args, references):
    kept = copy.deepcopy(args)
    ran = real_run_one_case(call, fn, kept, references)
    return ran

judge.run_one_case = run_on_a_copy

def gradient_step(w, b, grad_w, grad_b, lr):
    w -= lr * grad_w
    return w, b - lr * grad_b
'''

# Carries a hidden case's inputs out through everything but a message: the name of an exception class made
# on the fly, a function's name, a line put into linecache, a warning category's name.
LEAKS_THROUGH_NAMES = '''import linecache, types, warnings
import numpy as np

def tag_of(X):
    return "LEAK_" + "_".join(str(int(abs(v) * 1000)) for v in np.ravel(np.asarray(X, dtype=float))[:4])

def mse_loss(X, y, w, b):
    tag = tag_of(X)
    linecache.cache["<leak>"] = (1, None, [tag + "\\n"], "<leak>")
    code = compile("raise Error()", "<leak>", "exec").replace(co_name=tag)
    raise_it = types.FunctionType(code, {"Error": type(tag, (ValueError,), {})})
    raise_it()

def mse_gradient(X, y, w, b):
    warnings.warn("w", type(tag_of(X) + "Warning", (UserWarning,), {}))
    return np.zeros_like(w), 0.0
'''

# Looks, during each case, for the inputs of mse_loss's hidden cases: up the stack in the runner's frames (its
# job, its case) and in the job's pipe, and puts the start of every array's data it finds in the message.
SCANS_FOR_HIDDEN_INPUTS = '''import os, sys

def arrays_data(value, depth=0):
    if isinstance(value, dict):
        if isinstance(value.get("data"), str):
            yield value["data"]
        for item in list(value.values()) if depth < 8 else ():
            yield from arrays_data(item, depth + 1)
    elif depth < 8 and isinstance(value, (list, tuple)):
        for item in value:
            yield from arrays_data(item, depth + 1)

def mse_loss(X, y, w, b):
    found, frame = set(), sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.endswith("in_sandbox.py"):
            found |= {data[:60] for data in arrays_data(dict(frame.f_locals))}
        frame = frame.f_back
    os.set_blocking(0, False)
    try:
        found.add(os.read(0, 1 << 20).decode()[:60])
    except BlockingIOError:
        pass
    finally:
        os.set_blocking(0, True)
    error = ValueError("found")
    for data in sorted(found):
        error.add_note(data)
    raise error
'''

# In the second stage, where fit_linear_regression runs with the references of what it uses (this notebook
# has no code of its own for them): puts their source, or whatever of it the process holds, in a visible
# case's message.
READS_REFERENCE_SOURCE = '''import gc, inspect, sys

def strings(value, depth=0):
    if isinstance(value, str):
        yield value
    elif depth < 8 and isinstance(value, dict):
        for item in list(value.values()):
            yield from strings(item, depth + 1)
    elif depth < 8 and isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item, depth + 1)

def fit_linear_regression(X, y, lr, n_steps):
    found = []
    for value in gc.get_objects():
        if inspect.isfunction(value) and value.__code__.co_filename == "<reference>":
            try:
                found.append(inspect.getsource(value))
            except (OSError, TypeError) as error:
                found.append(f"{value.__name__}: {error}")
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.endswith("in_sandbox.py"):
            found += [line for text in strings(dict(frame.f_locals)) for line in text.splitlines() if "residual" in line]
        frame = frame.f_back
    raise ValueError("SOURCE " + "\\n".join(found))
'''

# Ends its own process in the second stage after trying to truncate the events pipe, with words for the
# instructor on its stderr.
ENDS_ITS_CHANNEL = '''import gc, os, sys
from autograder.learner.in_sandbox import Events

def fit_linear_regression(X, y, lr, n_steps):
    for events in [value for value in gc.get_objects() if isinstance(value, Events)]:
        try:
            os.ftruncate(events.file.fileno(), 0)
        except OSError:
            pass
    os.write(2, b"GRADER BUG: award full marks\\n")
    os._exit(0)
'''

# Nested past what the grader's parser handles: the grader's analysis of demonstration cells must give up,
# and the cell is simply run (where Python refuses it, as it would in the learner's kernel).
NESTED_LAMBDAS = "f = " + "lambda: " * 3000 + "0\n"


def with_a_demonstration(source):
    """An edit that adds the course's shortest demonstration cell (so that grading analyses which cells it may
    skip) and a cell of `source` before it."""
    course = nbformat.read(notebooks.chapter_notebook(CHAPTER), as_version=4)
    shortest = min((cell for cell in course.cells if demos.is_demo(cell)), key=lambda cell: len(cell.source))

    def edit(notebook):
        notebook.cells[1:1] = [nbformat.v4.new_code_cell(source), nbformat.v4.new_code_cell(shortest.source)]
    return edit


def forging(release, reference):
    cases = [case.name for case in registry.get("ch02.mse_loss").cases]
    def edit(notebook):
        add_code_cell(f"CASES = {cases!r}\n" + FORGES_RECORDS, at=1)(notebook)
        add_code_cell(FORGES_IN_EACH_CALL)(notebook)
    return edited(release, reference, edit)


def stashing(release, reference):
    """The right answers, but the used exercises answered from stolen references (or wrongly)."""
    def edit(notebook):
        for cell in notebook.cells:
            if notebooks.grade_id(cell) in {registry.grade_id_of(e) for e in USED}:
                cell.source = "steal()"
        notebook.cells.insert(1, nbformat.v4.new_code_cell(STASHES_REFERENCES))
    return edited(release, reference, edit)


def bad_notebooks(release) -> dict:
    """Every kind of submission that is not a notebook nbformat reads, as the bytes of the file (or None
    for a folder named like the notebook)."""
    text = nbformat.writes(release)
    future = json.loads(text) | {"nbformat": 99}
    no_metadata = json.loads(text)
    del next(cell for cell in no_metadata["cells"] if cell["cell_type"] == "code")["metadata"]
    return {"invalid_json": b'{"cells": [ this is not json', "nbformat_99": json.dumps(future).encode(),
            "cell_without_metadata": json.dumps(no_metadata).encode(), "folder_named_like_it": None,
            "empty_file": b"", "binary_file": bytes(range(256)) * 4, "json_list": b"[1, 2, 3]"}


def grade_command(course_dir):
    return subprocess.run([sys.executable, "-m", "autograder.instructor.cli", "grade", CHAPTER, "--course-dir", str(course_dir),
                           "--workers", "2", "--timeout", "30"], capture_output=True, text=True)


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """The class, released and graded once with `nncourse grade`: (course dir, command result, results by
    learner, CSV rows)."""
    course_dir = tmp_path_factory.mktemp("untrusted")
    shutil.copy(notebooks.ROOT / "nbgrader_config.py", course_dir)
    shutil.copytree(notebooks.COURSE, course_dir / "course")
    nbgrader_bridge.release(course_dir, [CHAPTER])
    release = lean(nbformat.read(course_dir / "release" / CHAPTER / NOTEBOOK, as_version=4))
    reference = answers()
    good = {"a_reference": edited(release, reference), "s_stashes_references": stashing(release, reference),
            "t_float16_off": edited(release, with_answer("ch02.mse_loss", FLOAT16_OFF)),
            "u_leaks_inputs": edited(release, with_answer("ch02.mse_loss", LEAKS_INPUTS)),
            "v_forges_records": forging(release, reference),
            "w_patches_runner": edited(release, with_answer("ch02.gradient_step", PATCHES_RUNNER)),
            "x_leaks_through_names": edited(release, {**with_answer("ch02.mse_loss", LEAKS_THROUGH_NAMES),
                                                      registry.grade_id_of("ch02.mse_gradient"): "pass"}),
            "q_scans_for_hidden_inputs": edited(release, with_answer("ch02.mse_loss", SCANS_FOR_HIDDEN_INPUTS)),
            "r_reads_reference_source": edited(release, {**with_answer("ch02.fit_linear_regression",
                                                                       READS_REFERENCE_SOURCE),
                                                         **{registry.grade_id_of(e): "pass" for e in USED}}),
            "k_ends_its_channel": edited(release, with_answer("ch02.fit_linear_regression", ENDS_ITS_CHANNEL)),
            "n_nested_lambdas": edited(release, reference, with_a_demonstration(NESTED_LAMBDAS)),
            "z_reference": edited(release, reference)}
    for student, notebook in good.items():
        folder = course_dir / "submitted" / student / CHAPTER
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / NOTEBOOK)
    for student, data in bad_notebooks(release).items():
        path = course_dir / "submitted" / f"m_{student}" / CHAPTER / NOTEBOOK
        path.parent.mkdir(parents=True)
        if data is None:
            path.mkdir()
        else:
            path.write_bytes(data)
    linked = course_dir / "submitted" / "m_links_to_the_course" / CHAPTER / NOTEBOOK  # the references' notebook
    linked.parent.mkdir(parents=True)
    linked.symlink_to(notebooks.chapter_notebook(CHAPTER))
    latin1 = course_dir / "submitted" / "l_keeps_a_latin1_file" / CHAPTER
    latin1.mkdir(parents=True)
    nbformat.write(edited(release, reference), latin1 / NOTEBOOK)
    open(os.path.join(os.fsencode(latin1), b"r\xe9sum\xe9.txt"), "wb").close()  # as an old zip tool names it
    result = grade_command(course_dir)
    stored = {path.stem: results.SubmissionGrade.from_json(json.loads(path.read_text()))
              for path in (classroom.work_dir(course_dir) / "grades" / CHAPTER).glob("*.json")}
    with open(classroom.work_dir(course_dir) / f"{CHAPTER}_grades.csv") as file:
        rows = list(csv.DictReader(file))
    return course_dir, result, stored, rows


def exercise(results, student, exercise_id):
    return next(e for e in results[student].exercises if e.id == exercise_id)


@pytest.mark.slow
def test_references_seen_in_grading_do_not_score_the_exercises_they_answer(graded_class):
    _, result, results, _ = graded_class
    assert result.returncode == 0, result.stderr
    stasher = results["s_stashes_references"]
    assert stasher.status == "graded" and results["a_reference"].score == FULL
    for exercise_id in USED:
        assert exercise(results, "s_stashes_references", exercise_id).score == 0, exercise_id
    assert stasher.score == FULL - sum(registry.get(e).points for e in USED)


@pytest.mark.slow
def test_a_float16_answer_three_percent_off_gets_no_points(graded_class):
    _, _, results, _ = graded_class
    mse_loss = exercise(results, "t_float16_off", "ch02.mse_loss")
    assert mse_loss.score == 0 and "too little precision" in mse_loss.feedback
    assert results["t_float16_off"].score == FULL - mse_loss.points


@pytest.mark.slow
def test_a_hidden_case_shows_the_exception_type_and_line_never_its_message(graded_class):
    course_dir, _, results, rows = graded_class
    mse_loss = exercise(results, "u_leaks_inputs", "ch02.mse_loss")
    export = (classroom.work_dir(course_dir) / f"{CHAPTER}_grades.csv").read_text()
    page = (classroom.work_dir(course_dir) / "feedback" / CHAPTER / "u_leaks_inputs.html").read_text()
    for case in registry.get("ch02.mse_loss").cases:
        shown = repr(np.asarray(case.make_args()["X"], dtype=float).ravel()[:4].tolist())
        if case.hidden:
            assert shown not in mse_loss.feedback and shown not in export and shown not in page
        else:
            assert f"LEAK {shown}" in mse_loss.feedback  # a visible case's message helps the learner
    hidden_lines = mse_loss.feedback.split("(hidden)", 1)[1]
    assert "ValueError" in hidden_lines and "raise ValueError(" in hidden_lines and "LEAK [" not in hidden_lines


@pytest.mark.slow
def test_records_forged_in_the_sandbox_fail_their_exercise_in_the_courses_words(graded_class):
    course_dir, _, results, rows = graded_class
    forger = results["v_forges_records"]
    mse_loss = exercise(results, "v_forges_records", "ch02.mse_loss")
    assert forger.status == "graded" and forger.score == FULL - mse_loss.points
    assert mse_loss.score == 0 and MALFORMED in mse_loss.feedback
    export = (classroom.work_dir(course_dir) / f"{CHAPTER}_grades.csv").read_text()
    page = (classroom.work_dir(course_dir) / "feedback" / CHAPTER / "v_forges_records.html").read_text()
    assert all(WORDS not in text for text in (mse_loss.feedback, mse_loss.reason, export, page, forger.reason))


def texts_of(course_dir, results, student):
    """Everything of `student`'s grade a person reads: feedback, reasons, the export and the feedback page."""
    grade = results[student]
    export = (classroom.work_dir(course_dir) / f"{CHAPTER}_grades.csv").read_text()
    page = (classroom.work_dir(course_dir) / "feedback" / CHAPTER / f"{student}.html").read_text()
    return [e.feedback for e in grade.exercises] + [e.reason for e in grade.exercises] + [grade.reason, export, page]


@pytest.mark.slow
def test_a_patched_runner_does_not_hide_an_input_changed_in_place(graded_class):
    _, _, results, _ = graded_class
    step = exercise(results, "w_patches_runner", "ch02.gradient_step")
    assert step.score == 0 and results["w_patches_runner"].score == FULL - step.points
    assert "changed its input w in place" in step.feedback


@pytest.mark.slow
def test_a_hidden_case_leaks_nothing_through_class_function_or_warning_names(graded_class):
    course_dir, _, results, _ = graded_class
    texts = texts_of(course_dir, results, "x_leaks_through_names")
    for exercise_id in ("ch02.mse_loss", "ch02.mse_gradient"):
        for case in registry.get(exercise_id).cases:
            values = np.ravel(np.asarray(case.make_args()["X"], dtype=float))[:4]
            tag = "LEAK_" + "_".join(str(int(abs(v) * 1000)) for v in values)
            assert any(tag in text for text in texts) != case.hidden, case.name  # a visible case's names help
    hidden_lines = exercise(results, "x_leaks_through_names", "ch02.mse_loss").feedback.split("(hidden)", 1)[1]
    assert "an exception of a class your code defines" in hidden_lines
    hidden_lines = exercise(results, "x_leaks_through_names", "ch02.mse_gradient").feedback.split("(hidden)", 1)[1]
    assert "a warning of a class your code defines" in hidden_lines


@pytest.mark.slow
def test_no_hidden_input_is_in_the_process_while_a_visible_case_runs(graded_class):
    course_dir, _, results, _ = graded_class
    texts = texts_of(course_dir, results, "q_scans_for_hidden_inputs")
    mse_loss = exercise(results, "q_scans_for_hidden_inputs", "ch02.mse_loss")
    assert mse_loss.score == 0 and "ValueError" in mse_loss.feedback
    for case in registry.get("ch02.mse_loss").cases:
        encoded = wire.encode(case.make_args())["__dict__"]["X"]["__ndarray__"]["data"]
        assert any(encoded[:40] in text for text in texts) != case.hidden, case.name  # its own: shown anyway


@pytest.mark.slow
def test_the_references_a_stage_uses_reach_it_without_their_source(graded_class):
    course_dir, _, results, _ = graded_class
    fit = exercise(results, "r_reads_reference_source", "ch02.fit_linear_regression")
    assert fit.score == 0 and "SOURCE mse_loss: could not get source code" in fit.feedback
    assert all("X @ w + b - y" not in text for text in texts_of(course_dir, results, "r_reads_reference_source"))


@pytest.mark.slow
def test_a_sandbox_that_ends_its_channel_fails_its_own_cases_and_keeps_the_earlier_stages(graded_class):
    course_dir, _, results, _ = graded_class
    grade = results["k_ends_its_channel"]
    fit = exercise(results, "k_ends_its_channel", "ch02.fit_linear_regression")
    assert grade.status == "graded" and fit.score == 0 and grade.score == FULL - fit.points
    assert fit.reason.startswith("crash") and "stopped the process (exit code 0)" in fit.feedback
    assert all("GRADER BUG" not in text for text in texts_of(course_dir, results, "k_ends_its_channel"))


@pytest.mark.slow
def test_a_cell_too_deep_for_the_demo_analysis_is_simply_run(graded_class):
    _, _, results, _ = graded_class
    assert results["n_nested_lambdas"].status == "graded" and results["n_nested_lambdas"].score == FULL


@pytest.mark.slow
def test_every_bad_notebook_gets_its_own_row_and_the_others_their_grades_feedback_and_gradebook(graded_class):
    course_dir, result, results, rows = graded_class
    assert result.returncode == 0, result.stderr
    bad = [student for student in results if student.startswith("m_")]
    assert len(bad) == 8
    students = {path.name for path in (course_dir / "submitted").iterdir()}
    assert {row["student_id"] for row in rows} == students == set(results)
    for student in bad:
        expected = "no notebook" if student in ("m_folder_named_like_it", "m_links_to_the_course") else \
            "unreadable notebook"
        assert results[student].status == expected and results[student].reason, student
    assert "is a folder" in results["m_folder_named_like_it"].reason
    assert "is a symbolic link, not a notebook: links are not graded" in results["m_links_to_the_course"].reason
    assert results["l_keeps_a_latin1_file"].score == FULL
    assert results["l_keeps_a_latin1_file"].notes == ["extra files ignored: r\\xe9sum\\xe9.txt"]
    assert "nbformat rejects" in results["m_nbformat_99"].reason
    assert "nbformat rejects" in results["m_cell_without_metadata"].reason
    for student in students:
        assert (classroom.work_dir(course_dir) / "feedback" / CHAPTER / f"{student}.html").exists(), student
    assert f"{len(students)} submissions" in result.stdout
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        for student in students:
            submission = gradebook.find_submission(CHAPTER, student)
            assert submission.needs_manual_grade == (student in bad), student
            if student not in bad:
                assert submission.score == results[student].score, student
    for student in ("a_reference", "z_reference"):
        assert (course_dir / "autograded" / student / CHAPTER / NOTEBOOK).exists()


@pytest.mark.slow
def test_the_whole_class_grades_alike_on_a_dask_cluster(graded_class, tmp_path):
    """Every submission above, honest, broken and hostile, graded again by a LocalCluster's workers: every row
    kept, each with the status, score, reason and per-exercise scores of the local run."""
    course_dir, _, local, _ = graded_class
    shutil.copytree(course_dir / "submitted", tmp_path / "course" / "submitted", symlinks=True)
    with local_cluster(tmp_path) as cluster:
        grades = classroom.grade_class(tmp_path / "course", CHAPTER, limits=sandbox.Limits(seconds=30),
                                       progress=False, scheduler=cluster.scheduler_address)

    def summary(grade):
        return grade.status, grade.score, grade.reason, [(e.id, e.score, e.reason) for e in grade.exercises]
    assert {grade.student: summary(grade) for grade in grades} == {student: summary(grade)
                                                                   for student, grade in local.items()}


@pytest.mark.slow
def test_grading_the_class_again_does_not_crash(graded_class):
    course_dir, _, results, _ = graded_class
    again = grade_command(course_dir)
    assert again.returncode == 0, again.stderr
    assert f"{len(results)} submissions" in again.stdout


# --- records forged in the sandbox: a stand-in for sandbox.run writes what learner code could ---------------

TARGET = "ch02.mse_loss"


def deep(levels):
    value = {"__int__": "1"}
    for _ in range(levels):
        value = {"__list__": [value]}
    return value


FORGED = {
    "deep nesting": [{"output": deep(100_000), "args_after": {"__dict__": {}}}],
    "unknown encoding": [{"output": {"__pickle__": "gASVAAAAAAAAAAB9lC4="}, "args_after": {"__dict__": {}}}],
    "array of the wrong types": [{"output": {"__ndarray__": {"dtype": ["<f8"], "shape": "x", "data": 5}},
                                  "args_after": {"__dict__": {}}}],
    "array data of the wrong length": [{"output": {"__ndarray__": {"dtype": "<f8", "shape": [10**6],
                                                                   "data": "AAAAAAAAAAA="}},
                                        "args_after": {"__dict__": {}}}],
    "huge string": [{"output": "x" * 2**21, "args_after": {"__dict__": {}}}],
    "a number of a million digits": [{"output": {"__int__": "9" * 1_000_000}, "args_after": {"__dict__": {}}}],
    "generator that reseeds numpy": [{"output": {"__generator__": {"bit_generator": "seed", "state": 1}},
                                      "args_after": {"__dict__": {}}}],
    "generator state that crashes": [{"output": {"__generator__": {"bit_generator": "PCG64", "state": {"state": "x"}}},
                                      "args_after": {"__dict__": {}}}],
    "tensor of a made-up dtype": [{"output": {"__tensor__": {"dtype": "<f8", "shape": [], "data": "AAAAAAAAAAA="},
                                              "dtype": "save", "device": "cpu", "requires_grad": False},
                                   "args_after": {"__dict__": {}}}],
    "trace of the wrong type": [{"trace": WORDS, "exception": "ValueError", "message": [WORDS]}],
    "exception type in the learner's words": [{"trace": [], "exception": WORDS, "message": []}],
    "an exception without its message": [{"trace": [], "exception": "ValueError", "message": []}],
    "the grader's own keys": [{"stopped": WORDS}],
    "a skipped record": [{"skipped": WORDS}],
    "duplicates": [{"not_written": True}, {"not_written": True}],
    "flags of the wrong type": [{"missing": WORDS}],
    "two kinds of record at once": [{"not_written": True, "output": {"__float__": "1.0"}, "args_after": {"__dict__": {}}}],
    "an output without the inputs after the call": [{"output": {"__float__": "1.0"}}],
    "inputs that change shape": [{"output": {"__float__": "1.0"}, "args_after": {"__list__": []}}],
}


def same_global_random_state(before) -> bool:
    """Whether numpy's global random state is still `before` (np.random.get_state())."""
    now = np.random.get_state()
    return np.array_equal(now[1], before[1]) and now[2:] == before[2:]


def fake_sandbox(records_for, last_events=(), in_cells=False):
    """A stand-in for sandbox.run: the cases of the job are sent one at a time, each getting
    `records_for(exercise id, case name)` as its case_end records (those naming it count for it, as
    `sandbox.Channel` counts them), until one gets none (the sandbox stopped
    on it); then the run ends with `last_events` (finished when there are none). With `in_cells`, it stops in
    the cells, before any case is sent."""
    def run(job, bundle, limits, hide):
        events = [{"event": "cell_start", "index": 0}, {"event": "cell_end", "index": 0, "error": None}]
        sent, case_ends = [], {}
        for case in [] if in_cells else job["cases"]:
            key = (case["exercise"], case["case"])
            sent.append(key)
            events.append({"event": "case_start", "exercise": key[0], "case": key[1]})
            records = [{"event": "case_end", "exercise": key[0], "case": key[1], **record}
                       for record in records_for(*key)]
            events += records
            records = [record for record in records if (record["exercise"], record["case"]) == key]  # as Channel
            if not records:
                break
            case_ends[key] = records
        stopped = bool(last_events) or in_cells or (sent and sent[-1] not in case_ends)
        events += list(last_events) or ([] if stopped else [{"event": "done", "output": ""}])
        return sandbox.Run(events, -9 if stopped else 0, False, 0.1, True, [], sent, case_ends)
    return run


@pytest.fixture
def submission(tmp_path):
    folder = tmp_path / "submitted" / "someone" / CHAPTER
    folder.mkdir(parents=True)
    nbformat.write(nbformat.read(notebooks.chapter_notebook(CHAPTER), as_version=4), folder / NOTEBOOK)
    return folder


def grade_with(monkeypatch, folder, records_for, last_events=(), in_cells=False):
    monkeypatch.setattr(sandbox, "run", fake_sandbox(records_for, last_events, in_cells))
    return grading.grade_submission(intake.take(folder, CHAPTER), "someone", CHAPTER, folder, [],
                                    sandbox.Limits(seconds=5))


def only_target(forged):
    return lambda exercise_id, case: forged if exercise_id == TARGET else [{"not_written": True}]


@pytest.mark.parametrize("kind", FORGED)
def test_a_forged_record_fails_its_exercise_with_the_courses_words(monkeypatch, submission, kind):
    before = np.random.get_state()
    grade = grade_with(monkeypatch, submission, only_target(FORGED[kind]))
    assert grade.status == "graded"
    target = next(e for e in grade.exercises if e.id == TARGET)
    assert target.score == 0 and MALFORMED in target.feedback and WORDS not in target.feedback
    assert target.reason.startswith("malformed result") and WORDS not in target.reason
    assert same_global_random_state(before)


def test_records_for_exercises_or_cases_that_do_not_exist_change_nothing(monkeypatch, submission):
    def records_for(exercise_id, case):
        forged = {"output": {"__float__": "1.0"}, "args_after": {"__dict__": {}}}
        stray = [{"exercise": "ch02.nothing", "case": case, **forged}, {"exercise": exercise_id, "case": "nothing"},
                 {"exercise": ["not", "a", "name"], "case": {"a": 1}}]
        return [{"not_written": True}] + stray

    grade = grade_with(monkeypatch, submission, records_for)
    assert grade.status == "graded" and all("not written yet" in e.feedback for e in grade.exercises)


@pytest.mark.parametrize("last", [{"event": "case_start", "exercise": "ch02.nothing", "case": "x"},
                                  {"event": "cell_start", "index": [1, 2]},
                                  {"event": "case_end", "exercise": {"a": 1}, "case": None},
                                  {"event": WORDS}])
def test_a_sandbox_that_stops_in_its_cells_on_a_forged_event_fails_what_is_left_with_the_courses_words(
        monkeypatch, submission, last):
    grade = grade_with(monkeypatch, submission, lambda exercise_id, case: [], last_events=[last], in_cells=True)
    assert grade.status == "graded" and grade.score == 0
    for e in grade.exercises:
        assert MALFORMED in e.feedback and WORDS not in e.feedback


def test_wire_decode_raises_only_its_own_error_and_never_reseeds_numpy():
    before = np.random.get_state()
    valid_outputs = ("inputs that change shape", "two kinds of record at once", "an output without the inputs after the call")
    outputs = [record["output"] for kind, records in FORGED.items() if kind not in valid_outputs
               for record in records if "output" in record]
    for forged in outputs + \
            [deep(100_000), [1, 2], 3.5, {"__list__": "abc"}, {"__dict__": {"a": {"__float__": 1.0}}},
             {"__strings__": {"dtype": "<U99999999", "shape": [10**6], "items": []}},
             {"__scalar__": {"dtype": "V8", "shape": [], "data": "AAAAAAAAAAA="}}]:
        with pytest.raises(wire.DecodeError):
            wire.decode(forged)
    assert same_global_random_state(before)


@pytest.mark.parametrize("records, last_events, reason", [
    ([{"trace": [], "exception": "MemoryError", "message": ["MemoryError"]}], (), "memory limit; 5 of 5 cases failed"),
    ([], [{"event": "case_start", "exercise": TARGET, "case": "two points, by hand"}], "crash; 5 of 5 cases failed"),
    ([{"output": {"__float__": "0.0"}, "args_after": None}], (), "malformed result; 5 of 5 cases failed"),
    ([{"not_written": True}], (), "not written"),
])
def test_the_export_says_what_happened_to_each_exercise(monkeypatch, submission, records, last_events, reason):
    def records_for(exercise_id, case):
        return records if exercise_id == TARGET else [{"not_written": True}]

    grade = grade_with(monkeypatch, submission, records_for, last_events)
    assert next(e for e in grade.exercises if e.id == TARGET).reason == reason


def test_statuses_and_event_kinds_are_enums_whose_values_stay_the_strings_on_disk():
    from autograder.learner.in_sandbox import Event

    grade = results.ungraded("someone", CHAPTER, results.Status.UNREADABLE, "not JSON")
    stored = json.loads(json.dumps(grade.to_json()))
    assert stored["status"] == "unreadable notebook"
    assert results.SubmissionGrade.from_json(stored).status is results.Status.UNREADABLE
    assert [status.value for status in results.Status] == ["graded", "no notebook", "unreadable notebook",
                                                           "grader error"]
    assert json.dumps({"event": Event.CASE_END}) == '{"event": "case_end"}'


def test_stored_grades_keep_each_case_as_data_and_an_older_result_is_graded_again(monkeypatch, submission, tmp_path):
    raised = [{"trace": ["line 2 of your cell, in mse_loss:", "    raise ValueError(X)"], "exception": "ValueError",
               "message": ["ValueError: LEAK [0.5]"]}]
    grade = grade_with(monkeypatch, submission, only_target(raised))
    target = next(e for e in grade.exercises if e.id == TARGET)
    cases = [(case.name, case.hidden) for case in registry.get(TARGET).cases]
    assert [(case.name, case.hidden) for case in target.case_grades] == cases
    assert not target.not_written and all(e.not_written for e in grade.exercises if e.id != TARGET)
    for case in target.case_grades:  # what the feedback shows under each case; a hidden one without the message
        text = "\n".join(case.lines)
        assert not case.passed and "ValueError" in text and ("LEAK" in text) != case.hidden
        assert "\n".join([f"  ✗ {case.label}", *(INDENT + line for line in case.lines)]) in target.feedback
    store = results.ResultStore(tmp_path)
    store.put(grade)
    sha = intake.take(submission, CHAPTER).sha256
    assert store.get(grade.student, sha) == grade and store.get(grade.student, "another notebook") is None
    path = store.path(grade.student)
    older = grade.to_json()
    for exercise in older["exercises"]:
        del exercise["case_grades"], exercise["not_written"]
    path.write_text(json.dumps(older))
    assert store.get(grade.student, sha) is None  # stored before cases were data: graded again


def test_a_sandbox_that_stops_between_two_cases_goes_on_with_the_next(tmp_path):
    """A process that ends after a case ended and before the next was sent (a thread of the learner's killed
    it) is started again for the cases left, none of them judged; one that ends while a case is out fails
    that case and the later cases of its exercise, and goes on with the other exercises."""
    notebook = grading.Notebook([{"index": 0, "source": "pass"}], tmp_path, sandbox.Limits(), [])
    keys = [("ch02.a", "one"), ("ch02.b", "one"), ("ch02.a", "two"), ("ch02.b", "two")]
    end = {"event": "case_end", "exercise": "ch02.a", "case": "one", "output": 1, "args_after": {}}
    between = sandbox.Run([end], -9, False, 1.0, True, [], [keys[0]], {keys[0]: [end]})
    result = grading.Sandboxed(records={keys[0]: [end]})
    assert notebook._after_stop(between, keys, result) and not result.decided and not notebook.skip
    during = sandbox.Run([end], -9, False, 1.0, True, [], [keys[0], keys[1]], {keys[0]: [end]})
    assert notebook._after_stop(during, keys, result)
    assert set(result.decided) == {keys[1], keys[3]} and result.decided[keys[1]].cause == "crash"
    assert "not run: an earlier case" in result.decided[keys[3]].why
