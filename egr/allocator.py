"""Process-level tuning of glibc's malloc for the many short-lived large arrays of one decoy.

A forward pass allocates and frees dozens of (edges × hidden) float32 tensors, each of them megabytes
for a few thousand atoms. By default glibc serves blocks that large with fresh ``mmap`` calls and hands
freed heap memory back to the kernel, so every new tensor page-faults on first touch. Serving blocks up
to 32 MiB from the heap and keeping freed memory in the process halves inference time (figures:
benchmarks/README.md, "Core steps"). Peak memory is unchanged; the process simply keeps its peak.
PyTorch's CPU performance guide suggests the same cure by swapping in jemalloc or tcmalloc;
``mallopt`` needs no extra library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 ** 2  # bytes; glibc's ceiling for this parameter on 64-bit systems
TRIM_THRESHOLD = 1024 ** 3  # bytes of free heap top kept before returning memory to the kernel


def keep_freed_memory() -> bool:
    """Serve allocations up to 32 MiB from the heap and keep up to 1 GiB of freed heap in the process.

    Call once at program start (the CLI and ``egr run``'s worker processes do). Returns False where
    it does not apply (not Linux with glibc), leaving the allocator as it was."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
