"""Make the JPEG test files and their Pillow/NumPy references in .cache/images/.

Run through scripts/make-test-images (which sets up the venv). Everything is derived from real
photos: Debian's opencv-doc examples and scikit-learn's sample images.

  <name>.jpg              photos, and files made from them with Pillow: gray, CMYK, EXIF
                          orientations 1-8, progressive, 1x1, truncated, corrupt, PNG renamed,
                          a ~100-byte header claiming 65500x65500, benchmark 640x480 / 2000x1500
  <name>.rgb.npy          Pillow's decode: uint8 [H, W, 3], ImageOps.exif_transpose applied
  <name>.d<D>.rgb.npy     Pillow's decode at DCT scale 1/D (draft(), which in Pillow >= 10 keeps
                          libjpeg's accurate IDCT and fancy upsampling)
  bad.json                expected error kind of each bad file
  cases.json, case_*.npy  preprocessing cases: config, DCT scale, reference tensor, and the same
                          steps done by Pillow's own uint8 resize (case_*.pillow.npy)
  model/                  a tiny image classifier (ONNX + config.json + labels) and the top-k
                          that onnxruntime gives on photos (for the CLI predict test)

The reference tensor is NumPy float64 arithmetic on Pillow's decode: the triangle filter with
Pillow's window and weights (support = max(in/out, 1)), the crop, then (x*scale - mean)/std. It is
comparable to Forklift within 1e-3 because both start from the same RGB8 decode (libjpeg-turbo,
accurate IDCT, fancy upsampling; DCT-scaled cases use Pillow's draft() at the same scale) and both
resample in floating point. Pillow's own resize rounds to uint8 after each pass, so it is kept only
as a second, looser check (within about one pixel level) that the filter is Pillow's.
"""

import io
import json
import os
import shutil
import struct
import sys

import numpy as np
from PIL import Image, ImageOps

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, ".cache", "images")
OPENCV_DATA = "/usr/share/doc/opencv-doc/examples/data"
PHOTOS = ["baboon.jpg", "orange.jpg", "squirrel_cls.jpg", "aloeL.jpg"]
SKLEARN_PHOTOS = ["china.jpg", "flower.jpg"]
VERSION = "4"  # bump to rebuild the cache when this script changes what it writes


def path(name):
    return os.path.join(OUT, name)


def write_bytes(name, data):
    tmp = path(name) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path(name))


def save_npy(name, array):
    tmp = path(name) + ".tmp.npy"
    np.save(tmp, array)
    os.replace(tmp, path(name))


def jpeg_bytes(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def copy_photos():
    import sklearn

    sklearn_images = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images")
    sources = [os.path.join(OPENCV_DATA, n) for n in PHOTOS] + [os.path.join(sklearn_images, n) for n in SKLEARN_PHOTOS]
    names = []
    for source in sources:
        if not os.path.exists(source):
            sys.exit(f"make_test_images: {source} is missing (apt package opencv-doc, or scikit-learn in the venv)")
        name = "photo_" + os.path.basename(source)
        shutil.copyfile(source, path(name))
        names.append(name)
    return names


def exif_with_orientation(orientation, big_endian):
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Forklift test"  # a second tag, so orientation is not the only entry
    if big_endian:
        exif.endian = ">"
    return exif.tobytes()


def giant_header():
    """SOI, a quantisation table, SOF0 declaring 65500x65500 gray, SOS, a few scan bytes."""
    soi = b"\xff\xd8"
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes([1] * 64)
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 65500, 65500, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00" + b"\x00\x3f\x00"
    return soi + dqt + sof + sos + b"\x00" * 8


def make_variants(photo):
    """Files made from one real photo. Returns (decodable names, {bad name: expected error})."""
    base = Image.open(path(photo)).convert("RGB")
    small = base.resize((base.width // 2, base.height // 2), Image.LANCZOS)  # non-square, odd-ish sizes
    good = []
    write_bytes("gray.jpg", jpeg_bytes(small.convert("L"), quality=90))
    write_bytes("cmyk.jpg", jpeg_bytes(small.convert("CMYK"), quality=90))
    write_bytes("progressive.jpg", jpeg_bytes(small, quality=85, progressive=True))
    write_bytes("tiny_1x1.jpg", jpeg_bytes(Image.new("RGB", (1, 1), (200, 30, 90)), quality=95))
    write_bytes("subsampling_444.jpg", jpeg_bytes(small, quality=90, subsampling=0))
    good += ["gray.jpg", "cmyk.jpg", "progressive.jpg", "tiny_1x1.jpg", "subsampling_444.jpg"]
    for orientation in range(1, 9):
        name = f"orientation_{orientation}.jpg"
        exif = exif_with_orientation(orientation, big_endian=orientation % 2 == 0)
        write_bytes(name, jpeg_bytes(small, quality=90, exif=exif))
        good.append(name)

    whole = jpeg_bytes(small, quality=90)
    scan = whole.rfind(b"\xff\xda")
    bad = {}
    write_bytes("truncated.jpg", whole[: len(whole) * 6 // 10])
    bad["truncated.jpg"] = "truncated"
    # An EOI marker in the middle of the entropy-coded data: libjpeg warns "premature end of data
    # segment" and would fill the rest with grey.
    middle = scan + (len(whole) - scan) // 2
    write_bytes("corrupt_data.jpg", whole[:middle] + b"\xff\xd9" + whole[middle + 2 :])
    bad["corrupt_data.jpg"] = "corrupt"
    # A Huffman table whose code counts overflow: libjpeg fails with an error, not a warning.
    dht = whole.find(b"\xff\xc4")
    write_bytes("corrupt_header.jpg", whole[: dht + 5] + b"\xff" * 16 + whole[dht + 21 :])
    bad["corrupt_header.jpg"] = "corrupt"
    png = io.BytesIO()
    small.save(png, "PNG")
    write_bytes("png_renamed.jpg", png.getvalue())
    bad["png_renamed.jpg"] = "notJPEG"
    write_bytes("empty.jpg", b"")
    bad["empty.jpg"] = "notJPEG"
    write_bytes("giant_header.jpg", giant_header())
    bad["giant_header.jpg"] = "tooManyPixels"
    return good, bad


def make_bench(photo):
    """640x480 and 2000x1500 JPEGs (quality 90, 4:2:0) from the centre 4:3 region of a photo."""
    image = Image.open(path(photo)).convert("RGB")
    height = image.width * 3 // 4
    top = (image.height - height) // 2
    region = image.crop((0, top, image.width, top + height))
    names = []
    for width, height in [(640, 480), (2000, 1500)]:
        name = f"bench_{width}x{height}.jpg"
        write_bytes(name, jpeg_bytes(region.resize((width, height), Image.LANCZOS), quality=90))
        names.append(name)
    return names


def pillow_decode(name, denominator=1):
    image = Image.open(path(name))
    if denominator > 1:
        width, height = image.size
        image.draft("RGB", (width // denominator, height // denominator))
        expected = (-(-width // denominator), -(-height // denominator))
        assert image.size == expected, (name, image.size, expected)
    image = ImageOps.exif_transpose(image).convert("RGB")
    return image


# ---- the preprocessing reference --------------------------------------------------------------


def resized_size(width, height, config):
    side = config.get("resize_short_side")
    crop_h, crop_w = config["crop"]
    if side is None:
        return crop_w, crop_h
    if width <= height:
        return side, max(int(side * height / width), side)
    return max(int(side * width / height), side), side


def scale_denominator(stored_w, stored_h, orientation, target_w, target_h):
    """Forklift's rule (Pillow's draft rule): the largest 1/d with floor(side/d) >= target side."""
    if orientation >= 5:
        target_w, target_h = target_h, target_w
    for d in (8, 4, 2):
        if stored_w // d >= target_w and stored_h // d >= target_h:
            return d
    return 1


def triangle_weights(in_size, out_size):
    """[out, in] matrix of Pillow's antialiased bilinear taps, in float64."""
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = filter_scale
    weights = np.zeros((out_size, in_size))
    for i in range(out_size):
        center = (i + 0.5) * scale
        first = max(int(center - support + 0.5), 0)
        end = min(int(center + support + 0.5), in_size)
        taps = np.arange(first, end)
        w = np.maximum(0.0, 1.0 - np.abs((taps - center + 0.5) / filter_scale))
        if w.sum() > 0:
            w /= w.sum()
        weights[i, first:end] = w
    return weights


def normalize(pixels, config):
    order = [2, 1, 0] if config.get("channel_order", "RGB") == "BGR" else [0, 1, 2]
    pixels = pixels[:, :, order].astype(np.float64)
    scale = config.get("scale", 1.0)
    tensor = (pixels * scale - np.array(config["mean"])) / np.array(config["std"])
    if config.get("layout", "NCHW") == "NCHW":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor, dtype=np.float32)


def reference_tensor(name, config, dct_scaling):
    """(NumPy float64 reference, Pillow-resize reference, DCT denominator) for one image."""
    stored = Image.open(path(name))
    orientation = stored.getexif().get(0x0112, 1)
    display = ImageOps.exif_transpose(stored)
    target_w, target_h = resized_size(display.width, display.height, config)
    d = scale_denominator(stored.width, stored.height, orientation, target_w, target_h) if dct_scaling else 1
    image = pillow_decode(name, d)
    rgb = np.asarray(image, dtype=np.float64)
    crop_h, crop_w = config["crop"]
    left, top = (target_w - crop_w) // 2, (target_h - crop_h) // 2
    rows = triangle_weights(image.height, target_h)[top : top + crop_h]
    columns = triangle_weights(image.width, target_w)[left : left + crop_w]
    resized = np.einsum("yi,ijc,xj->yxc", rows, rgb, columns, optimize=True)
    by_pillow = image.resize((target_w, target_h), Image.BILINEAR).crop((left, top, left + crop_w, top + crop_h))
    return normalize(resized, config), normalize(np.asarray(by_pillow), config), d


IMAGENET = {"resize_short_side": 256, "crop": [224, 224], "mean": [127.0, 127.0, 127.0], "std": [128.0, 128.0, 128.0]}
CAFFE_BGR = {
    "crop": [224, 224],
    "scale": 1 / 255,
    "mean": [0.406, 0.456, 0.485],
    "std": [0.225, 0.224, 0.229],
    "channel_order": "BGR",
    "layout": "NHWC",
}
WIDE = {"resize_short_side": 300, "crop": [200, 240], "mean": [120.0, 110.0, 100.0], "std": [60.0, 50.0, 40.0], "layout": "NHWC"}
CASES = [
    ("photo_china.jpg", IMAGENET, True),
    ("photo_aloeL.jpg", IMAGENET, True),
    ("photo_aloeL.jpg", IMAGENET, False),
    ("bench_2000x1500.jpg", IMAGENET, True),
    ("bench_2000x1500.jpg", dict(IMAGENET, channel_order="BGR", layout="NHWC"), False),
    ("photo_baboon.jpg", CAFFE_BGR, True),
    ("photo_baboon.jpg", CAFFE_BGR, False),
    ("photo_flower.jpg", WIDE, True),
    ("orientation_6.jpg", {"crop": [40, 64], "mean": [0, 0, 0], "std": [1, 1, 1]}, True),
    ("orientation_3.jpg", IMAGENET, True),
    ("gray.jpg", IMAGENET, True),
    ("cmyk.jpg", IMAGENET, True),
    ("progressive.jpg", dict(IMAGENET, layout="NHWC"), True),
    ("tiny_1x1.jpg", IMAGENET, True),
]


def make_cases():
    cases = []
    for index, (name, config, dct_scaling) in enumerate(CASES):
        tensor, by_pillow, d = reference_tensor(name, config, dct_scaling)
        stem = f"case_{index:02d}"
        save_npy(stem + ".npy", tensor)
        save_npy(stem + ".pillow.npy", by_pillow)
        cases.append(
            {"image": name, "config": config, "dct_scaling": dct_scaling, "denominator": d, "tensor": stem + ".npy", "pillow": stem + ".pillow.npy"}
        )
    with open(path("cases.json"), "w") as f:
        json.dump(cases, f, indent=1)


# ---- a tiny classifier for the CLI ------------------------------------------------------------


def make_model(photos):
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    folder = path("model")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(7)
    conv_w = rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32)
    conv_b = rng.normal(0, 0.1, 4).astype(np.float32)
    fc_w = rng.normal(0, 1.0, (5, 4)).astype(np.float32)
    fc_b = rng.normal(0, 0.1, 5).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["images", "conv_w", "conv_b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_classifier",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])],
        [numpy_helper.from_array(a, n) for a, n in [(conv_w, "conv_w"), (conv_b, "conv_b"), (fc_w, "fc_w"), (fc_b, "fc_b")]],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    with open(os.path.join(folder, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    labels = ["red panda", "green", "blue sky", "grey", "other"]
    with open(os.path.join(folder, "labels.txt"), "w") as f:
        f.write("\n".join(labels) + "\n")
    image = {"input": "images", "resize_short_side": 20, "crop": [16, 16], "mean": [127.0, 127.0, 127.0], "std": [64.0, 64.0, 64.0]}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"max_batch_size": 8, "labels": "labels.txt", "image": image}, f, indent=1)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = {}
    for name in photos:
        tensor, _, _ = reference_tensor(name, image, True)
        logits = session.run(None, {"images": tensor[None]})[0][0].astype(np.float64)
        scores = np.exp(logits - logits.max())
        scores /= scores.sum()
        order = sorted(range(5), key=lambda i: (-scores[i], i))
        expected[name] = [{"label": labels[i], "index": i, "score": float(scores[i])} for i in order]
    with open(os.path.join(folder, "expected_top.json"), "w") as f:
        json.dump(expected, f, indent=1)


def main():
    marker = path(".version")
    if "--force" not in sys.argv and os.path.exists(marker) and open(marker).read() == VERSION:
        print(f"test images: up to date in {OUT}")
        return
    os.makedirs(OUT, exist_ok=True)
    photos = copy_photos()
    good, bad = make_variants("photo_squirrel_cls.jpg")
    bench = make_bench("photo_aloeL.jpg")
    decodable = photos + good + bench
    for name in decodable:
        save_npy(name[: -len(".jpg")] + ".rgb.npy", np.asarray(pillow_decode(name)))
    scaled = {"photo_baboon.jpg": [2, 4, 8], "photo_aloeL.jpg": [2, 4], "bench_2000x1500.jpg": [4], "orientation_6.jpg": [2], "cmyk.jpg": [2]}
    for name, denominators in scaled.items():
        for d in denominators:
            save_npy(f"{name[: -len('.jpg')]}.d{d}.rgb.npy", np.asarray(pillow_decode(name, d)))
    with open(path("decodable.json"), "w") as f:
        json.dump({"full": decodable, "scaled": scaled}, f, indent=1)
    with open(path("bad.json"), "w") as f:
        json.dump(bad, f, indent=1)
    make_cases()
    make_model(["photo_china.jpg", "photo_orange.jpg"])
    with open(marker, "w") as f:
        f.write(VERSION)
    print(f"test images: {len(decodable)} decodable, {len(bad)} bad, {len(CASES)} preprocessing cases in {OUT}")


if __name__ == "__main__":
    main()
