"""The first process of a grading sandbox: builds what the learner's code can see, then watches it.

    python -S autograder/instructor/isolation.py SPEC     (started by autograder.instructor.sandbox inside `unshare`)

`unshare` starts this as process 1 of a new PID namespace, in new mount, network and IPC namespaces
(and a new user namespace when the grader is not root). It then

1. builds a fresh root from an allow-list: an empty tmpfs into which only the folders in the spec
   are bound, read-only (the interpreter, the packages it imports, the learner's bundle, the
   submission), with a tmpfs over each folder to hide inside them, a minimal /dev (null, zero,
   urandom; /dev/shm leads to the scratch), the /proc of the new PID namespace, and a size-limited
   writable tmpfs at /tmp, the learner's only scratch; it switches to that root and detaches the
   old one, so nothing else on the machine can be named from inside;
2. forks the learner's process, which starts a session of its own, becomes an unprivileged user
   (uid 65534, in a nested user namespace when the grader is not root) without capabilities, sets
   no-new-privileges, installs a seccomp filter (`syscall_filter`), and runs
   `autograder.learner.in_sandbox` from the bundle. The filter refuses (EPERM) the kernel's keyrings
   (add_key, request_key, keyctl): keyrings are not namespaced, the learner's process keeps the
   grader's session keyring, and with a root grader every learner is the same uid 65534, whose user
   keyring outlives the sandbox, so keys would pass between sandboxes, and from the grader. It
   refuses new namespaces (unshare, setns, clone with a namespace flag; clone3, whose flags it cannot
   read, says ENOSYS, and the C library falls back to clone) and mounts (mount, umount2, pivot_root,
   chroot, the new mount API): no nested user namespace gives learner code capabilities. It refuses
   the rest of its list (bpf, perf_event_open, userfaultfd, ptrace, io_uring, modules, kexec, ...)
   because they are kernel attack surface no notebook needs. Everything else is allowed: the view
   of the file system is already an allow-list, and torch, numpy, IPython and multiprocessing need
   many syscalls. Another architecture's syscalls (i386's int 0x80), which the numbers do not
   describe, kill the process; x32's fail. A machine without a table of numbers gets no sandbox:
   the isolation probe, which checks that the filter holds, fails there;
3. stays behind as the namespace's first process, which the learner's code cannot signal: it reaps
   orphans, writes the learner process's wait status to the status descriptor and exits, and the
   kernel then ends every process left in the namespace. `unshare --kill-child` kills this process
   when `unshare` dies, and the grader's death kills `unshare`, so nothing started here outlives
   the grader either.

Warm (`"warm"` in the spec; sandbox.WarmHost): the first process builds the same root, then becomes a
warm host instead of forking a learner. It imports the heavy modules the chapter's notebook imports
(numpy, torch, scikit-learn, matplotlib, IPython, the bundle's checks), once, and then serves one job
at a time from the grader's control socket. It runs no learner code and never sees a job: each job
arrives as four descriptors (the job's pipe, the events pipe, stderr, the status pipe) that it only
hands to a child it forks (`run_job`). That child unshares new mount, PID, network and IPC namespaces,
mounts a fresh scratch over /tmp, sets the job's limits and forks the job's first process (process 1
of the new PID namespace, which mounts its own /proc), which forks the learner's process exactly as
above (`run_learner`: its own session, uid 65534, no capabilities, the seccomp filter, every other
descriptor closed).
The child ends that first process at the time limit, which ends every process of the job's namespace
before it writes the status; a learner's process is a copy of the host's memory, so what it changes
(a module it patches, a file in its scratch) dies with it and the next job starts from the host as
it was after its imports.

Only the standard library is used: it runs before the new root exists, with the grader's Python.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import select
import signal
import socket
import sys
import traceback

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 32, 4096, 1024, 2048, 1 << 21
MNT_DETACH = 2
MS_REC, MS_PRIVATE = 16384, 1 << 18
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWIPC = 0x10000000, 0x00020000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 4, 38
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 1
LEARNER_ID = 65534  # "nobody": owns no file of the grader's
NEW_ROOT = "/tmp"  # where the fresh root is assembled, inside this mount namespace only
SCRATCH = "/tmp"  # inside the fresh root
DEVICES = ["null", "zero", "urandom"]
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "loongarch64": 41, "ppc64le": 203, "s390x": 217}
# The seccomp filter (module docstring, step 2): what the kernel hands it (struct seccomp_data, little-endian
# on both machines below), what it answers, and the classic-BPF instructions it is written in.
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_ERRNO, SECCOMP_RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
NR_OFFSET, ARCH_OFFSET, FIRST_ARG_OFFSET = 0, 4, 16  # the syscall's number, its arch, args[0]'s low 32 bits
BPF_LOAD, BPF_JUMP_IF_EQUAL, BPF_JUMP_IF_ANY_BIT, BPF_RETURN = 0x20, 0x15, 0x45, 0x06  # ld [k]; jeq #k; jset #k; ret #k
X32_SYSCALL_BIT = 0x40000000  # x86_64's x32 ABI: the same arch, numbers with this bit set
CLONE_NEWTIME, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00000080, 0x02000000, 0x04000000
NAMESPACE_FLAGS = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID
                   | CLONE_NEWNET | CLONE_NEWTIME)
# Per machine: the audit arch of its native syscalls (linux/audit.h), which the filter accepts alone; whether
# it has x32; clone's and clone3's numbers; the syscalls refused with EPERM. Numbers from the kernel's tables:
# x86_64's asm/unistd_64.h, aarch64's asm-generic/unistd.h (which has no iopl or ioperm).
SYSCALLS = {
    "x86_64": {"arch": 0xC000003E, "x32": True, "clone": 56, "clone3": 435, "denied": {
        "add_key": 248, "request_key": 249, "keyctl": 250,
        "unshare": 272, "setns": 308,
        "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
        "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "ptrace": 101, "process_vm_readv": 310,
        "process_vm_writev": 311, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175,
        "finit_module": 313, "delete_module": 176, "open_by_handle_at": 304, "name_to_handle_at": 303,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "swapon": 167, "swapoff": 168,
        "reboot": 169, "acct": 163, "quotactl": 179, "setdomainname": 171, "sethostname": 170, "syslog": 103,
        "lookup_dcookie": 212, "iopl": 172, "ioperm": 173}},
    "aarch64": {"arch": 0xC00000B7, "x32": False, "clone": 220, "clone3": 435, "denied": {
        "add_key": 217, "request_key": 218, "keyctl": 219,
        "unshare": 97, "setns": 268,
        "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
        "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "ptrace": 117, "process_vm_readv": 270,
        "process_vm_writev": 271, "kexec_load": 104, "kexec_file_load": 294, "init_module": 105,
        "finit_module": 273, "delete_module": 106, "open_by_handle_at": 265, "name_to_handle_at": 264,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "swapon": 224, "swapoff": 225,
        "reboot": 142, "acct": 89, "quotactl": 60, "setdomainname": 162, "sethostname": 161, "syslog": 116,
        "lookup_dcookie": 18}},
}
KEY_SPEC_PROCESS_KEYRING = -2
# Flags a remount must repeat, or the kernel refuses it (they may be locked by a user namespace).
KEPT_FLAGS = {os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC,
              os.ST_NOATIME: MS_NOATIME, os.ST_NODIRATIME: MS_NODIRATIME, os.ST_RELATIME: MS_RELATIME}

libc = ctypes.CDLL(None, use_errno=True)


def _checked(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0, data: str | None = None):
    encode = lambda text: None if text is None else text.encode()  # noqa: E731
    _checked(libc.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data)),
             f"mount {source} on {target}")


def remount_read_only(target: str) -> None:
    """Make the mount at `target` read-only, keeping the flags the kernel does not let it drop."""
    kept = os.statvfs(target).f_flag
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
    mount(None, target, flags=flags | sum(flag for st, flag in KEPT_FLAGS.items() if kept & st))


def mountpoint(path: str, folder: bool = True) -> str:
    """Create `path` to mount on: a folder, or an empty file to bind a file on."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if folder:
        os.makedirs(path, exist_ok=True)
    else:
        open(path, "a").close()
    return path


def _is_folder(fd: int) -> bool:
    return os.path.isdir(f"/proc/self/fd/{fd}")


def build_root(spec: dict) -> None:
    """Assemble the allow-listed view under NEW_ROOT (see the module docstring, step 1)."""
    sources = [(os.open(source, os.O_PATH | os.O_CLOEXEC), target) for source, target in spec["binds"]]
    devices = [(os.open(f"/dev/{name}", os.O_PATH | os.O_CLOEXEC), f"/dev/{name}") for name in DEVICES]
    mount("none", NEW_ROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    # The scratch first: a folder on the allow-list may lie under /tmp (a clone there, its venv's
    # site-packages); mounted after the binds, the scratch would cover it.
    mount("none", mountpoint(NEW_ROOT + SCRATCH), "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={spec['scratch_bytes']},mode=1777")
    for fd, target in sources:
        inside = mountpoint(NEW_ROOT + target, _is_folder(fd))
        mount(f"/proc/self/fd/{fd}", inside, flags=MS_BIND)
        remount_read_only(inside)
    for target in spec["hide"]:
        mount("none", NEW_ROOT + target, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=755")
    for link, points_to in spec["links"]:
        os.symlink(points_to, NEW_ROOT + link)
    build_dev(devices)
    mount("proc", mountpoint(NEW_ROOT + "/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for fd, _ in sources + devices:
        os.close(fd)


def build_dev(devices) -> None:
    """A read-only /dev holding only the harmless devices, and /dev/shm leading to the scratch."""
    dev = NEW_ROOT + "/dev"
    os.mkdir(dev)
    mount("none", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=4k,mode=755")
    for fd, target in devices:
        mount(f"/proc/self/fd/{fd}", mountpoint(NEW_ROOT + target, folder=False), flags=MS_BIND)
    os.symlink(SCRATCH, dev + "/shm")
    remount_read_only(dev)


def enter_root() -> None:
    """Make NEW_ROOT the root of this mount namespace and detach the old root (pivot_root(".", "."))."""
    os.chdir(NEW_ROOT)
    _checked(libc.syscall(PIVOT_ROOT[os.uname().machine], b".", b"."), "pivot_root")
    _checked(libc.umount2(b".", MNT_DETACH), "detach the old root")
    os.chdir("/")
    remount_read_only("/")


def become_learner(grader_is_root: bool) -> None:
    """Drop to uid and gid 65534 with no capabilities, for good: a real unprivileged user where the
    grader is root, else the only id a nested user namespace can map (the grader's, seen as 65534)."""
    if grader_is_root:
        os.setgroups([])
        os.setresgid(LEARNER_ID, LEARNER_ID, LEARNER_ID)
        os.setresuid(LEARNER_ID, LEARNER_ID, LEARNER_ID)  # clears every capability
    else:
        _checked(libc.unshare(CLONE_NEWUSER), "unshare the user namespace")
        for name, text in [("setgroups", "deny"), ("uid_map", f"{LEARNER_ID} 0 1"), ("gid_map", f"{LEARNER_ID} 0 1")]:
            with open(f"/proc/self/{name}", "w") as file:
                file.write(text)
        _drop_capabilities()
    _checked(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no new privileges")
    deny_syscalls()  # last: the nested user namespace above needed unshare


def _drop_capabilities() -> None:
    """Empty this process's capability sets (the ones a new user namespace granted it)."""
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()
    _checked(libc.capset(header, data), "drop capabilities")


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def syscall_filter(machine: str) -> list[tuple[int, int, int, int]]:
    """The seccomp program (code, jump if true, jump if false, k) for `machine` (module docstring, step 2):
    another arch kills the process; x32, a refused syscall or clone with a namespace flag fail with EPERM;
    clone3 fails with ENOSYS, so that the C library uses clone, whose flags the filter can read. OSError on
    a machine without a table, so that no learner code runs unfiltered there (the isolation probe fails)."""
    if machine not in SYSCALLS:
        raise OSError(errno.ENOSYS, f"no seccomp filter for this machine ({machine}): only {', '.join(SYSCALLS)}")
    table = SYSCALLS[machine]
    refuse = (BPF_RETURN, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM)
    allow = (BPF_RETURN, 0, 0, SECCOMP_RET_ALLOW)
    program = [(BPF_LOAD, 0, 0, ARCH_OFFSET), (BPF_JUMP_IF_EQUAL, 1, 0, table["arch"]),
               (BPF_RETURN, 0, 0, SECCOMP_RET_KILL_PROCESS), (BPF_LOAD, 0, 0, NR_OFFSET)]
    if table["x32"]:
        program += [(BPF_JUMP_IF_ANY_BIT, 0, 1, X32_SYSCALL_BIT), refuse]
    for number in table["denied"].values():  # each: if it is this syscall, refuse it, else go on
        program += [(BPF_JUMP_IF_EQUAL, 0, 1, number), refuse]
    program += [(BPF_JUMP_IF_EQUAL, 0, 1, table["clone3"]), (BPF_RETURN, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS),
                (BPF_JUMP_IF_EQUAL, 1, 0, table["clone"]), allow,
                (BPF_LOAD, 0, 0, FIRST_ARG_OFFSET), (BPF_JUMP_IF_ANY_BIT, 0, 1, NAMESPACE_FLAGS), refuse, allow]
    return program


def deny_syscalls() -> None:
    """Install `syscall_filter` on this process, for good: every thread and child it makes inherits it
    (it has one thread here, fork having left the others behind)."""
    program = syscall_filter(os.uname().machine)
    instructions = (_SockFilter * len(program))(*program)
    fprog = _SockFprog(len(program), instructions)
    _checked(libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog), ctypes.c_ulong(0),
                        ctypes.c_ulong(0)), "install the seccomp filter")


def _prove_the_filter() -> None:
    """For the isolation probe: raise unless the filter refuses a key and a nested user namespace."""
    add_key = SYSCALLS[os.uname().machine]["denied"]["add_key"]
    tries = [("add_key", lambda: libc.syscall(add_key, b"user", b"nncourse-probe", b"x", ctypes.c_size_t(1),
                                              ctypes.c_long(KEY_SPEC_PROCESS_KEYRING))),
             ("unshare(CLONE_NEWUSER)", lambda: libc.unshare(CLONE_NEWUSER))]
    for what, call in tries:
        result = call()
        if result != -1 or ctypes.get_errno() != errno.EPERM:
            raise OSError(f"the seccomp filter let {what} through (result {result}, errno {ctypes.get_errno()})")


def run_learner(spec: dict, events_fd: int, status_fd: int | None) -> None:
    """The learner's process: its own session, unprivileged, in the scratch, running the runner."""
    os.setsid()
    become_learner(spec["grader_is_root"])
    if status_fd is not None:
        os.close(status_fd)
    os.chdir(SCRATCH)
    if spec.get("probe"):
        return _prove_the_filter()  # an exception ends the probe with a failure: no isolation
    if "warm" not in spec:  # a warm host put them there already
        sys.path[:0] = spec["path"]
    sys.argv = ["sandbox"]
    from autograder.learner.in_sandbox import main

    main(events_fd)


def loopback_up() -> None:
    """Bring up the loopback interface of this (new, empty) network namespace: 127.0.0.1 then reaches only
    this sandbox's own processes, which is what the ranks of a torch.distributed group (chapter 08) need to
    meet; there is still no other interface, so no route out."""
    import fcntl
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        flags = struct.unpack("16sh14x", fcntl.ioctl(probe, SIOCGIFFLAGS, struct.pack("16sh14x", b"lo", 0)))[1]
        fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | IFF_UP))


def watch(child: int) -> int:
    """Reap every process handed to this one until the learner's process ends; its wait status."""
    while True:
        pid, status = os.wait()
        if pid == child:
            return status


def main(spec: dict) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as process 1, ignore signals from inside
    loopback_up()
    build_root(spec)
    enter_root()
    if "warm" in spec:
        return serve(spec)
    child = os.fork()
    if child == 0:
        return run_learner(spec, spec["events_fd"], spec["status_fd"])  # then ends as any Python program does
    _checked(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "no tracing")  # the learner may share its uid
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)  # the job is the learner's to read: a writer must see it stop when that process does
    os.close(spec["events_fd"])
    os.write(spec["status_fd"], str(watch(child)).encode())


# -- a warm host: imports once, forks one child per job -------------------------------------------

def serve(spec: dict) -> None:
    """The warm host's loop (see the module docstring): import, say ready, then fork a child per job
    until the grader closes the control socket, which ends this process and so the whole namespace."""
    control = socket.socket(fileno=spec["control_fd"])
    os.chdir("/")
    sys.path[:0] = spec["path"]
    warm_up(spec["warm"])
    _checked(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "no tracing")
    control.sendall(b"ready")
    while True:
        _reap()
        message, fds, _, _ = socket.recv_fds(control, 65536, 4)
        if not message:
            return
        child = os.fork()
        if child == 0:
            status = 1
            try:
                control.close()
                run_job(spec, json.loads(message), *fds)
                status = 0
            except BaseException:  # noqa: BLE001 - the grader reads no status and says the job failed
                traceback.print_exc()
            finally:
                os._exit(status)
        for fd in fds:
            os.close(fd)


def warm_up(modules: list[str]) -> None:
    """Import what the learners' notebooks will import: the course's modules, never a learner's code."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - a module that does not import here is imported (or not) later
            pass


def _reap() -> None:
    """Collect the jobs' ended children (and any process handed to this one), without waiting."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_job(spec: dict, job: dict, job_fd: int, events_fd: int, stderr_fd: int, status_fd: int) -> None:
    """One job, in a child of the warm host: fresh namespaces and scratch, the job's limits, its first
    process (which runs the learner's), and the status written once every process of the job has ended."""
    _checked(libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC), "unshare the job's namespaces")
    loopback_up()
    mount(None, "/", flags=MS_REC | MS_PRIVATE)
    fresh_scratch(spec, int(job["scratch_bytes"]))
    for kind, value in [(resource.RLIMIT_AS, job["memory_bytes"]), (resource.RLIMIT_FSIZE, job["file_bytes"]),
                        (resource.RLIMIT_CORE, 0), (resource.RLIMIT_CPU, int(job["seconds"]) + 5)]:
        resource.setrlimit(kind, (int(value), int(value)))
    learner_status, status_writer = os.pipe()
    first = os.fork()
    if first == 0:
        try:
            os.close(learner_status)
            os.close(status_fd)
            _job_first_process(spec, job_fd, events_fd, stderr_fd, status_writer)
        finally:
            os._exit(0)
    for fd in (job_fd, events_fd, stderr_fd, status_writer):
        os.close(fd)
    timed_out = _wait_at_most(first, float(job["seconds"]))
    status = os.read(learner_status, 64).decode() or None  # every process of the job has ended
    os.write(status_fd, json.dumps({"status": status, "timed_out": timed_out}).encode())


def fresh_scratch(spec: dict, size: int) -> None:
    """Cover the warm host's scratch with an empty one of `size` bytes, for one job. An allow-listed folder
    may lie under the scratch (a clone under /tmp, its venv's site-packages): those are opened before the
    new scratch covers them and bound again on top of it, read-only, as build_root lays them out."""
    def under(path: str) -> bool:
        return path.startswith(SCRATCH + "/")

    kept = [(os.open(target, os.O_PATH | os.O_CLOEXEC), target) for _, target in spec["binds"] if under(target)]
    mount("none", SCRATCH, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
    for fd, target in kept:
        inside = mountpoint(target, _is_folder(fd))
        mount(f"/proc/self/fd/{fd}", inside, flags=MS_BIND)
        remount_read_only(inside)
        os.close(fd)
    for target in filter(under, spec["hide"]):
        mount("none", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=755")
    for link, points_to in spec["links"]:
        if under(link):
            os.symlink(points_to, link)


def _job_first_process(spec: dict, job_fd: int, events_fd: int, stderr_fd: int, status_writer: int) -> None:
    """Process 1 of the job's PID namespace: its own /proc, the job on standard input, then the learner's
    process, watched as in a cold sandbox; its end ends every process of the namespace."""
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    null = os.open("/dev/null", os.O_RDWR)
    for fd, target in [(job_fd, 0), (null, 1), (stderr_fd, 2)]:
        os.dup2(fd, target)
        os.close(fd)
    child = os.fork()
    if child == 0:
        code = 1
        try:
            os.close(status_writer)
            os.closerange(3, events_fd)
            os.closerange(events_fd + 1, 1 << 20)  # the host's control socket, or anything an import opened
            _checked(libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "dumpable as in a cold sandbox")  # only its own
            run_learner(spec, events_fd, None)
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        except BaseException:  # noqa: BLE001 - as an uncaught exception ends a Python program
            traceback.print_exc()
        finally:
            os._exit(code)
    _checked(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "no tracing")
    os.dup2(os.open("/dev/null", os.O_RDWR), 0)
    os.close(events_fd)
    os.write(status_writer, str(watch(child)).encode())


def _wait_at_most(pid: int, seconds: float) -> bool:
    """Wait for the child `pid` to end, killing it at `seconds`; whether it had to be killed."""
    timed_out = False
    try:
        watcher = os.pidfd_open(pid)
    except (AttributeError, OSError):
        watcher = None
    if watcher is not None:
        if not select.select([watcher], [], [], seconds)[0]:
            os.kill(pid, signal.SIGKILL)
            timed_out = True
        os.close(watcher)
    else:
        import time

        deadline = time.monotonic() + seconds
        while os.waitpid(pid, os.WNOHANG)[0] == 0:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                timed_out = True
                break
            time.sleep(0.01)
        else:
            return timed_out
    os.waitpid(pid, 0)
    return timed_out


if __name__ == "__main__":
    del sys.path[0]  # this file's folder: the grader's own modules are not the learner's
    main(json.loads(sys.argv[1]))
