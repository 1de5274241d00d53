#!/usr/bin/env python3
"""Generates normclip's Keras parity fixtures from real Keras runs.

Writes (relative to the repository root):
  __test__/fixtures/keras-constraints.json    inputs and outputs of every constraint, bit-exact
  __test__/fixtures/keras-serialization.json  serialize()/get_config()/get() behaviour
  __test__/fixtures/keras-model-dense.json    tf-keras Sequential model.to_json(), Dense layers
  __test__/fixtures/keras-model-conv.json     tf-keras Sequential model.to_json(), Conv2D layers
  __test__/fixtures/keras-model-radial.json   tf-keras model.to_json() with a RadialConstraint

Sources:
  "keras3"   Keras 3 (pip `keras`) on the numpy backend (KERAS_BACKEND=numpy).
  "tf_keras" Keras 2 (pip `tf-keras`) on TensorFlow, eager, oneDNN off (TF_ENABLE_ONEDNN_OPTS=0).

Everything is deterministic (fixed seeds, no timestamps): rerunning gives byte-identical files
on the same versions (see requirements.txt). Float32 values are stored as uint32 bit patterns so
NaN, -0.0, denormals and single-ulp differences survive JSON; float64 values as decimal strings
with 17 significant digits ("NaN", "Infinity", "-Infinity", "-0" for the specials).

Usage: see README.md beside this file.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import warnings
from pathlib import Path

# Backends are chosen at import time: set everything before importing keras / tensorflow.
os.environ["KERAS_BACKEND"] = "numpy"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"  # plain Eigen kernels: same results on any x86 CPU
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixture_encoding import bits32, dec64  # noqa: E402  (scripts/fixture_encoding.py)
import keras  # noqa: E402  (Keras 3)
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402  (Keras 2)

assert keras.__version__.startswith("3."), keras.__version__
assert keras.backend.backend() == "numpy", keras.backend.backend()
assert tf_keras.__version__.startswith("2."), tf_keras.__version__

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "__test__" / "fixtures"

K3 = keras.constraints
K2 = tf_keras.constraints
F32 = np.float32


# ---------------------------------------------------------------------------------------------
# Encoding

def error_text(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}"
    # TF prefixes op errors with an internal function-node name; keep the message readable.
    text = text.replace("\n", " ")
    return text[:400]


# ---------------------------------------------------------------------------------------------
# Running a constraint

CLASSES = {
    "keras3": {
        "MaxNorm": K3.MaxNorm,
        "MinMaxNorm": K3.MinMaxNorm,
        "UnitNorm": K3.UnitNorm,
        "NonNeg": K3.NonNeg,
    },
    "tf_keras": {
        "MaxNorm": K2.MaxNorm,
        "MinMaxNorm": K2.MinMaxNorm,
        "UnitNorm": K2.UnitNorm,
        "NonNeg": K2.NonNeg,
        "RadialConstraint": K2.RadialConstraint,
    },
}


def jsonable(v):
    if isinstance(v, tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, np.generic):
        return v.item()
    return v


def run(source: str, obj, x: np.ndarray) -> np.ndarray:
    if source == "keras3":
        with np.errstate(all="ignore"):
            y = np.asarray(obj(x))
    else:
        y = obj(tf.constant(x)).numpy()
    if y.dtype != x.dtype:
        raise AssertionError(f"{source} returned {y.dtype} for {x.dtype}")
    if y.shape != x.shape:
        raise AssertionError(f"{source} returned shape {y.shape} for {x.shape}")
    return y


CASES: list[dict] = []
NAMES: set[str] = set()


def add(name: str, source: str, constraint: str, kwargs: dict, x: np.ndarray, **extra) -> dict:
    """Runs Keras on x and records the case (or the error Keras raised)."""
    full = f"{name}-{'k3' if source == 'keras3' else 'k2'}"
    assert full not in NAMES, full
    NAMES.add(full)
    obj = CLASSES[source][constraint](**kwargs)
    case = {
        "name": full,
        "source": source,
        "constraint": constraint,
        "config": jsonable(obj.get_config()),
        "shape": list(x.shape),
        "dtype": str(x.dtype),
    }
    try:
        y = run(source, obj, x)
    except Exception as e:  # Keras raised: the case records its message, and no output.
        y = None
        err = error_text(e)
    if x.dtype == np.float32:
        case["input_bits"] = bits32(x)
        if y is not None:
            case["output_bits"] = bits32(y)
    else:
        case["input"] = dec64(x)
        if y is not None:
            case["output"] = dec64(y)
    if y is None:
        case["error"] = err
    case.update(extra)
    CASES.append(case)
    return case


def both(name, constraint, kwargs, x, **extra):
    add(name, "keras3", constraint, kwargs, x, **extra)
    add(name, "tf_keras", constraint, kwargs, x, **extra)


# ---------------------------------------------------------------------------------------------
# Data

def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def normal3(shape, seed):
    return (rng(seed).standard_normal(shape) * 3).astype(F32)


def uniform(shape, seed, lo=-1.0, hi=1.0):
    return rng(seed).uniform(lo, hi, shape).astype(F32)


def edge_matrix() -> tuple[np.ndarray, list[str]]:
    """(4, C) float32: each column (one axis-0 slice) is one edge case. Returns the column labels."""
    up2 = np.nextafter(F32(2), F32(3))
    dn2 = np.nextafter(F32(2), F32(1))
    up1 = np.nextafter(F32(1), F32(2))
    dn1 = np.nextafter(F32(1), F32(0))
    cols = {
        "zero": [0, 0, 0, 0],
        "neg-zero": [-0.0, 0, -0.0, 0],
        "norm2-axis": [2, 0, 0, 0],
        "norm2-ones": [1, 1, 1, 1],
        "norm2-neg": [-1, 1, -1, 1],
        "norm-just-above-2": [up2, 0, 0, 0],
        "norm-just-below-2": [dn2, 0, 0, 0],
        "norm1-axis": [0, -1, 0, 0],
        "norm1-halves": [0.5, -0.5, 0.5, 0.5],
        "norm-just-above-1": [up1, 0, 0, 0],
        "norm-just-below-1": [0, 0, dn1, 0],
        "norm0.01": [0.01, 0, 0, 0],
        "norm0.01-split": [0.006, 0.008, 0, 0],
        "norm0.5": [0.3, -0.4, 0, 0],
        "norm3": [1, 2, -2, 0],
        "norm1e6": [1e6, 0, 0, 0],
        "nan": [1, np.nan, 2, 3],
        "pos-inf": [1, np.inf, 2, 3],
        "neg-inf": [1, 2, -np.inf, 3],
        "inf-and-nan": [np.inf, np.nan, 0, 0],
        "denormal": [1e-40, -1e-40, 0, 1e-45],
        "square-underflow": [1e-20, 1e-23, -1e-22, 0],
        "max-f32-normal-small": [1.1754944e-38, 0, 0, 0],
        "big1e19-pair": [1e19, -1e19, 0, 0],
        "big1e19-four": [1e19, 1e19, 1e19, -1e19],
        "big1.8e19": [1.8e19, 0, 0, 0],
        "big1e20": [1e20, 0, 0, 0],
        "big1e20-mixed": [-1e20, 1, 2, 3],
        "max-float": [3.4028235e38, 0, 0, 0],
        "mixed-signs": [-3, 4, -0.5, 7.25],
    }
    labels = list(cols)
    with np.errstate(over="ignore"):
        m = np.array([cols[k] for k in labels], dtype=F32).T.copy()
    return m, labels


# ---------------------------------------------------------------------------------------------
# Cases

def golden_cases():
    # Keras' own test: MaxNorm(2.0) on the columns [0,0,0], [1,0,0], [3,0,0], [3,3,3].
    x = f32([[0, 1, 3, 3], [0, 0, 0, 3], [0, 0, 0, 3]])
    for src in ("keras3", "tf_keras"):
        c = add("golden-keras-maxnorm2-3x4", src, "MaxNorm", {"max_value": 2.0}, x)
        y = np.frombuffer(np.array(c["output_bits"], np.uint32).tobytes(), F32).reshape(3, 4)
        expect = np.array([[0, 1, 2, 2 / np.sqrt(3)], [0, 0, 0, 2 / np.sqrt(3)], [0, 0, 0, 2 / np.sqrt(3)]])
        assert np.allclose(y, expect, rtol=1e-6, atol=0), (src, y)
    # tfjs' test: [-1, 2, 0, 4, -5, 6] (norm sqrt(82)), maxNorm default / unitNorm.
    x = f32([-1, 2, 0, 4, -5, 6])
    mx = np.array([-0.2208630521, 0.4417261043, 0, 0.8834522086, -1.104315261, 1.325178313])
    for src in ("keras3", "tf_keras"):
        c = add("golden-tfjs-maxnorm-1d", src, "MaxNorm", {}, x)
        y = np.frombuffer(np.array(c["output_bits"], np.uint32).tobytes(), F32)
        assert np.allclose(y, mx, rtol=1e-6), (src, y)
        c = add("golden-tfjs-unitnorm-1d", src, "UnitNorm", {}, x)
        y = np.frombuffer(np.array(c["output_bits"], np.uint32).tobytes(), F32)
        assert np.allclose(y, mx / 2, rtol=1e-6), (src, y)


def edge_cases():
    m, labels = edge_matrix()
    configs = [
        ("maxnorm2", "MaxNorm", {"max_value": 2}),
        ("maxnorm0", "MaxNorm", {"max_value": 0}),
        ("minmax-default", "MinMaxNorm", {}),
        ("minmax-0.5-2-rate1", "MinMaxNorm", {"min_value": 0.5, "max_value": 2.0, "rate": 1.0}),
        ("minmax-0.5-2-rate0.5", "MinMaxNorm", {"min_value": 0.5, "max_value": 2.0, "rate": 0.5}),
        ("minmax-0.5-2-rate0", "MinMaxNorm", {"min_value": 0.5, "max_value": 2.0, "rate": 0.0}),
        ("minmax-1-1", "MinMaxNorm", {"min_value": 1.0, "max_value": 1.0}),
        ("unitnorm", "UnitNorm", {}),
    ]
    for tag, cls, kw in configs:
        both(f"edges-{tag}", cls, kw, m, columns=labels)
    # The same slices as rows, reduced over axis 1 (contiguous slices).
    both("edges-rows-maxnorm2", "MaxNorm", {"max_value": 2, "axis": 1}, m.T.copy(), rows=labels)
    both("edges-rows-unitnorm", "UnitNorm", {"axis": -1}, m.T.copy(), rows=labels)
    both("edges-rows-minmax-0.5-2-rate0.5", "MinMaxNorm",
         {"min_value": 0.5, "max_value": 2.0, "rate": 0.5, "axis": 1}, m.T.copy(), rows=labels)
    # Element-wise (axis=[]) on every edge value.
    both("edges-axis-empty-maxnorm2", "MaxNorm", {"max_value": 2, "axis": []}, m)
    both("edges-axis-empty-unitnorm", "UnitNorm", {"axis": []}, m)
    # NonNeg on every edge value, plus signed zeros and denormals in both signs.
    nn = f32([-1, -0.0, 0.0, 2, np.nan, -np.nan, -np.inf, np.inf, 1e-40, -1e-40, -1e-45,
              -3.4028235e38, 3.4028235e38, -1.1754944e-38, 0.5, -0.5])
    both("nonneg-specials", "NonNeg", {}, nn)
    both("nonneg-edges", "NonNeg", {}, m)
    both("nonneg-normal3-rank4", "NonNeg", {}, normal3((3, 3, 4, 8), 41))
    both("nonneg-uniform-rank2", "NonNeg", {}, uniform((64, 16), 42))


def axis_cases():
    # Distinct dimensions, so that a wrong axis cannot give the right answer by symmetry.
    conv = normal3((3, 2, 4, 5), 1)
    axes = [0, 1, 2, 3, -1, -2, -4, [0, 1], [0, 1, 2], [0, 1, 3], [0, 2], [1, 3], [2, 3],
            [1, 2, 3], [0, 1, 2, 3], [3, 0], [-1, 0], None, []]
    for ax in axes:
        tag = "none" if ax is None else ("empty" if ax == [] else str(ax).replace(" ", ""))
        both(f"axis-{tag}-maxnorm2-rank4", "MaxNorm", {"max_value": 2.0, "axis": ax}, conv)
    # A few axis forms with the other constraints.
    for ax in ([0, 1, 2], [0, 2], None, -1):
        tag = "none" if ax is None else str(ax).replace(" ", "")
        both(f"axis-{tag}-unitnorm-rank4", "UnitNorm", {"axis": ax}, conv)
        both(f"axis-{tag}-minmax-rank4", "MinMaxNorm",
             {"min_value": 1.0, "max_value": 3.0, "rate": 0.7, "axis": ax}, conv)
    dense = normal3((6, 5), 2)
    for ax in (0, 1, -1, -2, [0, 1], [1, 0], None, []):
        tag = "none" if ax is None else ("empty" if ax == [] else str(ax).replace(" ", ""))
        both(f"axis-{tag}-maxnorm2-dense", "MaxNorm", {"max_value": 2, "axis": ax}, dense)
    # Axes Keras rejects.
    for ax, tag in (([0, 0], "duplicate"), (2, "out-of-range"), (-3, "negative-out-of-range"),
                    ([0, 2], "list-out-of-range")):
        both(f"axis-error-{tag}-maxnorm", "MaxNorm", {"max_value": 2, "axis": ax}, dense)


def rank_shape_cases():
    both("rank1-maxnorm2", "MaxNorm", {"max_value": 2}, normal3((10,), 3))
    both("rank1-unitnorm", "UnitNorm", {}, normal3((7,), 4))
    both("rank1-single-element-maxnorm2", "MaxNorm", {"max_value": 2}, f32([-5]))
    both("rank3-conv1d-maxnorm3", "MaxNorm", {"max_value": 3, "axis": [0, 1]}, normal3((3, 4, 5), 5))
    both("rank3-conv1d-unitnorm-axis-last", "UnitNorm", {"axis": -1}, normal3((3, 4, 5), 6))
    both("rank4-conv2d-maxnorm3", "MaxNorm", {"max_value": 3, "axis": [0, 1, 2]}, normal3((3, 3, 4, 8), 7))
    both("rank4-conv2dtranspose-maxnorm3", "MaxNorm", {"max_value": 3, "axis": [0, 1, 3]},
         normal3((3, 3, 8, 4), 8))
    both("rank5-conv3d-maxnorm3", "MaxNorm", {"max_value": 3, "axis": [0, 1, 2, 3]},
         normal3((2, 3, 3, 2, 4), 9))
    both("rank5-axis13-minmax", "MinMaxNorm", {"min_value": 0.5, "max_value": 4, "rate": 0.25, "axis": [1, 3]},
         normal3((2, 3, 2, 3, 2), 10))
    both("rank5-axis-last-unitnorm", "UnitNorm", {"axis": -1}, normal3((2, 2, 3, 2, 5), 11))
    # Dense-sized kernels (one each source, to keep the fixture small).
    add("dense-784x32-maxnorm3-normal", "keras3", "MaxNorm", {"max_value": 3},
        (rng(12).standard_normal((784, 32)) * 0.05 * np.linspace(1, 6, 32)).astype(F32))
    add("narrow-1000x10-minmax", "tf_keras", "MinMaxNorm",
        {"min_value": 5.0, "max_value": 15.0, "rate": 0.5}, uniform((1000, 10), 14))
    # One-element slices and degenerate shapes.
    both("one-element-slices-maxnorm2", "MaxNorm", {"max_value": 2}, f32([[3, -1, 0.5, -2.5, 0, -0.0, 2]]))
    both("one-element-slices-unitnorm", "UnitNorm", {}, f32([[3, -1, 0.5, -2.5, 0, -0.0, 1e-8]]))
    both("one-element-slices-minmax", "MinMaxNorm", {"min_value": 1, "max_value": 2, "rate": 1},
         f32([[3, -1, 0.5, -2.5, 0, -0.0, 1e-8]]))
    both("single-column-maxnorm2", "MaxNorm", {"max_value": 2}, normal3((9, 1), 15))
    both("size0-rows-maxnorm2", "MaxNorm", {"max_value": 2}, np.zeros((0, 4), F32))
    both("size0-cols-maxnorm2", "MaxNorm", {"max_value": 2}, np.zeros((4, 0), F32))
    both("size0-rank3-unitnorm", "UnitNorm", {"axis": [0, 1]}, np.zeros((3, 0, 2), F32))
    both("size0-nonneg", "NonNeg", {}, np.zeros((0,), F32))


def distribution_cases():
    dists = {
        "normal3": lambda s, seed: normal3(s, seed),
        "normal0.05": lambda s, seed: (rng(seed).standard_normal(s) * 0.05).astype(F32),
        "normal100": lambda s, seed: (rng(seed).standard_normal(s) * 100).astype(F32),
        "uniform": lambda s, seed: uniform(s, seed),
        "uniform-pos": lambda s, seed: uniform(s, seed, 0.0, 2.0),
        "lognormal": lambda s, seed: (rng(seed).lognormal(0, 2, s) * rng(seed + 1).choice([-1, 1], s)).astype(F32),
    }
    configs = [
        ("maxnorm2", "MaxNorm", {"max_value": 2}),
        ("maxnorm3.5", "MaxNorm", {"max_value": 3.5}),
        ("minmax-default", "MinMaxNorm", {}),
        ("minmax-1-3-rate0.3", "MinMaxNorm", {"min_value": 1.0, "max_value": 3.0, "rate": 0.3}),
        ("minmax-rate0", "MinMaxNorm", {"min_value": 0.5, "max_value": 1.0, "rate": 0.0}),
        ("unitnorm", "UnitNorm", {}),
    ]
    seed = 100
    for dname, gen in dists.items():
        for tag, cls, kw in configs:
            seed += 1
            x = gen((9, 7), seed)
            both(f"dist-{dname}-{tag}", cls, kw, x)
    # Longer slices: rows of 100 (axis 1), so summation order matters.
    for dname in ("normal3", "uniform", "normal100"):
        seed += 1
        x = dists[dname]((4, 100), seed)
        both(f"long-rows-{dname}-maxnorm2", "MaxNorm", {"max_value": 2, "axis": 1}, x)
        both(f"long-rows-{dname}-unitnorm", "UnitNorm", {"axis": 1}, x)


def argument_cases():
    """Arguments Keras accepts without validation; normclip rejects them with a clear error."""
    x = normal3((4, 5), 300)
    reject = "normclip validates its arguments; Keras does not"
    both("args-maxnorm-negative", "MaxNorm", {"max_value": -1.0}, x, normclip_rejects=reject)
    both("args-minmax-min-above-max", "MinMaxNorm", {"min_value": 3.0, "max_value": 1.0}, x,
         normclip_rejects=reject)
    both("args-minmax-rate3", "MinMaxNorm", {"min_value": 0.0, "max_value": 1.0, "rate": 3.0}, x,
         normclip_rejects=reject)
    both("args-minmax-rate-negative", "MinMaxNorm", {"min_value": 0.0, "max_value": 1.0, "rate": -0.5}, x,
         normclip_rejects=reject)
    both("args-minmax-negative-min", "MinMaxNorm", {"min_value": -1.0, "max_value": 1.0}, x,
         normclip_rejects=reject)


def radial_cases():
    for k, c, f, seed in ((2, 3, 4, 200), (3, 2, 5, 201), (4, 3, 2, 202), (5, 2, 3, 203),
                          (6, 1, 2, 204), (7, 1, 1, 205), (3, 1, 1, 206), (4, 1, 1, 207)):
        add(f"radial-{k}x{k}x{c}x{f}", "tf_keras", "RadialConstraint", {}, normal3((k, k, c, f), seed))
    # Each element its own index, to see which ones are copied where (k*k*c*f distinct values).
    for k in (2, 3, 4, 5):
        x = np.arange(k * k * 2 * 3, dtype=F32).reshape(k, k, 2, 3)
        add(f"radial-arange-{k}x{k}x2x3", "tf_keras", "RadialConstraint", {}, x)
    x = normal3((5, 5, 2, 2), 208)
    x[2, 2, 0, 0] = np.nan
    x[1, 1, 1, 0] = np.inf
    x[3, 3, 0, 1] = -0.0
    x[0, 0, 1, 1] = -np.inf
    add("radial-specials-5x5x2x2", "tf_keras", "RadialConstraint", {}, x)
    for shape, tag in (((1, 1, 2, 2), "1x1"), ((1, 1, 1, 1), "1x1x1x1"), ((3, 5, 1, 1), "non-square-3x5"),
                       ((5, 3, 1, 1), "non-square-5x3"), ((3, 3, 2), "rank3"), ((2, 3, 3, 1, 1), "rank5"),
                       ((3, 3), "rank2")):
        add(f"radial-error-{tag}", "tf_keras", "RadialConstraint", {}, normal3(shape, 209))
    for shape, tag in (((3, 3, 0, 4), "3x3x0x4"), ((3, 3, 2, 0), "3x3x2x0")):
        add(f"radial-size0-{tag}", "tf_keras", "RadialConstraint", {}, np.zeros(shape, F32),
            error_is_artifact="tf-keras fails on an empty stack (IndexError); returning an empty kernel is as good")


def float64_cases():
    """tf-keras computes in the input's dtype; Keras 3 (numpy backend) always returns float32."""
    m, labels = edge_matrix()
    m64 = m.astype(np.float64)
    m64[0, labels.index("big1e20")] = 1e200  # squares overflow float64 too
    m64[1, labels.index("square-underflow")] = 1e-170
    for tag, cls, kw in (("maxnorm2", "MaxNorm", {"max_value": 2}),
                         ("minmax-0.5-2-rate0.5", "MinMaxNorm", {"min_value": 0.5, "max_value": 2.0, "rate": 0.5}),
                         ("unitnorm", "UnitNorm", {})):
        add(f"f64-edges-{tag}", "tf_keras", cls, kw, m64, columns=labels)
    x = rng(400).standard_normal((3, 3, 4, 8)) * 3
    add("f64-conv2d-maxnorm3", "tf_keras", "MaxNorm", {"max_value": 3, "axis": [0, 1, 2]}, x)
    add("f64-conv2d-unitnorm-axis02", "tf_keras", "UnitNorm", {"axis": [0, 2]}, x)
    add("f64-radial-4x4x2x3", "tf_keras", "RadialConstraint", {}, rng(401).standard_normal((4, 4, 2, 3)))


# ---------------------------------------------------------------------------------------------
# Serialization

ID_CANDIDATES = ["max_norm", "maxnorm", "MaxNorm", "maxNorm", "min_max_norm", "MinMaxNorm", "minMaxNorm",
                 "non_neg", "nonneg", "NonNeg", "nonNeg", "unit_norm", "unitnorm", "UnitNorm", "unitNorm",
                 "radial_constraint", "RadialConstraint", "radialConstraint", "constraint", "Constraint"]


def resolve(get, identifier):
    try:
        obj = get(identifier)
    except Exception as e:
        return {"error": error_text(e)}
    return {"class_name": type(obj).__name__, "config": jsonable(obj.get_config())}


def serialization_fixture() -> dict:
    k3_objs = {
        "Constraint": [K3.Constraint()],
        "MaxNorm": [K3.MaxNorm(), K3.MaxNorm(3, axis=[0, 1, 2])],
        "MinMaxNorm": [K3.MinMaxNorm(), K3.MinMaxNorm(0.5, 2.0, 0.5, axis=-1)],
        "UnitNorm": [K3.UnitNorm(), K3.UnitNorm(axis=None)],
        "NonNeg": [K3.NonNeg()],
    }
    k2_objs = {
        "Constraint": [K2.Constraint()],
        "MaxNorm": [K2.MaxNorm(), K2.MaxNorm(3, axis=[0, 1, 2])],
        "MinMaxNorm": [K2.MinMaxNorm(), K2.MinMaxNorm(0.5, 2.0, 0.5, axis=-1)],
        "UnitNorm": [K2.UnitNorm(), K2.UnitNorm(axis=None)],
        "NonNeg": [K2.NonNeg()],
        "RadialConstraint": [K2.RadialConstraint()],
    }
    classes = []
    for name in ["Constraint", "MaxNorm", "MinMaxNorm", "UnitNorm", "NonNeg", "RadialConstraint"]:
        entry = {"class_name": name, "keras3": [], "tf_keras": []}
        for obj in k3_objs.get(name, []):
            entry["keras3"].append({
                "get_config": jsonable(obj.get_config()),
                "serialize": jsonable(K3.serialize(obj)),
                "roundtrip": resolve(K3.get, K3.serialize(obj)),
            })
        for obj in k2_objs.get(name, []):
            entry["tf_keras"].append({
                "get_config": jsonable(obj.get_config()),
                "serialize": jsonable(K2.serialize(obj)),
                "serialize_legacy": jsonable(K2.serialize(obj, use_legacy_format=True)),
                "roundtrip": resolve(K2.get, K2.serialize(obj)),
            })
        if name == "RadialConstraint":
            entry["keras3"] = None  # no such class in Keras 3
        classes.append(entry)
    string_ids = {
        ident: {"keras3": resolve(K3.get, ident), "tf_keras": resolve(K2.get, ident)} for ident in ID_CANDIDATES
    }
    dict_ids = [
        {"class_name": "MaxNorm", "config": {"max_value": 3, "axis": 0}},
        {"module": "keras.constraints", "class_name": "MaxNorm", "config": {"max_value": 3, "axis": 0},
         "registered_name": None},
        {"class_name": "MaxNorm", "config": {"m": 3}},
        {"class_name": "MinMaxNorm", "config": {"low": 0.5, "high": 2, "rate": 1, "axis": 0}},
        {"class_name": "max_norm", "config": {"max_value": 3}},
        {"class_name": "maxNorm", "config": {"max_value": 3}},
        {"class_name": "MaxNorm", "config": {"maxValue": 3}},
        {"class_name": "MaxNorm", "config": {"max_value": 3, "axis": [0, 1, 2]}},
        {"class_name": "MaxNorm", "config": {}},
        {"class_name": "UnitNorm", "config": {"axis": None}},
        {"class_name": "NonNeg", "config": {}},
        {"class_name": "RadialConstraint", "config": {}},
        {"class_name": "Unknown", "config": {}},
    ]
    dicts = [
        {"identifier": d, "keras3": resolve(K3.get, json.loads(json.dumps(d))),
         "tf_keras": resolve(K2.get, json.loads(json.dumps(d)))}
        for d in dict_ids
    ]
    return {"generator": generator_info(), "classes": classes, "string_ids": string_ids, "dict_ids": dicts}


# ---------------------------------------------------------------------------------------------
# Models

def model_json(layers) -> dict:
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential(layers)
    return json.loads(model.to_json())


def models() -> dict[str, dict]:
    L = tf_keras.layers
    dense = model_json([
        L.InputLayer(input_shape=(8,)),
        L.Dense(16, activation="relu", kernel_constraint=K2.MaxNorm(3), bias_constraint=K2.NonNeg(), name="dense_maxnorm"),
        L.Dense(8, kernel_constraint=K2.MinMaxNorm(0.5, 2.0, rate=0.5, axis=0), name="dense_minmaxnorm"),
        L.Dense(4, kernel_constraint=K2.UnitNorm(axis=0), bias_constraint=K2.NonNeg(), name="dense_unitnorm"),
        L.Dense(2, kernel_constraint=K2.NonNeg(), name="dense_nonneg"),
    ])
    conv = model_json([
        L.InputLayer(input_shape=(12, 12, 3)),
        L.Conv2D(8, 3, kernel_constraint=K2.MaxNorm(3, axis=[0, 1, 2]), bias_constraint=K2.NonNeg(), name="conv_maxnorm"),
        L.Conv2D(4, 3, kernel_constraint=K2.UnitNorm(axis=[0, 1, 2]), name="conv_unitnorm"),
        L.Conv2D(4, 3, kernel_constraint=K2.MinMaxNorm(0.1, 1.5, rate=1.0, axis=[0, 1, 2]), name="conv_minmaxnorm"),
        L.Flatten(name="flatten"),
        L.Dense(2, kernel_constraint=K2.MaxNorm(2), name="dense_out"),
    ])
    radial = model_json([
        L.InputLayer(input_shape=(10, 10, 2)),
        L.Conv2D(4, 5, kernel_constraint=K2.RadialConstraint(), bias_constraint=K2.NonNeg(), name="conv_radial"),
        L.Flatten(name="flatten"),
        L.Dense(1, name="dense_out"),
    ])
    return {"keras-model-dense.json": dense, "keras-model-conv.json": conv, "keras-model-radial.json": radial}


# ---------------------------------------------------------------------------------------------
# Output

def generator_info() -> dict:
    return {
        "keras": keras.__version__,
        "tf_keras": tf_keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "backend": keras.backend.backend(),
        "python": platform.python_version(),
        "script": "scripts/keras-fixtures/generate.py",
    }


def dump_constraints(path: Path, doc: dict) -> None:
    """One case per line, so diffs stay readable and the file stays small."""
    lines = ["{", f' "generator": {json.dumps(doc["generator"])},', ' "cases": [']
    for i, case in enumerate(doc["cases"]):
        sep = "," if i + 1 < len(doc["cases"]) else ""
        lines.append("  " + json.dumps(case, separators=(",", ":"), allow_nan=False) + sep)
    lines += [" ]", "}", ""]
    path.write_text("\n".join(lines))


def main() -> int:
    import argparse

    global OUT
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT})")
    OUT = parser.parse_args().out
    OUT.mkdir(parents=True, exist_ok=True)
    golden_cases()
    edge_cases()
    axis_cases()
    rank_shape_cases()
    distribution_cases()
    argument_cases()
    radial_cases()
    float64_cases()
    doc = {"generator": generator_info(), "cases": CASES}
    dump_constraints(OUT / "keras-constraints.json", doc)
    (OUT / "keras-serialization.json").write_text(json.dumps(serialization_fixture(), indent=1, allow_nan=False) + "\n")
    for name, m in models().items():
        (OUT / name).write_text(json.dumps(m, indent=1, allow_nan=False) + "\n")
    errors = sum(1 for c in CASES if "error" in c)
    sizes = {p.name: p.stat().st_size for p in sorted(OUT.glob("keras-*.json"))}
    print(f"{len(CASES)} cases ({errors} error cases); files: {sizes}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
