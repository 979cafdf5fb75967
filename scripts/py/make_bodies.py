"""Writes request bodies for scripts/bench-serve: one sample per request.

  make_bodies.py MODEL_PATH OUT_DIR
writes OUT_DIR/v2.json (a V2 inference request for the model's first input) and OUT_DIR/seed.json (the seed app's
JSON list), both holding the same random sample.
"""

import json
import pathlib
import sys

import numpy as np
import onnx

model_path, out_dir = sys.argv[1], pathlib.Path(sys.argv[2])
graph = onnx.load(model_path, load_external_data=False).graph
initializers = {i.name for i in graph.initializer}
inp = next(i for i in graph.input if i.name not in initializers)
dims = [d.dim_value if d.dim_value > 0 else 1 for d in inp.type.tensor_type.shape.dim]
rng = np.random.default_rng(0)
x = rng.uniform(0, 1, size=dims).astype(np.float32)
if "digits" in model_path:
    x = np.round(x * 16).astype(np.float32)
flat = [float(round(v, 4)) for v in x.reshape(-1)]
out_dir.mkdir(parents=True, exist_ok=True)
(out_dir / "v2.json").write_text(json.dumps({"inputs": [{"name": inp.name, "shape": dims, "datatype": "FP32", "data": flat}]}))
(out_dir / "seed.json").write_text(json.dumps(np.asarray(flat, dtype=np.float32).reshape(dims).tolist()))
