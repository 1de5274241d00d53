"""How the fixture generators store floats in JSON, shared so that every fixture file reads the
same way: float32 as uint32 bit patterns (NaN payloads, -0.0, denormals and single-ulp
differences survive), float64 as decimal strings with 17 significant digits, which round-trip
exactly, with "NaN", "Infinity" and "-Infinity" for what JSON numbers cannot hold."""
from __future__ import annotations

import numpy as np


def bits32(a) -> list[int]:
    return np.ascontiguousarray(a, dtype=np.float32).reshape(-1).view(np.uint32).tolist()


def dec64(a) -> list[str]:
    out = []
    for v in np.ascontiguousarray(a, dtype=np.float64).reshape(-1).tolist():
        if v != v:
            out.append("NaN")
        elif v == float("inf"):
            out.append("Infinity")
        elif v == float("-inf"):
            out.append("-Infinity")
        else:
            out.append(format(v, ".17g"))
    return out
