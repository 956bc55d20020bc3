"""Work split over Python threads, each running a compiled kernel that releases the GIL
(nogil) on a range of its tasks: the decoder's bands and the fit's passes.

Not numba's parallel loops, for two reasons:
- numba's OpenMP pool does not survive a fork (a DataLoader's workers were killed:
  "fork() called from a process already using GNU OpenMP");
- bits. numba compiles a parallel loop's body, or a kernel's call to another compiled
  function, as a library of its own and links a copy into the caller, which LLVM
  optimises again. The first run after a compile runs one copy, a run loaded from numba's
  cache the other; their fast-math sums differed in the last bits, and a photo encoded
  to other bytes once the cache was warm. A kernel split here is one library: the
  helpers it calls are inline="always" (the fit's sine, whose flags differ, is
  elementwise: no sum in it to reorder).

During a fit (`fit_threads`) torch runs on one thread and the passes on the threads it
had: torch's OpenMP workers spin on their cores after each op, where the passes' threads
would run.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

_pool: tuple[int, ThreadPoolExecutor] | None = None
_fit: int | None = None  # the passes' threads while a fit runs


def executor(threads: int) -> ThreadPoolExecutor:
    """This process's pool of at least `threads` threads."""
    global _pool
    if _pool is None or _pool[0] != os.getpid() or _pool[1]._max_workers < threads:
        _pool = (os.getpid(), ThreadPoolExecutor(threads))  # a fork's child makes its own
    return _pool[1]


def split(kernel, n_tasks: int, threads: int, *args) -> None:
    """kernel(t0, t1, *args) over tasks 0..n_tasks, in as many even parts as threads, the
    first on the calling thread. A task's results must not depend on which part ran it."""
    n = min(threads, n_tasks)
    if n <= 1:
        kernel(0, n_tasks, *args)
        return
    cuts = [n_tasks * k // n for k in range(n + 1)]
    pool = executor(n - 1)
    rest = [pool.submit(kernel, a, b, *args) for a, b in zip(cuts[1:-1], cuts[2:])]
    try:
        kernel(cuts[0], cuts[1], *args)
    finally:
        for f in rest:
            f.result()


def fit_passes() -> int:
    """The threads of a fit's compiled passes: fit_threads' count, else torch's."""
    if _fit is not None:
        return _fit
    import torch
    return torch.get_num_threads()


@contextmanager
def fit_threads():
    """A fit's threads: torch's ops on one, the compiled passes on as many as torch had.
    The fit's file is then the same on any number of threads. Process-wide, as torch's
    thread count is."""
    import torch
    global _fit
    n, was = torch.get_num_threads(), _fit
    _fit = n if was is None else was
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
        _fit = was
