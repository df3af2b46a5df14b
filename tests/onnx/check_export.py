#!/usr/bin/env python3
"""`pdyolo export` checked by the real tools: each exported model passes the ONNX checker, and in
ONNX Runtime its raw maps equal `pdyolo forward --fuse` on the same weights and images within 1e-4
(relative to the map's largest magnitude).

    check_export.py PDYOLO SOURCE_DIR WORK_DIR [SHARED_DIR]

Exits 77 (CTest: skipped) with the reason when onnx or onnxruntime is missing; the test installer
(scripts/install-deps.sh --test) puts both in the project's venv, .venv/.
"""
import os
import subprocess
import sys

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
except ImportError as e:
    print(f"SKIPPED: {e.name} is not installed for {sys.executable} (scripts/install-deps.sh --test makes .venv with onnx and onnxruntime)")
    sys.exit(77)

pdyolo, source, work = sys.argv[1], sys.argv[2], sys.argv[3]
shared = sys.argv[4] if len(sys.argv) > 4 else os.path.join(source, "..", "shared")
os.makedirs(work, exist_ok=True)


def run(*args):
    subprocess.run([pdyolo, *args], check=True, stdout=subprocess.DEVNULL)


def scale_conv_weights(path, gain):
    """Multiplies every conv weight (4-D F32 tensor) of a safetensors file by gain, in place. Freshly
    initialised weights shrink the signal layer by layer, so that the raw maps hardly depend on the
    image (their biases dominate) and a comparison would test little; this restores the signal."""
    import json
    import struct
    with open(path, "rb") as f:
        blob = bytearray(f.read())
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + header_len])
    base = 8 + header_len
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32" or len(info["shape"]) != 4:
            continue
        begin, end = (base + o for o in info["data_offsets"])
        values = np.frombuffer(bytes(blob[begin:end]), dtype="<f4") * np.float32(gain)
        blob[begin:end] = values.astype("<f4").tobytes()
    with open(path, "wb") as f:
        f.write(blob)


def check(label, model_args, size, batch=1, dynamic=False, run_batch=None, gain=1.0, grid=False, half=False):
    """Exports the model, runs both, compares every raw map (or, with grid, the decoded boxes); half:
    the export in float16, against our float32 maps within 1e-2 of their magnitude."""
    run_batch = run_batch or batch
    weights = os.path.join(work, label + ".safetensors")
    onnx_path = os.path.join(work, label + ".onnx")
    run("convert", *model_args, "--out", weights)  # one set of weights for both sides
    if gain != 1.0:
        scale_conv_weights(weights, gain)
    export = ["export", "--weights", weights, "--img-size", str(size), "--out", onnx_path, "--batch-size", str(batch)]
    run(*export, *(["--dynamic-batch"] if dynamic else []), *(["--grid"] if grid else []), *(["--half"] if half else []))
    model = onnx.load(onnx_path)
    onnx.checker.check_model(model, full_check=True)
    images = (np.random.default_rng(size).integers(0, 256, size=(run_batch, 3, size, size)) / 255.0).astype(np.float32)
    np.save(os.path.join(work, label + "_images.npy"), images)
    ours_dir = os.path.join(work, label + "_ours")
    run("forward", "--weights", weights, "--input", os.path.join(work, label + "_images.npy"), "--out", ours_dir, "--fuse")
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    outputs = [o.astype(np.float32) for o in session.run(None, {"images": images.astype(np.float16) if half else images})]
    tolerance = 1e-2 if half else 1e-4
    names = [o.name for o in session.get_outputs()]
    if grid:  # the decoded boxes against ours
        assert names == ["output"], f"{label}: outputs {names}"
        ours = np.load(os.path.join(ours_dir, "decoded.npy"))
        assert ours.shape == outputs[0].shape, f"{label}: ours {ours.shape}, ONNX Runtime {outputs[0].shape}"
        theirs = outputs[0]  # boxes relative to their magnitude (pixels), scores absolutely (they lie in [0, 1])
        boxes = float(np.abs(ours[..., :4] - theirs[..., :4]).max() / np.abs(ours[..., :4]).max())
        scores = float(np.abs(ours[..., 4:] - theirs[..., 4:]).max())
        worst = max(boxes, scores)
        status = "ok" if worst < tolerance else "FAILED"
        for path in (weights, onnx_path):
            os.remove(path)
        print(f"{label}: {'float16, ' if half else ''}--grid, decoded boxes {ours.shape}: largest difference {boxes:.2e} of the boxes' magnitude, "
              f"{scores:.2e} in the scores ({status})")
        return status == "ok"
    assert names and all(n.startswith("p") and n[1:].isdigit() for n in names), f"{label}: outputs {names}"  # p<log2 stride>
    worst, spread = 0.0, float("inf")
    for level, (name, theirs) in enumerate(zip(names, outputs)):
        ours = np.load(os.path.join(ours_dir, f"raw_p{3 + level}.npy"))  # (forward numbers the levels from p3)
        assert ours.shape == theirs.shape, f"{label} {name}: ours {ours.shape}, ONNX Runtime {theirs.shape}"
        worst = max(worst, float(np.abs(ours - theirs).max() / max(np.abs(ours).max(), 1e-6)))
        spread = min(spread, float(ours.std(axis=(2, 3)).max()))  # how much the map varies over the image
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta.get("stride") == str(2 ** int(names[-1][1:])) and meta.get("names", "").startswith("{0: "), f"{label}: metadata {meta}"
    status = "ok" if worst < tolerance and spread > 0.1 else "FAILED"
    megabytes = os.path.getsize(onnx_path) / 1e6
    for path in (weights, onnx_path):  # (hundreds of MB for the larger models)
        os.remove(path)
    print(f"{label}: {'float16, ' if half else ''}{len(model.graph.node)} ONNX nodes, {megabytes:.1f} MB, input {run_batch}x3x{size}x{size}: "
          f"largest difference {worst:.2e} of the map's magnitude, maps varying by {spread:.2f} over the image ({status})")
    return status == "ok"


cfg = lambda name: os.path.join(source, "cfg", "training", name)
ok = True
# Random weights, scaled so that the maps depend on the image (scale_conv_weights): LeakyReLU models
# keep their signal at a gain of 2.4, SiLU ones at 3.
ok &= check("yolov7-tiny-320", ["--cfg", cfg("yolov7-tiny.yaml"), "--seed", "1"], 320, gain=2.4)
ok &= check("yolov7-tiny-256-dynamic", ["--cfg", cfg("yolov7-tiny.yaml"), "--seed", "2"], 256, dynamic=True, run_batch=3, gain=2.4)
ok &= check("yolov7-silu-repconv-implicit", ["--cfg", cfg("yolov7.yaml"), "--seed", "3", "--nc", "5"], 128, gain=3.0)
ok &= check("reorg-tiny", ["--cfg", os.path.join(source, "tests", "data", "cfg", "reorg-tiny.yaml"), "--seed", "4"], 64, batch=2, gain=2.4)
ok &= check("yolov7-tiny-320-grid", ["--cfg", cfg("yolov7-tiny.yaml"), "--seed", "1"], 320, gain=2.4, grid=True)
ok &= check("yolov7-tiny-256-grid-dynamic", ["--cfg", cfg("yolov7-tiny.yaml"), "--seed", "2"], 256, dynamic=True, run_batch=2, gain=2.4, grid=True)
ok &= check("yolov7-tiny-320-half", ["--cfg", cfg("yolov7-tiny.yaml"), "--seed", "1"], 320, gain=2.4, half=True)
ok &= check("yolov7-tiny-320-half-grid", ["--cfg", cfg("yolov7-tiny.yaml"), "--seed", "1"], 320, gain=2.4, half=True, grid=True)
# A pruned model (odd channel counts: no rounding), from random yolov7 weights.
pruned = os.path.join(work, "yolov7-pruned-source.safetensors")
run("prune", "--cfg", cfg("yolov7.yaml"), "--nc", "5", "--seed", "6", "--ratio", "0.3", "--round-to", "1", "--out", pruned)
ok &= check("yolov7-pruned", ["--weights", pruned], 128, gain=3.5)  # (30 % fewer channels: more gain)
os.remove(pruned)
yolov3 = os.path.join(shared, "fixtures", "cfg", "baseline", "yolov3.yaml")
fixture = os.path.join(shared, "fixtures", "yolov7-tiny-coco128", "yolov7-tiny-coco128.pt")
if os.path.exists(yolov3):  # residual adds
    ok &= check("yolov3", ["--cfg", yolov3, "--seed", "5", "--nc", "20"], 128, gain=2.4)
else:
    print(f"yolov3: not checked ({yolov3} is missing)")
if os.path.exists(fixture):  # real weights, at two sizes
    ok &= check("fixture-pt-320", ["--weights", fixture], 320)
    ok &= check("fixture-pt-640", ["--weights", fixture], 640)
    ok &= check("fixture-pt-640-grid", ["--weights", fixture], 640, grid=True)
    ok &= check("fixture-pt-640-half", ["--weights", fixture], 640, half=True)
else:
    print(f"the official checkpoint: not checked ({fixture} is missing)")
# The README's Python example, as written, on an export with the README command's defaults.
readme = open(os.path.join(source, "README.md")).read()
example = readme.split("```python\n", 1)[1].split("```", 1)[0]
run("export", "--cfg", cfg("yolov7-tiny.yaml"), "--out", os.path.join(work, "model.onnx"))
here = os.getcwd()
os.chdir(work)
scope = {}
exec(example, scope)
os.chdir(here)
os.remove(os.path.join(work, "model.onnx"))
shapes = [scope[name].shape for name in ("p3", "p4", "p5")]
print(f"README example: ran, outputs {shapes}")
ok &= shapes == [(1, 3, 80, 80, 85), (1, 3, 40, 40, 85), (1, 3, 20, 20, 85)]
sys.exit(0 if ok else 1)
