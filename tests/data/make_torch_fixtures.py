#!/usr/bin/env python3
"""Golden values from PyTorch (Debian's python3-torch) for single ops: forward outputs and the
gradients of sum(output * seed) with a random seed gradient. Run once; the outputs are committed and
read by tests/test_reference.cpp, so the test suite itself needs no Python.

    python3 tests/data/make_torch_fixtures.py

Each case is one safetensors file written with the standard library (the format is an 8-byte
little-endian header length, a JSON header, then raw little-endian tensor bytes).
"""
import collections
import json
import os
import struct

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch")
torch.manual_seed(0)


def save_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().to(torch.float32)
        data = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def case(name, fn, inputs, extra=None, constants=None, **params):
    """fn(**inputs, **constants) -> output; saves inputs, output, seed, the gradient of every input,
    `constants` (inputs without gradients, such as a teacher's outputs) and `extra` (read after the
    forward pass, so it can hold state the op updated)."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    out = fn(**leaves, **(constants or {}))
    seed = torch.randn_like(out)
    (out * seed).sum().backward()
    tensors = {f"in.{k}": v for k, v in inputs.items()}
    tensors.update({f"const.{k}": v for k, v in (constants or {}).items()})
    tensors["out"] = out
    tensors["seed"] = seed
    tensors.update({f"grad.{k}": v.grad for k, v in leaves.items()})
    tensors.update(extra or {})
    save_safetensors(os.path.join(OUT, name + ".safetensors"), tensors,
                     {k: json.dumps(v) for k, v in params.items()} | {"torch": torch.__version__})


def r(*shape, low=-1.0, high=1.0):
    return torch.rand(*shape) * (high - low) + low


os.makedirs(OUT, exist_ok=True)
case("conv2d_groups_stride", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2),
     {"x": r(2, 4, 7, 6), "w": r(6, 2, 3, 3), "b": r(6)}, stride=2, padding=1, dilation=1, groups=2)
case("conv2d_dilated", lambda x, w, b: F.conv2d(x, w, b, padding=2, dilation=2),
     {"x": r(1, 3, 9, 8), "w": r(4, 3, 3, 3), "b": r(4)}, stride=1, padding=2, dilation=2, groups=1)
case("conv2d_1x1", lambda x, w, b: F.conv2d(x, w, b), {"x": r(2, 8, 5, 5), "w": r(16, 8, 1, 1), "b": r(16)},
     stride=1, padding=0, dilation=1, groups=1)

def batch_norm_case(training):
    """batch_norm with YOLOv7's momentum and eps; also saves the running statistics before and after."""
    running_mean, running_var = r(3), r(3, low=0.5, high=2.0)
    inputs = {"x": r(4, 3, 5, 5, low=-2, high=3), "w": r(3, low=0.5, high=1.5), "b": r(3)}
    mean_after, var_after = running_mean.clone(), running_var.clone()
    extra = {"running_mean_before": running_mean, "running_var_before": running_var,
             "running_mean_after": mean_after, "running_var_after": var_after}
    case("batch_norm_train" if training else "batch_norm_eval",
         lambda x, w, b: F.batch_norm(x, mean_after, var_after, w, b, training=training, momentum=0.03, eps=1e-3),
         inputs, extra, momentum=0.03, eps=1e-3, training=training)


batch_norm_case(True)
batch_norm_case(False)
case("max_pool2d_k3_s2_p1", lambda x: F.max_pool2d(x, 3, 2, 1), {"x": r(2, 3, 9, 8)}, kernel=3, stride=2, padding=1)
case("max_pool2d_k5_s1_p2", lambda x: F.max_pool2d(x, 5, 1, 2), {"x": r(1, 2, 7, 7)}, kernel=5, stride=1, padding=2)
case("upsample_nearest_x2", lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), {"x": r(2, 3, 4, 5)}, scale=2)
case("silu", lambda x: F.silu(x), {"x": r(4, 7, low=-6, high=6)})
case("leaky_relu_0.1", lambda x: F.leaky_relu(x, 0.1), {"x": r(4, 7, low=-3, high=3)}, slope=0.1)
case("sigmoid", torch.sigmoid, {"x": r(4, 7, low=-8, high=8)})
case("atan", torch.atan, {"x": r(4, 7, low=-4, high=4)})
case("softmax_axis1", lambda x: torch.softmax(x, 1), {"x": r(3, 5, 4, low=-3, high=3)}, axis=1)
case("log_softmax_axis_last", lambda x: torch.log_softmax(x, -1), {"x": r(3, 5, 4, low=-3, high=3)}, axis=-1)
case("matmul", torch.matmul, {"input": r(5, 9), "other": r(9, 4)})
case("bce_with_logits_pos_weight", lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=torch.tensor([2.5])),
     {"x": r(6, 5, low=-4, high=4), "t": r(6, 5, low=0, high=1)}, pos_weight=2.5, reduction="mean")
case("kl_div_distill_T3", lambda s, t: F.kl_div(F.log_softmax(s / 3, 1), F.softmax(t / 3, 1), reduction="batchmean") * 9,
     {"s": r(4, 6, low=-4, high=4), "t": r(4, 6, low=-4, high=4)}, temperature=3, reduction="batchmean")
case("mse", lambda a, b: F.mse_loss(a, b), {"a": r(3, 4), "b": r(3, 4)}, reduction="mean")


def optimizer_case(name, make):
    """Five steps of an optimizer on one parameter with given gradients and a changing learning rate
    (as warm-up changes it): the start p0, the gradients g1..g5 and the parameter p1..p5 after each step."""
    lrs, weight_decay, betas, eps = [1e-3, 2e-3, 1e-2, 5e-3, 1e-3], 0.05, (0.937, 0.999), 1e-8
    param = r(3, 4).requires_grad_(True)
    tensors = {"p0": param.detach().clone()}
    optimizer = make([param], lr=lrs[0], betas=betas, eps=eps, weight_decay=weight_decay)
    for step, lr in enumerate(lrs, 1):
        for group in optimizer.param_groups:
            group["lr"] = lr
        param.grad = r(3, 4, low=-2, high=2)
        tensors[f"g{step}"] = param.grad.clone()
        optimizer.step()
        tensors[f"p{step}"] = param.detach().clone()
    save_safetensors(os.path.join(OUT, name + ".safetensors"), tensors,
                     {"lrs": json.dumps(lrs), "weight_decay": json.dumps(weight_decay), "beta1": json.dumps(betas[0]),
                      "beta2": json.dumps(betas[1]), "eps": json.dumps(eps), "torch": torch.__version__})


optimizer_case("adam", torch.optim.Adam)
optimizer_case("adamw", torch.optim.AdamW)
print("wrote fixtures to", OUT)


def state_dict_checkpoint():
    """A plain state dict in torch.save's ZIP format: f32, f16, i64 scalar, and views that share a
    storage (a transpose, and a slice with an offset) — read by test_models' .pt tests."""
    torch.manual_seed(0)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    sd = collections.OrderedDict()
    sd["layer.weight"] = torch.randn(3, 2, 1, 1)
    sd["layer.bias"] = torch.randn(3).half()
    sd["layer.count"] = torch.tensor(7, dtype=torch.int64)
    sd["view.transposed"] = base.t()
    sd["view.slice"] = base[1:3, 2:5]
    torch.save(sd, os.path.join(OUT, "state_dict.pt"))


state_dict_checkpoint()


# ---- knowledge distillation (include/pdyolo/distill/losses.hpp) --------------------------------
# Raw maps of two detection levels, [N, na, H, W, no] with no = 5 + nc (x, y, w, h, objectness,
# classes, pre-sigmoid), for a student (with gradients) and a teacher (constants); neck features
# [N, C, H, W]. Every loss is summed over the levels of its per-level mean.
torch.manual_seed(1)
KD_LEVELS = [(2, 3, 4, 5, 8), (2, 3, 2, 3, 8)]
kd_student = {f"s{i}": r(*shape, low=-4, high=4) for i, shape in enumerate(KD_LEVELS)}
kd_teacher = {f"t{i}": r(*shape, low=-4, high=4) for i, shape in enumerate(KD_LEVELS)}


def levels(maps, prefix):
    return [maps[f"{prefix}{i}"] for i in range(len(KD_LEVELS))]


def kd_kl(temperature, masked):
    def loss(**maps):
        total = 0
        for s, t in zip(levels(maps, "s"), levels(maps, "t")):
            log_ps, log_pt = F.log_softmax(s[..., 5:] / temperature, -1), F.log_softmax(t[..., 5:] / temperature, -1)
            kl = (log_pt.exp() * (log_pt - log_ps)).sum(-1)  # [N, na, H, W]
            w = torch.sigmoid(t[..., 4]) if masked else torch.ones_like(kl)
            total = total + temperature ** 2 * (w * kl).sum() / w.sum()
        return total
    return loss


def kd_bce(**maps):
    total = 0
    for s, t in zip(levels(maps, "s"), levels(maps, "t")):
        w = torch.sigmoid(t[..., 4:5])
        reg = (F.binary_cross_entropy_with_logits(s[..., 0:2], torch.sigmoid(t[..., 0:2]), reduction="none").sum(-1, keepdim=True) +
               (s[..., 2:4] - t[..., 2:4]).abs().sum(-1, keepdim=True)) * w
        cls = F.binary_cross_entropy_with_logits(s[..., 5:], torch.sigmoid(t[..., 5:]), reduction="none") * w
        obj = F.binary_cross_entropy_with_logits(s[..., 4], (t[..., 4] > 0).float())
        total = total + reg.mean() + cls.mean() + obj
    return total


def kd_mse(**maps):
    return sum(F.mse_loss(s, t) for s, t in zip(levels(maps, "s"), levels(maps, "t")))


KD_FEATURES = [(2, 6, 4, 5), (2, 6, 2, 3)]  # the student's neck outputs; the teacher's have 4 channels
kd_features = {f"f{i}": r(*shape, low=-2, high=2) for i, shape in enumerate(KD_FEATURES)}
kd_adapters = {f"a{i}": r(4, shape[1], 1, 1, low=-0.5, high=0.5) for i, shape in enumerate(KD_FEATURES)}
kd_teacher_features = {f"g{i}": r(shape[0], 4, shape[2], shape[3], low=-2, high=2) for i, shape in enumerate(KD_FEATURES)}


def kd_feature(**x):
    """Imitation through 1x1 adapters, each cell weighted by the teacher's highest objectness there."""
    total = 0
    for i in range(len(KD_FEATURES)):
        a = F.conv2d(x[f"f{i}"], x[f"a{i}"])
        w = torch.sigmoid(x[f"t{i}"][..., 4]).amax(1, keepdim=True)  # [N, 1, H, W]
        total = total + (w * (a - x[f"g{i}"]) ** 2).sum() / (w.sum() * a.shape[1])
    return total


def kd_cwd(tau):
    def loss(**x):
        """Channel-wise distillation: each channel's map as a distribution over its positions."""
        total = 0
        for i in range(len(KD_FEATURES)):
            a = F.conv2d(x[f"f{i}"], x[f"a{i}"])
            n, c = a.shape[:2]
            log_ps = F.log_softmax(a.reshape(n * c, -1) / tau, 1)
            log_pt = F.log_softmax(x[f"g{i}"].reshape(n * c, -1) / tau, 1)
            total = total + tau ** 2 * (log_pt.exp() * (log_pt - log_ps)).sum() / (n * c)
        return total
    return loss


case("kd_kl_masked", kd_kl(3.0, True), kd_student, constants=kd_teacher, temperature=3)
case("kd_kl_unmasked", kd_kl(3.0, False), kd_student, constants=kd_teacher, temperature=3)
case("kd_bce", kd_bce, kd_student, constants=kd_teacher)
case("kd_mse", kd_mse, kd_student, constants=kd_teacher)
case("kd_feature", kd_feature, kd_features | kd_adapters, constants=kd_teacher | kd_teacher_features)
case("kd_cwd", kd_cwd(2.0), kd_features | kd_adapters, constants=kd_teacher_features, tau=2)
print("wrote the distillation fixtures")

# ---- quantization (issue 22): fake quantization with its straight-through gradient, and observers ----
QUANT_SCALE, QUANT_ZERO = 0.05, 37
ties = (torch.arange(-40, 40, dtype=torch.float32) + 0.5) * QUANT_SCALE  # halfway between two levels
case("quant_fake_per_tensor",
     lambda x: torch.fake_quantize_per_tensor_affine(x, QUANT_SCALE, QUANT_ZERO, 0, 255),
     {"x": torch.cat([r(200, low=-3, high=12), ties])}, scale=QUANT_SCALE, zero_point=QUANT_ZERO)
weight = r(4, 3, 3, 3)
weight_scales = weight.abs().reshape(4, -1).amax(1) / 127
weight[1, 0, 0, 0] = (12 + 0.5) * weight_scales[1]  # a tie inside the range
case("quant_fake_per_channel",
     lambda w: torch.fake_quantize_per_channel_affine(w, weight_scales, torch.zeros(4, dtype=torch.int32), 0, -127, 127),
     {"w": weight}, extra={"scales": weight_scales})


def observer_case(name, make):
    batches = [r(2, 3, 4, 4, low=-0.3, high=2.0) * (1 + 0.5 * i) for i in range(3)]
    observer = make()
    for b in batches:
        observer(b)
    scale, zero_point = observer.calculate_qparams()
    tensors = {f"batch{i}": b for i, b in enumerate(batches)}
    tensors.update({"scale": scale, "zero_point": zero_point.float(), "min": observer.min_val, "max": observer.max_val})
    save_safetensors(os.path.join(OUT, name + ".safetensors"), tensors, {"torch": torch.__version__})


observer_case("quant_observer_minmax", lambda: torch.ao.quantization.MinMaxObserver(dtype=torch.quint8))
observer_case("quant_observer_ema",
              lambda: torch.ao.quantization.MovingAverageMinMaxObserver(averaging_constant=0.01, dtype=torch.quint8))
print("wrote the quantization fixtures")


# ---- ReOrg (issue 40): YOLOv7-P6's space-to-depth, as models/common.py's ReOrg computes it ----
case("reorg", lambda x: torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1),
     {"x": r(2, 3, 6, 8)})
print("wrote the reorg fixture")
