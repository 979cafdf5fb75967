"""Drives scripts/bench-serve: Forklift against the seed stack (Flask under
gunicorn --preload -w 2, onnxruntime with one thread), one sample per request,
with wrk as the load generator, all on this machine in one run.

  bench_serve.py --forklift BIN [--duration S] [--models digits,wide_mlp,resnet18]
"""

import argparse
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = {
    "digits": ROOT / "models/digits/model.onnx",
    "wide_mlp": ROOT / ".cache/models/wide_mlp/model.onnx",
    "resnet18": ROOT / ".cache/models/resnet18/model.onnx",
}
CONCURRENCY = [1, 16, 64]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"server at {url} did not become ready in {timeout} s")


def to_ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(url, body, concurrency, duration):
    env = dict(os.environ, BODY_FILE=str(body))
    threads = min(concurrency, 2)
    command = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{duration}s", "--latency", "--timeout", "30s",
               "-s", str(ROOT / "scripts/lib/post.lua"), url]
    # A short warm-up, then the measured run; wrk's CPU time shows its share of the 2 cores.
    subprocess.run(command[:3] + ["-d2s"] + command[4:], env=env, capture_output=True, check=True)
    before = os.times()
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": to_ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99": to_ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
        "errors": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
        "wrk_cpu_share": cpu / duration / os.cpu_count(),
    }


def batch_stats(port):
    """Sum and count of the server's batch-size histogram."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    total = sum(float(m) for m in re.findall(r"^forklift_batch_size_sum(?:\{[^}]*\})? ([\d.e+]+)", text, re.M))
    count = sum(float(m) for m in re.findall(r"^forklift_batch_size_count(?:\{[^}]*\})? ([\d.e+]+)", text, re.M))
    return total, count


def stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def profile(forklift, model, batch):
    out = subprocess.run([forklift, "profile", str(model), "--batch", str(batch), "--json"],
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out)["results"][0]
    return result["samples_per_second"], result["median_ms"]


def bench_model(name, args, bodies):
    model = MODELS[name]
    rows = []
    port = free_port()
    server = subprocess.Popen([args.forklift, "serve", str(model), "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "2", "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/health/ready")
        url = f"http://127.0.0.1:{port}/v2/models/{model.parent.name}/infer"
        for c in CONCURRENCY:
            sum0, count0 = batch_stats(port)
            result = run_wrk(url, bodies / "v2.json", c, args.duration)
            sum1, count1 = batch_stats(port)
            result["mean_batch"] = (sum1 - sum0) / max(count1 - count0, 1)
            rows.append(("forklift", c, result))
    finally:
        stop(server)
    port = free_port()
    seed = subprocess.Popen([str(ROOT / ".cache/venv/bin/gunicorn"), "--preload", "-w", "2", "-b", f"127.0.0.1:{port}",
                             "--chdir", str(ROOT / "scripts/py"), "--log-level", "warning", "seed_app:app"],
                            env=dict(os.environ, MODEL_PATH=str(model)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        for c in CONCURRENCY:
            rows.append(("seed", c, run_wrk(f"http://127.0.0.1:{port}/predict", bodies / "seed.json", c, args.duration)))
    finally:
        stop(seed)
    return rows


def wait_for_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"nothing listens on port {port} after {timeout} s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--forklift", required=True)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--models", default="digits,wide_mlp,resnet18")
    args = parser.parse_args()
    work = ROOT / ".cache/bench-serve"
    print("| model | server | concurrency | req/s | p50 ms | p99 ms | errors | mean batch | wrk CPU share |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    summary = []
    for name in args.models.split(","):
        bodies = work / name
        subprocess.run([sys.executable, str(ROOT / "scripts/py/make_bodies.py"), str(MODELS[name]), str(bodies)], check=True)
        rows = bench_model(name, args, bodies)
        for server, c, r in rows:
            batch = f"{r['mean_batch']:.1f}" if "mean_batch" in r else "-"
            errors = str(r["errors"]) + (f" ({r['socket_errors']})" if r["socket_errors"] else "")
            print(f"| {name} | {server} | {c} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {errors} | {batch} | "
                  f"{100 * r['wrk_cpu_share']:.0f}% |", flush=True)
        ours = {c: r for s, c, r in rows if s == "forklift"}
        theirs = {c: r for s, c, r in rows if s == "seed"}
        saturated = ours[64]
        batch = max(1, round(saturated["mean_batch"]))
        compute_rps, _ = profile(args.forklift, MODELS[name], batch)
        _, compute_ms_b1 = profile(args.forklift, MODELS[name], 1)
        summary.append((name, ours[64]["rps"] / theirs[64]["rps"], saturated["rps"] / (2 * compute_rps), batch,
                        ours[1]["p50"], compute_ms_b1))
    print()
    print("| model | Forklift / seed req/s at c=64 | c=64 throughput / compute-only (2 workers × 1 thread, at the mean batch) | mean batch | c=1 p50 ms | compute ms at batch 1 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, ratio, efficiency, batch, p50, compute in summary:
        print(f"| {name} | {ratio:.1f}× | {100 * efficiency:.0f}% | {batch} | {p50:.2f} | {compute:.2f} |")


if __name__ == "__main__":
    main()
