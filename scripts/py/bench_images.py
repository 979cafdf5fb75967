"""Pillow's decode + preprocess throughput, the peer of `forklift image-bench`.

The pipeline is what a Python service does per request: Image.open on the bytes, convert to RGB,
resize the short side with BILINEAR (Pillow antialiases it), centre crop, then normalise and
transpose in NumPy. `--draft` adds Image.draft() first, Pillow's own use of libjpeg's DCT scaling.
Prints one JSON object per file with the median time of a single image.
"""

import argparse
import io
import json
import time

import numpy as np
from PIL import Image


def pipeline(data, config, draft):
    image = Image.open(io.BytesIO(data))
    side = config.get("resize_short_side")
    crop_h, crop_w = config["crop"]
    width, height = image.size
    if side is None:
        target = (crop_w, crop_h)
    elif width <= height:
        target = (side, int(side * height / width))
    else:
        target = (int(side * width / height), side)
    if draft:
        image.draft("RGB", target)
    image = image.convert("RGB").resize(target, Image.BILINEAR)
    left, top = (target[0] - crop_w) // 2, (target[1] - crop_h) // 2
    image = image.crop((left, top, left + crop_w, top + crop_h))
    order = [2, 1, 0] if config.get("channel_order", "RGB") == "BGR" else [0, 1, 2]
    pixels = np.asarray(image, dtype=np.float32)[:, :, order]
    mean = np.asarray(config.get("mean", [0, 0, 0]), dtype=np.float32)
    std = np.asarray(config.get("std", [1, 1, 1]), dtype=np.float32)
    tensor = (pixels * np.float32(config.get("scale", 1.0)) - mean) / std
    if config.get("layout", "NCHW") == "NCHW":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor)


def measure(data, config, draft, min_time):
    pipeline(data, config, draft)
    times = []
    start = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < min_time:
        began = time.perf_counter()
        pipeline(data, config, draft)
        times.append(time.perf_counter() - began)
    times.sort()
    return times[len(times) // 2], len(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--config", required=True, help="the image config as JSON")
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--draft", action="store_true")
    args = parser.parse_args()
    config = json.loads(args.config)
    for path in args.files:
        with open(path, "rb") as f:
            data = f.read()
        width, height = Image.open(io.BytesIO(data)).size
        median, runs = measure(data, config, args.draft, args.min_time)
        print(json.dumps({"file": path, "width": width, "height": height, "draft": args.draft, "median_ms": median * 1000,
                          "images_per_second": 1 / median, "runs": runs}), flush=True)


if __name__ == "__main__":
    main()
