"""Pipeline speed against face_recognition; the same as `facekey bench`, as a script.

    .venv/bin/python benchmarks/bench_pipeline.py [--images DIR] [--limit N]

Writes out/bench/bench.json and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facekey.evaluation.bench import run_bench

DEFAULT_IMAGES = Path(__file__).resolve().parents[1].parent / "shared/data/lfw-view1/images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    args = parser.parse_args()
    result = run_bench(
        images=args.images, out_dir=args.out, limit=args.limit, docs=Path("docs/benchmarks.md")
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
