#!/usr/bin/env python3
"""ONNX Runtime's own int8 model of an ONNX export, for timing next to `pdyolo quantize`'s: its static
quantizer (onnxruntime.quantization.quantize_static) in QDQ format, per-channel int8 weights, int8
activations (S8S8, ORT's default), MinMax calibration on the first N images of a VOC split listed in
ImageSets/Main/SPLIT.txt — the images `pdyolo quantize --split SPLIT --calib-images N` calibrates on,
letterboxed the same way (longer side to SIZE, grey 114 around, pixels / 255). Reference tooling only.
    python3 bench/ort_quantize.py MODEL.onnx DATA SPLIT N SIZE OUT.onnx
"""
import os
import sys

import numpy as np
from PIL import Image
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process


def letterbox(path, size):
    img = Image.open(path).convert("RGB")
    scale = size / max(img.size)
    w, h = max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale))
    canvas = Image.new("RGB", (size, size), (114, 114, 114))
    canvas.paste(img.resize((w, h), Image.BILINEAR), ((size - w) // 2, (size - h) // 2))
    return (np.asarray(canvas, dtype=np.float32) / 255.0).transpose(2, 0, 1)[None]


class Images(CalibrationDataReader):
    """The images in batches of the model's (fixed) batch size."""
    def __init__(self, input_name, batch, data, split, count, size):
        with open(os.path.join(data, "ImageSets", "Main", split + ".txt")) as f:
            ids = [line.split()[0] for line in f if line.strip()][:count]
        images = [letterbox(os.path.join(data, "JPEGImages", i + ".jpg"), size) for i in ids]
        self.batches = iter([{input_name: np.concatenate(images[k:k + batch])} for k in range(0, len(images) - batch + 1, batch)])

    def get_next(self):
        return next(self.batches, None)


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    model, data, split, count, size, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
    import onnx
    graph_input = onnx.load(model).graph.input[0]
    input_name, batch = graph_input.name, max(1, graph_input.type.tensor_type.shape.dim[0].dim_value)
    prepared = out + ".prep.onnx"
    quant_pre_process(model, prepared)
    quantize_static(prepared, out, Images(input_name, batch, data, split, count, size), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    os.remove(prepared)
    print(f"wrote {out}: QDQ, per-channel S8S8, MinMax on {count} images of '{split}'")


if __name__ == "__main__":
    main()
