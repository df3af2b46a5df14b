#!/usr/bin/env python3
"""Seeds for fuzz_pt (small PyTorch checkpoints in the shapes pdyolo reads) and fuzz_image (tiny
images in every format stb_image decodes).

Run with Debian's python3-torch and python3-pil (`/usr/bin/python3 tests/fuzz/make_seeds.py`); the
outputs are committed in tests/fuzz/corpus/{pt,image}, so the fuzz script itself needs no Python.
- whole-model.pt: {'model': Model, 'epoch': ...} as the reference's train.py saves it — a pickled
  module tree whose class is models.yolo.Model, carrying its config as `yaml` (pt-micro.yaml).
- state-dict.pt: a plain state dict of the same model (pdyolo then needs --cfg).
- dtypes.pt: tensors of every storage type pdyolo converts, with a strided and an offset view.
"""
import os
import sys
import types

import torch
from PIL import Image
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "pt")
IMAGES = os.path.join(HERE, "corpus", "image")


def micro_config():
    return {"nc": 1, "anchors": [[10, 13, 16, 30, 33, 23]],
            "backbone": [[-1, 1, "Conv", [4, 3, 2]], [-1, 1, "Conv", [8, 3, 2]]],
            "head": [[[1], 1, "Detect", ["nc", "anchors"]]]}


# Stand-ins with the reference's module paths and attribute names, so the pickle names the same
# classes (models.common.Conv, models.yolo.Detect, models.yolo.Model) and the same tensor paths.
common = types.ModuleType("models.common")
yolo = types.ModuleType("models.yolo")
sys.modules.update({"models": types.ModuleType("models"), "models.common": common, "models.yolo": yolo})


class Conv(nn.Module):
    def __init__(self, c1, c2, k, s):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()


class Detect(nn.Module):
    def __init__(self, nc, anchors, ch):
        super().__init__()
        na = len(anchors[0]) // 2
        a = torch.tensor(anchors, dtype=torch.float32).view(len(anchors), -1, 2)
        self.register_buffer("anchors", a)
        self.register_buffer("anchor_grid", a.clone().view(len(anchors), 1, -1, 1, 1, 2))
        self.m = nn.ModuleList(nn.Conv2d(c, na * (nc + 5), 1) for c in ch)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.yaml = micro_config()
        self.model = nn.Sequential(Conv(3, 8, 3, 2), Conv(8, 8, 3, 2), Detect(1, self.yaml["anchors"], [8]))
        self.names = ["cell"]


for cls, module in ((Conv, common), (Detect, yolo), (Model, yolo)):
    cls.__module__ = module.__name__
    setattr(module, cls.__name__, cls)


def write_images():
    os.makedirs(IMAGES, exist_ok=True)
    im = Image.new("RGB", (13, 7))
    for x in range(13):
        for y in range(7):
            im.putpixel((x, y), (x * 19 % 256, y * 37 % 256, x * y * 11 % 256))
    path = lambda name: os.path.join(IMAGES, name)
    im.save(path("rgb.png"))
    im.save(path("baseline.jpg"), quality=80)
    im.save(path("progressive.jpg"), progressive=True, quality=70)
    im.convert("L").save(path("gray.jpg"))
    im.save(path("rgb.bmp"))
    im.save(path("rgb.tga"))
    im.save(path("rgb.ppm"))
    im.convert("L").save(path("gray.pgm"))
    im.convert("L").save(path("gray.png"))
    im.convert("RGBA").save(path("rgba.png"))
    im.convert("P").save(path("palette.png"))
    im.convert("P").save(path("palette.gif"))
    Image.new("I;16", (5, 3), 1234).save(path("gray16.png"))


def main():
    write_images()
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    model = Model()
    torch.save({"model": model, "epoch": 3, "best_fitness": None}, os.path.join(OUT, "whole-model.pt"))
    torch.save(model.state_dict(), os.path.join(OUT, "state-dict.pt"))
    base = torch.arange(24, dtype=torch.float32).view(4, 6)
    torch.save({"f32": base, "strided": base.t(), "offset": base[1:, 2:],
                "f64": base.double(), "f16": base.half(), "bf16": base.bfloat16(),
                "i64": base.long(), "i8": base.to(torch.int8), "u8": base.to(torch.uint8),
                "nested": [1, (2.5, "three"), {"four": None, "five": True}]},
               os.path.join(OUT, "dtypes.pt"))
    for name in sorted(os.listdir(OUT)):
        print(name, os.path.getsize(os.path.join(OUT, name)), "bytes")


if __name__ == "__main__":
    main()
