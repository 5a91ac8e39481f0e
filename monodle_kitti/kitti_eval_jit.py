"""The numba compilation of the KITTI evaluation, ahead of the call and on two cores when cold.

:func:`kitti_eval.compute_kitti_ap` calls five ``@numba.njit(cache=True)`` functions, each with
exactly one type signature (:data:`SIGNATURES`). With a warm numba cache (every run after the
first) loading them takes a fraction of a second; with an empty cache (the first run, a new
``NUMBA_CACHE_DIR``, an edited source file) compiling them takes about 4 s of one core.

:class:`ParallelCompile` is what ``tools/kitti_eval.py`` does about it: when the cache lacks
both halves of the code (:data:`HELPER_GROUP`, :data:`MAIN_GROUP`) and a core is spare (idle, as
measured over 0.1 s: :func:`spare_cores`), it starts one helper process that compiles the helper
half into the cache (same interpreter, same source files, same environment, hence the same
``NUMBA_CACHE_DIR``) while the command reads the files and compiles the other half; the command
then loads the helper's half from the cache. Whatever goes wrong on the way (the cache state
cannot be read, the helper cannot start, fails or hangs), the command compiles in its own
process as before: the numbers never depend on this, only the start-up time does. The library
functions never start processes.
"""
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, Optional, Sequence, Tuple

import numba
from numba.core import types

from . import box_overlaps, kitti_matching

_F1 = types.Array(types.float64, 1, 'C')
_F2 = types.Array(types.float64, 2, 'C')
_I1 = types.Array(types.int64, 1, 'C')
_B1 = types.Array(types.boolean, 1, 'C')
_I8, _F8, _BOOL = types.int64, types.float64, types.boolean

# Argument types of each jitted entry point exactly as compute_kitti_ap passes them (flat
# C-contiguous float64 / int64 / bool arrays, Python ints as int64, floats as float64). The
# callees (rotated IoU, per-frame matching) are compiled with their callers.
SIGNATURES: Dict[str, Tuple[object, tuple]] = {
    'frame_overlaps': (box_overlaps.frame_overlaps, (_I8, _F2, _F2, _F2, _F2, _I1, _I1)),
    'recall_thresholds': (kitti_matching.recall_thresholds, (_F1, _I8, _I8)),
    'ignore_flags': (kitti_matching.ignore_flags,
                     (_I1, _I1, _F2, _I1, _I1, _F1, _F2, _I1, _I8, _I8, _F8, _I8, _F8)),
    'true_positive_scores': (kitti_matching.true_positive_scores,
                             (_F1, _I1, _I1, _I1, _F1, _I1, _I1, _B1, _F8)),
    'counts_at_thresholds': (kitti_matching.counts_at_thresholds,
                             (_I8, _F1, _I1, _I1, _I1, _I1, _F1, _F2, _F1, _F1, _F2, _I1, _I1,
                              _B1, _F8, _F1, _BOOL)),
}
# Two halves of about equal compile time (each ~2 s of one core of a 2-core AMD EPYC; the
# helper half a little more: the main process reads the files meanwhile).
MAIN_GROUP = ('frame_overlaps', 'recall_thresholds')
HELPER_GROUP = ('ignore_flags', 'true_positive_scores', 'counts_at_thresholds')

# The helper's command: the package from the same folder as ours, then compile one group.
_HELPER_CODE = ('import sys; sys.path.insert(0, sys.argv[1]); '
                'from monodle_kitti.kitti_eval_jit import compile_group; '
                'compile_group(sys.argv[2].split(","))')
_PACKAGE_PARENT = osp.dirname(osp.dirname(osp.abspath(__file__)))
HELPER_TIMEOUT_S = 300.0  # a helper still compiling after this is stopped (normal: ~3 s)


def _idle_ticks() -> Tuple[int, int]:
    """Idle and total CPU ticks of all CPUs since boot (Linux ``/proc/stat``)."""
    with open('/proc/stat') as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; user .. steal


def spare_cores(window_s: float = 0.1) -> float:
    """Cores idle besides this process, measured over ``window_s`` (sleeping meanwhile).

    The helper only pays off with a core to spare: on a busy machine the two processes compete
    with the others for the same cores and the helper's own start-up (interpreter, numba) makes
    the cold run slower, not faster (measured on 2 cores with a training running). Without
    ``/proc/stat`` (not Linux): the usable cores minus this one.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    if cores < 2:
        return 0.0
    try:
        idle0, total0 = _idle_ticks()
        time.sleep(window_s)
        idle1, total1 = _idle_ticks()
        with open('/proc/stat') as f:
            num_cpus = sum(1 for line in f if line[:3] == 'cpu' and line[3].isdigit())
    except (OSError, ValueError, IndexError):
        return cores - 1.0
    if total1 <= total0:
        return cores - 1.0
    idle_cores = (idle1 - idle0) / (total1 - total0) * num_cpus  # this process slept: counted
    return min(cores - 1.0, idle_cores - 1.0)


def compile_group(names: Sequence[str]) -> None:
    """Compile (or load from the numba cache) the named entry points of :data:`SIGNATURES`."""
    for name in names:
        func, sig = SIGNATURES[name]
        func.compile(sig)


def is_cached(name: str) -> Optional[bool]:
    """Whether numba's cache holds the entry point ``name`` for its signature and current source.

    Reads the function's cache index (numba's own file, the same check numba makes before
    loading: numba version and source file stamp), no compilation. None when that cannot be
    told (caching disabled, a numba whose cache layout differs): the caller then compiles in
    its own process. An entry made on another CPU model counts as cached (numba recompiles it
    on use, in process: slower, still correct).
    """
    func, sig = SIGNATURES[name]
    try:
        index = func._cache._cache_file._load_index()
        return any(key[0] == sig for key in index)
    except Exception:  # private numba API: any surprise means "cannot tell"
        return None


class ParallelCompile:
    """Compile the evaluation's jitted code in two processes when numba's cache is cold.

    ``start()`` as early as possible (starts the helper only when no entry point is in the
    cache and a core is spare: :func:`spare_cores`), ``finish()`` before evaluating (compiles
    the main half, waits for the helper, loads its half), ``close()`` in any case (stops a
    helper still running after an error). Without a helper, ``finish()`` does nothing and the
    code is loaded or compiled on first use, as without this class.
    """

    def __init__(self) -> None:
        self.helper: Optional[subprocess.Popen] = None
        self.helper_rc: Optional[int] = None
        self.compile_s = 0.0

    def start(self) -> bool:
        """Start the helper process if the cache is cold; returns whether it was started."""
        if not isinstance(SIGNATURES['frame_overlaps'][0], numba.core.dispatcher.Dispatcher):
            return False  # NUMBA_DISABLE_JIT: plain Python functions
        if any(tuple(sig) in func.overloads for func, sig in SIGNATURES.values()):
            return False  # compiled in this process already (an earlier evaluation)
        if [is_cached(n) for n in SIGNATURES] != [False] * len(SIGNATURES):
            return False  # partly warm or unknown: in process, as numba does by itself
        if spare_cores() < 0.5:
            return False  # one core, or the other cores busy: in process
        try:
            self.helper = subprocess.Popen(
                [sys.executable, '-c', _HELPER_CODE, _PACKAGE_PARENT, ','.join(HELPER_GROUP)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        except (OSError, ValueError):
            self.helper = None
        return self.helper is not None

    def finish(self) -> None:
        """Compile the main half here, wait for the helper, load (or compile) its half."""
        if self.helper is None or self.helper_rc is not None:
            return
        t0 = time.perf_counter()
        compile_group(MAIN_GROUP)
        try:
            self.helper_rc = self.helper.wait(HELPER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.close()
        compile_group(HELPER_GROUP)  # from the cache, or compiled here if the helper failed
        self.compile_s = time.perf_counter() - t0

    def close(self) -> None:
        """Stop the helper if it still runs (an error before ``finish``, a timeout)."""
        if self.helper is not None and self.helper.poll() is None:
            self.helper.kill()
            self.helper.wait()

    def summary(self) -> Optional[str]:
        """One line for the user when the helper was started (None otherwise)."""
        if self.helper is None:
            return None
        if self.helper_rc == 0:
            how = 'in 2 processes'
        elif self.helper_rc is None:
            how = f'in 1 process (the helper process was stopped after {HELPER_TIMEOUT_S:.0f} s)'
        else:
            how = f'in 1 process (the helper process failed with exit code {self.helper_rc})'
        return (f'numba cache was empty: compiled the evaluation code {how} '
                f'({self.compile_s:.2f} s once the files were read); later runs load it from '
                'the cache')
