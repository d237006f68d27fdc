"""The sandbox's seccomp filter (isolation.py, step 2): no keyrings, no nested namespaces or mounts, less of
the kernel; and everything a notebook does still works."""
import ctypes
import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.instructor import isolation, notebooks, sandbox
from tests.isolation_required import host_can_isolate, needs_isolation
from tests.test_sandbox import learner_bundle, mode, output_of  # noqa: F401 - fixtures

MACHINE = os.uname().machine
NUMBERS = ({**SYSCALLS["denied"], "clone": SYSCALLS["clone"], "clone3": SYSCALLS["clone3"]}
           if (SYSCALLS := isolation.SYSCALLS.get(MACHINE)) else {})
LIMITS = sandbox.Limits(seconds=60, memory_bytes=4 * 2**30)
KEY_SPEC_SESSION_KEYRING, KEY_SPEC_USER_KEYRING = -3, -4
KEYCTL_GET_KEYRING_ID, KEYCTL_REVOKE, KEYCTL_UNLINK, KEYCTL_SEARCH, KEYCTL_READ = 0, 3, 9, 10, 11
SECRET = b"nncourse-test-secret"
PLANTED = b"nncourse-test-planted"

# What each sandbox cell starts with: `call(name, *args)` is the syscall's result, or its errno's name.
SYSCALL = """
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
N = {numbers!r}
L = ctypes.c_long

def call(name, *args):
    result = libc.syscall(N[name], *args)
    return errno.errorcode[ctypes.get_errno()] if result == -1 else result
"""


def run_cell(bundle: Path, source: str) -> dict[str, str]:
    """Run `source` (after SYSCALL) in an isolated sandbox; what it printed, as {name: value}."""
    job = {"cells": [{"index": 0, "source": SYSCALL.format(numbers=NUMBERS) + source}]}
    run = sandbox.run(job, bundle, LIMITS, [])
    assert run.finished and run.isolated, (run.log, run.events)
    return dict(line.split(": ", 1) for line in output_of(run).splitlines() if ": " in line)


def keyctl(*args) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(NUMBERS["keyctl"], *[ctypes.c_long(arg) if isinstance(arg, int) else arg for arg in args])


def keys_of_the_learner() -> int:
    """How many keys the learner's uid owns, machine-wide (/proc/key-users lists every user's count; /proc/keys
    only the keys this process may view, so it is checked too but misses those of others)."""
    uid = isolation.LEARNER_ID if os.geteuid() == 0 else os.geteuid()
    users = Path("/proc/key-users").read_text().splitlines()
    counts = {int(line.split(":")[0]): int(line.split()[1]) for line in users}
    listed = [line for line in Path("/proc/keys").read_text().splitlines() if line.split()[5] == str(uid)]
    return counts.get(uid, 0) + len(listed)


# --- the table and the program, without a sandbox ---------------------------------------------------------

def test_the_filter_has_numbers_for_x86_64_and_aarch64():
    x86, arm = isolation.SYSCALLS["x86_64"], isolation.SYSCALLS["aarch64"]
    assert (x86["arch"], arm["arch"]) == (0xC000003E, 0xC00000B7)
    assert set(arm["denied"]) == set(x86["denied"]) - {"iopl", "ioperm"}  # aarch64 has no port I/O
    for name in ("add_key", "request_key", "keyctl", "unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
                 "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "bpf",
                 "perf_event_open", "userfaultfd", "ptrace", "io_uring_setup", "kexec_load", "init_module"):
        assert name in arm["denied"] and name in x86["denied"], name
    assert "personality" not in x86["denied"] and "clone" not in x86["denied"]
    for table in (x86, arm):
        assert len(set(table["denied"].values())) == len(table["denied"])  # no number twice: a typo
        assert {table["clone"], table["clone3"]}.isdisjoint(table["denied"].values())
    assert isolation.PIVOT_ROOT["x86_64"] == x86["denied"]["pivot_root"]
    assert isolation.PIVOT_ROOT["aarch64"] == arm["denied"]["pivot_root"]


HEADERS = {"x86_64": ["/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h"],
           "aarch64": ["/usr/include/asm-generic/unistd.h"]}  # aarch64 uses the generic table


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_numbers_are_the_kernels(machine):
    header = next((Path(path) for path in HEADERS[machine] if Path(path).is_file()), None)
    if header is None:
        pytest.skip(f"no kernel header for {machine} here")
    defined = {name: int(number) for name, number in
               re.findall(r"^#define __NR(?:3264)?_(\w+)\s+(\d+)\s*$", header.read_text(), re.M)}
    table = isolation.SYSCALLS[machine]
    wanted = {**table["denied"], "clone": table["clone"], "clone3": table["clone3"]}
    assert {name: defined.get(name) for name in wanted} == wanted


def decide(program, machine_arch: int, nr: int, first_arg: int = 0) -> int:
    """What the classic-BPF `program` answers for a syscall: a small interpreter of the four instructions
    it uses, so that the aarch64 program is checked on any machine."""
    data = {isolation.NR_OFFSET: nr & 0xFFFFFFFF, isolation.ARCH_OFFSET: machine_arch,
            isolation.FIRST_ARG_OFFSET: first_arg & 0xFFFFFFFF}
    accumulator, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        if code == isolation.BPF_RETURN:
            return k
        if code == isolation.BPF_LOAD:
            accumulator, pc = data[k], pc + 1
            continue
        taken = accumulator == k if code == isolation.BPF_JUMP_IF_EQUAL else bool(accumulator & k)
        assert code in (isolation.BPF_JUMP_IF_EQUAL, isolation.BPF_JUMP_IF_ANY_BIT)
        pc += 1 + (jt if taken else jf)


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_filter_program_decides_as_documented(machine):
    table, program = isolation.SYSCALLS[machine], isolation.syscall_filter(machine)
    arch = table["arch"]
    eperm, allow = isolation.SECCOMP_RET_ERRNO | errno.EPERM, isolation.SECCOMP_RET_ALLOW
    for name, number in table["denied"].items():
        assert decide(program, arch, number) == eperm, name
    assert decide(program, arch, table["clone3"]) == isolation.SECCOMP_RET_ERRNO | errno.ENOSYS
    assert decide(program, arch, table["clone"], 0x01200011) == allow  # glibc's fork: SIGCHLD and TID flags
    assert decide(program, arch, table["clone"], 0x003D0F00) == allow  # pthread_create's flags
    for flag in (isolation.CLONE_NEWUSER, isolation.CLONE_NEWNS, isolation.CLONE_NEWPID, isolation.CLONE_NEWNET,
                 isolation.CLONE_NEWIPC, isolation.CLONE_NEWUTS, isolation.CLONE_NEWCGROUP):
        assert decide(program, arch, table["clone"], flag | 17) == eperm, hex(flag)
    for allowed in (0, 1, 63, 92, 135, 200):  # none refused on either machine; personality is 135 or 92
        if allowed not in (*table["denied"].values(), table["clone"], table["clone3"]):
            assert decide(program, arch, allowed) == allow
    assert decide(program, 0x40000003, 286) == isolation.SECCOMP_RET_KILL_PROCESS  # i386 add_key via int 0x80
    assert decide(program, 0x40000028, 217) == isolation.SECCOMP_RET_KILL_PROCESS  # 32-bit ARM
    x32 = decide(program, arch, 0x40000000 | 39)
    assert x32 == (eperm if machine == "x86_64" else allow)


def test_an_unknown_machine_gets_no_learner_process():
    """Without a table, the filter cannot be built, and become_learner raises rather than run the learner's
    code unfiltered (in a child process: it drops this process's privileges for good)."""
    with pytest.raises(OSError, match="sparc64"):
        isolation.syscall_filter("sparc64")
    child = (
        "import os\n"
        "from autograder.instructor import isolation\n"
        "real = os.uname()\n"
        "os.uname = lambda: os.uname_result((*real[:4], 'sparc64'))\n"
        "try:\n"
        "    isolation.become_learner(os.geteuid() == 0)\n"
        "except OSError as error:\n"
        "    print('refused:', error)\n"
        "else:\n"
        "    print('unfiltered')\n")
    done = subprocess.run([sys.executable, "-c", child], cwd=notebooks.ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(notebooks.ROOT)})
    assert done.stdout.startswith("refused:") and "sparc64" in done.stdout, (done.stdout, done.stderr)


# --- in real sandboxes, cold and warm ----------------------------------------------------------------------

@pytest.mark.slow
def test_where_namespaces_work_the_probe_finds_the_filter_holding():
    """The isolation probe fails where the filter does not hold: so where `unshare` itself makes the sandbox's
    namespaces, the probe must pass (the tests below then fail rather than skip: tests/isolation_required.py)."""
    can, how = host_can_isolate()
    if not can:
        pytest.skip(f"this host cannot make the sandbox's namespaces: {how}")
    assert sandbox.NAMESPACES == ["--mount", "--net", "--ipc", "--pid", "--fork", "--kill-child"]
    assert sandbox.isolation_available(), f"{how}, but the sandbox's probe says no"


@needs_isolation
@pytest.mark.slow
def test_every_refused_syscall_fails_with_eperm_inside(learner_bundle, mode):
    """Each syscall of the table, with zero arguments (harmless: it never reaches the kernel), and x32's."""
    seen = run_cell(
        learner_bundle,
        "for name in sorted(N):\n"
        "    if name not in ('clone', 'clone3'):\n"
        "        print(name + ':', call(name, *[L(0)] * 6))\n"
        "if os.uname().machine == 'x86_64':\n"
        "    print('x32 getpid:', errno.errorcode.get(ctypes.get_errno()) if libc.syscall(0x40000000 | 39) == -1 "
        "else 'ran')\n")
    assert {name: seen.get(name) for name in SYSCALLS["denied"]} == dict.fromkeys(SYSCALLS["denied"], "EPERM")
    if MACHINE == "x86_64":
        assert seen["x32 getpid"] == "EPERM"


@needs_isolation
@pytest.mark.slow
def test_keyring_syscalls_are_refused(learner_bundle, mode):
    seen = run_cell(
        learner_bundle,
        "print('add_key:', call('add_key', b'user', b'mine', b'x', L(1), L(-2)))\n"
        "print('session keyring:', call('keyctl', L(0), L(-3), L(0)))\n"
        f"print('request_key:', call('request_key', b'user', {SECRET!r}, None, L(0)))\n")
    assert seen == {"add_key": "EPERM", "session keyring": "EPERM", "request_key": "EPERM"}


LOOK_FOR_THE_SECRET = f"""
found = libc.syscall(N["keyctl"], L({KEYCTL_SEARCH}), L(-3), b"user", {SECRET!r}, L(0))
if found == -1:
    found = libc.syscall(N["request_key"], b"user", {SECRET!r}, None, L(0))
print("found:", errno.errorcode[ctypes.get_errno()] if found == -1 else "yes")
buffer = ctypes.create_string_buffer(64)
read = libc.syscall(N["keyctl"], L({KEYCTL_READ}), L(found), buffer, L(64))
print("secret:", buffer.value.decode() if read > 0 else "unread")
"""


@needs_isolation
@pytest.mark.slow
def test_the_graders_session_keyring_is_out_of_reach(learner_bundle, mode):
    """A secret in the grader's own session keyring, which a learner's process used to inherit."""
    libc = ctypes.CDLL(None, use_errno=True)
    key = libc.syscall(NUMBERS["add_key"], b"user", SECRET, b"s3cret", ctypes.c_size_t(6),
                       ctypes.c_long(KEY_SPEC_SESSION_KEYRING))
    if key == -1:
        pytest.skip(f"this grader cannot use its keyrings ({os.strerror(ctypes.get_errno())})")
    try:
        seen = run_cell(learner_bundle, LOOK_FOR_THE_SECRET)
    finally:
        keyctl(KEYCTL_REVOKE, key)
        keyctl(KEYCTL_UNLINK, key, KEY_SPEC_SESSION_KEYRING)
    assert seen == {"found": "EPERM", "secret": "unread"}


@needs_isolation
@pytest.mark.slow
def test_a_key_one_sandbox_stores_is_not_found_by_the_next_and_none_is_left(learner_bundle, mode):
    """One submission stored what it was given in its user keyring (every learner is uid 65534 when the
    grader is root, and that keyring outlives the sandbox); the next one looked for it there."""
    before = keys_of_the_learner()
    stored = run_cell(learner_bundle,
                      f"print('stored:', call('add_key', b'user', {PLANTED!r}, b'the references', L(14), L(-4)))")
    looked = run_cell(
        learner_bundle,
        f"print('found:', call('keyctl', L({KEYCTL_SEARCH}), L(-4), b'user', {PLANTED!r}, L(0)))\n"
        f"print('requested:', call('request_key', b'user', {PLANTED!r}, None, L(0)))\n")
    assert stored == {"stored": "EPERM"}
    assert looked == {"found": "EPERM", "requested": "EPERM"}
    assert keys_of_the_learner() == before


NESTED = f"""
CLONE_NEWUSER, SIGCHLD = {isolation.CLONE_NEWUSER}, 17
print("unshare:", call("unshare", L(CLONE_NEWUSER)))
if hasattr(os, "unshare"):
    try:
        os.unshare(os.CLONE_NEWUSER)
        print("os.unshare: ran")
    except OSError as error:
        print("os.unshare:", errno.errorcode[error.errno])
child = call("clone", L(CLONE_NEWUSER | SIGCHLD), None, None, None, None)
if child == 0:
    os._exit(0)
print("clone:", child if isinstance(child, str) else "ran")
args = (ctypes.c_uint64 * 11)(CLONE_NEWUSER, 0, 0, 0, SIGCHLD)  # struct clone_args: flags, ..., exit_signal
child = call("clone3", ctypes.byref(args), L(ctypes.sizeof(args)))
if child == 0:
    os._exit(0)
print("clone3:", child if isinstance(child, str) else "ran")
print("setns:", call("setns", L(0), L(CLONE_NEWUSER)))
print("mount:", errno.errorcode[ctypes.get_errno()] if libc.mount(b"none", b"/tmp", b"tmpfs", L(0), None) else "ran")
print("umount2:", call("umount2", b"/tmp", L(2)))
print("chroot:", call("chroot", b"/tmp"))
"""


@needs_isolation
@pytest.mark.slow
def test_no_nested_user_namespace_and_no_mount(learner_bundle, mode):
    seen = run_cell(learner_bundle, NESTED)
    assert seen.pop("os.unshare", "EPERM") == "EPERM"  # Python 3.12 has it
    assert seen == {"unshare": "EPERM", "clone": "EPERM", "clone3": "ENOSYS", "setns": "EPERM", "mount": "EPERM",
                    "umount2": "EPERM", "chroot": "EPERM"}


I386_GETPID = """
import mmap, signal
code = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
code.write(bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3]))  # mov eax, 20 (i386 getpid); int 0x80; ret
child = os.fork()
if child == 0:
    ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(code)))()
    os._exit(0)
status = os.waitpid(child, 0)[1]
print("i386 getpid:", signal.Signals(os.WTERMSIG(status)).name if os.WIFSIGNALED(status) else "ran")
"""


@needs_isolation
@pytest.mark.slow
@pytest.mark.skipif(MACHINE != "x86_64", reason="i386 syscalls are x86_64's")
def test_an_i386_syscall_kills_the_process(learner_bundle, mode):
    """int 0x80 reaches the i386 table, whose numbers differ (add_key is 286 there): the filter kills."""
    assert run_cell(learner_bundle, I386_GETPID)["i386 getpid"] == "SIGSYS"


ORDINARY_WORK = """
import multiprocessing, threading
import numpy as np
sums = []
threads = [threading.Thread(target=lambda: sums.append(float(np.ones((200, 200)).sum()))) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("threads:", sums)
child = os.fork()
if child == 0:
    os._exit(7)
print("os.fork:", os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]))
for method in ("fork", "spawn"):
    with multiprocessing.get_context(method).Pool(2) as pool:
        print(f"Pool {method}:", pool.map(abs, [-1, -2, -3]))
import torch
torch.set_num_threads(2)
print("torch:", float(torch.ones(3).sum()), float((torch.ones(256, 256) @ torch.ones(256, 256)).sum()))
"""


@needs_isolation
@pytest.mark.slow
def test_threads_forks_multiprocessing_and_torch_still_work(learner_bundle, mode):
    """Threads are made by clone3 in glibc, which falls back to clone on the filter's ENOSYS."""
    seen = run_cell(learner_bundle, ORDINARY_WORK)
    assert seen == {"threads": str([40000.0] * 4), "os.fork": "7", "Pool fork": "[1, 2, 3]",
                    "Pool spawn": "[1, 2, 3]",
                    "torch": f"3.0 {256.0 ** 3}"}


def shared_memory_on_the_machine() -> tuple[list[str], list[str]]:
    """The System V segments (/proc/sysvipc/shm, without its header) and the POSIX ones (/dev/shm) the grader
    sees."""
    segments = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return segments, sorted(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else []


@needs_isolation
@pytest.mark.slow
def test_no_segment_or_shared_memory_outlives_its_sandbox(learner_bundle, mode):
    """A System V segment (its own IPC namespace ends with the sandbox) and a POSIX shared memory block (in
    /dev/shm, which leads to the sandbox's own scratch) left behind on purpose are gone with the sandbox."""
    before = shared_memory_on_the_machine()
    seen = run_cell(learner_bundle, """
from multiprocessing import shared_memory
segment = libc.shmget(0, 4096, 0o1000 | 0o600)  # IPC_PRIVATE, IPC_CREAT: kept until removed
block = shared_memory.SharedMemory(name="nncourse-left-behind", create=True, size=4096)
block.close()  # closed, never unlinked
print("segment:", segment >= 0)
print("block:", os.path.exists("/dev/shm/nncourse-left-behind"))
""")
    assert seen == {"segment": "True", "block": "True"}  # both were made inside
    assert shared_memory_on_the_machine() == before


def test_the_kernel_constants_are_the_kernels():
    """The flags isolation.py passes to mount, unshare, prctl and ioctl: the kernel's ABI (linux/mount.h,
    linux/sched.h, linux/prctl.h, linux/sockios.h, linux/if.h), fixed for good; a wrong bit can still work on one
    machine's mounts and fail on another's."""
    assert (isolation.MS_RDONLY, isolation.MS_NOSUID, isolation.MS_NODEV, isolation.MS_NOEXEC) == (1, 2, 4, 8)
    assert (isolation.MS_REMOUNT, isolation.MS_BIND, isolation.MS_NOATIME, isolation.MS_NODIRATIME,
            isolation.MS_RELATIME) == (32, 4096, 1024, 2048, 2097152)
    assert (isolation.MNT_DETACH, isolation.MS_REC, isolation.MS_PRIVATE) == (2, 16384, 262144)
    assert (isolation.CLONE_NEWUSER, isolation.CLONE_NEWNS, isolation.CLONE_NEWIPC, isolation.CLONE_NEWPID,
            isolation.CLONE_NEWNET) == (0x10000000, 0x00020000, 0x08000000, 0x20000000, 0x40000000)
    assert (isolation.PR_SET_DUMPABLE, isolation.PR_SET_NO_NEW_PRIVS) == (4, 38)
    assert (isolation.SIOCGIFFLAGS, isolation.SIOCSIFFLAGS, isolation.IFF_UP) == (0x8913, 0x8914, 1)
    header = Path("/usr/include/linux/mount.h")
    if header.is_file():  # where the kernel's headers are installed, the same values from them
        defined = dict(re.findall(r"^#define (MS_\w+)\s+(\S+)", header.read_text(), re.M))
        for name in ("MS_RDONLY", "MS_REMOUNT", "MS_BIND", "MS_RELATIME", "MS_REC", "MS_PRIVATE"):
            base, _, shift = defined[name].strip("()").partition("<<")  # "(1<<21)" or "4096"
            assert int(base) << int(shift or 0) == getattr(isolation, name), name
