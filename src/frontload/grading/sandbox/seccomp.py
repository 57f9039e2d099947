"""The system-call filter on every sandbox, compiled by libseccomp (through `pyseccomp`).

A deny list on top of an allow-by-default policy, like Docker's and Flatpak's profiles: ordinary
programs (threads, files, pipes, subprocesses, mmap) keep working, and the calls that reach kernel
state shared with the host are refused with EPERM; sockets of a family outside a short allow list
(`SOCKET_FAMILIES`) with EAFNOSUPPORT. bubblewrap loads the compiled program right
before it starts the boot script (`bwrap --seccomp FD`); in the weak mode the boot loads it itself.
Calls of another ABI (i386 or x32 on x86-64) kill the process: the filter is built for the native
architecture only, libseccomp's default for a foreign one.
"""

from __future__ import annotations

import errno
import functools
import os

# Each denied call, by why it must not run in a sandbox.
DENIED = {
    # kernel keyrings are not namespaced: the evaluator's keys, and a channel between samples
    "keyrings": ("add_key", "request_key"),  # keyctl: see KEYCTL_JOIN_SESSION_KEYRING below
    # a large kernel attack surface, and a way around the other rules (io_uring)
    "kernel interfaces": (
        "io_setup",  # AIO contexts come from one host-wide pool (fs.aio-max-nr): all of it
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "bpf",
        "perf_event_open",
        "userfaultfd",
    ),
    "other processes": ("ptrace", "process_vm_readv", "process_vm_writev", "kcmp"),
    "mounts": (
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "move_mount",
        "open_tree",
        "mount_setattr",
        "open_by_handle_at",
        "name_to_handle_at",
    ),
    "namespaces": ("unshare", "setns"),
    "kernel modules and kexec": (
        "init_module",
        "finit_module",
        "delete_module",
        "kexec_load",
        "kexec_file_load",
    ),
    "the machine": ("reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "vhangup"),
}
# clone's first argument holds these flags on x86-64 and arm64; clone3 passes them in memory,
# which a filter cannot read, so it answers ENOSYS and libc falls back to clone.
NAMESPACE_FLAGS = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}
KEYCTL_JOIN_SESSION_KEYRING = 1  # the one keyctl allowed: a new anonymous session keyring
# The socket families a sandbox may open: local and IP sockets (the network namespace has only
# loopback) and netlink (per namespace). Others are refused with EAFNOSUPPORT: AF_VSOCK reaches
# the hypervisor and other VMs whatever the network namespace (as Docker's profile says),
# AF_ALG is the kernel's crypto API (CVE-2026-31431's page-cache write), the rest are rarely
# audited and no Python program here needs them.
SOCKET_FAMILIES = {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16}


def _library():
    """The libseccomp binding; an ImportError or OSError says libseccomp is missing."""
    try:
        import pyseccomp
    except RuntimeError as error:  # pyseccomp raises this when libseccomp.so.2 is absent
        raise OSError(f"libseccomp not found ({error})") from None
    return pyseccomp


@functools.cache
def program() -> bytes:
    """The filter as a BPF program (what `bwrap --seccomp` and PR_SET_SECCOMP load)."""
    seccomp = _library()
    denied = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for names in DENIED.values():
        for name in names:
            rules.add_rule(denied, name)
    # keyctl only to join a fresh anonymous session keyring (the boot does, before the program)
    rules.add_rule(denied, "keyctl", seccomp.Arg(0, seccomp.NE, KEYCTL_JOIN_SESSION_KEYRING))
    rules.add_rule(denied, "keyctl", seccomp.Arg(1, seccomp.NE, 0))
    for flag in NAMESPACE_FLAGS.values():
        rules.add_rule(denied, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    _socket_families(seccomp, rules)
    with os.fdopen(os.memfd_create("fl-seccomp-export", os.MFD_CLOEXEC), "w+b") as sink:
        rules.export_bpf(sink)
        sink.seek(0)
        return sink.read()


def _socket_families(seccomp, rules) -> None:
    """Refuse `socket` for every family but SOCKET_FAMILIES. The filter compares all 64 bits of
    the argument and the kernel reads only the low 32 (an `int`), so the rules refuse every value
    above the largest allowed family (a family with high bits set included) and each value below
    it that is not allowed; a list of refused families would let `AF_VSOCK | 1 << 32` through."""
    refused = seccomp.ERRNO(errno.EAFNOSUPPORT)
    allowed = set(SOCKET_FAMILIES.values())
    rules.add_rule(refused, "socket", seccomp.Arg(0, seccomp.GT, max(allowed)))
    for family in range(max(allowed)):
        if family not in allowed:
            rules.add_rule(refused, "socket", seccomp.Arg(0, seccomp.EQ, family))


def program_fd() -> int:
    """A fresh descriptor holding the compiled filter at offset 0, for one sandbox to read."""
    fd = os.memfd_create("fl-seccomp", os.MFD_CLOEXEC)
    os.write(fd, program())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


@functools.cache
def syscall_number(name: str) -> int:
    """The native number of a system call (the boot calls keyctl by number)."""
    seccomp = _library()
    return seccomp.resolve_syscall(seccomp.system_arch(), name)


def describe() -> str:
    """One line for the evaluation summary."""
    groups = ", ".join(DENIED)
    families = ", ".join(SOCKET_FAMILIES)
    return (
        f"deny list ({groups}; keyctl except a new session keyring; namespace clone flags; "
        f"sockets other than {families})"
    )
