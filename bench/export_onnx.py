#!/usr/bin/python3
"""An ONNX model of a YOLOv7 config in its fused (deploy) form — conv + bias + activation, concat,
max-pool, upsample, and the detection head with the box decoding — with random weights, for timing
ONNX Runtime next to `pdyolo bench --cfg` (speed does not depend on the weight values). The network
is bench/torch_train_step.py's, built from the same config. Reference tooling only (Debian
python3-torch, python3-yaml); pdyolo never imports it.
    /usr/bin/python3 bench/export_onnx.py --cfg cfg/training/yolov7.yaml --img-size 640 --out build-bench/yolov7-640.onnx
"""
import argparse

import torch
import torch.nn as nn
import yaml

from torch_train_step import Net


class Decoded(nn.Module):
    """The network's raw maps decoded as the reference Detect does in eval mode:
    xy = (2σ − 0.5 + cell) · stride, wh = (2σ)² · anchor, scores = σ; levels concatenated."""
    def __init__(self, net, cfg, img_size):
        super().__init__()
        self.net = net
        anchors = torch.tensor(cfg['anchors'], dtype=torch.float32).view(len(cfg['anchors']), -1, 2)
        self.register_buffer('anchors', anchors)
        self.na, self.no = anchors.shape[1], cfg['nc'] + 5
        with torch.no_grad():
            maps = net(torch.zeros(1, 3, img_size, img_size))
        self.strides = [img_size // m.shape[-1] for m in maps]

    def forward(self, x):
        out = []
        for level, m in enumerate(self.net(x)):
            n, _, h, w = m.shape
            y = m.view(n, self.na, self.no, h, w).permute(0, 1, 3, 4, 2).sigmoid()
            gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
            grid = torch.stack((gx, gy), 2).view(1, 1, h, w, 2).float()
            xy = (y[..., 0:2] * 2 - 0.5 + grid) * self.strides[level]
            wh = (y[..., 2:4] * 2) ** 2 * self.anchors[level].view(1, self.na, 1, 1, 2)
            out.append(torch.cat((xy, wh, y[..., 4:]), -1).view(n, -1, self.no))
        return torch.cat(out, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cfg', default='cfg/training/yolov7.yaml')
    ap.add_argument('--img-size', type=int, default=640)
    ap.add_argument('--batch', type=int, default=1, help='the (fixed) batch size of the exported model')
    ap.add_argument('--out', required=True)
    a = ap.parse_args()
    torch.manual_seed(0)
    cfg = yaml.safe_load(open(a.cfg))
    model = Decoded(Net(cfg, fused=True).eval(), cfg, a.img_size).eval()
    params = sum(p.numel() for p in model.parameters())
    torch.onnx.export(model, torch.rand(a.batch, 3, a.img_size, a.img_size), a.out, input_names=['images'],
                      output_names=['output'], opset_version=13)
    print(f'{a.cfg}: fused network with {params:,} parameters, batch {a.batch}, {a.img_size}x{a.img_size} -> {a.out}')


if __name__ == '__main__':
    main()
