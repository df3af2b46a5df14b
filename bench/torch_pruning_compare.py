#!/usr/bin/env python3
"""Torch-Pruning on the reference YOLOv7, for a side-by-side count with `pdyolo prune` (issue 21).

    /usr/bin/python3 bench/torch_pruning_compare.py --yolov7 DIR --cfg cfg/training/yolov7-tiny.yaml \
        --nc 3 --ratio 0.3132 [--round-to 8] [--img-size 640]

DIR holds the reference implementation's models/, utils/ and cfg/ (WongKinYiu/yolov7); torch-pruning
(PyPI) must be importable (e.g. PYTHONPATH=/path/to/pip --target dir). Both are references for this
measurement only, never dependencies of pdyolo. The reference model is built with random weights
(the counts depend only on which widths remain, and L1 magnitude pruning at a uniform ratio removes
the same number of channels from every group whatever the weights), Detect's output convs are
ignored, and every group loses `ratio` of its channels rounded to `round-to` — the setting of
`pdyolo prune --importance l1 --ratio R --round-to 8` (local). Prints one JSON line: parameters and
GFLOPs (2 × multiply-accumulates, at img-size, as pdyolo counts) before and after, and every
conv's output channels after.

The reference imports modules it needs only for training and plotting (cv2, torchvision, pandas,
...); where Debian's python3 lacks them they are replaced by empty stand-ins, which building and
running the model never touches.
"""
import argparse, importlib.abc, importlib.machinery, importlib.metadata, json, sys, types


class _StandIn(types.ModuleType):
    """A module whose attributes and calls give more stand-ins: enough for `import x`, `from x import y`, `x.f()`."""

    __path__ = []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _StandIn(f"{self.__name__}.{name}")

    def __call__(self, *args, **kwargs):
        return _StandIn(f"{self.__name__}()")


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, names):
        self.names = names

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in self.names:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        return _StandIn(spec.name)

    def exec_module(self, module):
        pass


def install_stand_ins():
    missing = []
    for name in ("cv2", "torchvision", "pandas", "scipy", "tqdm", "PIL", "requests", "matplotlib", "seaborn", "thop"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    sys.meta_path.insert(0, _StandInFinder(set(missing)))
    return missing


def count(model, img_size):
    import torch
    params = sum(p.numel() for p in model.parameters())
    macs = 0

    def hook(module, inputs, output):
        nonlocal macs
        w = module.weight
        macs += output.numel() // output.shape[0] * (w.shape[1] * w.shape[2] * w.shape[3])

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, img_size, img_size))
    for h in handles:
        h.remove()
    return params, 2 * macs / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--yolov7", required=True)
    ap.add_argument("--cfg", required=True)
    ap.add_argument("--nc", type=int, default=3)
    ap.add_argument("--ratio", type=float, required=True)
    ap.add_argument("--round-to", type=int, default=8)
    ap.add_argument("--img-size", type=int, default=640)
    a = ap.parse_args()
    stand_ins = install_stand_ins()
    sys.path.insert(0, a.yolov7)
    import torch
    import torch_pruning as tp
    from models.yolo import Model, Detect, IDetect

    torch.manual_seed(0)
    model = Model(a.cfg, ch=3, nc=a.nc).eval()
    before = count(model, a.img_size)
    head = [m for m in model.modules() if isinstance(m, (Detect, IDetect))]
    ignored = [conv for h in head for conv in h.m]
    example = torch.zeros(1, 3, a.img_size, a.img_size)
    pruner = tp.pruner.MagnitudePruner(model, example, importance=tp.importance.MagnitudeImportance(p=1),
                                       ch_sparsity=a.ratio, round_to=a.round_to, ignored_layers=ignored)
    pruner.step()
    after = count(model, a.img_size)
    print(json.dumps({"tool": "torch-pruning " + importlib.metadata.version("torch-pruning"), "cfg": a.cfg, "nc": a.nc,
                      "ratio": a.ratio, "round_to": a.round_to, "img_size": a.img_size,
                      "params_before": before[0], "params_after": after[0],
                      "gflops_before": round(before[1], 3), "gflops_after": round(after[1], 3),
                      "widths_after": {name: m.out_channels for name, m in model.named_modules()
                                       if isinstance(m, torch.nn.Conv2d)},
                      "stand_ins": stand_ins}))


if __name__ == "__main__":
    main()
