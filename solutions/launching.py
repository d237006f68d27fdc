"""Launching a script on several processes of this machine with torchrun, as chapters 08 and 09 do, and choosing
the backend and the device of each of them.

Chapter 08 shows this code word for word and teaches it; chapter 09 launches FSDP with it. It travels with a
learner's copy of the course, like `models.py`: a script that several processes run needs a launcher that stops
every one of them when one fails or the time is up, in a graded class too, and each process needs a device that
exists on the machine it runs on (`pick_backend`; chapter 08's training script calls it).
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile

import torch
import torch.distributed as dist


def launch(script, nproc=2, args=(), timeout=120, env=None):
    """Run `script` on `nproc` processes of this machine with torchrun (python -m torch.distributed.run
    --standalone), and return what they printed.

    torchrun starts the processes and gives each its RANK, LOCAL_RANK, WORLD_SIZE and a rendezvous (MASTER_ADDR,
    MASTER_PORT); when one of them fails it stops the others. The run has `timeout` seconds: past that (or when the
    caller is interrupted) torchrun and every process under it are stopped (`_kill_tree`), and TimeoutError is
    raised. A failed run
    raises RuntimeError whose message ends with the last lines the processes wrote, the failing rank's traceback
    among them. Returns the standard output (each rank's printing, interleaved). torchrun's own temporary folder
    goes into one of the launcher's, removed afterwards. The ranks' gloo talks over the loopback interface
    (GLOO_SOCKET_IFNAME, unless the environment or `env` names one; see `loopback_interface`), as the ranks of
    chapter 08's check do.
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               str(script), *map(str, args)]
    interface = loopback_interface()
    loopback = {"GLOO_SOCKET_IFNAME": interface} if interface else {}
    with tempfile.TemporaryDirectory(prefix="torchrun-") as scratch:  # torchrun leaves a folder there at every run
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True,
                                   env={**loopback, **os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": scratch,
                                        **(env or {})})
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


def pick_backend(environ=None, cuda_device_count=None, nccl_available=None):
    """The process-group backend and the device of one rank, and why: NCCL on the rank's own GPU, cuda:LOCAL_RANK,
    when this machine has a GPU for each of its ranks; else gloo on the CPU.

    NCCL reduces CUDA tensors only, and wants one GPU per rank: with fewer GPUs than ranks on the machine (2 ranks
    on Colab's one GPU) rank 1 would ask for cuda:1, which does not exist ("invalid device ordinal"), and two NCCL
    ranks cannot share one GPU. gloo runs on the CPU, with any number of ranks (it reduces CUDA tensors too, copied
    to the host's memory and back, slower than NCCL). A non-empty NNCOURSE_DEVICE that is not a CUDA device ("cpu",
    read as chapter 06's pick_device reads it) keeps the ranks on the CPU whatever the machine has; a CUDA one
    ("cuda", "cuda:1") changes nothing, each rank still takes its own GPU.
    environ: a mapping with torchrun's LOCAL_RANK and LOCAL_WORLD_SIZE, the rank's number on this machine and the
    number of ranks this machine runs (os.environ when None; 0 and 1 when absent, one process started without
    torchrun); cuda_device_count, nccl_available: functions of no argument (torch.cuda.device_count and
    dist.is_nccl_available when None)
    ->  (backend "nccl" or "gloo", torch.device, why: one line for the log)
    """
    environ = os.environ if environ is None else environ
    cuda_device_count = torch.cuda.device_count if cuda_device_count is None else cuda_device_count
    nccl_available = dist.is_nccl_available if nccl_available is None else nccl_available
    local_rank, ranks = int(environ.get("LOCAL_RANK", 0)), int(environ.get("LOCAL_WORLD_SIZE", 1))
    chosen = environ.get("NNCOURSE_DEVICE", "")
    if chosen and not chosen.startswith("cuda"):
        return "gloo", torch.device("cpu"), f"NNCOURSE_DEVICE={chosen} keeps the ranks on the CPU"
    gpus = cuda_device_count()
    if gpus == 0:
        return "gloo", torch.device("cpu"), "no CUDA GPU on this machine"
    counted = f"{gpus} CUDA GPU{'s' * (gpus > 1)} for {ranks} rank{'s' * (ranks > 1)} on this machine"
    if gpus < ranks:
        return "gloo", torch.device("cpu"), f"{counted}, and NCCL needs one GPU per rank"
    if not nccl_available():
        return "gloo", torch.device("cpu"), f"{counted}, but this torch has no NCCL (on Windows, for one)"
    return "nccl", torch.device("cuda", local_rank), f"{counted}, one each"


# What gloo and NCCL report, in lower case, on a rank whose collective lost the rank at the other end: the error
# of a rank that was waiting for another one that failed, not an error of its own.
PEER_GONE = ("closed by peer", "reset by peer", "remote worker crash", "remote process exit", "ncclremoteerror")


def _failing_rank_output(text):
    """What the rank that failed first wrote, from torchrun's standard error: a rank's Python traceback comes with
    each line prefixed "[rankN]: ", and torchrun names under "Root Cause" the rank it saw fail first. That is not
    always the rank whose error it was: when rank 1 raises, rank 0, waiting for it in a collective, fails a moment
    later with "Connection closed by peer", and a busy machine may see both gone at once and name rank 0. So a named
    rank whose traceback is only such a lost connection (PEER_GONE) gives way to the first rank whose traceback is
    an error of its own. A rank that died without a traceback (a signal, an abort inside C++) has no such lines:
    then what the ranks wrote before torchrun's own report (its log lines start "W1124 ...", "E1124 ..."), and how
    the rank ended."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Root Cause")), len(lines))
    rank = next((line.split(":", 1)[1].split()[0] for line in lines[start:] if line.strip().startswith("rank")), None)
    written = _rank_lines(lines)
    own = [r for r, its in written.items() if not any(gone in line.lower() for line in its for gone in PEER_GONE)]
    if rank in written and rank not in own and own:  # the named rank only lost the one that failed
        rank = own[0]
    if rank in written:
        return f"rank {rank} failed first:\n" + "\n".join(written[rank][-20:])
    report = next((i for i, line in enumerate(lines) if line[:1] in "WEI" and line[1:5].isdigit()), len(lines))
    written = [line for line in lines[:report] if line.strip()][-20:]
    ended = [line.strip() for line in lines[start:] if line.strip().startswith("exitcode")][:1]
    if rank is None or not ended:
        return "\n".join(lines[-20:])
    return f"rank {rank} failed first ({ended[0]}), after the ranks wrote:\n" + "\n".join(written)


def _rank_lines(lines):
    """{rank: the lines it wrote prefixed "[rankN]: ", the prefix removed}, ranks as strings ("0", "1", ...) in the
    order of their first line."""
    written = {}
    for line in lines:
        if line.startswith("[rank") and "]: " in line:
            rank, rest = line[len("[rank"):].split("]: ", 1)
            if rank.isdigit():
                written.setdefault(rank, []).append(rest)
    return written


def loopback_interface():
    """The name of this machine's loopback network interface ("lo" on Linux, "lo0" on macOS), for gloo; None on
    Windows, whose interface names gloo does not take in this form, and where none is found.

    Unless GLOO_SOCKET_IFNAME names an interface, gloo binds to the address the machine's host name resolves to: on
    a laptop that is often its Wi-Fi or VPN address, and the ranks' traffic would go there, through the firewall.
    The ranks of one machine need only the loopback."""
    if os.name != "posix":
        return None
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return None
    return next((name for name in names if name in ("lo", "lo0")), None)


def _kill_tree(process, grace=10):
    """Stop torchrun (`process`) and every process under it, then reap it. torchrun is asked first (SIGTERM): it
    passes the signal to its workers, waits for them and exits, on every system, macOS included, where nothing lists
    a process's children. Whatever still runs `grace` seconds later is killed: the processes below torchrun, found
    through /proc on Linux (torchrun starts each worker in a session of its own, so its process group alone would
    miss them), torchrun's process group, and torchrun. Windows has neither SIGKILL nor process groups (os.killpg):
    there `taskkill /T /F` ends torchrun and the processes it started at once."""
    if not hasattr(os, "killpg"):  # Windows
        subprocess.run(["taskkill", "/T", "/F", "/PID", str(process.pid)], capture_output=True)
    else:
        below = _descendants(process.pid)  # read now: a worker whose torchrun has gone is no longer below it
        process.terminate()
        try:
            process.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        for pid in below + _descendants(process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:  # gone already
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
    process.kill()
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
