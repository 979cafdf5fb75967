"""Prints the table of scripts/bench-images from the JSON lines its runs wrote.

Each tool ran several rounds, interleaved with the others; a cell is the median over rounds of
each round's median images/s.
"""

import json
import os
import statistics
import sys

COLUMNS = [
    ("forklift", "Forklift"),
    ("forklift_full", "Forklift no-DCT"),
    ("pillow", "Pillow"),
    ("pillow_draft", "Pillow+draft"),
]


def load(folder, tool):
    rates = {}
    path = os.path.join(folder, tool + ".jsonl")
    if not os.path.exists(path):
        return rates
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            key = f"{record['width']}x{record['height']}"
            rates.setdefault(key, []).append(record["images_per_second"])
    return {key: statistics.median(values) for key, values in rates.items()}


def main():
    folder = sys.argv[1]
    results = {tool: load(folder, tool) for tool, _ in COLUMNS}
    sizes = sorted(results["forklift"], key=lambda key: int(key.split("x")[0]))
    header = f"{'JPEG':<11}" + "".join(f"{title:>17}" for _, title in COLUMNS) + f"{'vs Pillow':>11}{'vs +draft':>11}"
    print("decode + resize 256 + crop 224 + normalise, images/s on one thread (median of rounds)")
    print(header)
    for size in sizes:
        row = f"{size:<11}"
        for tool, _ in COLUMNS:
            value = results[tool].get(size)
            row += f"{value:>17.1f}" if value else f"{'-':>17}"
        forklift = results["forklift"][size]
        for peer in ("pillow", "pillow_draft"):
            value = results[peer].get(size)
            row += f"{forklift / value:>10.2f}x" if value else f"{'-':>11}"
        print(row)


if __name__ == "__main__":
    main()
