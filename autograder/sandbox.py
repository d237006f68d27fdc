"""Start the sandbox that runs one learner's code: limits, isolation, and reading what it reported.

Every run gets a fresh temporary folder holding a copy of the learner's bundle (no references),
the job and the events file. The process runs

- with limits: wall-clock seconds (the whole process group is killed at the deadline), address
  space (a runaway allocation raises MemoryError in the learner's cell), file size and no core
  dumps;
- with a clean environment and `python -S`, so that only the standard library, the installed
  third-party packages and the bundle are importable: not the course's own packages;
- where Linux user namespaces allow (`unshare`), on a read-only file system but for its own folder
  (the learner's code can change neither the grader's Python nor anything the next sandbox reads),
  without network, in a process-ID namespace of its own (every process the learner's code starts
  ends with it), and with the instructor's
  folders hidden under empty mounts: the course directory (source notebooks, gradebook, other
  learners' submissions), the folders of the references, the home folder and the shared scratch
  folders where other sandboxes live. `isolation_available()` says whether
  this machine allows it; grading records which isolation each submission had.
"""
from __future__ import annotations

import fcntl
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

BOOT = ("import sys; sys.path[:0] = {paths!r}; sys.argv = ['sandbox'] + sys.argv[1:]; "
        "from autograder.sandbox_runner import main; main(int(sys.argv[1]))")
MAX_EVENTS_BYTES = 64 * 2**20
# New user, mount, network and process-ID namespaces: no network, private mounts, and when the
# sandbox's first process ends the kernel ends every process it started, daemons included.
UNSHARE = ["unshare", "--user", "--map-root-user", "--mount", "--net", "--pid", "--fork", "--mount-proc"]
# Shared scratch space where other sandboxes (other learners) keep their folders, and the home folder.
PRIVATE_FOLDERS = [Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path.home()]


@dataclass(frozen=True)
class Limits:
    seconds: float = 60.0  # wall clock for one sandbox process
    memory_bytes: int = 6 * 2**30  # address space; torch alone maps over 1 GiB
    file_bytes: int = MAX_EVENTS_BYTES  # any one file the process writes
    output_chars: int = 20000  # the learner's printed output that is kept
    scratch_bytes: int = 256 * 2**20  # the learner's writable working folder (a tmpfs, where isolated)


@dataclass
class Run:
    events: list[dict]
    returncode: int | None
    timed_out: bool
    seconds: float
    isolated: bool
    log: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return bool(self.events) and self.events[-1].get("event") == "done"

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
    """Whether `unshare` can give a process its own user, mount and network namespaces here."""
    if not shutil.which("unshare") or not shutil.which("mount") or not sys.platform.startswith("linux"):
        return False
    try:
        probe = subprocess.run([*UNSHARE, "sh", "-c", "mount -t tmpfs none /tmp && true"],
                               capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _outermost(paths) -> list[Path]:
    """The existing folders among `paths` that are not inside another one of them."""
    resolved = sorted({Path(path).resolve() for path in paths if Path(path).is_dir()}, key=lambda p: len(p.parts))
    kept = []
    for path in resolved:
        if not any(path.is_relative_to(outer) for outer in kept):
            kept.append(path)
    return kept


def _inside(path: Path, folders) -> bool:
    return any(path != folder and path.is_relative_to(folder) for folder in folders)


def _hiding_script(hide, keep, scratch: Path, scratch_bytes: int) -> str:
    """Shell commands, run inside the new mount namespace, that make the whole file system read-only,
    put an empty tmpfs over every folder in `hide`, keep the folders in `keep` (Python itself, the
    sandbox's folder) visible and read-only where they are, even inside a hidden one, and give the
    learner's code a fresh, size-limited tmpfs at `scratch` as its working folder. Each kept folder
    is opened before the hiding and bound back through its file descriptor afterwards; a last user
    and mount namespace locks it all."""
    keep = _outermost(keep)
    hidden = [folder for folder in _outermost(hide) if folder not in keep]
    outer = [folder for folder in hidden if not _inside(folder, keep)]
    inner = [folder for folder in hidden if _inside(folder, keep)]
    rebound = [folder for folder in keep if _inside(folder, outer)]
    q = lambda path: shlex.quote(str(path))  # noqa: E731
    steps = [f"exec {3 + i}< {q(folder)}" for i, folder in enumerate(rebound)]
    # Read-only everywhere first: nothing the learner's code does can change the grader's Python,
    # the instructor's files or what the next sandbox sees. (/proc stays: the namespace below writes
    # its user map there, and the kernel guards the rest.) Fresh tmpfs mounts below are writable.
    steps.append('{ while read -r _ _ _ _ point _; do case "$point" in /proc|/proc/*) ;; '
                 '*) mount -o remount,bind,ro "$point" 2>/dev/null;; esac; done < /proc/self/mountinfo; true; }')
    steps += [f"mount -t tmpfs -o size=1m none {q(folder)}" for folder in outer]
    for i, folder in enumerate(rebound):
        steps += [f"mkdir -p {q(folder)}", f"mount --no-canonicalize --bind /proc/self/fd/{3 + i} {q(folder)}",
                  f"exec {3 + i}<&-"]
    steps += [f"mount -t tmpfs -o size=1m none {q(folder)}" for folder in inner]
    steps += [f"mount -t tmpfs -o size={scratch_bytes} none {q(scratch)}", f"cd {q(scratch)}"]
    # A further user and mount namespace locks all of the above: inside it, the learner's code is
    # root without power over these mounts (no unmounting a hiding tmpfs, no remounting read-write).
    return " && ".join(steps + ['exec unshare --user --map-root-user --mount -- "$@"'])


def _limit(limits: Limits):
    def apply():
        os.setsid()
        _die_with_parent()
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        cpu = int(limits.seconds) + 5
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    return apply


def _die_with_parent():
    """Ask Linux to kill this process if the grader dies, so that no sandbox outlives its grader."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _environment(work: Path) -> dict:
    keep = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    return {**keep, "HOME": str(work), "TMPDIR": str(work), "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(work),
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1", "JUPYTER_PLATFORM_DIRS": "1",
            **{key: os.environ[key] for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if key in os.environ}}


def run(job: dict, bundle: Path, limits: Limits, hide: list[Path]) -> Run:
    """Run the sandbox once on `job` and return what it reported before it finished or was stopped.

    The job (hidden cases' inputs included) goes in through a pipe and never touches the disk; the
    events come back through a file descriptor that the sandbox inherits."""
    work = Path(tempfile.mkdtemp(prefix="nncourse-sandbox-"))
    try:
        lib, scratch = work / "lib", work / "scratch"
        shutil.copytree(bundle, lib, ignore=shutil.ignore_patterns("__pycache__", "pyproject.toml", "README.md"))
        scratch.mkdir()
        paths = [str(lib), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
        with open(work / "events.jsonl", "wb") as events, open(work / "stderr.txt", "wb") as stderr:
            events_fd = fcntl.fcntl(events.fileno(), fcntl.F_DUPFD, 20)  # clear of the fds the mount script uses
            command = [sys.executable, "-S", "-c", BOOT.format(paths=list(dict.fromkeys(paths))), str(events_fd)]
            isolated = isolation_available()
            if isolated:
                keep = [work, sys.prefix, sys.base_prefix, *paths[1:]]
                script = _hiding_script([*hide, *PRIVATE_FOLDERS], keep, scratch, limits.scratch_bytes)
                command = [*UNSHARE, "sh", "-c", script, "sandbox", *command]
            start = time.monotonic()
            try:
                process = subprocess.Popen(command, cwd=scratch, env=_environment(scratch), stdin=subprocess.PIPE,
                                           stdout=subprocess.DEVNULL, stderr=stderr, pass_fds=(events_fd,),
                                           preexec_fn=_limit(limits))
            finally:
                os.close(events_fd)
            timed_out = False
            try:
                process.communicate(json.dumps({**job, "output_limit": limits.output_chars}).encode(),
                                    timeout=limits.seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(process)
                process.wait()
            except BrokenPipeError:  # it stopped before reading its job; its return code says how
                process.wait()
        log = (work / "stderr.txt").read_bytes()[-2000:].decode(errors="replace").splitlines()
        return Run(_read_events(work / "events.jsonl"), process.returncode, timed_out, time.monotonic() - start,
                   isolated, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _kill_group(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    events = []
    with open(path, "rb") as file:
        for line in file.read(MAX_EVENTS_BYTES).splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line the learner's code wrote, or one cut by the size limit
            if isinstance(event, dict) and "event" in event:
                events.append(event)
    return events
