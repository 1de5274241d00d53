#!/usr/bin/env python3
"""Generates normclip's gradient-clipping fixtures from real TensorFlow, Keras 3 and Optax runs.

Writes (relative to the repository root):
  __test__/fixtures/clip-tf.json        tf.clip_by_norm, tf.clip_by_global_norm, tf.clip_by_value
                                        and tf.linalg.global_norm: inputs and outputs, bit-exact
  __test__/fixtures/clip-keras.json     Keras 3 (TensorFlow backend) training runs of a small MLP
                                        with fixed weights and data: the weights after every step
                                        for SGD / Adam, plain and with clipnorm, global_clipnorm,
                                        clipvalue
  __test__/fixtures/clip-optax.json     optax.per_example_global_norm_clip and
                                        per_example_layer_norm_clip on jax's CPU backend

TensorFlow runs eager with oneDNN off (TF_ENABLE_ONEDNN_OPTS=0). Everything is deterministic
(fixed seeds, no timestamps): rerunning gives byte-identical files on the versions pinned in
requirements.txt. float32 values are stored as uint32 bit patterns (exact NaN, -0.0, denormals);
float64 values as decimal strings with 17 significant digits ("NaN", "Infinity", "-Infinity").

Usage: see README.md beside this file.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import warnings
from pathlib import Path

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixture_encoding import bits32, dec64  # noqa: E402  (scripts/fixture_encoding.py)
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

assert keras.__version__.startswith("3."), keras.__version__
assert keras.backend.backend() == "tensorflow", keras.backend.backend()

ROOT = Path(__file__).resolve().parents[2]
F32 = np.float32


def encode(a) -> dict:
    a = np.asarray(a)
    if a.dtype == np.float64:
        return {"dtype": "float64", "shape": list(a.shape), "values": dec64(a)}
    return {"dtype": "float32", "shape": list(a.shape), "bits": bits32(a)}


def scalar(v) -> str:
    return dec64(np.asarray([float(v)]))[0]


def generator_info() -> dict:
    return {
        "script": "scripts/clip-fixtures/generate.py",
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "numpy": np.__version__,
        "jax": jax.__version__,
        "optax": optax.__version__,
    }


# ---------------------------------------------------------------------------------------------
# tf.clip_by_norm / tf.clip_by_global_norm / tf.clip_by_value / tf.linalg.global_norm

def tf_cases(rng: np.random.Generator) -> list[dict]:
    cases = []

    def by_norm(name, x, clip, axes=None, **extra):
        x = np.asarray(x)
        out = tf.clip_by_norm(tf.constant(x), clip, axes=axes).numpy()
        cases.append({"name": name, "op": "clip_by_norm", "input": encode(x), "clip_norm": scalar(clip),
                      "axes": axes, "output": encode(out), **extra})

    def by_global(name, xs, clip, use_norm=None, **extra):
        xs = [np.asarray(x) for x in xs]
        try:
            outs, norm = tf.clip_by_global_norm([tf.constant(x) for x in xs], clip,
                                                use_norm=None if use_norm is None else tf.constant(use_norm, xs[0].dtype if xs else tf.float32))
            case = {"outputs": [encode(o.numpy()) for o in outs], "global_norm": scalar(norm.numpy())}
        except Exception as e:  # noqa: BLE001 - recorded as TF's behaviour
            case = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
        cases.append({"name": name, "op": "clip_by_global_norm", "inputs": [encode(x) for x in xs],
                      "clip_norm": scalar(clip), "use_norm": None if use_norm is None else scalar(use_norm),
                      **case, **extra})

    # Random data, every axis form, clipping on and off.
    for shape, axes_list in [([5], [None, [0]]), ([4, 3], [None, [0], [1], [0, 1]]),
                             ([2, 3, 4], [None, [0, 2], [1], [-1]]), ([3, 3, 2, 5], [None, [0, 1, 2]])]:
        x = rng.normal(0, 1.5, shape).astype(F32)
        for axes in axes_list:
            for clip in [0.5, 2.0, 100.0]:
                by_norm(f"random-{'x'.join(map(str, shape))}-axes{axes}-c{clip}", x, clip, axes)
    # Edge values.
    by_norm("zeros", np.zeros([4], F32), 1.0)
    by_norm("signed-zeros", np.array([0.0, -0.0, 0.0], F32), 1.0)
    by_norm("zero-clip", np.array([3.0, -4.0], F32), 0.0)
    by_norm("zero-clip-zero-input", np.zeros([2], F32), 0.0)
    by_norm("negative-clip-clamped-to-0", np.array([3.0, -4.0], F32), -1.0, normclip_rejects=True)
    by_norm("nan", np.array([1.0, np.nan, 2.0], F32), 1.0)
    by_norm("nan-per-row", np.array([[1.0, np.nan], [3.0, 4.0]], F32), 1.0, [1])
    by_norm("inf", np.array([1.0, np.inf, 2.0], F32), 1.0)
    by_norm("neg-inf-unclipped-big-c", np.array([-np.inf, 2.0], F32), 1e30)
    by_norm("tiny-1e-30", np.array([3e-30, -4e-30], F32), 1e-31, normclip_differs="x*c underflows in TF")
    by_norm("tiny-unclipped", np.array([3e-30, -4e-30], F32), 1.0)
    by_norm("denormals", np.array([1e-40, -3e-41, 7e-45], F32), 1.0, normclip_differs="TF flushes denormals to zero")
    by_norm("denormals-clipped", np.array([1e-40, -3e-41, 7e-45], F32), 1e-41, normclip_differs="TF flushes denormals to zero")
    by_norm("huge-squares-overflow", np.array([3e20, -4e20], F32), 1.0, normclip_differs="exact norm")
    by_norm("huge-unclipped", np.array([3e19, 4e19], F32), 1e30, normclip_differs="exact norm")
    by_norm("max-float", np.array([3e38, 3e38], F32), 2.0, normclip_differs="exact norm")
    by_norm("just-below-squares-overflow", np.array([1e19, -1e19], F32), 1.0)
    x64 = rng.normal(0, 2.0, [3, 4])
    by_norm("float64-random", x64, 1.5)
    by_norm("float64-axis0", x64, 1.5, [0])
    by_norm("float64-huge", np.array([3e160, 4e160]), 1.0, normclip_differs="exact norm")
    by_norm("float64-tiny", np.array([3e-170, 4e-170]), 1e-171, normclip_differs="exact norm")

    # clip_by_global_norm.
    a = rng.normal(0, 1, [4, 3]).astype(F32)
    b = rng.normal(0, 2, [3]).astype(F32)
    c = rng.normal(0, 0.5, [2, 2, 2]).astype(F32)
    for clip in [0.5, 3.0, 1000.0]:
        by_global(f"three-tensors-c{clip}", [a, b, c], clip)
    by_global("one-tensor", [a], 1.0)
    by_global("zeros-N0", [np.zeros([3], F32), np.zeros([2], F32)], 1.0)
    by_global("zeros-N0-clip3", [np.zeros([3], F32)], 3.0)
    by_global("zeros-N0-clip0", [np.zeros([3], F32)], 0.0)
    by_global("inf-makes-all-nan", [np.array([1.0, np.inf], F32), b], 1.0)
    by_global("nan-makes-all-nan", [np.array([1.0, np.nan], F32), b], 1.0)
    by_global("huge-global", [np.array([3e20], F32), np.array([4e20], F32)], 1.0, normclip_differs="exact norm")
    by_global("use-norm", [a, b], 1.0, use_norm=2.5)
    by_global("use-norm-inf", [a], 1.0, use_norm=float("inf"))
    by_global("use-norm-nan", [a], 1.0, use_norm=float("nan"))
    by_global("use-norm-zero", [a], 2.0, use_norm=0.0)
    by_global("empty-list", [], 1.0)
    by_global("float64", [x64, rng.normal(0, 1, [5])], 1.0)
    for clip in [0.1, 0.3, 0.7, 1.3, 3.0, 7.0, 11.0, 41.0, 49.0]:
        # N = 0 gives the scale c * (1/c), which is not 1 for every c in float32.
        by_global(f"N0-scale-c{clip}", [np.array([0.0, 0.0], F32)], clip)
        by_global(f"unclipped-c{clip}", [np.array([1e-3, -2e-3], F32)], clip)

    # global_norm on its own.
    for name, xs in [("global-norm-random", [a, b, c]), ("global-norm-empty-tensor", [np.zeros([0], F32), b])]:
        cases.append({"name": name, "op": "global_norm", "inputs": [encode(x) for x in xs],
                      "global_norm": scalar(tf.linalg.global_norm([tf.constant(x) for x in xs]).numpy())})

    # clip_by_value, as Keras' clipvalue uses it.
    v = np.array([-3.0, -0.0, 0.0, 0.5, 9.0, np.nan, np.inf, -np.inf], F32)
    cases.append({"name": "clip-by-value", "op": "clip_by_value", "input": encode(v), "clip_value": scalar(1.0),
                  "output": encode(tf.clip_by_value(tf.constant(v), -1.0, 1.0).numpy())})
    return cases


# ---------------------------------------------------------------------------------------------
# Keras 3 training runs

def mlp(weights: list[np.ndarray]) -> keras.Model:
    model = keras.Sequential([
        keras.Input(shape=(4,)),
        keras.layers.Dense(8, activation="tanh"),
        keras.layers.Dense(3),
    ])
    model.set_weights(weights)
    return model


def keras_runs(rng: np.random.Generator) -> dict:
    weights = [rng.normal(0, 0.8, [4, 8]).astype(F32), rng.normal(0, 0.1, [8]).astype(F32),
               rng.normal(0, 0.8, [8, 3]).astype(F32), rng.normal(0, 0.1, [3]).astype(F32)]
    x = rng.normal(0, 1, [32, 4]).astype(F32)
    # Large targets: gradients far above the clip bounds, so clipping is active at every step.
    y = (rng.normal(0, 4, [32, 3]) + 3).astype(F32)
    batch, epochs = 8, 3

    optimizers = {
        "sgd": lambda: keras.optimizers.SGD(learning_rate=0.05),
        "sgd-clipnorm": lambda: keras.optimizers.SGD(learning_rate=0.05, clipnorm=0.5),
        "sgd-global-clipnorm": lambda: keras.optimizers.SGD(learning_rate=0.05, global_clipnorm=0.7),
        "sgd-clipvalue": lambda: keras.optimizers.SGD(learning_rate=0.05, clipvalue=0.05),
        "adam": lambda: keras.optimizers.Adam(learning_rate=0.02, epsilon=1e-12),
        "adam-global-clipnorm": lambda: keras.optimizers.Adam(learning_rate=0.02, epsilon=1e-12, global_clipnorm=0.5),
        "adam-clipnorm": lambda: keras.optimizers.Adam(learning_rate=0.02, epsilon=1e-12, clipnorm=0.3),
    }
    runs = []
    for name, make in optimizers.items():
        model = mlp(weights)
        optimizer = make()
        model.compile(optimizer=optimizer, loss="mse")
        steps = []
        for _ in range(epochs):
            for start in range(0, len(x), batch):
                xb, yb = x[start:start + batch], y[start:start + batch]
                # The gradients the step sees, before clipping (to show the clip is active).
                with tf.GradientTape() as tape:
                    loss = keras.losses.mean_squared_error(yb, model(xb, training=True))
                    loss = tf.reduce_mean(loss)
                grads = tape.gradient(loss, model.trainable_variables)
                model.train_on_batch(xb, yb)
                steps.append({
                    "loss_before": scalar(loss.numpy()),
                    "grad_norms": [scalar(tf.norm(g).numpy()) for g in grads],
                    "grad_global_norm": scalar(tf.linalg.global_norm(grads).numpy()),
                    "grad_max_abs": scalar(max(float(tf.reduce_max(tf.abs(g)).numpy()) for g in grads)),
                    "weights": [encode(w) for w in model.get_weights()],
                })
        config = optimizer.get_config()
        runs.append({
            "name": name,
            "optimizer": {"class_name": type(optimizer).__name__,
                          "config": {k: config[k] for k in ["learning_rate", "clipnorm", "global_clipnorm", "clipvalue"]
                                     + (["beta_1", "beta_2", "epsilon"] if "beta_1" in config else [])}},
            "steps": steps,
        })
    # Keras' own checks: only one clip option.
    try:
        keras.optimizers.SGD(clipnorm=1.0, clipvalue=1.0)
        both = None
    except ValueError as e:
        both = f"ValueError: {e}"
    return {
        "model": {"layers": [{"class": "Dense", "units": 8, "activation": "tanh"}, {"class": "Dense", "units": 3}],
                  "input_shape": [4], "loss": "mse", "batch_size": batch, "epochs": epochs},
        "initial_weights": [encode(w) for w in weights],
        "x": encode(x),
        "y": encode(y),
        "runs": runs,
        "two_clip_options_error": both,
        "training_config_keras3": json.loads(json.dumps(keras.optimizers.serialize(
            keras.optimizers.Adam(learning_rate=0.02, global_clipnorm=0.5)))),
    }


# ---------------------------------------------------------------------------------------------
# Optax per-example clipping

def optax_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    batch = 6
    g0 = rng.normal(0, 1, [batch, 4, 2]).astype(F32)
    g1 = rng.normal(0, 0.2, [batch, 3]).astype(F32)
    g0[1] = 0.0
    g1[1] = 0.0          # example 1: an all-zero gradient
    g0[2, 0, 0] = np.nan  # example 2: NaN
    g1[3] *= 100.0        # example 3: far above the bound
    for clip in [0.5, 1.5]:
        total, clipped = optax.per_example_global_norm_clip([jnp.asarray(g0), jnp.asarray(g1)], clip)
        cases.append({"name": f"global-c{clip}", "fn": "per_example_global_norm_clip",
                      "grads": [encode(g0), encode(g1)], "clip_norm": scalar(clip),
                      "sums": [encode(np.asarray(t)) for t in total], "clipped": int(clipped)})
        for uniform in [True, False]:
            total, clipped = optax.per_example_layer_norm_clip([jnp.asarray(g0), jnp.asarray(g1)], clip, uniform=uniform)
            cases.append({"name": f"layer-c{clip}-uniform{uniform}", "fn": "per_example_layer_norm_clip",
                          "uniform": uniform, "grads": [encode(g0), encode(g1)], "clip_norm": scalar(clip),
                          "sums": [encode(np.asarray(t)) for t in total], "clipped": [int(c) for c in clipped]})
    return cases


def write(path: Path, payload: dict) -> None:
    # Atomic: a half-written fixture never replaces a good one.
    text = json.dumps(payload, indent=1, sort_keys=False) + "\n"
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({len(text)} bytes)")


def main() -> None:
    out = ROOT / "__test__" / "fixtures"
    if "--out" in sys.argv:
        out = Path(sys.argv[sys.argv.index("--out") + 1])
    out.mkdir(parents=True, exist_ok=True)
    info = generator_info()
    write(out / "clip-tf.json", {"generator": info, "cases": tf_cases(np.random.default_rng(11))})
    write(out / "clip-keras.json", {"generator": info, **keras_runs(np.random.default_rng(12))})
    write(out / "clip-optax.json", {"generator": info, "cases": optax_cases(np.random.default_rng(13))})


if __name__ == "__main__":
    main()
