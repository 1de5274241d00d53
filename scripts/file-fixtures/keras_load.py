"""Reads a model normclip wrote, and the model it came from, with Keras itself
(`keras.saving.load_model`, compile=False), the library that wrote them.

Every weight whose variable carries a constraint must have its unit norms within the bound
(float32 rounding allowed) and be a fixed point of that constraint under Keras' own formula
(MaxNorm and UnitNorm move a compliant unit by about 1e-7 relative); every other weight must be
bit-identical to the original's. Prints one JSON
object: {"problems": [...], "checked": {path: what held}}.

    bash scripts/file-fixtures/venv.sh --keras python scripts/file-fixtures/keras_load.py ORIGINAL RESULT
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def norm_problem(constraint, w):
    """The unit norms (float64, along the constraint's axis) outside its bound, if any."""
    cfg = constraint.get_config()
    name = type(constraint).__name__
    bounds = {"MaxNorm": (0.0, cfg.get("max_value")), "UnitNorm": (1.0, 1.0)}
    if name == "MinMaxNorm" and cfg.get("rate") == 1.0:
        bounds[name] = (cfg["min_value"], cfg["max_value"])
    if name not in bounds:
        return None
    lo, hi = bounds[name]
    axis = tuple(a % w.ndim for a in np.atleast_1d(cfg.get("axis", 0)))
    norms = np.sqrt((w.astype(np.float64) ** 2).sum(axis=axis))
    # float32 rounding, and Keras' epsilon (it divides by eps + n, eps = 1e-7)
    bad = int(((norms > hi * (1 + 1e-6) + 1e-7) | (norms < lo * (1 - 1e-6) - 1e-7)).sum())
    return f"{bad} of {norms.size} unit norms outside [{lo}, {hi}] (max {norms.max()})" if bad else None


def main():
    original, result = sys.argv[1:3]
    before = keras.saving.load_model(original, compile=False).weights
    after = keras.saving.load_model(result, compile=False).weights
    problems, checked = [], {}
    if [v.path for v in before] != [v.path for v in after]:
        problems.append(f"weights differ: {[v.path for v in before]} vs {[v.path for v in after]}")
    for old, new in zip(before, after):
        w0, w = np.asarray(old.numpy()), np.asarray(new.numpy())
        if (w.shape, w.dtype) != (w0.shape, w0.dtype):
            problems.append(f"{new.path}: {w.shape} {w.dtype}, was {w0.shape} {w0.dtype}")
            continue
        identical = w.tobytes() == w0.tobytes()
        if new.constraint is None:
            if not identical:
                problems.append(f"{new.path}: changed, but its layer declares no constraint")
            checked[new.path] = "bit-identical"
            continue
        name = type(new.constraint).__name__
        bound = norm_problem(new.constraint, w)
        if bound:
            problems.append(f"{new.path}: {bound}")
        projected = keras.ops.convert_to_numpy(new.constraint(keras.ops.convert_to_tensor(w)))
        if not np.allclose(projected, w, rtol=1e-5, atol=1e-6):
            change = float(np.max(np.abs(projected - w)))
            problems.append(f"{new.path}: not a fixed point of Keras' {name} (it moves by {change})")
            checked[new.path] = f"{name} violated"
        else:
            checked[new.path] = f"{name} holds" + (" (unchanged)" if identical else "")
    print(json.dumps({"problems": problems, "checked": checked}))


if __name__ == "__main__":
    main()
