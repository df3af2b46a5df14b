#!/usr/bin/env python3
"""Writes the small .npy files test_io reads, with NumPy itself (run once; the outputs are committed).

Each file holds arange-style values of one dtype, so the test can check every element and compare
the bytes pdyolo writes with the bytes NumPy wrote. Run: python3 tests/data/make_npy_fixtures.py
"""
import os

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
arrays = {
    "f32_2x3.npy": (np.arange(6, dtype=np.float32) - 2.5).reshape(2, 3),
    "f16_4.npy": np.array([0.5, -1.0, 65504.0, 0.1], dtype=np.float16),
    "i8_2x2.npy": np.array([[-128, -1], [0, 127]], dtype=np.int8),
    "u8_3.npy": np.array([0, 128, 255], dtype=np.uint8),
    "i32_1x2x2.npy": np.array([[[-7, 0], [1, 2147483647]]], dtype=np.int32),
    "i64_2.npy": np.array([-(2**40), 2**40 + 3], dtype=np.int64),
    "f32_scalar.npy": np.array(3.25, dtype=np.float32),
    "f32_fortran.npy": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
    "f64_2.npy": np.array([1.0, 2.0], dtype=np.float64),
}
for name, array in arrays.items():
    np.save(os.path.join(here, name), array)
print("wrote", len(arrays), "files to", here)

# An 8-bit image batch for the CLI's forward runs (tests/cli/quantize_check.cmake): pixels k/255.
rng = np.random.RandomState(5)
np.save(os.path.join(here, "images_1x3x32x32.npy"), (rng.randint(0, 256, (1, 3, 32, 32)) / 255).astype(np.float32))
