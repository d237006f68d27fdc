"""The sandbox on its own: what a learner's code can see, reach and use."""
import json

import pytest

from autograder import bundle, classroom, notebooks, sandbox

pytestmark = pytest.mark.slow

PROBE = """
import os, socket, subprocess
for target in ({course!r}, {repo!r}, "/tmp"):
    subprocess.run(["umount", "-l", target], capture_output=True)
subprocess.run(["mount", "-o", "remount,bind,rw", "/"], capture_output=True)
def listing(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else "absent"
print("course:", listing({course!r}))
print("repository:", listing({repo!r}))
print("others:", listing({others!r}))
try:
    import solutions.ch02_gradient_descent
    print("references: importable")
except ImportError:
    print("references: not importable")
try:
    socket.create_connection(("127.0.0.1", 9), timeout=1)
except OSError as error:
    print("network:", type(error).__name__)
import sys
for name, path in [("python", sys.prefix + "/tampered.pth"), ("system", "/etc/tampered"), ("own", "tampered")]:
    try:
        open(path, "w").close()
        print(f"write {{name}}: allowed")
    except OSError:
        print(f"write {{name}}: refused")
try:
    with open("big", "wb") as file:
        for _ in range(40):
            file.write(bytes(2**23))
    print("disk: unlimited")
except OSError:
    print("disk: limited")
import numpy as np
try:
    np.ones(10**11)
except MemoryError:
    print("memory: limited")
"""


@pytest.fixture(scope="module")
def learner_bundle(tmp_path_factory):
    return bundle.build(tmp_path_factory.mktemp("bundle") / "b", chapters={"ch02"})


def output_of(run):
    return run.events[-1]["output"] if run.finished else ""


@pytest.mark.skipif(not sandbox.isolation_available(), reason="needs Linux user namespaces")
def test_learner_code_sees_nothing_of_the_course_and_reaches_no_network(learner_bundle, tmp_path):
    """The probe first tries to undo the sandbox: unmount what hides the course and remount / writable."""
    course = tmp_path / "class"
    (course / "submitted" / "someone").mkdir(parents=True)
    (course / "gradebook.db").write_text("")
    others = tmp_path / "other-sandbox"
    others.mkdir()
    (others / "events.jsonl").write_text("{}")
    job = {"cells": [{"index": 0, "source": PROBE.format(course=str(course), repo=str(notebooks.ROOT),
                                                         others=str(others))}], "exercises": []}
    limits = sandbox.Limits(seconds=30, memory_bytes=3 * 2**30, scratch_bytes=64 * 2**20)
    run = sandbox.run(job, learner_bundle, limits, classroom.hidden_paths(course))
    text = output_of(run)
    assert run.finished and run.isolated, run.log
    seen = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    assert seen["course"] in ("absent", "[]")
    assert seen["repository"] in ("absent", "[]", "['.venv']")  # Python's own folder stays visible
    assert seen["others"] in ("absent", "[]")
    assert seen["references"] == "not importable"
    assert seen["network"] == "OSError"  # unreachable: no network at all, not even a refused connection
    assert seen["memory"] == "limited"
    assert (seen["write python"], seen["write system"], seen["write own"]) == ("refused", "refused", "allowed")
    assert seen["disk"] == "limited"


def test_a_cell_that_never_ends_is_stopped_at_the_deadline(learner_bundle, tmp_path):
    job = {"cells": [{"index": 0, "source": "while True:\n    pass"}], "exercises": []}
    run = sandbox.run(job, learner_bundle, sandbox.Limits(seconds=3), classroom.hidden_paths(tmp_path))
    assert run.timed_out and not run.finished
    assert run.events[-1] == {"event": "cell_start", "index": 0}
    assert run.ending() == "ran past the time limit"


def test_printed_output_is_kept_bounded(learner_bundle, tmp_path):
    job = {"cells": [{"index": 0, "source": "print('x' * 10_000_000)\nimport sys\nsys.stderr.write('e' * 10_000_000)"}],
           "exercises": []}
    run = sandbox.run(job, learner_bundle, sandbox.Limits(seconds=30, output_chars=1000),
                      classroom.hidden_paths(tmp_path))
    assert run.finished and len(json.dumps(run.events)) < 10_000
    assert "more characters not kept" in output_of(run)


@pytest.mark.skipif(not sandbox.isolation_available(), reason="needs Linux user namespaces")
def test_no_process_outlives_its_sandbox(learner_bundle, tmp_path):
    import subprocess
    import time

    daemon = ("import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
              "        os.execv('/bin/sleep', ['sleep', '987654'])\n    os._exit(0)\nprint('started')")
    job = {"cells": [{"index": 0, "source": daemon}], "exercises": []}
    run = sandbox.run(job, learner_bundle, sandbox.Limits(seconds=20), classroom.hidden_paths(tmp_path))
    assert run.finished and "started" in output_of(run)
    time.sleep(0.5)
    assert subprocess.run(["pgrep", "-f", "sleep 987654"], capture_output=True).returncode == 1


def test_a_sandbox_that_cannot_start_is_a_grader_error_not_a_zero(tmp_path):
    import nbformat

    from autograder import grading

    broken_bundle = tmp_path / "empty-bundle"
    broken_bundle.mkdir()
    folder = tmp_path / "submitted" / "someone" / "ch02"
    folder.mkdir(parents=True)
    nbformat.write(nbformat.read(notebooks.chapter_notebook("ch02"), as_version=4),
                   folder / notebooks.chapter_notebook("ch02").name)
    grade = grading.grade_submission(folder, "someone", "ch02", broken_bundle, classroom.hidden_paths(tmp_path),
                                     sandbox.Limits(seconds=20))
    assert grade.status == "grader error" and "could not start" in grade.reason
    assert all("not graded" in exercise.feedback for exercise in grade.exercises)
