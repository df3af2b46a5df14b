#!/usr/bin/env python3
"""Golden resize outputs from OpenCV (Debian's python3-opencv), for test_data: a random RGB image
resized with INTER_LINEAR and INTER_AREA to odd sizes, saved as .npy (uint8, HWC). Run once; the
outputs are committed, so the test suite needs no Python.

    python3 tests/data/make_opencv_fixtures.py
"""
import os

import cv2
import numpy as np

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "opencv")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
src = rng.integers(0, 256, size=(47, 71, 3), dtype=np.uint8)
np.save(os.path.join(out, "src_71x47.npy"), src)
for w, h in [(35, 23), (20, 31), (100, 64), (71, 47)]:
    np.save(os.path.join(out, f"linear_{w}x{h}.npy"), cv2.resize(src, (w, h), interpolation=cv2.INTER_LINEAR))
for w, h in [(35, 23), (20, 31), (13, 9)]:
    np.save(os.path.join(out, f"area_{w}x{h}.npy"), cv2.resize(src, (w, h), interpolation=cv2.INTER_AREA))
even = rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)
np.save(os.path.join(out, "src_60x40.npy"), even)
np.save(os.path.join(out, "area_30x20.npy"), cv2.resize(even, (30, 20), interpolation=cv2.INTER_AREA))
print("wrote", len(os.listdir(out)), "files to", out)
