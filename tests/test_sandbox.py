"""The sandbox on its own: what a learner's code can see, reach and use."""
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import signal
import sysconfig
import time
import uuid
from contextlib import suppress
from pathlib import Path
from textwrap import dedent

import pytest

from autograder.instructor import bundle, classroom, notebooks, sandbox
from tests.isolation_required import needs_isolation, require_isolation, unshare_command

pytestmark = pytest.mark.slow

PROBE = """
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH, MS_REMOUNT, MS_BIND = 2, 32, 4096

def undo_the_sandbox():
    for target in (b"/", b"/tmp", b"/sandbox/bundle", b"/proc", {pythonlib!r}):
        libc.umount2(target, MNT_DETACH)
    libc.mount(None, b"/", None, MS_REMOUNT | MS_BIND, None)  # read-write again

def listing(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else "absent"

def readable(path):
    try:
        open(path).read()
        return "read"
    except OSError as error:
        return type(error).__name__

undo_the_sandbox()
if os.fork() == 0:  # a child tries again as root of a user and mount namespace of its own
    try:
        libc.unshare(0x10000000 | 0x00020000)
        undo_the_sandbox()
        os._exit(10 * os.path.exists({course!r}) + (readable({copy!r}) == "read"))
    finally:
        os._exit(99)
print("escape:", os.WEXITSTATUS(os.wait()[1]))
print("uid:", os.getuid())
print("course:", listing({course!r}))
print("repository:", listing({repo!r}))
print("others:", listing({others!r}))
print("copy elsewhere:", readable({copy!r}))
print("root-only in submission:", readable("/sandbox/submission/secret.txt"))
print("submission:", readable("/sandbox/submission/notes.txt"))
try:
    import solutions.ch02_gradient_descent
    print("references: importable")
except ImportError:
    print("references: not importable")
for name, address in (("host's loopback", ("127.0.0.1", {port})), ("outside", ("192.0.2.1", 9))):
    try:
        socket.create_connection(address, timeout=1).close()
        print(name + ":", "connected")
    except OSError as error:
        print(name + ":", type(error).__name__)
places = [("python", sys.prefix + "/tampered.pth"), ("packages", os.path.dirname(os.__file__) + "/x.py"),
          ("root", "/tampered"), ("bundle", "/sandbox/bundle/x.py"), ("submission", "/sandbox/submission/x"),
          ("dev", "/dev/x"), ("own", "tampered")]
for name, path in places:
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
import numpy as np, sklearn, torch
print("imports: ok")
try:
    np.ones(10**11)
except MemoryError:
    print("memory: limited")
"""
# A process of the sandbox that would keep running: it names itself with the test's marker.
SLEEPER = "os.execv(sys.executable, [sys.executable, '-S', '-c', 'import time; time.sleep(60)', {marker!r}])"
EVENTS_FD = ("import gc\nfrom autograder.learner.in_sandbox import Events\n"
             "events_fd = next(o for o in gc.get_objects() if isinstance(o, Events)).file.fileno()\n")
WAIT_FOR_IT = """
def seen(marker):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in open(f"/proc/{{pid}}/cmdline").read():
                return True
        except OSError:
            pass
deadline = time.monotonic() + 5
while time.monotonic() < deadline and not seen({marker!r}):
    time.sleep(0.05)
"""


@pytest.fixture(scope="module")
def learner_bundle(tmp_path_factory):
    return bundle.build(tmp_path_factory.mktemp("bundle") / "b", chapters={"ch02"})


@pytest.fixture
def elsewhere(tmp_path):
    """A folder outside the course, the repository, the home and the temporary folders: where a
    second copy of the references could lie on a grading machine (/srv, /opt where writable)."""
    for place in ("/srv", "/opt", "/var/opt"):
        if os.path.isdir(place) and os.access(place, os.W_OK):
            folder = Path(place) / f"nncourse-test-{uuid.uuid4().hex[:12]}"
            folder.mkdir()
            yield folder
            shutil.rmtree(folder, ignore_errors=True)
            return
    yield tmp_path


def output_of(run):
    return run.events[-1]["output"] if run.finished else ""


WARM_MODULES = ["numpy", "IPython.core.interactiveshell", "autograder.learner.in_sandbox", "autograder.learner.check"]


@pytest.fixture(params=["cold", "warm"])
def mode(request, monkeypatch):
    """Each isolation test runs twice: in a cold sandbox, and forked from a warm host (sandbox.prewarmed),
    which must keep every property of the cold one. Warm sandboxes exist only isolated: where the host can
    isolate and the sandbox does not, the warm half fails (tests/isolation_required.py)."""
    if request.param == "warm":
        require_isolation()
        cold = sandbox.run

        def warm(job, bundle, limits, hide, submission=None):
            assert submission is None, "a warm sandbox shows no submission folder"
            with sandbox.prewarmed(bundle, hide, WARM_MODULES, limits) as pool:
                result = cold(job, bundle, limits, hide)
                assert not pool.failed and len(pool.hosts) == 1, pool.failed
            return result

        monkeypatch.setattr(sandbox, "run", warm)
    return request.param


@needs_isolation
def test_learner_code_sees_only_its_allow_list_and_reaches_no_network(learner_bundle, tmp_path, elsewhere, mode):
    """The probe first tries to undo the sandbox (unmount, remount / writable, again from a user
    namespace of its own); then it looks for the course, the repository, another sandbox's folder
    and a copy of the references placed where no deny-list would think of it."""
    course = tmp_path / "class"
    (course / "submitted" / "someone").mkdir(parents=True)
    (course / "gradebook.db").write_text("")
    others = tmp_path / "other-sandbox"
    others.mkdir()
    (others / "events.jsonl").write_text("{}")
    copy = elsewhere / "ch02_gradient_descent.py"
    shutil.copy(notebooks.SOLUTIONS / "ch02_gradient_descent.py", copy)
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "notes.txt").write_text("mine")
    (submission / "secret.txt").write_text("the grader's")
    (submission / "secret.txt").chmod(0o600)
    host_service = socket.create_server(("127.0.0.1", 0))  # a service on the grader's own loopback
    source = PROBE.format(course=str(course), repo=str(notebooks.ROOT), others=str(others), copy=str(copy),
                          pythonlib=os.path.dirname(os.__file__).encode(), port=host_service.getsockname()[1])
    job = {"cells": [{"index": 0, "source": source}]}
    limits = sandbox.Limits(seconds=30, memory_bytes=3 * 2**30, scratch_bytes=64 * 2**20)
    run = sandbox.run(job, learner_bundle, limits, classroom.hidden_paths(course),
                      submission=submission if mode == "cold" else None)
    text = output_of(run)
    assert run.finished and run.isolated, (run.log, run.events)
    seen = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    assert seen["escape"] == "0"
    assert seen["uid"] != "0"
    assert seen["course"] == "absent"
    assert seen["repository"] in ("absent", "['.venv']")  # at most the way to the packages' folder
    assert seen["others"] == "absent"
    assert seen["copy elsewhere"] == "FileNotFoundError"
    assert seen["references"] == "not importable"
    if mode == "cold":  # grading shows no submission folder; only a cold sandbox can
        assert seen["submission"] == "read"
        if os.geteuid() == 0:  # the learner is a real unprivileged user: root's own files stay closed
            assert seen["root-only in submission"] == "PermissionError"
    host_service.close()
    # the sandbox's loopback is its own (where chapter 08's ranks meet): the grader's service there is not reached
    assert seen["host's loopback"] == "ConnectionRefusedError"
    assert seen["outside"] == "OSError"  # network unreachable: no interface but the loopback, no route out
    writes = {name: seen[f"write {name}"] for name in ("python", "packages", "root", "bundle", "submission", "dev")
              if mode == "cold" or name != "submission"}
    assert set(writes.values()) == {"refused"}, writes
    assert seen["write own"] == "allowed" and seen["disk"] == "limited"
    assert seen["imports"] == "ok" and seen["memory"] == "limited"


def test_a_cell_that_never_ends_is_stopped_at_the_deadline(learner_bundle, tmp_path, mode):
    job = {"cells": [{"index": 0, "source": "while True:\n    pass"}]}
    run = sandbox.run(job, learner_bundle, sandbox.Limits(seconds=3), classroom.hidden_paths(tmp_path))
    assert run.timed_out and not run.finished
    assert run.events[-1] == {"event": "cell_start", "index": 0}
    assert run.ending() == "ran past the time limit"


@pytest.mark.parametrize("cell, returncode, ending", [
    ("import os\nos._exit(3)", 3, "stopped the process (exit code 3)"),
    ("import os\nos.kill(os.getpid(), 9)", -9, "killed the process (SIGKILL)"),
])
def test_how_the_learners_process_ended_reaches_the_grader(learner_bundle, tmp_path, mode, cell, returncode, ending):
    """The exit status comes back alike from a cold sandbox and from a job forked off a warm host (through the
    job's first process and the status pipe): what the feedback then says the code did."""
    job = {"cells": [{"index": 0, "source": cell}]}
    run = sandbox.run(job, learner_bundle, sandbox.Limits(seconds=20), classroom.hidden_paths(tmp_path))
    assert not run.finished and not run.timed_out and run.events[-1] == {"event": "cell_start", "index": 0}
    assert run.returncode == returncode and run.ending() == ending, (run.returncode, run.log)


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd_open", "without pidfd_open"])
@pytest.mark.parametrize("child_sleeps", [0, 30], ids=["ends at once", "sleeps past the limit"])
def test_a_warm_jobs_child_is_waited_for_at_most_its_limit_then_killed(monkeypatch, pidfd, child_sleeps):
    """isolation._wait_at_most, which ends a warm job's first process at the time limit: with pidfd_open, and
    polling where the kernel or Python has none. A child of this test (fork, then only sleep and _exit)."""
    from autograder.instructor import isolation

    if pidfd:
        assert hasattr(os, "pidfd_open"), "Linux 5.3+ and Python 3.9+ have it: the branch must be tested"
        opened = []
        real = os.pidfd_open
        monkeypatch.setattr(isolation.os, "pidfd_open", lambda pid: opened.append(pid) or real(pid))
    else:
        monkeypatch.delattr(isolation.os, "pidfd_open", raising=False)
    child = os.fork()
    if child == 0:
        try:
            time.sleep(child_sleeps)
        finally:
            os._exit(0)
    start = time.monotonic()
    try:
        timed_out = isolation._wait_at_most(child, 1.0)
    except BaseException:
        with suppress(ProcessLookupError, ChildProcessError):
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
        raise
    took = time.monotonic() - start
    assert timed_out == (child_sleeps > 0)
    assert took < (5 if child_sleeps else 0.9), took  # killed at the limit, not after its sleep
    if child_sleeps:
        assert took >= 1.0
    with pytest.raises(ChildProcessError):  # reaped: no zombie left
        os.waitpid(child, os.WNOHANG)
    if pidfd:
        assert opened == [child]


def test_printed_output_is_kept_bounded(learner_bundle, tmp_path, mode):
    job = {"cells": [{"index": 0, "source": "print('x' * 10_000_000)\nimport sys\nsys.stderr.write('e' * 10_000_000)"}]}
    run = sandbox.run(job, learner_bundle, sandbox.Limits(seconds=30, output_chars=1000),
                      classroom.hidden_paths(tmp_path))
    assert run.finished and len(json.dumps(run.events)) < 10_000
    assert "more characters not kept" in output_of(run)


def sandbox_processes(*marks) -> list[int]:
    """The processes whose command line holds one of `marks`: a test's marker, or the path of the
    bundle, which every process of a sandbox carries in its command line (forks included)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if proc.name.isdigit() and int(proc.name) != os.getpid() and any(mark in command for mark in marks):
            found.append(int(proc.name))
    return found


@pytest.fixture
def marker(learner_bundle):
    """A name for the test's long-lived learner processes; any left at the end are killed."""
    mark = f"nncourse-test-{uuid.uuid4().hex[:12]}"
    yield mark
    for pid in sandbox_processes(mark):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def still_running_within(seconds, *marks) -> list[int]:
    """The marked processes seen at any time in the next `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if sandbox_processes(*marks):
            return sandbox_processes(*marks)
        time.sleep(0.05)
    return []


@needs_isolation
def test_a_session_of_its_own_ends_at_the_time_limit_and_writes_nothing_after(learner_bundle, marker, mode):
    """`os.setsid()` in the learner's process and in a forked child leaves the process group a time
    limit kills; the child's child sleeps on, and the child writes to the events 3 s later."""
    start_daemons = "import os, sys, time\n" + EVENTS_FD + dedent(f"""
        if os.fork() == 0:
            try:
                os.setsid()
                if os.fork() == 0:
                    {SLEEPER.format(marker=marker)}
                time.sleep(3)
                os.write(events_fd, b'{{"event": "late"}}\\n')
            finally:
                os._exit(0)
        try:
            os.setsid()
        except OSError:
            pass
        """) + WAIT_FOR_IT.format(marker=marker)
    job = {"cells": [{"index": 0, "source": start_daemons}, {"index": 1, "source": "while True:\n    pass"}]}
    started = time.monotonic()
    run = sandbox.run(job, learner_bundle, sandbox.Limits(seconds=2), [])
    assert run.timed_out and {"event": "cell_end", "index": 0, "error": None} in run.events, run.log
    assert sandbox_processes(marker, str(learner_bundle)) == []
    time.sleep(max(0.0, started + 3.5 - time.monotonic()))
    assert sandbox_processes(marker, str(learner_bundle)) == []
    assert {"event": "late"} not in run.events and {"event": "cell_start", "index": 1} in run.events


@needs_isolation
def test_a_group_kill_then_a_chain_of_forks_ends_with_the_sandbox(learner_bundle, marker, mode):
    """`os.kill(0, SIGKILL)` once killed the `unshare` the grader waited on, so that grading went on
    while a child in a group of its own went on forking."""
    kill_then_fork = dedent(f"""
        import os, signal, sys, time
        child = os.fork()
        if child == 0:
            try:
                os.setpgid(0, 0)
                time.sleep(0.3)
                if os.fork() == 0:
                    {SLEEPER.format(marker=marker)}
                time.sleep(60)
            finally:
                os._exit(0)
        os.setpgid(child, child)
        os.kill(0, signal.SIGKILL)
        time.sleep(3)
        """)
    job = {"cells": [{"index": 0, "source": kill_then_fork}]}
    run = sandbox.run(job, learner_bundle, sandbox.Limits(seconds=20), [])
    assert run.ending() == "killed the process (SIGKILL)"
    assert still_running_within(1.5, marker, str(learner_bundle)) == []


GRADER = """
import json, sys
from contextlib import nullcontext
from pathlib import Path
from autograder.instructor import sandbox
job, bundle, limits = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]), sandbox.Limits(seconds=30)
with sandbox.prewarmed(bundle, [], ["numpy"], limits) if sys.argv[3] == "warm" else nullcontext():
    sandbox.run(job, bundle, limits, [])
"""


@needs_isolation
@pytest.mark.parametrize("grader_mode", ["cold", "warm"])
def test_killing_the_grader_ends_its_sandboxes_and_leaves_no_folder(learner_bundle, marker, tmp_path, grader_mode):
    import subprocess
    import sys

    daemons = dedent(f"""
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            {SLEEPER.format(marker=marker)}
        """) + WAIT_FOR_IT.format(marker=marker) + "time.sleep(60)"
    job = {"cells": [{"index": 0, "source": daemons}]}
    temp = tmp_path / "grader-temp"
    temp.mkdir()
    (tmp_path / "job.json").write_text(json.dumps(job))  # not in the grader's command line, where the marker is
    grader = subprocess.Popen([sys.executable, "-c", GRADER, str(tmp_path / "job.json"), str(learner_bundle), grader_mode],
                              cwd=notebooks.ROOT, env={**os.environ, "TMPDIR": str(temp)})
    try:
        deadline = time.monotonic() + 20
        while not sandbox_processes(marker) and time.monotonic() < deadline and grader.poll() is None:
            time.sleep(0.05)
        assert sandbox_processes(marker), "the learner's process never started"
    finally:
        grader.kill()
        grader.wait()
    deadline = time.monotonic() + 5
    while sandbox_processes(marker, str(learner_bundle)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_processes(marker, str(learner_bundle)) == []
    assert list(temp.iterdir()) == []


def test_a_sandbox_leaves_no_folder_behind(learner_bundle, tmp_path, monkeypatch, mode):
    monkeypatch.setattr(sandbox.tempfile, "tempdir", str(tmp_path))
    run = sandbox.run({"cells": [{"index": 0, "source": "open('x', 'w').write('x')"}]},
                      learner_bundle, sandbox.Limits(seconds=20), [])
    assert run.finished and list(tmp_path.iterdir()) == []


def test_without_user_namespaces_it_still_runs_unisolated(learner_bundle, monkeypatch):
    monkeypatch.setattr(sandbox, "isolation_available", lambda: False)
    run = sandbox.run({"cells": [{"index": 0, "source": "print(6 * 7)"}]}, learner_bundle,
                      sandbox.Limits(seconds=20), [])
    assert run.finished and not run.isolated and "42" in output_of(run)


LIMITS_SEEN = """
import os, resource
for name in ("RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_CORE", "RLIMIT_CPU"):
    print(name, *resource.getrlimit(getattr(resource, name)))
print("own session", os.getsid(0) == os.getpid())
"""


def limits_seen(learner_bundle) -> tuple[bool, dict]:
    limits = sandbox.Limits(seconds=17, memory_bytes=3 * 2**30 + 4096, file_bytes=5 * 2**20 + 1)
    run = sandbox.run({"cells": [{"index": 0, "source": LIMITS_SEEN}]}, learner_bundle, limits, [])
    assert run.finished, run.log
    return run.isolated, dict(line.split(" ", 1) for line in output_of(run).splitlines())


EXACT_LIMITS = {"RLIMIT_AS": f"{3 * 2**30 + 4096} {3 * 2**30 + 4096}", "RLIMIT_FSIZE": f"{5 * 2**20 + 1} {5 * 2**20 + 1}",
                "RLIMIT_CORE": "0 0", "RLIMIT_CPU": "22 22", "own": "session True"}


@needs_isolation
def test_the_learners_process_runs_under_exactly_the_graders_limits(learner_bundle, mode):
    """Address space, file size, no core dumps and CPU seconds (the time limit plus 5), soft and hard alike,
    in a session of its own: cold, and forked off a warm host (which sets each job's own)."""
    assert limits_seen(learner_bundle) == (True, EXACT_LIMITS)


def test_without_isolation_the_learners_process_runs_under_the_same_limits(learner_bundle, monkeypatch):
    monkeypatch.setattr(sandbox, "isolation_available", lambda: False)
    assert limits_seen(learner_bundle) == (False, EXACT_LIMITS)


CONFINE_SEEN = "import os, resource; print(resource.getrlimit(resource.RLIMIT_FSIZE), os.getsid(0) == os.getpid())"


def test_confine_sets_the_limits_and_a_session_then_executes_the_command():
    out = subprocess.run([sys.executable, "-S", str(sandbox.CONFINE), str(os.getpid()),
                          json.dumps({"RLIMIT_FSIZE": 12345, "RLIMIT_CORE": 0}), sys.executable, "-c", CONFINE_SEEN],
                         capture_output=True, text=True, timeout=30)
    assert (out.returncode, out.stdout) == (0, "(12345, 12345) True\n"), out.stderr


def test_confine_stops_at_once_when_the_grader_it_was_given_is_not_its_parent():
    """The grader died between the fork and confine's request to die with it: nothing would kill it later."""
    out = subprocess.run([sys.executable, "-S", str(sandbox.CONFINE), str(os.getpid() + 1), "{}",
                          sys.executable, "-c", "print('ran')"], capture_output=True, text=True, timeout=30)
    assert (out.returncode, out.stdout) == (1, "")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_confined_process_dies_with_its_grader(tmp_path):
    grader = subprocess.Popen([sys.executable, "-c", f"""
import subprocess, sys
child = subprocess.Popen([sys.executable, "-S", {str(sandbox.CONFINE)!r}, str(__import__("os").getpid()), "{{}}",
                          "/bin/sleep", "60"])
print(child.pid, flush=True)
__import__("time").sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    try:
        child = int(grader.stdout.readline())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "sleep" not in Path(f"/proc/{child}/cmdline").read_text():
            time.sleep(0.02)  # confine has executed the command
    finally:
        grader.kill()
        grader.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.02)
    assert not _alive(child), "the confined process outlived its grader"


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie no one has reaped yet has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_sandbox_that_cannot_start_is_a_grader_error_not_a_zero(tmp_path):
    import nbformat

    from autograder.instructor import grading, intake

    broken_bundle = tmp_path / "empty-bundle"
    broken_bundle.mkdir()
    folder = tmp_path / "submitted" / "someone" / "ch02"
    folder.mkdir(parents=True)
    nbformat.write(nbformat.read(notebooks.chapter_notebook("ch02"), as_version=4),
                   folder / notebooks.chapter_notebook("ch02").name)
    grade = grading.grade_submission(intake.take(folder, "ch02"), "someone", "ch02", broken_bundle,
                                     classroom.hidden_paths(tmp_path), sandbox.Limits(seconds=20))
    assert grade.status == "grader error" and "could not start" in grade.reason
    assert all("not graded" in exercise.feedback for exercise in grade.exercises)


def test_the_channel_keeps_events_and_answers_a_request_only_once_the_case_out_has_ended():
    """Learner code can write anything into the events pipe: a line json cannot parse without recursing too
    deep, or too long to keep, is skipped like any other line that is not an event; a request for a case is
    answered only when no case is out or the one out has ended; an end counts only for the case out."""
    from autograder.learner.protocol import DONE_LINE, case_line, first_line

    cases = case_lines("ch99.a", "a", [("one", {"x": 1}), ("two", {"x": 2})])
    job_reader, job_writer = os.pipe()
    events_reader, events_writer = os.pipe()
    request, end = b'{"event": "case_wanted"}\n', b'{"event": "case_end", "exercise": "ch99.a", "case": "%s"}\n'
    with open(events_writer, "wb") as events, \
            sandbox.Channel(open(job_writer, "wb"), events_reader, {"cells": [], "cases": cases}) as channel:
        for line in [b"[" * 100_000 + b"\n", b'{"event": "cell_start", "index": 0}\n', end % b"one", request, request,
                     end % b"two", b"x" * (sandbox.MAX_EVENTS_BYTES + 10) + b"\n", end % b"one", request,
                     end % b"two", request, request]:
            events.write(line)
            events.flush()
            time.sleep(0.01)
    channel.finish(drain_seconds=None)
    with open(job_reader, "rb") as job:
        sent = job.read()
    assert sent == first_line({"cells": []}) + case_line(cases[0]) + case_line(cases[1]) + DONE_LINE + DONE_LINE
    assert channel.sent == [("ch99.a", "one"), ("ch99.a", "two")]
    assert channel.case_ends == {("ch99.a", "one"): [json.loads(end % b"one")], ("ch99.a", "two"): [json.loads(end % b"two")]}
    assert channel.events[0] == {"event": "cell_start", "index": 0} and len(channel.events) == 5


@needs_isolation
def test_packages_installed_under_tmp_stay_importable(learner_bundle, tmp_path, monkeypatch):
    """A clone (and so its venv's site-packages) may live under /tmp, where the sandbox mounts its
    scratch: the scratch must not cover what the allow-list binds there."""
    packages = tmp_path / "site-packages"
    packages.mkdir()
    (packages / "probe_package.py").write_text("ANSWER = 42\n")
    folders = sandbox._python_folders()
    monkeypatch.setattr(sandbox, "_python_folders", lambda: [*folders, packages])
    source = f"import sys\nsys.path.append({str(packages)!r})\nimport probe_package\nprint(probe_package.ANSWER)"
    run = sandbox.run({"cells": [{"index": 0, "source": source}]}, learner_bundle,
                      sandbox.Limits(seconds=20), [])
    assert run.finished and run.isolated and "42" in output_of(run), run.log


# --- warm sandboxes: one host, many learners ------------------------------------------------------------

SPOILS_THE_HOST = """
import os, sys, numpy
numpy.mean = lambda *args, **kwargs: 42.0  # a learner's monkeypatch, in the host's own copy of numpy
numpy.EVIL = True
sys.modules["json"].loads = lambda *args, **kwargs: {{"cells": []}}  # how the runner reads its job
sys.modules["planted"] = type(sys)("planted")
os.environ["PLANTED"] = "yes"
open("/tmp/left-behind", "w").write("a previous learner's scratch")
open("/dev/shm/shared", "w").write("x")
if os.fork() == 0:
    os.setsid()
    {sleeper}
"""
LOOKS_AROUND = """
import os, sys
print("warm:", "numpy" in sys.modules and "IPython" in sys.modules)
import numpy
print("numpy.mean:", numpy.mean([1.0, 2.0]), hasattr(numpy, "EVIL"))
print("planted:", "planted" in sys.modules, os.environ.get("PLANTED"))
print("scratch:", sorted(os.listdir("/tmp")), sorted(os.listdir("/dev/shm/")))
print("processes:", sorted(int(pid) for pid in os.listdir("/proc") if pid.isdigit()))
"""


@needs_isolation
def test_a_warm_host_gives_every_learner_its_state_after_the_imports_not_the_last_learners(learner_bundle, marker):
    """A learner patches numpy, json and sys.modules, plants files in its scratch and /dev/shm and leaves a
    daemon; the next learner forked from the same host sees none of it, and numpy already imported."""
    spoil = {"cells": [{"index": 0, "source": SPOILS_THE_HOST.format(sleeper=SLEEPER.format(marker=marker))}]}
    look = {"cells": [{"index": 0, "source": LOOKS_AROUND}]}
    limits = sandbox.Limits(seconds=20)
    with sandbox.prewarmed(learner_bundle, [], WARM_MODULES, limits) as pool:
        first = sandbox.run(spoil, learner_bundle, limits, [])
        assert first.isolated and {"event": "cell_end", "index": 0, "error": None} in first.events, first.log
        assert sandbox_processes(marker) == []  # the daemon ended with its job
        second = sandbox.run(look, learner_bundle, limits, [])
        assert len(pool.hosts) == 1 and pool.hosts[0].alive()  # the same host served both
    seen = dict(line.split(": ", 1) for line in output_of(second).splitlines() if ": " in line)
    assert seen["warm"] == "True"
    assert seen["numpy.mean"] == "1.5 False"
    assert seen["planted"] == "False None"
    # /dev/shm leads to the scratch, which holds only IPython's folder and the way to allowed folders under /tmp
    # (a clone there, its venv), as a cold sandbox's does
    tmp = Path("/tmp")
    kept = sorted({".ipython"} | {folder.relative_to(tmp).parts[0] for folder in sandbox._python_folders()
                                  if folder.is_relative_to(tmp)})
    assert seen["scratch"] == f"{kept} {kept}"
    assert seen["processes"] == "[1, 2]"  # its own namespace: its first process and itself
    assert second.finished  # json.loads, which the runner reads its job with, is the real one again


@needs_isolation
def test_a_warm_host_never_sees_a_job_only_limits_and_descriptors(learner_bundle, monkeypatch):
    """The job (hidden inputs, the references a later stage uses) goes straight to the child's pipe: the
    host, whose memory every later learner gets a copy of, is sent only the limits."""
    sent = []
    real_send = sandbox.socket.send_fds

    def recording(sock, buffers, fds, *args):
        sent.append((b"".join(buffers), len(fds)))
        return real_send(sock, buffers, fds, *args)

    monkeypatch.setattr(sandbox.socket, "send_fds", recording)
    limits = sandbox.Limits(seconds=20)
    job = {"cells": [{"index": 0, "source": "SECRET = 'a reference that arrives in stage two'"}]}
    with sandbox.prewarmed(learner_bundle, [], WARM_MODULES, limits):
        run = sandbox.run(job, learner_bundle, limits, [])
    assert run.finished and len(sent) == 1
    message, descriptors = sent[0]
    assert json.loads(message).keys() == {"seconds", "memory_bytes", "file_bytes", "scratch_bytes"}
    assert descriptors == 4 and b"SECRET" not in message


@needs_isolation
def test_stop_all_ends_a_warm_host_and_its_running_job_within_seconds(learner_bundle):
    import threading

    limits = sandbox.Limits(seconds=60)
    outcome = []
    with sandbox.prewarmed(learner_bundle, [], WARM_MODULES, limits) as pool:
        sandbox.run({"cells": []}, learner_bundle, limits, [])  # the host is up
        job = {"cells": [{"index": 0, "source": "while True:\n    pass"}]}

        def grade():
            try:
                outcome.append(sandbox.run(job, learner_bundle, limits, []))
            except sandbox.Stopped as stopped:
                outcome.append(stopped)

        worker = threading.Thread(target=grade)
        worker.start()
        time.sleep(1.5)
        started = time.monotonic()
        sandbox.stop_all()
        worker.join(timeout=10)
        try:
            assert not worker.is_alive() and time.monotonic() - started < 5
            assert isinstance(outcome[0], sandbox.Stopped)
            assert pool.hosts[0].process.wait(timeout=5) is not None  # the host, and so every job of it, ended
        finally:
            sandbox.allow_runs()


@needs_isolation
def test_an_allowed_folder_under_tmp_stays_visible_over_each_warm_jobs_fresh_scratch(learner_bundle, tmp_path,
                                                                                       monkeypatch, mode):
    """A clone under /tmp puts its venv's site-packages under the sandbox's scratch folder. The cold sandbox
    mounts the scratch before the binds; a warm job mounts its fresh scratch after them, and must bind them
    again, or the learner's interpreter finds none of its packages."""
    allowed = tmp_path / "site-packages"
    allowed.mkdir()
    (allowed / "marker.txt").write_text("seen")
    assert str(allowed).startswith("/tmp/")
    python_folders = sandbox._python_folders
    monkeypatch.setattr(sandbox, "_python_folders", lambda: [*python_folders(), allowed])
    source = f"print('marker:', open({str(allowed / 'marker.txt')!r}).read())\n" \
             f"open('/tmp/mine.txt', 'w').write('x')\nprint('scratch:', sorted(__import__('os').listdir('/tmp')))"
    job = {"cells": [{"index": 0, "source": source}]}
    limits = sandbox.Limits(seconds=30, memory_bytes=3 * 2**30, scratch_bytes=64 * 2**20)
    run = sandbox.run(job, learner_bundle, limits, [])
    text = output_of(run)
    assert run.finished and run.isolated, (run.log, run.events)
    assert "marker: seen" in text
    top = allowed.relative_to("/tmp").parts[0]
    assert "'mine.txt'" in text and f"'{top}'" in text  # the scratch is writable, the allowed folder's path kept


LOOKS_AHEAD = '''
import gc, json, os, sys

def look(x):
    """What of the next case this case's code can find: in the process's memory, or waiting unread in the
    job's pipe (on the first case), or in memory after a forged end of this case and forged requests (on the
    second: the next case is then sent, and waits in the pipe)."""
    marker = "SECRET" + "-B"
    if x == 2:
        events = next(o for o in gc.get_objects() if type(o).__name__ == "Events")
        events(event="case_end", exercise="ch99.look", case="second", output={"__int__": "7"}, args_after={"__dict__": {}})
        for _ in range(3):
            events(event="case_wanted")
    in_memory = any(marker in value for o in gc.get_objects() if isinstance(o, dict)
                    for value in list(o.values()) if isinstance(value, str))
    if x == 2:
        return [in_memory, None]
    os.set_blocking(0, False)
    try:
        waiting = os.read(0, 1 << 20)
    except BlockingIOError:
        waiting = b""
    finally:
        os.set_blocking(0, True)
    return [in_memory, marker.encode() in waiting]

def double(x):
    return 2 * x
'''


def case_lines(exercise, name, cases, driver="keywords"):
    from autograder.learner import wire

    return [{"exercise": exercise, "name": name, "driver": driver, "uses": {}, "forbids": [], "case": case, "args": wire.encode(args)}
            for case, args in cases]


def test_a_case_arrives_only_when_the_one_before_it_has_ended(learner_bundle, mode):
    """The job's first line holds the cells; each case comes when the sandbox asks for it, once the case
    before it has ended: the code of one case finds nothing of the next, neither in memory nor waiting in
    the pipe. Requests of its own get nothing while its case is out; with a forged end of that case as well,
    the next case is sent, and the forged end is that case's record: the real one, written once the next
    case's inputs had arrived, counts for no case."""
    from autograder.learner import wire

    cases = case_lines("ch99.look", "look", [("first", {"x": 1}), ("second", {"x": 2})]) + \
        case_lines("ch99.double", "double", [("SECRET-B case", {"x": 3})])
    run = sandbox.run({"cells": [{"index": 0, "source": LOOKS_AHEAD}], "cases": cases}, learner_bundle,
                      sandbox.Limits(seconds=30), [])
    assert run.finished, run.log
    assert run.sent == [("ch99.look", "first"), ("ch99.look", "second"), ("ch99.double", "SECRET-B case")]
    outputs = {key: [wire.decode(end["output"]) for end in ends] for key, ends in run.case_ends.items()}
    assert outputs == {("ch99.look", "first"): [[False, False]], ("ch99.look", "second"): [7],
                       ("ch99.double", "SECRET-B case"): [6]}


def test_the_jobs_first_line_holds_no_case():
    from autograder.learner.protocol import case_line, first_line

    case = {"exercise": "ch99.a", "name": "a", "driver": "keywords", "uses": {"r": "code"}, "case": "c",
            "args": {"SECRET": 1}}
    assert json.loads(first_line({"cells": [], "cases": [case], "output_limit": 5})) == {"cells": [],
                                                                                          "output_limit": 5}
    assert json.loads(case_line(case)) == case


AS_NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--inh-caps=-all",
             "--bounding-set=-all"]
UNPRIVILEGED_GRADER = """
import os, sys, tempfile
from pathlib import Path
from autograder.instructor import bundle, sandbox
assert os.geteuid() == 65534 and sandbox.isolation_available(), "no isolation for an unprivileged grader"
learner_bundle = bundle.build(Path(tempfile.mkdtemp(dir=os.getcwd())) / "bundle", {"ch02"})
job = {"cells": [{"index": 0, "source": "import os; print(os.getuid(), os.getpid())"}]}
limits = sandbox.Limits(seconds=30)
cold = sandbox.run(job, learner_bundle, limits, [])
with sandbox.prewarmed(learner_bundle, [], ["numpy", "IPython.core.interactiveshell"], limits) as pool:
    warm = sandbox.run(job, learner_bundle, limits, [])
    assert not pool.failed and len(pool.hosts) == 1, pool.failed
for run in (cold, warm):
    print(run.isolated, run.finished, run.events[-1].get("output", "").strip())
"""


@pytest.fixture
def shared_folder():
    """A folder an unprivileged user can write (pytest's own temporary folders are closed to others)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="nncourse-unprivileged-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def closed_on_the_way(paths) -> dict[Path, set[str]]:
    """The folders on the way to `paths` that others may not enter (a home of mode 0700 or 0750 holding the
    repository or pyenv's Python), each with the names of its entries on the way."""
    closed: dict[Path, set[str]] = {}
    for path in paths:
        for way in {Path(os.path.abspath(path)), Path(path).resolve()}:
            for depth in range(1, len(way.parts)):
                folder = Path(*way.parts[:depth]).resolve()
                if not os.stat(folder).st_mode & 0o001:
                    closed.setdefault(folder, set()).add(way.parts[depth])
    return closed


def opening_the_way(paths, stash: Path) -> str:
    """Shell commands, for root in a mount namespace of the test's own (`unshare --mount`), after which
    any user can reach `paths`: each closed folder on the way is covered by an open tmpfs holding only the
    entries on the way, each bound back from the original. Nothing changes outside that namespace."""
    def bind(source: Path, target: Path, folder: bool) -> list[str]:
        make = "mkdir" if folder else "touch"
        return [f"{make} {shlex.quote(str(target))}", f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(target))}"]

    commands = [f"mount -t tmpfs -o size=1m,mode=755 none {shlex.quote(str(stash))}"]
    closed = sorted(closed_on_the_way(paths).items(), key=lambda found: len(found[0].parts))  # the outer first
    for number, (folder, names) in enumerate(closed):
        kept = [(folder / name, stash / f"{number}-{index}") for index, name in enumerate(sorted(names))]
        commands += [line for entry, place in kept for line in bind(entry, place, entry.is_dir())]
        commands.append(f"mount -t tmpfs -o size=1m,mode=755 none {shlex.quote(str(folder))}")
        commands += [line for entry, place in kept for line in bind(place, entry, entry.is_dir())]
    return "\n".join(commands)


def test_a_grader_that_is_not_root_isolates_cold_and_warm_sandboxes(shared_folder):
    """Most instructors grade as themselves, not root: the sandbox then makes a user namespace of its own
    (`unshare --user --map-root-user`) and still runs the learner as uid 65534 in its own PID namespace,
    cold and forked from a warm host. Run here as nobody, without capabilities.

    Nobody must reach the interpreter, its base installation and the repository, which often lie under a
    closed home (/root, or CI's /home/runner): the grader runs in a mount namespace of the test's own in
    which each closed folder on the way is an open one holding only the way on (`opening_the_way`)."""
    if os.geteuid() != 0:
        pytest.skip(f"runs only where the suite runs as root (here uid {os.geteuid()}): becoming another user "
                    "(setpriv) and opening the way to Python (mounts) need root")
    missing = [tool for tool in ("setpriv", "unshare", "mount") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"needs util-linux's {', '.join(missing)} to become an unprivileged user in a mount namespace")
    folder = shared_folder
    stash = folder / "way"
    stash.mkdir()
    paths = [path for path in [sys.executable, getattr(sys, "_base_executable", sys.executable), sys.prefix,
                               sys.base_prefix, *sysconfig.get_paths().values(), notebooks.ROOT, folder]
             if os.path.exists(path)]
    way = opening_the_way(paths, stash)
    env = {"PATH": os.environ["PATH"], "HOME": str(folder), "PYTHONPATH": str(notebooks.ROOT)}

    def as_nobody(*command, **options):
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-e", "-c",
                               way + '\nexec "$@"', "sh", *AS_NOBODY, *command], cwd=folder, env=env,
                              capture_output=True, text=True, **options)

    runs_python = ("import os, sys, numpy, IPython, autograder\n"  # the sandbox starts the base interpreter itself
                   "sys.exit(0 if os.access(getattr(sys, '_base_executable', sys.executable), os.X_OK) else 3)")
    probe = as_nobody(sys.executable, "-c", runs_python, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"even with the closed folders on the way opened ({sorted(map(str, closed_on_the_way(paths)))}),"
                    f" uid 65534 cannot run this Python (exit {probe.returncode}): {probe.stderr[-300:]}")
    namespaces = as_nobody(*unshare_command(root=False), timeout=60)
    if namespaces.returncode != 0:  # asked of `unshare` alone: the sandbox's own probe is what is tested below
        pytest.skip(f"this host does not let an unprivileged user make the sandbox's namespaces (`unshare "
                    f"{' '.join(unshare_command(root=False)[1:])}` as uid 65534: {namespaces.stderr.strip()[-300:]})")
    graded = as_nobody(sys.executable, "-c", UNPRIVILEGED_GRADER, timeout=300)
    assert graded.returncode == 0, graded.stderr[-2000:]
    assert graded.stdout.splitlines() == ["True True 65534 2", "True True 65534 2"]


def test_a_warm_host_that_does_not_start_says_why_so_that_the_job_runs_cold(monkeypatch, tmp_path):
    """A host whose process ends before it is ready raises HostFailed with the last lines it wrote (the pool then
    runs the job cold), never a ValueError from reading its stderr after closing it."""
    monkeypatch.setattr(sandbox, "_isolated_command",
                        lambda spec: [sys.executable, "-c", "import sys; sys.stderr.write('no namespaces here')"])
    with pytest.raises(sandbox.HostFailed, match="the warm sandbox did not start: no namespaces here"):
        sandbox.WarmHost(tmp_path, [], [], sandbox.Limits())
