"""Size guard: refuse, before allocating, what cannot fit in this machine's available memory.

Every entry point that allocates in proportion to a bandwidth (the transforms' tables and
outputs, the rotation tables, explicit Wigner matrices, projected datasets, a sweep's cells)
estimates its bytes and calls :func:`check_fits`, which raises :class:`TooLarge` naming what was
asked and the estimate in GiB, instead of letting the allocator (or the kernel) decide mid-run.
"""

from __future__ import annotations

import os


class TooLarge(MemoryError, ValueError):
    """A request estimated not to fit in the available memory: a value too large for this machine,
    so also a ValueError (callers that catch bad arguments catch it too)."""


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else free physical pages; None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gib(nbytes: float) -> str:
    g = nbytes / 2**30
    return f"{g:.3g} GiB" if g < 1000 else f"{g:,.0f} GiB"


#: Requests below this are never refused (and the per-call hot path does not read /proc/meminfo,
#: which costs ~45 us): no machine that runs this package has less free.
ALWAYS_FITS = 64 * 2**20


def check_fits(nbytes: float, what: str) -> None:
    """Raise :class:`TooLarge` if ``nbytes`` exceeds the memory available now."""
    if nbytes < ALWAYS_FITS:
        return
    avail = available_bytes()
    if avail is not None and nbytes > avail:
        raise TooLarge(f"{what} needs about {gib(nbytes)}, but only {gib(avail)} of memory is available;"
                       " use a smaller bandwidth, batch or oversampling")


__all__ = ["TooLarge", "available_bytes", "check_fits", "gib"]
