"""Memory a run may still use, and a check before a large allocation (private core).

Options that size work (patients, time points, chunk sizes) are checked against the memory
they will need before anything is allocated, so that too much is one clear line saying how
much and what to change, instead of a ``MemoryError`` traceback halfway through — or the
kernel's out-of-memory killer. The memory available is the smallest of

* the memory the operating system can still give (``MemAvailable`` of ``/proc/meminfo`` on
  Linux, else free physical pages from ``os.sysconf``);
* the headroom under a cgroup limit (containers, batch schedulers: ``memory.max`` minus
  ``memory.current``, cgroup v2, or the v1 equivalents);
* the headroom under this process's address-space limit (``ulimit -v``, ``RLIMIT_AS``)
  minus the address space already mapped.

Where none can be read, nothing is refused (the estimate is a guard, not a promise).
"""

from __future__ import annotations

import os
from pathlib import Path

from cellkin.errors import OptionError

__all__ = ["available_bytes", "check_memory", "format_bytes"]

_CGROUP_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _system_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - Windows
        return None


def _cgroup_bytes() -> int | None:
    for limit_file, usage_file in _CGROUP_FILES:
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 1 << 60:
            return max(limit - usage, 0)
    return None


def _address_space_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    mapped = 0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                mapped = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return max(soft - mapped, 0)


def available_bytes() -> int | None:
    """Bytes this process can still allocate (see the module docstring); None if unknown."""
    limits = (_system_bytes(), _cgroup_bytes(), _address_space_bytes())
    known = [b for b in limits if b is not None]
    return min(known) if known else None


def format_bytes(count: float) -> str:
    """``1536`` → ``"1.5 KB"`` (powers of 1024, as ``free -h``)."""
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def check_memory(needed: float, what: str, fix: str) -> None:
    """Raise :class:`~cellkin.errors.OptionError` when `needed` bytes exceed what is
    available: "`what` needs about X of memory, Y available; `fix`"."""
    available = available_bytes()
    if available is not None and needed > available:
        raise OptionError(
            f"{what} needs about {format_bytes(needed)} of memory and about "
            f"{format_bytes(available)} is available; {fix}"
        )
