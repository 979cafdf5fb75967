"""Compute-only throughput of onnxruntime on one model, for comparison with
Forklift's engine (scripts/bench-engine-*). No HTTP, no batching queue: just
InferenceSession.run on a ready input.

  bench_ort.py --model PATH [--batch 1,8,32] [--threads N] [--json]

Random float32 input shaped like the model's first input, with its symbolic
(batch) dimension set to B. For each batch: warm-up runs, then timed runs until
at least --min-time seconds and --min-runs runs; the median run time gives
samples/s = B / median.
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort


def input_shape(inp, batch):
    shape = []
    for i, d in enumerate(inp.shape):
        if isinstance(d, int) and d > 0:
            shape.append(d)
        elif i == 0:
            shape.append(batch)
        else:
            raise SystemExit(f"input {inp.name!r}: dimension {i} is symbolic ({d!r}); "
                             "only the first (batch) dimension may be")
    if not shape:
        raise SystemExit(f"input {inp.name!r} is a scalar; nothing to batch")
    return shape


def bench_batch(sess, inp, batch, rng, warmup, min_time, min_runs):
    x = rng.standard_normal(input_shape(inp, batch)).astype(np.float32)
    feed = {inp.name: x}
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        sess.run(None, feed)
        t1 = time.perf_counter()
        times.append(t1 - t0)
        if t1 - start >= min_time and len(times) >= min_runs:
            break
    med = statistics.median(times)
    return batch / med, med, len(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="path to model.onnx")
    ap.add_argument("--batch", default="1,8,32", help="comma-separated batch sizes (default 1,8,32)")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs per batch (default 3)")
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds of timed runs per batch (default 1)")
    ap.add_argument("--min-runs", type=int, default=5, help="timed runs per batch, at least (default 5)")
    ap.add_argument("--json", action="store_true", help='print {"batch": {"1": samples_per_s, ...}}')
    args = ap.parse_args()
    try:
        batches = [int(b) for b in args.batch.split(",") if b.strip()]
    except ValueError:
        ap.error("--batch takes comma-separated integers, e.g. 1,8,32")
    if not batches or min(batches) < 1:
        ap.error("--batch needs positive integers")

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(args.model, sess_options=so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    if inp.type != "tensor(float)":
        print(f"note: input {inp.name!r} is {inp.type}; feeding float32 anyway", file=sys.stderr)

    rng = np.random.default_rng(0)
    result = {"batch": {}, "median_ms": {}, "runs": {}}
    for b in batches:
        sps, med, n = bench_batch(sess, inp, b, rng, args.warmup, args.min_time, args.min_runs)
        result["batch"][str(b)] = round(sps, 3)
        result["median_ms"][str(b)] = round(med * 1e3, 4)
        result["runs"][str(b)] = n
        if not args.json:
            print(f"batch {b:>4}: {sps:12.1f} samples/s  (median {med * 1e3:.3f} ms over {n} runs)",
                  flush=True)
    if args.json:
        result.update(model=args.model, threads=args.threads, engine="onnxruntime " + ort.__version__)
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
