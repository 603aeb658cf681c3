"""Reading the NIST StRD univariate files and their certified values."""

from __future__ import annotations

import json
import math
from pathlib import Path


def certified(shared_data: Path) -> dict:
    return json.loads((shared_data / "nist" / "certified.json").read_text())


def univariate_values(shared_data: Path, name: str) -> list[float]:
    """The data lines of a univariate set, parsed with Python's correctly rounded float()."""
    info = certified(shared_data)["univariate"][name]
    lines = (shared_data / "nist" / info["file"]).read_text().splitlines()
    first, last = info["data_lines"]
    return [float(line.split()[0]) for line in lines[first - 1 : last]]


def lre(value: float, certified_value: float) -> float:
    """Log relative error: the number of correct significant digits (capped at 16)."""
    if value == certified_value:
        return 16.0
    return min(16.0, -math.log10(abs(value - certified_value) / abs(certified_value)))
