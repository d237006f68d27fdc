"""Start a sandbox's first program with its limits, in a fresh interpreter of its own:

    python -S autograder/instructor/confine.py GRADER_PID LIMITS COMMAND...     (started by sandbox.py)

It starts a session of its own, asks Linux to kill it if the grader dies (and stops at once if the grader
already has), sets the resource limits in LIMITS (JSON: {"RLIMIT_AS": bytes, ...}, each soft and hard) and
executes COMMAND, which keeps all three, as do its children.

The grader cannot do this itself between fork and exec (subprocess's `preexec_fn`): it grades on many
threads, and the fork copies a grader whose other threads may hold a lock (the allocator's, the dynamic
loader's) that nobody releases in the copy; Python code run there crashed a sandbox now and then with
SIGSEGV before it started. Here the limits are set by a process that has a single thread from its start.

Only the standard library is used.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with(grader: int) -> None:
    """Be killed when the grader dies; exit at once if it has died already (this process then has another
    parent, and the request would wait for that one)."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != grader:
        os._exit(1)


def main(argv: list[str]) -> None:
    grader, limits, command = int(argv[1]), json.loads(argv[2]), argv[3:]
    os.setsid()
    die_with(grader)
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (int(value), int(value)))
    os.execv(command[0], command)


if __name__ == "__main__":
    del sys.path[0]  # this file's folder: nothing here imports from it
    main(sys.argv)
