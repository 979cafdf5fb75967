"""tritonclient.http against `forklift serve` on the digits model (tensors) and the
colors model (JPEGs as BYTES, with Triton's classification extension), unchanged.

Run: FORKLIFT_BIN=<path to forklift> .cache/venv/bin/python -m pytest tests/python -q
The server is started here on 127.0.0.1 with --port 0 and stopped at the end.
"""

import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "digits"
IMAGE_MODEL = ROOT / ".cache" / "models" / "colors"
PHOTOS = Path("/usr/share/doc/opencv-doc/examples/data")
REFERENCE = ROOT / ".cache" / "reference" / "digits"


def forklift_binary():
    if os.environ.get("FORKLIFT_BIN"):
        return os.environ["FORKLIFT_BIN"]
    for build in (".build/debug", ".build/release", ".build-server/debug"):
        candidate = ROOT / build / "forklift"
        if candidate.exists():
            return str(candidate)
    pytest.fail("no forklift binary: build it or set FORKLIFT_BIN")


def serve(model):
    """Starts `forklift serve MODEL` on a free port; yields host:port, then stops it."""
    process = subprocess.Popen(
        [forklift_binary(), "serve", str(model), "--host", "127.0.0.1", "--port", "0", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    port = None
    lines = []
    for line in process.stdout:
        lines.append(line)
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if match:
            port = int(match.group(1))
            break
    if port is None:
        process.kill()
        pytest.fail("forklift serve did not start: " + "".join(lines) + process.stderr.read())
    # Keep draining stdout and stderr so that the server never blocks on a full pipe.
    for stream in (process.stdout, process.stderr):
        threading.Thread(target=stream.read, daemon=True).start()
    yield f"127.0.0.1:{port}"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


@pytest.fixture(scope="module")
def server():
    yield from serve(MODEL)


@pytest.fixture(scope="module")
def image_client():
    if not (IMAGE_MODEL / "model.onnx").exists():
        pytest.fail(f"{IMAGE_MODEL} is missing: run scripts/make-models")
    for address in serve(IMAGE_MODEL):
        yield httpclient.InferenceServerClient(url=address)


@pytest.fixture(scope="module")
def client(server):
    return httpclient.InferenceServerClient(url=server)


def test_health(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("digits")
    assert not client.is_model_ready("no_such_model")


def test_server_metadata(client):
    metadata = client.get_server_metadata()
    assert metadata["name"] == "forklift"
    assert "binary_tensor_data" in metadata["extensions"]


def test_model_metadata(client):
    metadata = client.get_model_metadata("digits")
    assert metadata["name"] == "digits"
    assert metadata["inputs"] == [{"name": "float_input", "datatype": "FP32", "shape": [-1, 64]}]
    names = {output["name"]: output for output in metadata["outputs"]}
    assert names["probabilities"]["shape"] == [-1, 10]
    assert names["label"]["datatype"] == "INT64"


def test_model_config(client):
    config = client.get_model_config("digits")
    assert config["max_batch_size"] == 32
    assert config["input"] == [{"name": "float_input", "data_type": "TYPE_FP32", "dims": [64]}]
    assert "dynamic_batching" in config


def reference_batch():
    return (
        np.load(REFERENCE / "input_b8.npy"),
        np.load(REFERENCE / "probabilities_b8.npy"),
        np.load(REFERENCE / "label_b8.npy"),
    )


@pytest.mark.parametrize("binary", [True, False])
def test_infer(client, binary):
    inputs, probabilities, labels = reference_batch()
    tensor = httpclient.InferInput("float_input", list(inputs.shape), "FP32")
    tensor.set_data_from_numpy(inputs, binary_data=binary)
    outputs = [
        httpclient.InferRequestedOutput("probabilities", binary_data=binary),
        httpclient.InferRequestedOutput("label", binary_data=binary),
    ]
    result = client.infer("digits", [tensor], outputs=outputs, request_id="py-1")
    assert result.get_response()["id"] == "py-1"
    np.testing.assert_allclose(result.as_numpy("probabilities"), probabilities, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(result.as_numpy("label"), labels)


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_infer_compressed_request(client, algorithm):
    inputs, probabilities, labels = reference_batch()
    tensor = httpclient.InferInput("float_input", list(inputs.shape), "FP32")
    tensor.set_data_from_numpy(inputs)
    result = client.infer("digits", [tensor], request_compression_algorithm=algorithm)
    np.testing.assert_array_equal(result.as_numpy("label"), labels)


def test_infer_error_is_reported(client):
    tensor = httpclient.InferInput("float_input", [1, 63], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 63), dtype=np.float32))
    with pytest.raises(Exception, match="dimension 1 is 63"):
        client.infer("digits", [tensor])


def test_jpegs_as_bytes_with_classification(image_client):
    photo = (PHOTOS / "orange.jpg").read_bytes()
    tensor = httpclient.InferInput("input", [2], "BYTES")
    tensor.set_data_from_numpy(np.array([photo, photo], dtype=np.object_), binary_data=True)
    ranked = httpclient.InferRequestedOutput("logits", binary_data=True, class_count=2)
    result = image_client.infer("colors", [tensor], outputs=[ranked])
    classes = result.as_numpy("logits")
    assert classes.shape == (2, 2)
    for row in classes:
        value, index, label = row[0].decode().split(":")
        assert (index, label) == ("0", "red")
        assert float(value) > float(row[1].decode().split(":")[0])
    raw = image_client.infer("colors", [tensor]).as_numpy("logits")
    assert raw.shape == (2, 3) and raw.argmax(axis=1).tolist() == [0, 0]
