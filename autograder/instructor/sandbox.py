"""Start the sandbox that runs one learner's code: limits, isolation, and reading what it reported.

The job goes in through a pipe, one line at a time: the cells first, then one case each time the
sandbox asks for one, once the case before it has ended (`Channel`). The events come back through
another pipe, which the grader reads while the sandbox runs: nothing is written to disk, no run leaves
a folder behind, and nothing the sandbox does can take back an event once written. The process runs

- with limits: wall-clock seconds, address space (a runaway allocation raises MemoryError in the
  learner's cell), file size and no core dumps, set by `confine.py` in a fresh process of its own
  before it executes the sandbox (never by Python code between the grader's fork and exec);
- with a clean environment and `python -S`, so that only the standard library, the installed
  third-party packages and the bundle are importable: not the course's own packages;
- where Linux namespaces allow (`isolation_available()`), isolated by `autograder/instructor/isolation.py`
  inside `unshare`: no network but a loopback of its own, and a file system built from an allow-list, nothing else: the
  interpreter's installation, the folders of the packages it imports (a virtual environment's
  site-packages, not the environment or the repository around it), the system's shared libraries
  (/usr/lib*, /lib*), the learner's bundle at /sandbox/bundle and the submission's folder at
  /sandbox/submission, all read-only, with the instructor's packages covered where they lie inside
  those; a minimal /dev, the /proc of its own PID namespace, and a size-limited tmpfs at /tmp (also
  HOME and TMPDIR), the only place it can write. The learner's code runs as uid 65534 without
  capabilities, so the grader's root-only files stay closed even where they are visible.
  Process lifetime: the learner's code runs under a first process it cannot signal; when that
  process ends (the learner's process ended, or the time limit killed it), the kernel ends every
  process of the namespace, `setsid()` daemons included, before `unshare` exits, and only then are
  the events read. If the grader dies, `unshare` dies with it and takes the namespace along
  (`--kill-child`).
  Warm (`prewarmed`): a class is graded by forks of warm hosts, one per worker, each an isolated
  sandbox as above whose first process has imported the chapter's modules once and then, per job,
  forks a child into fresh mount, PID, network and IPC namespaces with a fresh scratch and the job's
  limits, which runs the learner's process exactly as a cold sandbox does (isolation.py, "Warm").
  The job and its descriptors reach only that child; the host runs no learner code, and each job
  starts from the host's memory as it was after its imports, so nothing one learner changes reaches
  the next. The host's end (Ctrl-C, the grader's death, the end of grading) ends all its jobs.
  Grading records which isolation each submission had. Without it (no Linux namespaces), the code
  runs in a temporary folder with the limits alone: `grade` warns, since processes it starts in a
  session of their own can outlive it there.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from autograder.learner.protocol import DONE_LINE, Event, case_key, case_line, first_line, is_case_request

BOOT = ("import sys; sys.path[:0] = {paths!r}; sys.argv = ['sandbox'] + sys.argv[1:]; "
        "from autograder.learner.in_sandbox import main; main(int(sys.argv[1]))")
MAX_EVENTS_BYTES = 64 * 2**20  # the events kept of one sandbox run, in bytes of JSON ...
MAX_EVENTS = 20_000  # ... and in number (a chapter's run writes a few hundred)
DRAIN_SECONDS = 1.0  # after an unisolated sandbox ended: how long to read what a process it left behind writes
END_SECONDS = 10.0  # after every process of a sandbox ended: the longest wait for its events pipe's end
ISOLATION = Path(__file__).with_name("isolation.py")
CONFINE = Path(__file__).with_name("confine.py")  # starts each sandbox with its limits (never a preexec_fn)
# New mount, network, IPC and process-ID namespaces (and a user namespace where the grader is not
# root, to be allowed the rest); `--kill-child` ends the namespace when `unshare` dies.
NAMESPACES = ["--mount", "--net", "--ipc", "--pid", "--fork", "--kill-child"]
# Where the system's shared libraries live, whichever layout the distribution has (folders or links).
SYSTEM_LIBRARIES = ["/lib", "/lib32", "/lib64", "/libx32", "/usr/lib", "/usr/lib32", "/usr/lib64"]
# Where the learner's bundle and submission appear inside; the scratch is /tmp, also HOME.
BUNDLE, SUBMISSION, SCRATCH = "/sandbox/bundle", "/sandbox/submission", "/tmp"


@dataclass(frozen=True)
class Limits:
    seconds: float = 60.0  # wall clock for one sandbox process
    memory_bytes: int = 6 * 2**30  # address space; torch alone maps over 1 GiB
    file_bytes: int = MAX_EVENTS_BYTES  # any one file the process writes
    output_chars: int = 20000  # the learner's printed output that is kept
    scratch_bytes: int = 256 * 2**20  # the learner's writable working folder (a tmpfs, where isolated)


@dataclass
class Run:
    events: list[dict]  # every line the sandbox wrote that parses as an event, in order (untrusted)
    returncode: int | None
    timed_out: bool
    seconds: float
    isolated: bool
    log: list[str] = field(default_factory=list)
    sent: list[tuple[str, str]] = field(default_factory=list)  # the (exercise, case) keys sent, in order
    case_ends: dict = field(default_factory=dict)  # key -> the case-end events read while it was the case out

    @property
    def finished(self) -> bool:
        return bool(self.events) and self.events[-1].get("event") == Event.DONE

    def ending(self) -> str:
        """Why the process stopped early, as what the code did: "ran past the time limit", "killed
        the process (SIGSEGV)", "stopped the process (exit code 3)"."""
        if self.timed_out:
            return "ran past the time limit"
        if self.returncode is not None and self.returncode < 0:
            try:
                return f"killed the process ({signal.Signals(-self.returncode).name})"
            except ValueError:
                return f"killed the process (signal {-self.returncode})"
        return f"stopped the process (exit code {self.returncode})"


@lru_cache(maxsize=1)
def isolation_available() -> bool:
    """Whether this machine lets a sandbox start in its own namespaces, on its allow-listed root, as an
    unprivileged user whose seccomp filter holds (the probe's learner process must be refused add_key and
    a nested user namespace, isolation._prove_the_filter): tried once, for real, with the same code as every
    sandbox."""
    if not sys.platform.startswith("linux") or not shutil.which("unshare"):
        return False
    with _status_pipe() as (status, status_fd), tempfile.TemporaryFile() as events:
        spec = {**_view(None, None, []), "probe": True, "scratch_bytes": 2**20, "status_fd": status_fd,
                "events_fd": events.fileno(), "path": []}
        try:
            probe = _start(_confined(_isolated_command(spec), Limits(seconds=10)), status_fd,
                           env=_environment(SCRATCH), cwd="/", pass_fds=(status_fd, events.fileno()),
                           stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            return False
        try:
            probe.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _stop(probe, isolated=True)
            probe.wait()
            return False
        return probe.returncode == 0 and status.read() == b"0"


def _outermost(paths) -> list[Path]:
    """The existing folders among `paths` (absolute, links not followed) not inside another one."""
    folders = sorted({Path(path).absolute() for path in paths if Path(path).is_dir()}, key=lambda p: (len(p.parts), p))
    kept = []
    for folder in folders:
        if not any(folder.is_relative_to(outer) for outer in kept):
            kept.append(folder)
    return kept


def _python_folders() -> list[Path]:
    """The interpreter's installation and the folders of the packages it imports: a virtual
    environment's site-packages, never the environment's folder (in development, the repository)."""
    paths = sysconfig.get_paths()
    return [Path(sys.base_prefix), Path(paths["purelib"]), Path(paths["platlib"])]


def _view(bundle: Path | None, submission: Path | None, hide: list[Path]) -> dict:
    """The allow-list, as the sandbox's first process takes it: read-only binds (source, target),
    links to recreate, and the folders inside those binds to cover (the instructor's packages)."""
    links = [(path, os.readlink(path)) for path in SYSTEM_LIBRARIES if os.path.islink(path)]
    system = [path for path in SYSTEM_LIBRARIES if not os.path.islink(path)]
    binds = [(str(folder), str(folder)) for folder in _outermost([*_python_folders(), *system])]
    binds += [(str(folder.resolve()), target) for folder, target in [(bundle, BUNDLE), (submission, SUBMISSION)]
              if folder is not None]
    covered = [(Path(source).resolve(), target) for source, target in binds]
    hidden = [str(Path(target) / folder.relative_to(source)) for folder in map(Path.resolve, hide)
              for source, target in covered if folder != source and folder.is_relative_to(source)]
    return {"binds": binds, "links": links, "hide": hidden, "grader_is_root": os.geteuid() == 0}


def _isolated_command(spec: dict) -> list[str]:
    user = [] if spec["grader_is_root"] else ["--user", "--map-root-user"]
    python = getattr(sys, "_base_executable", sys.executable)  # the one inside the interpreter's folder
    return [shutil.which("unshare"), *user, *NAMESPACES, python, "-S", str(ISOLATION), json.dumps(spec)]


@contextmanager
def _status_pipe():
    """A pipe for the learner process's wait status: the reading end as a file, and the writing end,
    which `_start` hands to the sandbox and closes here."""
    reader, writer = os.pipe()
    with open(reader, "rb") as status:
        yield status, writer


def _start(command: list[str], status_fd: int, **options) -> subprocess.Popen:
    try:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, **options)
    finally:
        os.close(status_fd)  # only the sandbox's copy stays: its end is the end of the status


def _confined(command: list[str], limits: Limits, cpu: bool = True) -> list[str]:
    """`command` started through confine.py: in a session of its own, killed if the grader dies, with the
    limits on its address space, file size, core dumps and (unless `cpu` is False: a warm host lives on
    past one job's CPU time, and its children set each job's) CPU seconds."""
    rlimits = {"RLIMIT_AS": limits.memory_bytes, "RLIMIT_FSIZE": limits.file_bytes, "RLIMIT_CORE": 0}
    if cpu:
        rlimits["RLIMIT_CPU"] = int(limits.seconds) + 5
    return [sys.executable, "-S", str(CONFINE), str(os.getpid()), json.dumps(rlimits), *command]


def _environment(scratch: str) -> dict:
    keep = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    return {**keep, "HOME": scratch, "TMPDIR": scratch, "MPLBACKEND": "Agg", "MPLCONFIGDIR": scratch,
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1", "JUPYTER_PLATFORM_DIRS": "1",
            **{key: os.environ[key] for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if key in os.environ}}


class Stopped(Exception):
    """Grading was stopped (`stop_all`): no sandbox starts, and none that was running has a result."""


_running: dict[subprocess.Popen, bool] = {}  # every sandbox process now running, and whether it is isolated
_running_lock = threading.Lock()
_stopping = threading.Event()


def stop_all() -> None:
    """Kill every running sandbox of this process (warm hosts included, and so their jobs), and start none
    until `allow_runs`: Ctrl-C on a class must stop within seconds, not after the queue. What they
    reported is discarded."""
    _stopping.set()
    with _running_lock:
        for process, isolated in list(_running.items()):
            _stop(process, isolated)


def allow_runs() -> None:
    """Let sandboxes start again after `stop_all` (a new grading run)."""
    _stopping.clear()


class HostFailed(Exception):
    """A warm host could not start or stopped serving: the job runs in a cold sandbox instead."""


class WarmHost:
    """One warm sandbox (isolation.py, "Warm"): built and warmed once, then one job at a time."""

    READY_SECONDS = 180.0

    def __init__(self, bundle: Path, hide: list[Path], modules: list[str], limits: Limits):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.stderr = tempfile.TemporaryFile()
        spec = {**_view(bundle, None, hide), "scratch_bytes": limits.scratch_bytes, "control_fd": theirs.fileno(),
                "warm": list(modules), "path": list(dict.fromkeys([BUNDLE, *map(str, _python_folders()[1:])]))}
        self.control = ours
        with _running_lock:
            if _stopping.is_set():
                raise Stopped("grading was stopped")
            try:
                self.process = subprocess.Popen(_confined(_isolated_command(spec), limits, cpu=False),
                                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                stderr=self.stderr, cwd="/", env=_environment(SCRATCH),
                                                pass_fds=(theirs.fileno(),))
            finally:
                theirs.close()
            _running[self.process] = True
        ready, _, _ = select.select([ours], [], [], self.READY_SECONDS)
        if not ready or ours.recv(16) != b"ready":
            why = " ".join(_tail(self.stderr)[-3:])  # read before close() closes the file
            self.close()
            raise HostFailed(f"the warm sandbox did not start: {why}")

    def run(self, job: dict, limits: Limits) -> Run:
        """Run `job` in a fresh child of this host; HostFailed when the host no longer serves."""
        start = time.monotonic()
        with ExitStack() as stack:
            stderr = stack.enter_context(tempfile.TemporaryFile())
            status_reader, status_fd = os.pipe()
            status = stack.enter_context(open(status_reader, "rb"))
            job_reader, job_writer = os.pipe()
            events_reader, events_writer = os.pipe()
            params = {"seconds": limits.seconds, "memory_bytes": limits.memory_bytes,
                      "file_bytes": limits.file_bytes, "scratch_bytes": limits.scratch_bytes}
            try:
                socket.send_fds(self.control, [json.dumps(params).encode()],
                                [job_reader, events_writer, stderr.fileno(), status_fd])
            except OSError as error:
                os.close(job_writer)
                os.close(events_reader)
                raise HostFailed(f"the warm sandbox stopped serving ({error})") from None
            finally:
                for fd in (job_reader, events_writer, status_fd):
                    os.close(fd)
            channel = stack.enter_context(Channel(open(job_writer, "wb"), events_reader,
                                                  {**job, "output_limit": limits.output_chars}))
            ready, _, _ = select.select([status], [], [], limits.seconds + 30)
            reply = status.read() if ready else b""
            if _stopping.is_set():
                raise Stopped("grading was stopped while this sandbox ran")
            try:
                reported = json.loads(reply)
            except ValueError:
                self.close()  # the host's child never reported: every process of the host ends here
                raise HostFailed("the warm sandbox's job did not report") from None
            seconds = time.monotonic() - start
            channel.finish(drain_seconds=None)  # every process of the job has ended: the pipe is at its end
            learner = reported.get("status")
            returncode = os.waitstatus_to_exitcode(int(learner)) if learner else -signal.SIGKILL
            return channel.run(returncode, bool(reported.get("timed_out")), seconds, True, _tail(stderr))

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        """End the host and with it every process of its namespace."""
        with suppress(OSError):
            self.control.close()
        _stop(self.process, isolated=True)
        self.process.wait()
        with _running_lock:
            _running.pop(self.process, None)
        self.stderr.close()


class Channel:
    """The grader's side of a running sandbox: it writes the job's first line at once and reads the events
    pipe on a thread of its own while the sandbox runs, keeping each line that parses as an event (at most
    MAX_EVENTS_BYTES of them) and answering each request for a case (`Event.CASE_WANTED`) with the job's
    next case, but only once the case sent before has ended: a request while a case is out is not
    answered. A case-end event counts for a case only when it names the case that is out, and is read
    while it is out (`case_ends`); so learner code that writes requests or records of its own can neither
    make the grader send a case early nor place a record on a case that is not running. A pipe keeps
    what was written: nothing the sandbox does can take back an event the grader has read, and the
    grader reads every event written before the sandbox's last process ended."""

    def __init__(self, pipe, events_fd: int, job: dict):
        self.pipe, self.events_fd = pipe, events_fd
        self.cases = [(( case["exercise"], case["case"]), case_line(case)) for case in job.get("cases", [])]
        self.events: list[dict] = []
        self.sent: list[tuple[str, str]] = []
        self.case_ends: dict[tuple[str, str], list[dict]] = {}
        self.kept = 0
        self.stopping = threading.Event()
        self.reader = threading.Thread(target=self._read, args=(first_line(job),), daemon=True)

    def __enter__(self):
        self.reader.start()
        return self

    def __exit__(self, *exc):
        self.finish(drain_seconds=0)

    def finish(self, drain_seconds: float | None) -> None:
        """Stop reading: at the pipe's end (`drain_seconds` None: every writer has ended, so it comes at once;
        END_SECONDS at most), or else once nothing more arrives within a poll, for at most `drain_seconds`."""
        if drain_seconds is not None:
            self.stopping.set()
        self.reader.join(END_SECONDS if drain_seconds is None else drain_seconds)
        self.stopping.set()
        self.reader.join()

    def run(self, returncode, timed_out: bool, seconds: float, isolated: bool, log: list[str]) -> Run:
        return Run(self.events, returncode, timed_out, seconds, isolated, log, list(self.sent),
                   {key: list(ends) for key, ends in self.case_ends.items()})

    def _read(self, first: bytes) -> None:
        self._write(first)
        parts, size, skipping = [], 0, False  # the line read so far, in pieces: joined once, when it ends
        try:
            while True:
                if not select.select([self.events_fd], [], [], 0.05)[0]:
                    if self.stopping.is_set():
                        return
                    continue
                chunk = os.read(self.events_fd, 1 << 16)
                if not chunk:
                    return
                start = 0
                while (end := chunk.find(b"\n", start)) >= 0:
                    if not skipping:
                        self._take(b"".join(parts) + chunk[start:end])
                    parts, size, skipping, start = [], 0, False, end + 1
                if not skipping and start < len(chunk):
                    parts.append(chunk[start:])
                    size += len(chunk) - start
                    if size > MAX_EVENTS_BYTES:  # a line too long to keep: left out up to its end
                        parts, size, skipping = [], 0, True
        finally:
            os.close(self.events_fd)
            with suppress(OSError):
                self.pipe.close()

    def _take(self, line: bytes) -> None:
        if is_case_request(line):
            if not self.sent or self.sent[-1] in self.case_ends:
                self._send_next()
            return
        event = _event(line) if len(line) <= MAX_EVENTS_BYTES else None
        if event is None:
            return
        out = self.sent[-1] if self.sent else None
        ends_out = event.get("event") == Event.CASE_END and out is not None and case_key(event) == out
        if ends_out and len(self.case_ends.get(out, [])) >= 2:  # two already make it malformed
            return
        if self.kept + len(line) > MAX_EVENTS_BYTES or len(self.events) >= MAX_EVENTS:
            if not ends_out:
                return
            event = {"event": Event.CASE_END, "exercise": out[0], "case": out[1], "over_limit": True}  # malformed
        self.kept += len(line)
        self.events.append(event)
        if ends_out:
            self.case_ends.setdefault(out, []).append(event)

    def _send_next(self) -> None:
        if len(self.sent) < len(self.cases):
            key, line = self.cases[len(self.sent)]
            self.sent.append(key)
            self._write(line)
        else:
            self._write(DONE_LINE)

    def _write(self, line: bytes) -> None:
        try:
            self.pipe.write(line)
            self.pipe.flush()
        except (OSError, ValueError):  # the sandbox ended, or stopped reading its job
            pass


def _event(line: bytes) -> dict | None:
    """The event a line of the events pipe holds, or None: a line the learner's code wrote (nested past the
    parser's depth too), or one cut short."""
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return event if isinstance(event, dict) and "event" in event else None


class WarmPool:
    """The warm hosts of one grading run (`prewarmed`): a host per job running at once, made when first
    needed and reused; after a host fails to start, jobs run cold."""

    def __init__(self, bundle: Path, hide: list[Path], modules: list[str], limits: Limits):
        self.bundle, self.hide, self.modules, self.limits = bundle, hide, modules, limits
        self.idle: list[WarmHost] = []
        self.hosts: list[WarmHost] = []
        self.lock = threading.Lock()
        self.failed = ""

    def run(self, job: dict, limits: Limits) -> Run | None:
        """The job run by a warm host, or None when it must run cold."""
        with self.lock:
            if self.failed:
                return None
            host = self.idle.pop() if self.idle else None
        if host is None:
            try:
                host = WarmHost(self.bundle, self.hide, self.modules, self.limits)
            except HostFailed as error:
                self.failed = str(error)
                return None
            with self.lock:
                self.hosts.append(host)
        try:
            result = host.run(job, limits)
        except HostFailed:
            with self.lock:
                self.hosts.remove(host)
            host.close()
            return None
        with self.lock:
            self.idle.append(host)
        return result

    def close(self) -> None:
        with self.lock:
            hosts, self.hosts, self.idle = self.hosts, [], []
        for host in hosts:
            host.close()


_pools: dict[tuple, WarmPool] = {}


def _pool_key(bundle: Path, hide: list[Path]) -> tuple:
    return str(Path(bundle).resolve()), tuple(str(Path(path).resolve()) for path in hide)


@contextmanager
def prewarmed(bundle: Path, hide: list[Path], modules: list[str], limits: Limits = Limits()):
    """Within this, every isolated `run` on `bundle` with `hide` (and no submission folder) is a fork of a
    warm host that imported `modules` once; without isolation, runs stay cold. Leaving it ends the hosts."""
    if not isolation_available():
        yield None
        return
    key = _pool_key(bundle, hide)
    pool = _pools[key] = WarmPool(bundle, hide, list(modules), limits)
    try:
        yield pool
    finally:
        if _pools.get(key) is pool:
            del _pools[key]
        pool.close()


def run(job: dict, bundle: Path, limits: Limits, hide: list[Path], submission: Path | None = None) -> Run:
    """Run the sandbox once on `job` ({"cells", "skip_cells", "cases"}) and return what it reported before it
    finished or was stopped.

    The job (hidden cases' inputs included) goes in through a pipe, one case at a time (`Channel`), and
    never touches the disk; the events come back through another pipe, read while the sandbox runs.
    Isolated, the sandbox sees `bundle` and `submission` (the learner's folder, if given) read-only at
    /sandbox/bundle and /sandbox/submission, and no folder in `hide`."""
    isolated = isolation_available()
    pool = _pools.get(_pool_key(bundle, hide)) if isolated and submission is None else None
    if pool is not None and (warm := pool.run(job, limits)) is not None:
        return warm
    with ExitStack() as stack:
        stderr = stack.enter_context(tempfile.TemporaryFile())
        status, status_fd = stack.enter_context(_status_pipe())
        events_reader, events_writer = os.pipe()
        if isolated:
            spec = {**_view(bundle, submission, hide), "scratch_bytes": limits.scratch_bytes,
                    "status_fd": status_fd, "events_fd": events_writer,
                    "path": list(dict.fromkeys([BUNDLE, *map(str, _python_folders()[1:])]))}
            command, scratch = _isolated_command(spec), SCRATCH
        else:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="nncourse-sandbox-"))
            paths = list(dict.fromkeys([str(bundle), *map(str, _python_folders()[1:])]))
            command = [sys.executable, "-S", "-c", BOOT.format(paths=paths), str(events_writer)]
        start = time.monotonic()
        inherited = (events_writer, status_fd) if isolated else (events_writer,)
        try:
            with _running_lock:
                if _stopping.is_set():
                    raise Stopped("grading was stopped")
                process = _start(_confined(command, limits), status_fd, cwd="/" if isolated else scratch,
                                 env=_environment(scratch), stdin=subprocess.PIPE, stderr=stderr, pass_fds=inherited)
                _running[process] = isolated
        except BaseException:
            os.close(events_reader)
            raise
        finally:
            os.close(events_writer)  # only the sandbox's copy stays: its end is the end of the events
        try:
            pipe, process.stdin = process.stdin, None  # the channel's alone, which closes it
            with Channel(pipe, events_reader, {**job, "output_limit": limits.output_chars}) as channel:
                timed_out = _wait(process, limits.seconds, isolated)
                # Isolated, every process of the sandbox has ended: the pipe is at its end. Without isolation,
                # one the learner's code left behind may still hold it: read for a moment, then stop.
                channel.finish(drain_seconds=None if isolated else DRAIN_SECONDS)
        finally:
            with _running_lock:
                del _running[process]
        if _stopping.is_set():
            raise Stopped("grading was stopped while this sandbox ran")
        seconds = time.monotonic() - start
        return channel.run(_returncode(process, status.read()), timed_out, seconds, isolated, _tail(stderr))


def _wait(process: subprocess.Popen, seconds: float, isolated: bool) -> bool:
    """Wait until the sandbox and every process it started have ended, for at most `seconds`; whether it
    had to be stopped at that deadline."""
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        _stop(process, isolated)
        process.wait()
        return True
    return False


def _stop(process: subprocess.Popen, isolated: bool) -> None:
    """Kill the sandbox now. Isolated, that is the namespace's first process (the kernel then ends
    every other one before `unshare` sees it end); otherwise the whole process group."""
    first = _children(process.pid) if isolated else []
    for pid in first:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if not first:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _returncode(process: subprocess.Popen, status: bytes) -> int | None:
    """The learner process's return code as its watcher reported it, else the sandbox's own."""
    try:
        return os.waitstatus_to_exitcode(int(status))
    except ValueError:
        return process.returncode


def _tail(stderr) -> list[str]:
    stderr.seek(0, os.SEEK_END)
    stderr.seek(max(stderr.tell() - 2000, 0))
    return stderr.read().decode(errors="replace").splitlines()
