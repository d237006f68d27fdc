"""`nncourse lab`, through the JupyterLab server's HTTP API: what a learner alone and an instructor get.

Alone: the working copy holds blank exercises, and nbgrader shows nothing (its lab extension is
disabled and its server routes are absent), so no "Error fetching courses!" and no instructor panel.
Instructor: the Formgrader lists the chapters and the Assignment List finds its exchange, with the
environment's scripts off PATH as when JupyterLab is started by `bootstrap.py` (the Formgrader runs
`alembic` by name).
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from autograder.instructor import notebooks

pytestmark = pytest.mark.slow

TOKEN = "course-test-token"
CHAPTERS = sorted(notebooks.chapter_modules())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Lab:
    """`nncourse lab` running on loopback; `get(path)` answers (status, body)."""

    def __init__(self, *options, cwd):
        self.port = free_port()
        env = {**os.environ, "PATH": os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                                                     if not p.startswith(sys.prefix))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "autograder.instructor.cli", "lab", *options, "--no-browser", f"--port={self.port}",
             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", "--ServerApp.open_browser=False"],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nncourse lab exited with {self.process.returncode}:\n{self.process.stdout.read()}")
            try:
                if self.get("/api/status")[0] == 200:
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("JupyterLab did not answer within 90 s")

    def get(self, path):
        return self.request(path, "GET")

    def post(self, path):
        return self.request(path, "POST")

    def request(self, path, method):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                         data=b"" if method == "POST" else None,
                                         headers={"Authorization": f"token {TOKEN}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def page_config(self):
        status, page = self.get("/lab")
        assert status == 200
        return json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                    page, re.S).group(1))

    def stop(self):
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        return self.process.stdout.read()


@pytest.fixture(scope="module")
def self_study(tmp_path_factory):
    work = tmp_path_factory.mktemp("learner") / "work"
    lab = Lab("--work-dir", str(work), cwd=notebooks.ROOT)
    yield lab, work
    lab.stop()


@pytest.fixture(scope="module")
def instructor(tmp_path_factory):
    course_dir = tmp_path_factory.mktemp("instructor") / "class"
    lab = Lab("--course-dir", str(course_dir), cwd=tmp_path_factory.getbasetemp())
    yield lab, course_dir
    lab.stop()


def test_self_study_opens_the_working_copy_with_blank_exercises(self_study):
    lab, work = self_study
    status, listing = lab.get("/api/contents")
    assert status == 200 and sorted(item["name"] for item in json.loads(listing)["content"]) == CHAPTERS
    name = notebooks.chapter_notebook("ch02").name
    status, model = lab.get(f"/api/contents/ch02/{name}")
    cells = json.loads(model)["content"]["cells"]
    assert "raise NotImplementedError()" in "".join(cell["source"] for cell in cells)
    assert "BEGIN SOLUTION" not in "".join(cell["source"] for cell in cells)


def test_self_study_shows_no_nbgrader_panel_and_no_nbgrader_route(self_study):
    lab, _ = self_study
    assert "@jupyter/nbgrader" in lab.page_config()["disabledExtensions"]
    for route in ("/formgrader", "/formgrader/api/assignments", "/assignments", "/courses", "/formgraders"):
        assert lab.get(route)[0] == 404, route


def test_instructor_gets_a_course_directory_with_a_working_formgrader(instructor):
    lab, course_dir = instructor
    assert (course_dir / "nbgrader_config.py").exists() and (course_dir / "exchange").is_dir()
    assert "@jupyter/nbgrader" not in lab.page_config()["disabledExtensions"]
    status, body = lab.get("/formgrader/api/assignments")
    assert status == 200, body
    assert sorted(assignment["name"] for assignment in json.loads(body)) == CHAPTERS


def test_instructor_releases_through_the_formgrader_and_the_assignment_list_sees_it(instructor):
    lab, _ = instructor
    status, body = lab.get("/courses")
    assert status == 200 and json.loads(body)["success"] is True, body  # an empty exchange is no error
    for action in ("assign", "release"):
        status, body = lab.post(f"/formgrader/api/assignment/ch02/{action}")
        assert status == 200 and json.loads(body)["success"] is True, body
    status, body = lab.get("/courses")
    assert json.loads(body) == {"success": True, "value": ["nncourse"]}, body
    status, body = lab.get("/assignments?course_id=nncourse")
    listing = json.loads(body)
    assert listing["success"] is True, body
    assert [(item["assignment_id"], item["status"]) for item in listing["value"]] == [("ch02", "released")]
