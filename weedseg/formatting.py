"""How reports, the CLI and the demo print numbers: one rule, so a score reads the same everywhere.

Torch-free (the registry, the runtime side and every command use it).
"""

from __future__ import annotations

import numbers

MISSING = "n/a"  # a score that could not be computed (no pixels of a class, no labels)


def format_number(value: object, digits: int = 4) -> str:
    """A float to `digits` decimals, None as "n/a", a dict as "key value, ..." pairs, anything
    else (counts, names) as it is."""
    if value is None:
        return MISSING
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return f"{value:.{digits}f}"
    if isinstance(value, dict):
        return ", ".join(f"{key} {format_number(v, digits)}" for key, v in value.items())
    return str(value)
