"""pytest runs in children forked from one process that has imported the heavy libraries once.

A mutant's tests take a second or two; starting pytest takes seven (torch, numpy, hypothesis, nbformat and
pytest's plugins imported anew, and pytest-xdist starting its workers). `Preloaded()` imports the libraries
once, never `autograder`, `solutions` or `tests`, so that each forked child imports the course's code from the
folder it runs in: the scratch copy that holds the mutant.

`traced` runs tests under coverage with each test's node id as the dynamic context, which says which tests
execute each line of the course's code in the test process itself (code that runs only in a sandbox's own
process, or at import, is found by no test: the caller falls back to a module's whole list of test files).
"""
from __future__ import annotations

import importlib
import json
import os
import re
import signal
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

HEAVY = ("numpy", "torch", "sklearn", "scipy", "hypothesis", "nbformat", "traitlets", "IPython", "matplotlib",
         "distributed", "pytest", "_pytest.python")
PYTEST_OPTIONS = ["-q", "-x", "-rfE", "-p", "no:randomly", "-p", "no:xdist", "-p", "no:cacheprovider",
                  "-o", "addopts=", "-m", "not extended", "--no-header"]
FAILED = re.compile(r"^(?:FAILED|ERROR) (?!collecting )(\S+)", re.MULTILINE)


@dataclass(frozen=True)
class Outcome:
    """How a run of tests ended: `failed` when a test failed (or the run could not start, or ran past its time),
    `first_failure` the node id pytest named first (None when it named none), `seconds` its wall time."""

    failed: bool
    timed_out: bool
    first_failure: str | None
    seconds: float


class Preloaded:
    """The heavy libraries imported once in this process; `run` forks a child for each run of tests."""

    def __init__(self):
        for name in HEAVY:
            try:
                importlib.import_module(name)
            except ImportError:
                pass
        assert not any(name.split(".")[0] in ("autograder", "solutions", "tests") for name in sys.modules), \
            "the course's code must be imported by each child, from its own folder"

    def start(self, folder: Path, tests: list[str], log: Path) -> int:
        """Fork a child that runs `tests` (node ids or files) with pytest in `folder`, writing its output to `log`;
        returns the child's pid. The child leads a process group of its own, so that `stop` ends whatever it
        started (sandboxes, Dask workers)."""
        pid = os.fork()
        if pid:
            return pid
        code = 3
        try:
            os.setpgid(0, 0)
            code = _pytest_in(folder, tests, log)
        finally:
            os._exit(code)

    @staticmethod
    def stop(pid: int) -> None:
        """Kill the child's whole process group, and reap the child."""
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)

    def run(self, folder: Path, tests: list[str], timeout: float, log: Path) -> Outcome:
        """Run `tests` in a forked child and wait for it, `timeout` seconds at most."""
        start = time.monotonic()
        pid = self.start(folder, tests, log)
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return outcome(os.waitstatus_to_exitcode(status), log, time.monotonic() - start)
            if time.monotonic() - start > timeout:
                self.stop(pid)
                return Outcome(True, True, None, time.monotonic() - start)
            time.sleep(0.05)


def collects(preloaded: Preloaded, folder: Path, tests: list[str], log: Path) -> bool:
    """Whether pytest finds every one of `tests` (node ids) in `folder`."""
    pid = preloaded.start(folder, ["--collect-only", *tests], log)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def outcome(exit_code: int, log: Path, seconds: float) -> Outcome:
    """The `Outcome` of a child that exited with `exit_code` after writing `log`. pytest's codes: 0 all passed,
    1 a test failed, 2 interrupted (a collection error, or -x), 3 an internal error, 4 a node id not found (its
    file failed to import), 5 nothing collected. The caller makes sure its node ids are found on the unchanged
    code (`collects`), so that every one of these is the mutant's doing; a negative code (a signal) too."""
    text = log.read_text(errors="replace") if log.exists() else ""
    named = FAILED.search(text)
    first = named.group(1) if named else "collection error" if exit_code in (2, 4, 5) else None
    return Outcome(exit_code != 0, False, first if exit_code else None, seconds)


def _pytest_in(folder: Path, tests: list[str], log: Path, plugins=(), first_failure_stops=True) -> int:
    """Run pytest on `tests` in `folder`, as a child: its output into `log`, the folder first on sys.path so that
    the course's code is imported from there."""
    import pytest

    os.chdir(folder)
    sys.path[:] = [str(folder)] + [entry for entry in sys.path if entry not in ("", ".")
                                   and not Path(entry).resolve().joinpath("autograder").is_dir()]
    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    options = [option for option in PYTEST_OPTIONS if first_failure_stops or option != "-x"]
    return int(pytest.main([*options, *tests], plugins=list(plugins)))


def traced(preloaded: Preloaded, folder: Path, tests: list[str], package: str, out: Path, timeout: float) -> dict:
    """Run `tests` once, in a child, under coverage: for each file of `folder/package` (its path below `package`),
    each line and the node ids of the tests that executed it; each test's seconds; the tests that failed.

    Returns {"lines": {file: {line: [node id, ...]}}, "seconds": {node id: s}, "failed": [node id, ...],
    "shared": {node id: [node id, ...]}}. A line run at import or while collecting lists "" among its tests; a line
    run only in another process lists none. "shared" names, for each test that set up a fixture of a wider scope
    than a function, every test that uses that fixture: a line the first ran for the fixture matters to them all."""
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            os.setpgid(0, 0)
            code = _traced_child(folder, tests, package, out)
        finally:
            os._exit(code)
    start = time.monotonic()
    while not os.waitpid(pid, os.WNOHANG)[0]:
        if time.monotonic() - start > timeout:
            preloaded.stop(pid)
            raise TimeoutError(f"the traced run of {len(tests)} test files ran past {timeout} s")
        time.sleep(0.2)
    return json.loads(out.read_text())


def _traced_child(folder: Path, tests: list[str], package: str, out: Path) -> int:
    import coverage
    import pytest

    root = (folder / package).resolve()
    cov = coverage.Coverage(data_file=None, include=[f"{root}/*"])
    seconds, failed, set_up_by, users = {}, [], defaultdict(set), defaultdict(set)
    current = [""]

    def shared_fixtures(item):
        info = getattr(item, "_fixtureinfo", None)
        for name in getattr(item, "fixturenames", ()):
            for fixture in (info.name2fixturedefs.get(name, ())[-1:] if info else ()):
                if fixture.scope != "function":
                    yield f"{fixture.baseid}::{fixture.argname}"

    class SwitchContext:
        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_protocol(self, item, nextitem):
            current[0] = item.nodeid
            for fixture in shared_fixtures(item):
                users[fixture].add(item.nodeid)
            cov.switch_context(item.nodeid)
            start = time.perf_counter()
            yield
            seconds[item.nodeid] = time.perf_counter() - start
            cov.switch_context("")
            current[0] = ""

        @pytest.hookimpl(hookwrapper=True)
        def pytest_fixture_setup(self, fixturedef, request):
            if fixturedef.scope != "function" and current[0]:
                set_up_by[current[0]].add(f"{fixturedef.baseid}::{fixturedef.argname}")
            yield

        def pytest_runtest_logreport(self, report):
            if report.failed:
                failed.append(report.nodeid)

    cov.start()
    try:
        code = _pytest_in(folder, tests, out.with_suffix(".log"), plugins=[SwitchContext()], first_failure_stops=False)
    finally:
        cov.stop()
    data, lines = cov.get_data(), {}
    for measured in data.measured_files():
        name = Path(measured).resolve().relative_to(root).as_posix()
        lines[name] = {line: sorted(contexts) for line, contexts in data.contexts_by_lineno(measured).items()}
    shared = {test: sorted(set().union(*(users[fixture] for fixture in fixtures)))
              for test, fixtures in set_up_by.items()}
    out.write_text(json.dumps({"lines": lines, "seconds": seconds, "failed": sorted(set(failed)), "shared": shared}))
    return int(code)
