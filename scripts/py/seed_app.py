"""The seed stack that Forklift is measured against: a Flask app under gunicorn
(`gunicorn --preload -w 2`, sync workers) running onnxruntime with one intra-op
thread. POST a JSON list of inputs (one sample or a batch) to /predict; it answers
a JSON list with each output as nested lists.

  MODEL_PATH=models/digits/model.onnx gunicorn --preload -w 2 -b 127.0.0.1:9000 seed_app:app
"""

import os

import numpy as np
import onnxruntime as ort
from flask import Flask, jsonify, request

options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
session = ort.InferenceSession(os.environ["MODEL_PATH"], sess_options=options, providers=["CPUExecutionProvider"])
input_meta = session.get_inputs()[0]
rank = len(input_meta.shape)

app = Flask(__name__)


@app.post("/predict")
def predict():
    x = np.asarray(request.get_json(force=True), dtype=np.float32)
    if x.ndim == rank - 1:
        x = x[None, ...]
    outputs = session.run(None, {input_meta.name: x})
    return jsonify([o.tolist() for o in outputs])
