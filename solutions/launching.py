"""Launching a script on several processes of this machine with torchrun, as chapters 08 and 09 do.

Chapter 08 shows this code word for word and teaches it; chapter 09 launches FSDP with it. It travels with a
learner's copy of the course, like `models.py`: a script that several processes run needs a launcher that stops
every one of them when one fails or the time is up, in a graded class too.
"""
import os
import signal
import subprocess
import sys
import tempfile


def launch(script, nproc=2, args=(), timeout=120, env=None):
    """Run `script` on `nproc` processes of this machine with torchrun (python -m torch.distributed.run
    --standalone), and return what they printed.

    torchrun starts the processes and gives each its RANK, LOCAL_RANK, WORLD_SIZE and a rendezvous (MASTER_ADDR,
    MASTER_PORT); when one of them fails it stops the others. The run has `timeout` seconds: past that (or when the
    caller is interrupted) torchrun and every process under it are killed, and TimeoutError is raised. A failed run
    raises RuntimeError whose message ends with the last lines the processes wrote, the failing rank's traceback
    among them. Returns the standard output (each rank's printing, interleaved). torchrun's own temporary folder
    goes into one of the launcher's, removed afterwards.
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               str(script), *map(str, args)]
    with tempfile.TemporaryDirectory(prefix="torchrun-") as scratch:  # torchrun leaves a folder there at every run
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True,
                                   env={**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": scratch, **(env or {})})
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(process)
            raise TimeoutError(f"{script} on {nproc} processes ran past {timeout} s and was stopped") from None
        finally:
            if process.poll() is None:  # interrupted (Ctrl-C in a notebook): leave nothing running
                _kill_tree(process)
    if process.returncode != 0:
        raise RuntimeError(f"{script} on {nproc} processes failed (exit status {process.returncode}):\n"
                           + _failing_rank_output(err))
    return out


def _failing_rank_output(text):
    """What the rank that failed first wrote, from torchrun's standard error: torchrun names that rank under
    "Root Cause", and a rank's Python traceback comes with each line prefixed "[rankN]: ". A rank that died
    without one (a signal, an abort inside C++) has no such lines: then what the ranks wrote before torchrun's
    own report (its log lines start "W1124 ...", "E1124 ..."), and how the rank ended."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Root Cause")), len(lines))
    rank = next((line.split(":", 1)[1].split()[0] for line in lines[start:] if line.strip().startswith("rank")), None)
    prefix = f"[rank{rank}]: "
    own = [line[len(prefix):] for line in lines if line.startswith(prefix)]
    if rank is not None and own:
        return f"rank {rank} failed first:\n" + "\n".join(own[-20:])
    report = next((i for i, line in enumerate(lines) if line[:1] in "WEI" and line[1:5].isdigit()), len(lines))
    written = [line for line in lines[:report] if line.strip()][-20:]
    ended = [line.strip() for line in lines[start:] if line.strip().startswith("exitcode")][:1]
    if rank is None or not ended:
        return "\n".join(lines[-20:])
    return f"rank {rank} failed first ({ended[0]}), after the ranks wrote:\n" + "\n".join(written)


def _kill_tree(process):
    """Kill `process`, its process group and every process below it, then reap it. torchrun starts each worker in a
    session of its own, so killing torchrun's group alone would leave the workers running; they are found through
    /proc (on Linux; elsewhere only the group is killed)."""
    below = _descendants(process.pid)
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()


def _descendants(pid):
    """The ids of every living process below `pid` (children, their children, ...), read from /proc."""
    children = {}
    try:
        entries = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return []
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat") as file:
                parent = int(file.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
