"""Writes the weight-file fixtures of __test__/fixtures/files/ with the real writers.

safetensors files by the `safetensors` package (bfloat16 through its TensorSpec, since NumPy has
no bfloat16), .npy/.npz by NumPy's own np.save / np.savez / np.savez_compressed. Deterministic
(seeded): rerunning gives the same bytes. Run through scripts/file-fixtures/venv.sh:

    bash scripts/file-fixtures/venv.sh python scripts/file-fixtures/make_fixtures.py
"""
import os
import sys

import numpy as np
from safetensors import TensorSpec, serialize_file
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "__test__", "fixtures", "files")
rng = np.random.default_rng(12)


def bf16_bits(values):
    """float32 -> bfloat16 bits, round to nearest even (as torch and ml_dtypes do)."""
    bits = values.astype(np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def main():
    os.makedirs(OUT, exist_ok=True)
    # A small "model": kernels with unit norms around 1..6, so MaxNorm(3) clips some of them.
    kernel = (rng.standard_normal((16, 8)) * 0.9).astype(np.float32)
    tensors = {
        "dense/kernel": kernel,
        "dense/bias": rng.standard_normal(8).astype(np.float32),
        "conv/kernel": (rng.standard_normal((3, 3, 4, 5)) * 0.6).astype(np.float32),
        "half": (rng.standard_normal((10, 4)) * 1.5).astype(np.float16),
        "double": (rng.standard_normal((5, 3)) * 2).astype(np.float64),
        "token_ids": np.arange(7, dtype=np.int64),
    }
    save_file(tensors, os.path.join(OUT, "model.safetensors"), metadata={"format": "np", "note": "normclip fixture"})
    # bfloat16 next to float32, written through the low-level TensorSpec.
    emb = (rng.standard_normal((12, 6)) * 1.4).astype(np.float32)
    bits = bf16_bits(emb)
    proj = (rng.standard_normal((6, 6)) * 1.2).astype(np.float32)
    serialize_file(
        {
            "embed.weight": TensorSpec(dtype="bfloat16", shape=list(bits.shape), data_ptr=bits.ctypes.data, data_len=bits.nbytes),
            "proj.weight": TensorSpec(dtype="float32", shape=list(proj.shape), data_ptr=proj.ctypes.data, data_len=proj.nbytes),
        },
        os.path.join(OUT, "bf16.safetensors"),
        {"format": "pt"},
    )
    np.save(os.path.join(OUT, "kernel.npy"), (rng.standard_normal((32, 10)) * 0.8).astype(np.float32))
    np.savez(
        os.path.join(OUT, "arrays.npz"),
        kernel=(rng.standard_normal((20, 6)) * 0.9).astype(np.float32),
        fortran=np.asfortranarray((rng.standard_normal((6, 5)) * 1.3).astype(np.float64)),
        bigendian=(rng.standard_normal((4, 3)) * 2).astype(">f4"),
        ints=np.arange(5, dtype=np.int32),
    )
    # The same kinds of arrays deflated (zip method 8), drawn last so the files above keep their bytes.
    np.savez_compressed(
        os.path.join(OUT, "compressed.npz"),
        kernel=(rng.standard_normal((24, 7)) * 0.9).astype(np.float32),
        fortran=np.asfortranarray((rng.standard_normal((6, 5)) * 1.3).astype(np.float64)),
        bias=rng.standard_normal(7).astype(np.float32),
        ints=np.arange(9, dtype=np.int32),
    )
    print("wrote", sorted(os.listdir(OUT)), file=sys.stderr)


if __name__ == "__main__":
    main()
