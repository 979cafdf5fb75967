"""Prints scripts/bench-engine's table from the JSON files it collected in one folder.

Usage: bench_engine_table.py FOLDER [MODEL,MODEL...]  (default: every model measured there)
"""

import json
import pathlib
import re
import sys

folder = pathlib.Path(sys.argv[1])
ORDER = ["digits", "wide_mlp", "resnet18", "efficientnet_lite0"]
if len(sys.argv) > 2:
    models = [m for m in sys.argv[2].split(",") if m]
else:
    measured = {p.name[len("flops_"):-len(".txt")] for p in folder.glob("flops_*.txt")}
    models = [m for m in ORDER if m in measured] + sorted(measured - set(ORDER))


def load(name):
    return json.loads((folder / name).read_text())


sgemm = {}
for threads in (1, 2):
    text = (folder / f"sgemm_t{threads}.txt").read_text()
    sgemm[threads] = float(re.search(r"([\d.]+) GFLOP/s", text).group(1))

print("| model | threads | batch | Forklift samples/s | onnxruntime samples/s | Forklift / ORT | Forklift GFLOP/s | share of sgemm |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for model in models:
    flops_text = (folder / f"flops_{model}.txt").read_text().strip()
    flops = int(flops_text) if flops_text.isdigit() else None
    for threads in (1, 2):
        ours = {r["batch"]: r["samples_per_second"] for r in load(f"forklift_{model}_t{threads}.json")["results"]}
        theirs = {int(b): v for b, v in load(f"ort_{model}_t{threads}.json")["batch"].items()}
        for batch in sorted(ours):
            gflops = flops * ours[batch] / 1e9 if flops else None
            share = f"{100 * gflops / sgemm[threads]:.0f}%" if gflops else "-"
            print(
                f"| {model} | {threads} | {batch} | {ours[batch]:,.0f} | {theirs[batch]:,.0f} | "
                f"{ours[batch] / theirs[batch]:.2f}× | {gflops:.1f} | {share} |" if gflops else
                f"| {model} | {threads} | {batch} | {ours[batch]:,.0f} | {theirs[batch]:,.0f} | "
                f"{ours[batch] / theirs[batch]:.2f}× | - | - |"
            )
print()
for threads in (1, 2):
    print(f"cblas_sgemm 2048³, {threads} thread(s): {sgemm[threads]:.1f} GFLOP/s")
