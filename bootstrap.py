"""Set up the course in a virtual environment, then open it or test it.

    python3 bootstrap.py lab     # JupyterLab on your own working copy of the course (work/)
    python3 bootstrap.py test    # the whole test suite: unit tests, nbgrader round trip, every notebook
    python3 bootstrap.py setup   # only the set-up

Needs nothing but Python 3.11+ and the package index. The environment lives in .venv/ and is
re-installed only when pyproject.toml or constraints.txt change (a stamp file records their hash).
Extra arguments after `test` go to pytest, after `lab` to `nncourse lab` (e.g. `--course-dir DIR`
for an instructor's nbgrader course directory, or JupyterLab's own options such as `--port 8890`).
"""
import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / "nncourse-installed.sha256"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def wanted_hash():
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_environment():
    if sys.version_info < (3, 11):
        sys.exit(f"The course needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not (BIN / "python").exists() and not (BIN / "python.exe").exists():
        print(f"Creating the virtual environment in {VENV} ...", flush=True)
        venv.create(VENV, with_pip=True)
    if STAMP.exists() and STAMP.read_text() == wanted_hash():
        return
    print("Installing the course and its pinned dependencies (about two minutes on 2 cores) ...", flush=True)
    subprocess.run([str(BIN / "python"), "-m", "pip", "install", "-qq", "--disable-pip-version-check",
                    "-c", str(ROOT / "constraints.txt"), "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted_hash())


def main(argv):
    command, rest = (argv[0], argv[1:]) if argv else ("lab", [])
    if command not in ("lab", "test", "setup"):
        sys.exit(__doc__)
    ensure_environment()
    os.chdir(ROOT)
    if command == "lab":
        args = [str(BIN / "nncourse"), "lab", *rest]
    elif command == "test":
        args = [str(BIN / "python"), "-m", "pytest", *rest]
    else:
        return 0
    return subprocess.call(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
