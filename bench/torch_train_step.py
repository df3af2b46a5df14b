#!/usr/bin/python3
"""PyTorch CPU side of bench_train_step: the same network built from the same YOLOv7 config (Conv =
conv + BN + activation, Concat, MP, SP, SPPCSPC, RepConv, nn.Upsample, IDetect's 1x1 convs), one random batch,
forward + backward + SGD step with the same synthetic loss (the mean square of each raw output),
median step time in images/s (and the best step's time). Reference tooling only (Debian python3-torch, python3-yaml);
pdyolo never imports it.
    OMP_NUM_THREADS=2 /usr/bin/python3 bench/torch_train_step.py [--cfg F] [--img-size 320] [--batch-size 8]
"""
import argparse, json, statistics, time

import torch
import torch.nn as nn
import yaml


class Conv(nn.Module):
    """conv + BN + activation; fused (deploy form, as after BN folding): conv with bias + activation."""
    def __init__(self, c1, c2, k=1, s=1, p=None, act=None, fused=False):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2 if p is None else p, bias=fused)
        self.bn = nn.Identity() if fused else nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)
        self.act = act if act is not None else nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class SPPCSPC(nn.Module):
    """YOLOv7's spatial pyramid pooling block (c_ = c2): pools 5, 9, 13 on one branch, a 1x1 on the other."""
    def __init__(self, c1, c2, fused=False):
        super().__init__()
        conv = lambda a, b, k=1: Conv(a, b, k, fused=fused)
        self.cv1, self.cv2, self.cv3, self.cv4 = conv(c1, c2), conv(c1, c2), conv(c2, c2, 3), conv(c2, c2)
        self.m = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in (5, 9, 13))
        self.cv5, self.cv6, self.cv7 = conv(4 * c2, c2), conv(c2, c2, 3), conv(2 * c2, c2)

    def forward(self, x):
        x1 = self.cv4(self.cv3(self.cv1(x)))
        y1 = self.cv6(self.cv5(torch.cat([x1] + [m(x1) for m in self.m], 1)))
        return self.cv7(torch.cat((y1, self.cv2(x)), 1))


def activation(text):
    if text in (None, True, 'None'):
        return nn.SiLU()
    return eval(text, {'nn': nn})  # e.g. "nn.LeakyReLU(0.1)" from the config


def build(cfg, fused=False):
    """Modules per config row. RepConv is built in its deploy form (one k x k conv), as after fusion."""
    layers, channels = [], [3]
    rows = cfg['backbone'] + cfg['head']
    for f, _, module, args in rows:
        sources = f if isinstance(f, list) else [f]
        c_in = [channels[s if s < 0 else s + 1] for s in sources]
        if module == 'Conv':
            c2, k, s = args[0], args[1] if len(args) > 1 else 1, args[2] if len(args) > 2 else 1
            act = activation(args[5]) if len(args) > 5 else nn.SiLU()
            m, c = Conv(c_in[0], c2, k, s, None, act, fused), c2
        elif module == 'RepConv':
            m, c = Conv(c_in[0], args[0], args[1], args[2], None, None, fused), args[0]
        elif module == 'SPPCSPC':
            m, c = SPPCSPC(c_in[0], args[0], fused), args[0]
        elif module == 'Concat':
            m, c = None, sum(c_in)
        elif module == 'MP':
            m, c = nn.MaxPool2d(2, 2), c_in[0]
        elif module == 'SP':
            m, c = nn.MaxPool2d(args[0], 1, args[0] // 2), c_in[0]
        elif module == 'nn.Upsample':
            m, c = nn.Upsample(scale_factor=2, mode='nearest'), c_in[0]
        elif module in ('IDetect', 'Detect'):
            no = (cfg['nc'] + 5) * len(cfg['anchors'][0]) // 2
            m, c = nn.ModuleList(nn.Conv2d(ci, no, 1) for ci in c_in), 0
        else:
            raise SystemExit(f'torch_train_step: module {module} is not supported')
        layers.append((sources, module, m))
        channels.append(c)
    return layers


class Net(nn.Module):
    def __init__(self, cfg, fused=False):
        super().__init__()
        self.layers = build(cfg, fused)
        self.mods = nn.ModuleList(m for _, _, m in self.layers if m is not None)

    def forward(self, x):
        outs = []
        for i, (sources, module, m) in enumerate(self.layers):
            ins = [outs[s] if s >= 0 else (outs[i + s] if i + s >= 0 else x) for s in sources]
            if module == 'Concat':
                y = torch.cat(ins, 1)
            elif module in ('IDetect', 'Detect'):
                return [conv(t) for conv, t in zip(m, ins)]
            else:
                y = m(ins[0])
            outs.append(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cfg', default='cfg/training/yolov7-tiny.yaml')
    ap.add_argument('--img-size', type=int, default=320)
    ap.add_argument('--batch-size', type=int, default=8)
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Net(yaml.safe_load(open(a.cfg))).train()
    sgd = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.937, weight_decay=5e-4, nesterov=True)
    images = torch.rand(a.batch_size, 3, a.img_size, a.img_size)
    times = []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        loss = sum((o * o).mean() for o in model(images))
        loss.backward()
        sgd.step()
        sgd.zero_grad()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    print(f'pytorch {torch.__version__}  {a.cfg}  {a.img_size}x{a.img_size}  batch {a.batch_size}  '
          f'median step {median * 1e3:.1f} ms  {a.batch_size / median:.2f} img/s')
    print(json.dumps({'step_ms': round(median * 1e3, 2), 'images_per_s': round(a.batch_size / median, 3),
                      'best_step_ms': round(min(times) * 1e3, 2)}))


if __name__ == '__main__':
    main()
