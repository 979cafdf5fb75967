"""Make the test models and their onnxruntime reference outputs.

Run through scripts/make-models (which sets up the venv). Paths are relative to
the repository root, which is found from this file's location.

  models/digits/            committed: scikit-learn MLP on load_digits (skl2onnx)
                            rebuilt only with --force or when missing
  .cache/models/wide_mlp/   784->2048->2048->10 MLP, random weights (onnx.helper)
  .cache/models/resnet18/   ResNet-18 ImageNet architecture, random weights
  .cache/models/colors/     a tiny image classifier (mean colour -> red/green/blue) with an
                            image config and labels, for the JPEG serving tests
  .cache/reference/<model>/ input_b<B>.npy and <output>_b<B>.npy for B in 1, 8
  .cache/reference/digits/  also test_X.npy, test_y.npy, accuracy.json
"""

import argparse
import hashlib
import json
import os
import sys
import warnings

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DIGITS_DIR = os.path.join("models", "digits")
CACHE_MODELS = os.path.join(".cache", "models")
CACHE_REF = os.path.join(".cache", "reference")
BATCHES = (1, 8)


def say(msg):
    print(msg, flush=True)


def save_model(model, path):
    """Check the model, then write it atomically."""
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(model.SerializeToString())
    os.replace(tmp, path)


def write_text(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def save_npy(path, arr):
    tmp = path + ".tmp.npy"
    np.save(tmp, arr)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# digits: scikit-learn MLPClassifier exported with skl2onnx

DIGITS_OPSET = {"": 15, "ai.onnx.ml": 3}
ALLOWED_DIGITS_OPS = {
    "MatMul", "Gemm", "Add", "Mul", "Sub", "Div", "Relu", "Softmax", "ArgMax",
    "ArrayFeatureExtractor", "Cast", "Reshape", "Identity", "Flatten", "Concat",
}


def digits_split():
    """The fixed held-out split; reproducible without the trained model."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)  # raw pixel values 0..16, no scaler
    y = y.astype(np.int64)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def train_digits(X_train, y_train):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(256, 128), random_state=0, max_iter=500)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X_train, y_train)
    return clf


def export_digits(clf):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    model = convert_sklearn(
        clf,
        name="digits",
        initial_types=[("float_input", FloatTensorType([None, 64]))],
        options={id(clf): {"zipmap": False}},
        target_opset=DIGITS_OPSET,
    )
    ops = {n.op_type for n in model.graph.node}
    bad = ops - ALLOWED_DIGITS_OPS
    if bad:
        raise SystemExit(f"digits: skl2onnx emitted unexpected ops {sorted(bad)}")
    return model


def build_digits(force):
    path = os.path.join(DIGITS_DIR, "model.onnx")
    X_train, X_test, y_train, y_test = digits_split()
    info = {"rebuilt": False, "X_test": X_test, "y_test": y_test}
    if os.path.exists(path) and not force:
        say(f"skip   {path} (exists; --force rebuilds it)")
    else:
        clf = train_digits(X_train, y_train)
        model = export_digits(clf)
        save_model(model, path)
        info["rebuilt"] = True
        info["sklearn_accuracy"] = float(clf.score(X_test, y_test))
        say(f"made   {path} ({os.path.getsize(path)} bytes, "
            f"{clf.n_iter_} epochs, sklearn accuracy {info['sklearn_accuracy']:.4f})")

    cfg = os.path.join(DIGITS_DIR, "config.json")
    # One batch at a time: its compute is tiny next to a request's handling (README, Configuration).
    want_cfg = json.dumps({"max_batch_size": 32, "instance_count": 1, "labels": "labels.txt"}, indent=2) + "\n"
    labels = os.path.join(DIGITS_DIR, "labels.txt")
    want_labels = "".join(f"{i}\n" for i in range(10))
    for p, want in ((cfg, want_cfg), (labels, want_labels)):
        if os.path.exists(p) and open(p).read() == want:
            say(f"skip   {p} (up to date)")
        else:
            write_text(p, want)
            say(f"made   {p}")
    return info


# ---------------------------------------------------------------------------
# wide_mlp: 784 -> 2048 -> 2048 -> 10, Gemm(transB=1) + Relu

def build_wide_mlp(path):
    rng = np.random.default_rng(1234)
    sizes = [784, 2048, 2048, 10]
    inits, nodes = [], []
    x = "input"
    for i in range(3):
        fan_in, fan_out = sizes[i], sizes[i + 1]
        w = (rng.standard_normal((fan_out, fan_in)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        b = (rng.standard_normal(fan_out) * 0.01).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"fc{i + 1}.weight"),
                  numpy_helper.from_array(b, f"fc{i + 1}.bias")]
        last = i == 2
        y = "logits" if last else f"fc{i + 1}"
        nodes.append(helper.make_node("Gemm", [x, f"fc{i + 1}.weight", f"fc{i + 1}.bias"], [y],
                                      name=f"fc{i + 1}", transB=1))
        if not last:
            nodes.append(helper.make_node("Relu", [y], [f"relu{i + 1}"], name=f"relu{i + 1}"))
            x = f"relu{i + 1}"
    graph = helper.make_graph(
        nodes, "wide_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="forklift-make-models")
    model.ir_version = 8
    save_model(model, path)


# ---------------------------------------------------------------------------
# colors: [N,3,32,32] -> GlobalAveragePool -> Flatten -> Gemm(identity) -> logits [N,3]
# Which channel is brightest on average: small and exact, so serving tests can check
# the JPEG path (decode, resize, crop, normalise, batch) against a known answer.

def build_colors(path):
    folder = os.path.dirname(path)
    w = np.eye(3, dtype=np.float32) * 10.0
    b = np.zeros(3, dtype=np.float32)
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "colors",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(w, "fc.weight"), numpy_helper.from_array(b, "fc.bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="forklift-make-models")
    model.ir_version = 8
    save_model(model, path)
    config = {
        "max_batch_size": 8, "labels": "labels.txt",
        "image": {"resize_short_side": 40, "crop": [32, 32], "scale": 1.0 / 255.0, "mean": [0.0, 0.0, 0.0],
                  "std": [1.0, 1.0, 1.0], "channel_order": "RGB", "layout": "NCHW"},
    }
    write_text(os.path.join(folder, "config.json"), json.dumps(config, indent=2) + "\n")
    write_text(os.path.join(folder, "labels.txt"), "red\ngreen\nblue\n")


# ---------------------------------------------------------------------------
# resnet18: torchvision's ResNet-18 layout, random weights, opset 13

class ResNetBuilder:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def conv(self, name, x, cin, cout, k, stride, pad):
        fan_in = cin * k * k  # He (kaiming normal, fan_in, relu gain)
        w = (self.rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        self.init(f"{name}.weight", w)
        y = f"{name}_out"
        self.nodes.append(helper.make_node(
            "Conv", [x, f"{name}.weight"], [y], name=name,
            kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4,
            dilations=[1, 1], group=1))
        return y

    def bn(self, name, x, c, small_scale=False):
        r = self.rng
        lo, hi = (0.2, 0.5) if small_scale else (0.7, 1.3)
        scale = r.uniform(lo, hi, c).astype(np.float32)
        bias = (r.standard_normal(c) * 0.1).astype(np.float32)
        mean = (r.standard_normal(c) * 0.1).astype(np.float32)
        var = r.uniform(0.5, 1.5, c).astype(np.float32)
        names = [self.init(f"{name}.{s}", a) for s, a in
                 (("weight", scale), ("bias", bias), ("running_mean", mean), ("running_var", var))]
        y = f"{name}_out"
        # momentum as torch.onnx writes it; it means nothing at inference.
        self.nodes.append(helper.make_node("BatchNormalization", [x] + names, [y], name=name,
                                           epsilon=1e-5, momentum=0.9))
        return y

    def relu(self, name, x):
        y = f"{name}_out"
        self.nodes.append(helper.make_node("Relu", [x], [y], name=name))
        return y

    def add(self, name, a, b):
        y = f"{name}_out"
        self.nodes.append(helper.make_node("Add", [a, b], [y], name=name))
        return y

    def const(self, name, arr):
        y = f"{name}_out"
        self.nodes.append(helper.make_node("Constant", [], [y], name=name,
                                           value=numpy_helper.from_array(arr, name)))
        return y

    def basic_block(self, name, x, cin, cout, stride):
        out = self.conv(f"{name}.conv1", x, cin, cout, 3, stride, 1)
        out = self.bn(f"{name}.bn1", out, cout)
        out = self.relu(f"{name}.relu1", out)
        out = self.conv(f"{name}.conv2", out, cout, cout, 3, 1, 1)
        # Smaller gamma on the last BN of each block keeps activations bounded
        # through the residual sums (as zero-init-residual does, but not zero).
        out = self.bn(f"{name}.bn2", out, cout, small_scale=True)
        if stride != 1 or cin != cout:
            sc = self.conv(f"{name}.downsample.0", x, cin, cout, 1, stride, 0)
            sc = self.bn(f"{name}.downsample.1", sc, cout)
        else:
            sc = x
        out = self.add(f"{name}.add", out, sc)
        return self.relu(f"{name}.relu2", out)

    def build(self):
        x = self.conv("conv1", "input", 3, 64, 7, 2, 3)
        x = self.bn("bn1", x, 64)
        x = self.relu("relu", x)
        self.nodes.append(helper.make_node("MaxPool", [x], ["maxpool_out"], name="maxpool",
                                           kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
        x = "maxpool_out"
        cin = 64
        for stage, cout in enumerate((64, 128, 256, 512), start=1):
            for blk in range(2):
                stride = 2 if (stage > 1 and blk == 0) else 1
                x = self.basic_block(f"layer{stage}.{blk}", x, cin, cout, stride)
                cin = cout
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], ["avgpool_out"], name="avgpool"))
        x = "avgpool_out"

        # Flatten the way torch.onnx exports x.view(x.size(0), -1):
        # Shape -> Gather(0) -> Unsqueeze -> Concat([n, -1]) -> Reshape
        self.nodes.append(helper.make_node("Shape", [x], ["flat_shape"], name="flat.shape"))
        idx0 = self.const("flat.const_idx0", np.array(0, dtype=np.int64))
        self.nodes.append(helper.make_node("Gather", ["flat_shape", idx0], ["flat_n"],
                                           name="flat.gather", axis=0))
        axes0 = self.const("flat.const_axes0", np.array([0], dtype=np.int64))
        self.nodes.append(helper.make_node("Unsqueeze", ["flat_n", axes0], ["flat_n1"],
                                           name="flat.unsqueeze"))
        minus1 = self.const("flat.const_minus1", np.array([-1], dtype=np.int64))
        self.nodes.append(helper.make_node("Concat", ["flat_n1", minus1], ["flat_newshape"],
                                           name="flat.concat", axis=0))
        self.nodes.append(helper.make_node("Reshape", [x, "flat_newshape"], ["flat_out"],
                                           name="flat.reshape"))

        w = self.rng.uniform(-1, 1, (1000, 512)).astype(np.float32) / np.sqrt(512).astype(np.float32)
        b = self.rng.uniform(-1, 1, 1000).astype(np.float32) / np.sqrt(512).astype(np.float32)
        self.init("fc.weight", w)
        self.init("fc.bias", b)
        self.nodes.append(helper.make_node("Gemm", ["flat_out", "fc.weight", "fc.bias"], ["logits"],
                                           name="fc", alpha=1.0, beta=1.0, transB=1))

        graph = helper.make_graph(
            self.nodes, "resnet18",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])],
            initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                                  producer_name="forklift-make-models")
        model.ir_version = 8
        return model


def build_resnet18(path):
    save_model(ResNetBuilder(seed=18).build(), path)


# ---------------------------------------------------------------------------
# reference outputs

def ort_session(path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])


def reference_inputs(name, batch, digits_X_test=None):
    rng = np.random.default_rng(1000 + batch)
    if name == "digits":
        # Held-out digit images, picked at random (seeded): realistic inputs
        # with clear winners, so the label output has no near-ties.
        rows = rng.choice(len(digits_X_test), size=batch, replace=False)
        return digits_X_test[rows].astype(np.float32)
    if name == "wide_mlp":
        return rng.standard_normal((batch, 784)).astype(np.float32)
    if name == "resnet18":
        return rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)
    raise ValueError(name)


def ref_files(name, sess):
    d = os.path.join(CACHE_REF, name)
    outs = [o.name for o in sess.get_outputs()]
    files = []
    for b in BATCHES:
        files.append(os.path.join(d, f"input_b{b}.npy"))
        files += [os.path.join(d, f"{o}_b{b}.npy") for o in outs]
    return files


def write_reference(name, model_path, rebuilt, digits_X_test=None):
    sess = ort_session(model_path)
    files = ref_files(name, sess)
    model_mtime = os.path.getmtime(model_path)
    up_to_date = (not rebuilt and all(os.path.exists(f) for f in files)
                  and all(os.path.getmtime(f) >= model_mtime for f in files))
    d = os.path.join(CACHE_REF, name)
    if up_to_date:
        say(f"skip   {d}/ input/output b{','.join(map(str, BATCHES))} (up to date)")
        return sess
    os.makedirs(d, exist_ok=True)
    in_name = sess.get_inputs()[0].name
    out_names = [o.name for o in sess.get_outputs()]
    for b in BATCHES:
        x = reference_inputs(name, b, digits_X_test)
        ys = sess.run(None, {in_name: x})
        save_npy(os.path.join(d, f"input_b{b}.npy"), x)
        for o, y in zip(out_names, ys):
            save_npy(os.path.join(d, f"{o}_b{b}.npy"), y)
    say(f"made   {d}/ input + {','.join(out_names)} for batch {','.join(map(str, BATCHES))}")
    return sess


def write_digits_extras(sess, info):
    d = os.path.join(CACHE_REF, "digits")
    os.makedirs(d, exist_ok=True)
    X_test, y_test = info["X_test"], info["y_test"]
    save_npy(os.path.join(d, "test_X.npy"), X_test)
    save_npy(os.path.join(d, "test_y.npy"), y_test)
    say(f"made   {d}/test_X.npy {X_test.shape} float32, test_y.npy {y_test.shape} int64")

    label = sess.run(["label"], {"float_input": X_test})[0]
    ort_acc = float(np.mean(label.astype(np.int64) == y_test))
    acc_path = os.path.join(d, "accuracy.json")
    with open(os.path.join(DIGITS_DIR, "model.onnx"), "rb") as f:
        model_sha = hashlib.sha256(f.read()).hexdigest()
    sk_acc = info.get("sklearn_accuracy")
    if sk_acc is None:
        # The committed model was not rebuilt in this run. Keep the recorded
        # sklearn number if it is there; otherwise retrain (same data, same
        # seed) to get it, and say so.
        old = None
        if os.path.exists(acc_path):
            try:
                rec = json.load(open(acc_path))
                if rec.get("model_sha256") == model_sha:
                    old = rec.get("sklearn_accuracy")
            except (ValueError, OSError, AttributeError):
                old = None
        if old is not None:
            sk_acc = float(old)
        else:
            X_train, _, y_train, _ = digits_split()
            sk_acc = float(train_digits(X_train, y_train).score(X_test, y_test))
            say("note   digits sklearn accuracy from a retrained (not the committed) classifier")
    acc = {"sklearn_accuracy": sk_acc, "onnxruntime_accuracy": ort_acc,
           "model_sha256": model_sha}
    write_text(acc_path, json.dumps(acc, indent=2) + "\n")
    flag = "" if abs(sk_acc - ort_acc) < 1e-12 else "  MISMATCH"
    say(f"made   {acc_path} sklearn {sk_acc:.4f} onnxruntime {ort_acc:.4f}{flag}")
    return acc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--force", action="store_true",
                    help="rebuild every model, including the committed models/digits")
    args = ap.parse_args()
    os.chdir(ROOT)

    info = build_digits(args.force)

    built = {}
    for name, fn in (("wide_mlp", build_wide_mlp), ("resnet18", build_resnet18), ("colors", build_colors)):
        path = os.path.join(CACHE_MODELS, name, "model.onnx")
        if os.path.exists(path) and not args.force:
            say(f"skip   {path} (exists)")
            built[name] = False
        else:
            fn(path)
            say(f"made   {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
            built[name] = True

    digits_path = os.path.join(DIGITS_DIR, "model.onnx")
    sess = write_reference("digits", digits_path, info["rebuilt"], info["X_test"])
    acc = write_digits_extras(sess, info)
    for name in ("wide_mlp", "resnet18"):
        write_reference(name, os.path.join(CACHE_MODELS, name, "model.onnx"), built[name])

    if abs(acc["sklearn_accuracy"] - acc["onnxruntime_accuracy"]) > 1e-12:
        say("error  digits: onnxruntime accuracy differs from scikit-learn's")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
