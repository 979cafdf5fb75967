"""Drives scripts/bench-serve: Forklift against the seed stack (Flask under
gunicorn --preload -w 2, onnxruntime with one thread), one sample per JSON request,
with `forklift bench` as the load generator and wrk as a cross-check, all on this
machine in one run. Also compares `forklift bench` with wrk on GET /v2/health/live.

  bench_serve.py --forklift BIN [--duration S] [--models digits,wide_mlp,resnet18]
                 [--concurrency 1,16,64] [--plot-dir DIR]
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
WORK = ROOT / ".cache/bench-serve"


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


def wait_for_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"nothing listens on port {port} after {timeout} s")


def stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_forklift(args, model):
    port = free_port()
    server = subprocess.Popen([args.forklift, "serve", str(model), "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "2", "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/v2/health/ready")
    return server, port


def start_seed(model):
    port = free_port()
    seed = subprocess.Popen([str(ROOT / ".cache/venv/bin/gunicorn"), "--preload", "-w", "2", "-b", f"127.0.0.1:{port}",
                             "--chdir", str(ROOT / "scripts/py"), "--log-level", "warning", "seed_app:app"],
                            env=dict(os.environ, MODEL_PATH=str(model)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return seed, port


def forklift_bench(args, url, extra, out_json):
    """Runs `forklift bench` and returns its --json document."""
    command = [args.forklift, "bench", url, "--concurrency", args.concurrency, "--duration", str(args.duration),
               "--warmup", "2", "--json", str(out_json)] + extra
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"forklift bench failed ({done.returncode}): {' '.join(command)}\n{done.stdout}")
    return json.loads(out_json.read_text())


def to_ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(url, concurrency, duration, body=None):
    """wrk at `concurrency` connections, after a 2 s warm-up: req/s, p50 and p99 ms."""
    env = dict(os.environ)
    script = []
    if body is not None:
        env["BODY_FILE"] = str(body)
        script = ["-s", str(ROOT / "scripts/lib/post.lua")]
    threads = min(concurrency, 2)
    base = ["wrk", f"-t{threads}", f"-c{concurrency}", "--latency", "--timeout", "30s"] + script + [url]
    subprocess.run(base[:3] + ["-d2s"] + base[3:], env=env, capture_output=True, check=True)
    out = subprocess.run(base[:3] + [f"-d{duration}s"] + base[3:], env=env, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": to_ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99": to_ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
        "errors": int(errors.group(1)) if errors else 0,
    }


def step_cells(step):
    lat = step.get("latency_ms") or {}
    side = step.get("server_side") or {}
    batch = side.get("mean_batch_size")
    return (f"{step['requests_per_second']:,.0f} | {lat.get('p50', float('nan')):.2f} | {lat.get('p99', float('nan')):.2f} | "
            f"{step['failed']} | {'-' if batch is None else f'{batch:.1f}'} | {100 * step['client_cpu_cores'] / os.cpu_count():.0f}%")


def bench_model(name, args):
    model = MODELS[name]
    bodies = WORK / name
    subprocess.run([sys.executable, str(ROOT / "scripts/py/make_bodies.py"), str(model), str(bodies)], check=True)
    top = int(args.concurrency.split(",")[-1])
    seed, port = start_seed(model)
    try:
        seed_doc = forklift_bench(args, f"http://127.0.0.1:{port}",
                                  ["--endpoint", "/predict", "--body", str(bodies / "seed.json"), "--label", "seed (Flask + gunicorn)"],
                                  WORK / f"{name}-seed.json")
        seed_wrk = run_wrk(f"http://127.0.0.1:{port}/predict", top, args.duration, bodies / "seed.json")
    finally:
        stop(seed)
    server, port = start_forklift(args, model)
    try:
        extra = ["--model", model.parent.name, "--no-binary", "--compare-compute", str(model), "--label", "Forklift",
                 "--plot-with", str(WORK / f"{name}-seed.json")]
        if args.plot_dir:
            extra += ["--plot", str(pathlib.Path(args.plot_dir) / f"bench-{name}.svg")]
        ours_doc = forklift_bench(args, f"http://127.0.0.1:{port}", extra, WORK / f"{name}-forklift.json")
        ours_wrk = run_wrk(f"http://127.0.0.1:{port}/v2/models/{model.parent.name}/infer", top, args.duration, bodies / "v2.json")
    finally:
        stop(server)
    return ours_doc, ours_wrk, seed_doc, seed_wrk


def health_check(args, rounds=3, connections=64):
    """forklift bench against wrk on GET /v2/health/live with the same connection count, alternating
    `rounds` times in one run (the machine is shared, so single runs are noisy): medians."""
    server, port = start_forklift(args, MODELS["digits"])
    ours, theirs, cpu = [], [], []
    try:
        url = f"http://127.0.0.1:{port}"
        step_args = argparse.Namespace(**{**vars(args), "concurrency": str(connections)})
        for index in range(rounds):
            doc = forklift_bench(step_args, url, ["--endpoint", "health"], WORK / f"health-{index}.json")
            ours.append(doc["steps"][0]["requests_per_second"])
            cpu.append(doc["steps"][0]["client_cpu_cores"])
            theirs.append(run_wrk(url + "/v2/health/live", connections, args.duration)["rps"])
    finally:
        stop(server)
    return connections, ours, theirs, cpu


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--forklift", required=True)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--models", default="digits,wide_mlp,resnet18")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--plot-dir", default=None, help="write bench-<model>.svg here (Forklift and seed on one picture)")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    top = int(args.concurrency.split(",")[-1])

    connections, ours, theirs, cpu = health_check(args)
    print(f"Load generator check: GET /v2/health/live on Forklift (2 workers), {connections} connections, "
          f"{len(ours)} alternating rounds of {args.duration} s each")
    print("| generator | req/s per round | median req/s | generator CPU (cores) |")
    print("|---|---|---:|---:|")
    print(f"| forklift bench | {', '.join(f'{v:,.0f}' for v in ours)} | {median(ours):,.0f} | {median(cpu):.2f} |")
    print(f"| wrk | {', '.join(f'{v:,.0f}' for v in theirs)} | {median(theirs):,.0f} | - |")
    print(f"forklift bench / wrk (medians): {median(ours) / median(theirs):.2f}×")
    print(flush=True)

    print("| model | server | concurrency | req/s | p50 ms | p99 ms | errors | mean batch | generator CPU share | wrk req/s (cross-check) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    summary = []
    for name in args.models.split(","):
        ours, ours_wrk, seed, seed_wrk = bench_model(name, args)
        for label, doc, wrk in (("forklift", ours, ours_wrk), ("seed", seed, seed_wrk)):
            for step in doc["steps"]:
                cross = f"{wrk['rps']:,.0f}" if step.get("concurrency") == top else ""
                print(f"| {name} | {label} | {step['concurrency']} | {step_cells(step)} | {cross} |", flush=True)
        ours_top = next(s for s in ours["steps"] if s.get("concurrency") == top)
        seed_top = next(s for s in seed["steps"] if s.get("concurrency") == top)
        summary.append((name, ours_top["requests_per_second"] / max(seed_top["requests_per_second"], 1e-9),
                        ours_wrk["rps"] / max(seed_wrk["rps"], 1e-9), ours_top.get("efficiency"),
                        ours_top.get("compute_batch"), ours["steps"][0]["latency_ms"]["p50"]))
    print()
    print(f"| model | Forklift / seed req/s at c={top} (forklift bench) | same by wrk | c={top} samples/s / compute-only "
          "(2 workers × 1 thread, at the mean batch) | mean batch | c=1 p50 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, ratio, wrk_ratio, efficiency, batch, p50 in summary:
        eff = "-" if efficiency is None else f"{100 * efficiency:.0f}%"
        print(f"| {name} | {ratio:.1f}× | {wrk_ratio:.1f}× | {eff} | {batch} | {p50:.2f} |")


if __name__ == "__main__":
    main()
