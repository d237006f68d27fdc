"""Isolation tests fail, not skip, on a host that can isolate.

A test of the sandbox's isolation used to be skipped whenever `sandbox.isolation_available()` said no; but
that probe is code under test, and a probe broken into saying no turned every isolation test into a skip
and the suite stayed green. `require_isolation()` (and the `isolation` fixture, registered for every test by
the root conftest.py) asks the host itself instead, with `unshare` alone and none of the sandbox's code: the
sandbox's namespaces, and a user namespace where the tests do not run as root. Where `unshare` makes them
and the probe still says no, the test fails; where it cannot, the test is skipped, with `unshare`'s words.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import lru_cache

import pytest

# The namespaces the sandbox asks for (sandbox.NAMESPACES), written out here rather than imported, so that a
# change there cannot change the question.
NAMESPACES = ["--mount", "--net", "--ipc", "--pid", "--fork", "--kill-child"]


def unshare_command(root: bool | None = None) -> list[str]:
    """`unshare ... true` with the sandbox's namespaces (and a user namespace of its own when not `root`)."""
    root = os.geteuid() == 0 if root is None else root
    user = [] if root else ["--user", "--map-root-user"]
    return [shutil.which("unshare") or "unshare", *user, *NAMESPACES, "true"]


@lru_cache(maxsize=1)
def host_can_isolate() -> tuple[bool, str]:
    """Whether this host can make the sandbox's namespaces, asked of `unshare` alone; and what was run, with
    why not."""
    if not sys.platform.startswith("linux"):
        return False, f"not Linux ({sys.platform}): no namespaces"
    if not shutil.which("unshare"):
        return False, "no `unshare` on PATH (util-linux)"
    command = unshare_command()
    shown = "`" + " ".join(["unshare", *command[1:]]) + "`"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"{shown} could not run: {error}"
    if done.returncode != 0:
        return False, f"{shown} failed here (exit {done.returncode}): {done.stderr.strip()[-300:]}"
    return True, f"{shown} succeeded"


def require_isolation() -> None:
    """Return where the sandbox isolates; fail where the host could but the sandbox's probe says it cannot;
    skip, saying why, where the host cannot."""
    from autograder.instructor import sandbox

    if sandbox.isolation_available():
        return
    can, how = host_can_isolate()
    if can:
        pytest.fail(f"this host can make namespaces ({how}) but the sandbox's probe "
                    "(sandbox.isolation_available) says it cannot: isolation is broken", pytrace=False)
    pytest.skip(f"this host cannot make the sandbox's namespaces: {how}")


@pytest.fixture
def isolation():
    """A test that needs the sandbox's isolation: fails where the host could isolate and the sandbox does not."""
    require_isolation()


needs_isolation = pytest.mark.usefixtures("isolation")
