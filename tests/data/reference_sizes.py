#!/usr/bin/env python3
"""Parameter counts and GFLOPs of model configs as the reference implementation builds them, for
the exact-size checks in tests/test_models.cpp and tests/test_graph.cpp. GFLOPs are 2 x the
multiply-adds of every nn.Conv2d at a 640x640 input, counted with forward hooks.

    git clone https://github.com/WongKinYiu/yolov7 /tmp/yolov7   # the reference (not committed)
    cd /tmp/yolov7 && /usr/bin/python3 PDYOLO/tests/data/reference_sizes.py CFG.yaml...

Needs Debian's python3-torch, python3-yaml and python3-pandas; torchvision (imported by the
reference for layers these configs do not use) and thop are stubbed out.
"""
import sys
import types

import torch
import torch.nn as nn

sys.modules.setdefault("thop", None)
stub = types.ModuleType("torchvision")
stub.__path__ = []
for sub in ("ops", "utils", "transforms", "datasets", "models"):
    mod = types.ModuleType("torchvision." + sub)
    mod.__getattr__ = lambda name: object
    setattr(stub, sub, mod)
    sys.modules["torchvision." + sub] = mod
sys.modules["torchvision"] = stub
sys.path.insert(0, ".")
from models.yolo import Model  # noqa: E402  (the reference's, from the current directory)

for cfg in sys.argv[1:]:
    for nc in (80, 20):
        model = Model(cfg, ch=3, nc=nc).eval()
        params = sum(p.numel() for p in model.parameters())
        macs = [0]

        def count(conv, inputs, output):
            macs[0] += output.numel() * conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1]

        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.register_forward_hook(count)
        with torch.no_grad():
            model(torch.zeros(1, 3, 640, 640))
        print(f"{cfg} nc={nc}: {params} parameters, {2 * macs[0] / 1e9:.4f} GFLOPs at 640")
