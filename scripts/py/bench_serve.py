"""Drives scripts/bench-serve: Forklift against the seed stack (Flask under
gunicorn --preload -w 2, onnxruntime with one thread), one sample per request, with
`forklift bench` as the load generator and wrk as a cross-check, all on this machine
in one run.

Forklift is driven with binary tensors (what tritonclient sends by default), and once
more with JSON bodies at the top concurrency, because the seed stack only takes JSON:
the table shows both so that the comparison is fair. First, `forklift bench` itself is
compared with wrk on GET /v2/health/live (same connections, alternating rounds).

  bench_serve.py --forklift BIN [--duration S] [--models digits,wide_mlp,resnet18]
                 [--concurrency 1,16,64] [--rounds 5] [--ratio-rounds 3] [--plot-dir DIR] [--skip-check]

After each model's sweeps, the seed stack and Forklift alternate at the top concurrency
(--ratio-rounds), so that each ratio compares two runs a few seconds apart.

Each model's c=1 latency is set against a floor measured in the same run: floor_server.py, a
raw-socket server that reads the same body and does no work, loaded at c=1 with Forklift's
compute time as think time, so that it sees the same idle gap between requests.
"""

import argparse
import json
import os
import pathlib
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = {
    "digits": ROOT / "models/digits/model.onnx",
    "wide_mlp": ROOT / ".cache/models/wide_mlp/model.onnx",
    "resnet18": ROOT / ".cache/models/resnet18/model.onnx",
}
WORK = ROOT / ".cache/bench-serve"
CORES = os.cpu_count()

# wrk script: POST a body file with the headers given in the environment (JSON or the binary extension).
WRK_SCRIPT = """
local file = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = os.getenv("BODY_TYPE")
local header_length = os.getenv("INFERENCE_HEADER_LENGTH")
if header_length ~= nil and header_length ~= "" then
  wrk.headers["Inference-Header-Content-Length"] = header_length
end
"""


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


def forklift_bench(args, url, extra, out_json, concurrency=None):
    """Runs `forklift bench` and returns its --json document."""
    command = [args.forklift, "bench", url, "--concurrency", concurrency or args.concurrency, "--duration", str(args.duration),
               "--warmup", "2", "--json", str(out_json)] + extra
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"forklift bench failed ({done.returncode}): {' '.join(command)}\n{done.stdout}{done.stderr}")
    return json.loads(out_json.read_text())


def to_ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(url, concurrency, duration, body=None):
    """wrk at `concurrency` connections, after a 2 s warm-up: req/s, p50 and p99 ms, and wrk's CPU cores.
    `body` is (file, content type, inference header length or None) for a POST."""
    env = dict(os.environ)
    script = []
    if body is not None:
        path, content_type, header_length = body
        lua = WORK / "post.lua"
        lua.write_text(WRK_SCRIPT)
        env.update(BODY_FILE=str(path), BODY_TYPE=content_type, INFERENCE_HEADER_LENGTH=str(header_length or ""))
        script = ["-s", str(lua)]
    threads = min(concurrency, 2)
    base = ["wrk", f"-t{threads}", f"-c{concurrency}", "--latency", "--timeout", "30s"] + script + [url]
    subprocess.run(base[:3] + ["-d2s"] + base[3:], env=env, capture_output=True, check=True)
    cpu_before, start = children_cpu(), time.monotonic()
    out = subprocess.run(base[:3] + [f"-d{duration}s"] + base[3:], env=env, capture_output=True, text=True, check=True).stdout
    cpu, seconds = children_cpu() - cpu_before, time.monotonic() - start
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": to_ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99": to_ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
        "errors": int(errors.group(1)) if errors else 0,
        "cpu_cores": cpu / seconds,
    }


def write_binary_body(v2_json, out):
    """The V2 JSON request as Triton's binary extension (as tritonclient sends it): JSON header, then raw FP32 bytes.
    Returns the header's length."""
    request = json.loads(v2_json.read_text())
    raw = b""
    inputs = []
    for item in request["inputs"]:
        data = np.asarray(item["data"], dtype="<f4").tobytes()
        inputs.append({"name": item["name"], "shape": item["shape"], "datatype": "FP32", "parameters": {"binary_data_size": len(data)}})
        raw += data
    header = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}}).encode()
    out.write_bytes(header + raw)
    return len(header)


def model_rows(name, args):
    """Every measurement of one model: Forklift (binary sweep, JSON at the top concurrency) and the seed stack."""
    model = MODELS[name]
    bodies = WORK / name
    subprocess.run([sys.executable, str(ROOT / "scripts/py/make_bodies.py"), str(model), str(bodies)], check=True)
    header_length = write_binary_body(bodies / "v2.json", bodies / "v2.bin")
    top = args.concurrency.split(",")[-1]
    result = {}
    seed, port = start_seed(model)
    try:
        result["seed"] = forklift_bench(
            args, f"http://127.0.0.1:{port}",
            ["--endpoint", "/predict", "--body", str(bodies / "seed.json"), "--label", "seed (Flask + gunicorn), JSON"],
            WORK / f"{name}-seed.json")
        result["seed_wrk"] = run_wrk(f"http://127.0.0.1:{port}/predict", int(top), args.duration,
                                     (bodies / "seed.json", "application/json", None))
    finally:
        stop(seed)
    server, port = start_forklift(args, model)
    try:
        url = f"http://127.0.0.1:{port}"
        extra = ["--model", model.parent.name, "--compare-compute", str(model), "--label", "Forklift, binary tensors",
                 "--plot-with", str(WORK / f"{name}-seed.json")]
        if args.plot_dir:
            extra += ["--plot", str(pathlib.Path(args.plot_dir) / f"bench-{name}.svg")]
        result["forklift"] = forklift_bench(args, url, extra, WORK / f"{name}-forklift.json")
        result["forklift_json"] = forklift_bench(
            args, url, ["--model", model.parent.name, "--no-binary"], WORK / f"{name}-forklift-json.json", concurrency=top)
        result["forklift_wrk"] = run_wrk(f"{url}/v2/models/{model.parent.name}/infer", int(top), args.duration,
                                         (bodies / "v2.bin", "application/octet-stream", header_length))
        result["floor"] = floor_run(args, name, model, port, result["forklift"])
    finally:
        stop(server)
    if args.ratio_rounds > 0:
        result["alternating"] = alternating_rounds(args, name, model, bodies, top)
    return result


def floor_run(args, name, model, forklift_port, forklift):
    """forklift bench at c=1 against floor_server.py (which takes the probe's answers from the Forklift server
    at `forklift_port`), pausing between requests for Forklift's mean c=1 compute time: while a worker computes,
    Forklift's network threads sit idle that long, and on this machine an idle gap alone slows the next request."""
    gap = (forklift["steps"][0].get("server_side") or {}).get("mean_compute_ms") or 0
    port = free_port()
    floor = subprocess.Popen([sys.executable, str(ROOT / "scripts/py/floor_server.py"), str(port), str(forklift_port),
                              model.parent.name], stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        return forklift_bench(args, f"http://127.0.0.1:{port}", ["--model", model.parent.name, "--think-time", f"{gap:.3f}"],
                              WORK / f"{name}-floor.json", concurrency="1")
    finally:
        stop(floor)


def alternating_rounds(args, name, model, bodies, top):
    """The seed stack and Forklift (binary tensors) at the top concurrency, one after the other, `ratio_rounds`
    times, with both servers up throughout. The sweeps above measure the two minutes apart, and the machine's
    load drifts by more than that between them; a ratio of neighbouring rounds does not. Returns
    [(seed req/s, Forklift req/s)] per round."""
    seed, seed_port = start_seed(model)
    server, port = start_forklift(args, model)
    rounds = []
    try:
        for index in range(args.ratio_rounds):
            theirs = forklift_bench(args, f"http://127.0.0.1:{seed_port}", ["--endpoint", "/predict", "--body", str(bodies / "seed.json")],
                                    WORK / f"{name}-seed-round{index}.json", concurrency=top)
            ours = forklift_bench(args, f"http://127.0.0.1:{port}", ["--model", model.parent.name],
                                  WORK / f"{name}-forklift-round{index}.json", concurrency=top)
            rounds.append((theirs["steps"][0]["requests_per_second"], ours["steps"][0]["requests_per_second"]))
    finally:
        stop(server)
        stop(seed)
    return rounds


def health_check(args, connections=64):
    """forklift bench against wrk on GET /v2/health/live with the same connection count, alternating
    `rounds` times in one run (the machine is shared, so single runs are noisy): per-round figures."""
    server, port = start_forklift(args, MODELS["digits"])
    ours, theirs = [], []
    try:
        url = f"http://127.0.0.1:{port}"
        for index in range(args.rounds):
            doc = forklift_bench(args, url, ["--endpoint", "health"], WORK / f"health-{index}.json", concurrency=str(connections))
            step = doc["steps"][0]
            ours.append((step["requests_per_second"], step["client_cpu_cores"]))
            wrk = run_wrk(url + "/v2/health/live", connections, args.duration)
            theirs.append((wrk["rps"], wrk["cpu_cores"]))
    finally:
        stop(server)
    return connections, ours, theirs


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def print_health(connections, ours, theirs, duration):
    print(f"Load generator check: GET /v2/health/live on Forklift (2 workers), {connections} connections, "
          f"{len(ours)} alternating rounds of {duration} s each")
    print("| generator | req/s per round | median req/s | median generator CPU (cores) | CPU µs per request |")
    print("|---|---|---:|---:|---:|")
    for name, rounds in (("forklift bench", ours), ("wrk", theirs)):
        rps = median([r for r, _ in rounds])
        cpu = median([c for _, c in rounds])
        print(f"| {name} | {', '.join(f'{r:,.0f}' for r, _ in rounds)} | {rps:,.0f} | {cpu:.2f} | {1e6 * cpu / max(rps, 1e-9):.1f} |")
    ratios = [a / max(b, 1e-9) for (a, _), (b, _) in zip(ours, theirs)]
    print(f"forklift bench / wrk: {median([r for r, _ in ours]) / median([r for r, _ in theirs]):.2f}× (medians); "
          f"per round {', '.join(f'{r:.2f}' for r in ratios)}")
    print(flush=True)


def cells(step):
    lat = step.get("latency_ms") or {}
    side = step.get("server_side") or {}
    batch = side.get("mean_batch_size")
    errors = ", ".join(f"{e['count']} {e['kind']}" for e in step["errors"]) or "0"
    return (f"{step['requests_per_second']:,.0f} | {lat.get('p50', float('nan')):.2f} | {lat.get('p99', float('nan')):.2f} | "
            f"{errors} | {'-' if batch is None else f'{batch:.1f}'} | {100 * step['client_cpu_cores'] / CORES:.0f}%")


def print_model(name, result, top):
    for label, body, doc, wrk in (("forklift", "binary", result["forklift"], result["forklift_wrk"]),
                                  ("forklift", "JSON", result["forklift_json"], None),
                                  ("seed", "JSON", result["seed"], result["seed_wrk"])):
        for step in doc["steps"]:
            efficiency = step.get("efficiency")
            share = "" if efficiency is None or step.get("concurrency") != top else f"{100 * efficiency:.0f}%"
            cross = f"{wrk['rps']:,.0f}" if wrk and step.get("concurrency") == top else ""
            print(f"| {name} | {label} | {body} | {step['concurrency']} | {cells(step)} | {share} | {cross} |", flush=True)


def summary_row(name, result, top):
    def at_top(doc):
        return next(s for s in doc["steps"] if s.get("concurrency") == top)
    ours, ours_json, seed = at_top(result["forklift"]), at_top(result["forklift_json"]), at_top(result["seed"])
    compute = {c["batch"]: c["samples_per_second"] for c in result["forklift"].get("compute", {}).get("samples_per_second", [])}
    instances = result["forklift"].get("compute", {}).get("instances", 1)
    batch = ours.get("compute_batch")
    efficiency = ours.get("efficiency")
    ceiling = compute.get(batch, float("nan")) * instances
    c1_step = result["forklift"]["steps"][0]
    c1 = c1_step["latency_ms"]["p50"]
    c1_compute = (c1_step.get("server_side") or {}).get("mean_compute_ms")
    compute_cells = "- | -" if c1_compute is None else f"{c1_compute:.2f} | {c1 - c1_compute:.2f}"
    # Each request's latency minus its own compute time (Forklift's Server-Timing header).
    paired = (c1_step.get("latency_over_compute_ms") or {}).get("p50")
    compute_cells += " | -" if paired is None else f" | {paired:.2f}"
    floor = result["floor"]["steps"][0].get("latency_ms") or {}
    seed_rps = max(seed["requests_per_second"], 1e-9)
    print(f"| {name} | {ours['requests_per_second'] / seed_rps:.1f}× | {ours_json['requests_per_second'] / seed_rps:.1f}× | "
          f"{result['forklift_wrk']['rps'] / max(result['seed_wrk']['rps'], 1e-9):.1f}× | "
          f"{ours['samples_per_second']:,.0f} / {ceiling:,.0f} = {'-' if efficiency is None else f'{100 * efficiency:.0f}%'} | "
          f"{batch} × {instances} | {c1:.2f} | {compute_cells} | {floor.get('p50', float('nan')):.2f} |", flush=True)


def print_alternating(results, top):
    print()
    print(f"Alternating rounds at c={top}, binary tensors, both servers up: seed req/s, Forklift req/s and their ratio per round")
    print("| model | seed req/s | Forklift req/s | Forklift / seed per round | median ratio |")
    print("|---|---|---|---|---:|")
    for name, result in results.items():
        rounds = result["alternating"]
        ratios = [ours / max(theirs, 1e-9) for theirs, ours in rounds]
        print(f"| {name} | {', '.join(f'{t:,.0f}' for t, _ in rounds)} | {', '.join(f'{o:,.0f}' for _, o in rounds)} | "
              f"{', '.join(f'{r:.1f}×' for r in ratios)} | **{median(ratios):.1f}×** |", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--forklift", required=True)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--models", default="digits,wide_mlp,resnet18")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of the generator check")
    parser.add_argument("--ratio-rounds", type=int, default=3,
                        help="alternating rounds of the seed stack and Forklift at the top concurrency (0: none)")
    parser.add_argument("--skip-check", action="store_true", help="skip the generator-against-wrk check")
    parser.add_argument("--check-only", action="store_true", help="run only the generator-against-wrk check")
    parser.add_argument("--plot-dir", default=None, help="write bench-<model>.svg here (Forklift and seed on one picture)")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    top = int(args.concurrency.split(",")[-1])
    print(f"machine: {CORES} cores, load average {', '.join(f'{v:.1f}' for v in os.getloadavg())} at the start", flush=True)

    if not args.skip_check:
        print_health(*health_check(args), args.duration)
    if args.check_only:
        return

    print("Forklift: 2 workers × 1 compute thread; seed: gunicorn --preload -w 2, onnxruntime 1 thread; one sample per request. "
          f"Generator CPU share: forklift bench's CPU time over both cores. Compute-only share at c={top}: samples/s against "
          "the engine's in-process throughput at the mean batch × 2 workers.")
    print("| model | server | body | concurrency | req/s | p50 ms | p99 ms | errors | mean batch | generator CPU share "
          f"| share of compute-only | wrk req/s (c={top}) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    results = {}
    for name in args.models.split(","):
        results[name] = model_rows(name, args)
        print_model(name, results[name], top)
    print()
    print(f"| model | Forklift binary / seed at c={top} | Forklift JSON / seed | same by wrk "
          f"| c={top} samples/s / compute-only | compute batch × workers | Forklift c=1 p50 ms | c=1 compute ms "
          "| c=1 p50 − mean compute ms | c=1 p50 of (latency − own compute) ms "
          "| c=1 floor: raw-socket server, same body and idle gap, p50 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, result in results.items():
        summary_row(name, result, top)
    if args.ratio_rounds > 0:
        print_alternating(results, top)
    print(f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
