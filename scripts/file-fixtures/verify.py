"""The Python side of the round trip: after `normclip apply`, read the result with the writer's
own library and check it against the original.

    python verify.py ORIGINAL RESULT SPEC_JSON

SPEC_JSON: {"constrained": {name: {"class_name": "MaxNorm", "config": {...}, "tolerance": 1e-6}}};
`tolerance` is relative (the rounding of the stored dtype), Keras' epsilon is allowed on top.
Checks, printing one JSON verdict on stdout:
- every constrained tensor: same dtype and shape; every unit norm (float64, along the
  constraint's axis) within its bound (relative `tolerance`); NonNeg: no negative element;
- every other tensor: bit-identical (dtype, shape, bytes);
- safetensors: the same `__metadata__`; the same tensor names; npz: the same entry names;
- .keras: config.json and metadata.json byte for byte, every dataset of model.weights.h5 (read
  with h5py, the library Keras writes it with); .h5: the file attributes (model_config) and every
  dataset.
Exit status 0 when all hold, 1 otherwise.
"""
import json
import sys

import numpy as np


def load(path):
    """name -> (dtype name, shape, float64 values or None, raw bytes), plus file-level metadata."""
    if path.endswith(".safetensors"):
        from safetensors import deserialize

        with open(path, "rb") as f:
            data = f.read()
        n = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8 : 8 + n]).get("__metadata__")
        out = {}
        for name, t in deserialize(data):
            raw = bytes(t["data"])
            dtype = t["dtype"].lower()  # F32, BF16, ... (the header's names)
            dtype = {"f16": "float16", "bf16": "bfloat16", "f32": "float32", "f64": "float64"}.get(dtype, dtype)
            if dtype == "bfloat16":
                values = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
            elif dtype in ("float16", "float32", "float64"):
                values = np.frombuffer(raw, {"float16": "<f2", "float32": "<f4", "float64": "<f8"}[dtype]).astype(np.float64)
            else:
                values = None
            shape = tuple(t["shape"])
            out[name] = (dtype, shape, None if values is None else values.reshape(shape), raw)
        return out, meta
    if path.endswith(".npz") or path.endswith(".npy"):
        arrays = np.load(path) if path.endswith(".npz") else {"array": np.load(path)}
        out = {}
        for name in arrays:
            a = arrays[name]
            values = a.astype(np.float64) if a.dtype.kind == "f" else None
            out[name] = (a.dtype.str + ("F" if a.flags.f_contiguous and not a.flags.c_contiguous else ""), a.shape, values, a.tobytes(order="A"))
        return out, None
    if path.endswith(".keras") or path.endswith(".h5"):
        # Keras writes its weights with h5py; a .keras file is a zip holding model.weights.h5.
        import io
        import zipfile

        import h5py

        meta = None
        if path.endswith(".keras"):
            with zipfile.ZipFile(path) as z:  # reading each entry checks its CRC-32
                entries = {i.filename: z.read(i.filename) for i in z.infolist()}
            source = io.BytesIO(entries.pop("model.weights.h5"))
            meta = entries  # config.json, metadata.json: must come out byte for byte
        else:
            source = path
        out = {}
        with h5py.File(source, "r") as f:
            if not path.endswith(".keras"):
                meta = {k: str(v) for k, v in f.attrs.items()}

            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    a = obj[()]
                    values = a.astype(np.float64) if a.dtype.kind == "f" else None
                    out[name] = (a.dtype.str, a.shape, values, a.tobytes())

            f.visititems(visit)
        return out, meta
    raise SystemExit(f"unknown format: {path}")


def axes_of(axis, rank):
    if axis is None:
        return tuple(range(rank))
    axis = axis if isinstance(axis, list) else [axis]
    return tuple(a % rank for a in axis)


def main():
    original, result, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    before, meta_before = load(original)
    after, meta_after = load(result)
    problems = []
    if sorted(before) != sorted(after):
        problems.append(f"tensor names differ: {sorted(before)} vs {sorted(after)}")
    if meta_before != meta_after:
        problems.append(f"file metadata (safetensors __metadata__, Keras config) differs")
    checked = {}
    for name, (dtype, shape, values, raw) in before.items():
        if name not in after:
            continue
        dtype2, shape2, values2, raw2 = after[name]
        if (dtype, shape) != (dtype2, shape2):
            problems.append(f"{name}: {dtype}{shape} became {dtype2}{shape2}")
            continue
        c = spec["constrained"].get(name)
        if c is None:
            if raw != raw2:
                problems.append(f"{name}: not constrained, but its bytes changed")
            checked[name] = "bit-identical" if raw == raw2 else "changed"
            continue
        cls, cfg, tol = c["class_name"], c.get("config", {}), c["tolerance"]
        if cls == "NonNeg":
            negative = int((values2 < 0).sum())
            if negative:
                problems.append(f"{name}: {negative} negative elements under NonNeg")
            checked[name] = f"NonNeg: {negative} negative"
            continue
        norms = np.sqrt((values2 * values2).sum(axis=axes_of(cfg.get("axis", 0), len(shape))))
        lo, hi = {"MaxNorm": (0.0, cfg.get("max_value", 2.0)), "MinMaxNorm": (cfg.get("min_value", 0.0), cfg.get("max_value", 1.0)), "UnitNorm": (1.0, 1.0)}[cls]
        # Keras divides by eps + n (eps = 1e-7): a unit moved onto a bound ends up to eps short.
        slack = cfg.get("epsilon", 1e-7)
        bad = int(((norms > hi * (1 + tol) + slack) | (norms < lo * (1 - tol) - slack)).sum())
        if bad:
            problems.append(f"{name}: {bad} of {norms.size} unit norms outside [{lo}, {hi}] (max {norms.max()})")
        checked[name] = f"{cls}: {norms.size} norms in [{norms.min():.7g}, {norms.max():.7g}]"
    print(json.dumps({"ok": not problems, "problems": problems, "checked": checked}))
    sys.exit(0 if not problems else 1)


if __name__ == "__main__":
    main()
