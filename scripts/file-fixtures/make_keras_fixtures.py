"""Writes __test__/fixtures/files/keras-model.keras and keras-model.h5 with Keras 3 itself
(`model.save`), from a model whose layers declare constraints: Dense kernels under MaxNorm and
UnitNorm, a Conv2D kernel under MaxNorm along the default axis 0, a NonNeg bias, an LSTM with a
recurrent constraint. Seeded, so reruns give the same weights. Needs requirements-keras.txt:

    python3 -m venv /tmp/kv && /tmp/kv/bin/pip install -r scripts/file-fixtures/requirements-keras.txt
    KERAS_BACKEND=jax /tmp/kv/bin/python scripts/file-fixtures/make_keras_fixtures.py
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "__test__", "fixtures", "files")


def main():
    keras.utils.set_random_seed(5)
    init = lambda s: keras.initializers.RandomNormal(stddev=s, seed=int(s * 100))  # noqa: E731
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(4, 3, name="conv", kernel_initializer=init(0.9), kernel_constraint=keras.constraints.MaxNorm(2.0),
                                bias_initializer=init(0.5), bias_constraint=keras.constraints.NonNeg()),
            keras.layers.Reshape((4, 16), name="reshape"),
            keras.layers.LSTM(5, name="lstm", kernel_initializer=init(0.8), recurrent_initializer=init(0.7),
                              recurrent_constraint=keras.constraints.UnitNorm(axis=0)),
            keras.layers.Dense(8, name="hidden", kernel_initializer=init(0.6), kernel_constraint=keras.constraints.MaxNorm(1.5, axis=0)),
            keras.layers.Dense(3, name="out", kernel_initializer=init(0.9), kernel_constraint=keras.constraints.UnitNorm(axis=0)),
        ]
    )
    model.save(os.path.join(OUT, "keras-model.keras"))
    model.save(os.path.join(OUT, "keras-model.h5"))


if __name__ == "__main__":
    main()
