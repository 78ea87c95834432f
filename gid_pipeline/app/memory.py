"""A serving process's heap kept flat under a queue of requests (glibc, i.e. Linux; else no-ops)."""

from __future__ import annotations

import ctypes

MMAP_THRESHOLD_BYTES = 16 << 20
"""Heap buffers this large or larger (e.g. a chunk of frames) get their own memory mapping, returned to the system
when freed. 1 MB kept memory flatter still but cost 50-80 % more CPU in page faults; 16 MB costs nothing."""


MALLOC_ARENAS = 2
"""Heap arenas that the server's threads share."""


def limit_heap_growth() -> bool:
    """Keep a serving process's memory from growing under a queue of requests (glibc, i.e. Linux; else a no-op).

    Requests allocate and free large buffers (frames, spectral volumes) from Gradio's worker threads. By default
    glibc keeps freed large blocks in its fragmented heap and in one arena per thread rather than returning them.
    Per round of 8 queued requests (benchmarks/bench_app.py; 4 of them new predictions, 54 MB of cache) the
    resident set grew by 250-390 MB by default, by 75-210 MB with these settings, by 25-70 MB with a 1 MB
    threshold (which cost 50-80 % more CPU). The same as starting with MALLOC_MMAP_THRESHOLD_=16777216
    MALLOC_ARENA_MAX=2 set; a memory-tight deployment can start with MALLOC_MMAP_THRESHOLD_=1048576 instead.

    Returns:
        True if glibc took both settings.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_mmap_threshold, m_arena_max = -3, -8  # mallopt parameters, from glibc's malloc.h
    return bool(libc.mallopt(m_mmap_threshold, MMAP_THRESHOLD_BYTES)) and bool(libc.mallopt(m_arena_max, MALLOC_ARENAS))


def release_free_memory() -> bool:
    """Hand the heap's free pages back to the system (glibc malloc_trim; else a no-op), after each request.

    What a request freed below the mmap threshold stays in the heap, fragmented, and counts in the resident set
    until reused; trimming costs a few milliseconds. Returns True if glibc released anything.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.malloc_trim(0))
