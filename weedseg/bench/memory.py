"""Peak memory of one benchmark case, read from /proc (no psutil) and from CUDA when used.

Linux keeps the process's peak resident set (VmHWM); writing "5" to /proc/self/clear_refs
resets it to the current size, so the peak measured after a reset is what this case added.
"""

from __future__ import annotations

import re
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(key: str) -> int | None:
    try:
        match = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


class PeakRss:
    """Context manager: growth of the peak resident set (MiB) while the block ran.

    `exact` is False where the peak could not be reset (then the value is the process-lifetime
    peak minus the RSS at the start: an upper bound).
    """

    def __enter__(self) -> PeakRss:
        try:
            _CLEAR_REFS.write_text("5")
            self.exact = True
        except OSError:
            self.exact = False
        self._start = _status_kib("VmRSS")
        self.mib: float | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        peak = _status_kib("VmHWM")
        if peak is not None and self._start is not None:
            self.mib = max(peak - self._start, 0) / 1024


def cuda_peak_mib(reset: bool = False) -> float | None:
    """torch's peak CUDA allocation in MiB since the last reset (None without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return None
    if reset:
        torch.cuda.reset_peak_memory_stats()
        return 0.0
    return torch.cuda.max_memory_allocated() / 2**20
