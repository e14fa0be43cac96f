"""Leave-one-source-out comparison of passive rules and candidate cues, from the per-frame
measurements of ``benchmarks/liveness_features.py`` (the table in docs/liveness.md).

    .venv/bin/python benchmarks/liveness_loso.py /tmp/lv-feat

Every row is judged the same way: for each source, the operating point is fitted on the
other sources (every training source's attacks ≤ 5 % APCER; a logistic model for combined
cues, classes weighted per source) and applied to the left-out source. Sessions are windows of
10 frames (every 2nd frame, a new one every 10 frames; NUAA: 5 consecutive frames of one
capture), all frames scored (the shipped burst scores 6 of them). Cues are either combined with
the passive log-odds in a logistic model, or used as a gate (a burst whose cue is beyond the
training live sessions' 99th percentile is never live).
"""

from __future__ import annotations

import math
import re
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facekey.evaluation.liveness_calibration import threshold_at_apcer
from facekey.liveness.temporal import FrameObservation, burst_features
from facekey.vision.types import Box

Array = np.ndarray
NUAA = re.compile(r"^\d+-(\d+_\d+_\d+_\d+)_(\d+)$")
CLIP = 8.0


def logit(p: Array) -> Array:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.clip(np.log(p / (1 - p)), -CLIP, CLIP)


def load(folder: Path) -> dict[str, dict[str, dict[str, Array]]]:
    data: dict[str, dict[str, dict[str, Array]]] = defaultdict(dict)
    for path in sorted(folder.glob("*.npz")):
        source, side = path.stem.split("__")
        arrays = dict(np.load(path))
        arrays["type"] = np.array(side)
        data[source]["live" if side == "live" else "attack"] = arrays
    return data


FRAME_RULES: dict[str, Callable[[Array], Array]] = {
    "mean probability (pair v1)": lambda s: logit(s.mean(axis=1)),
    "min probability": lambda s: logit(s.min(axis=1)),
    "mean log-odds (pair v2, shipped)": lambda s: (logit(s[:, 0]) + logit(s[:, 1])) / 2,
    "4.0 crop model alone": lambda s: logit(s[:, 1]),
}


def windows(source: str, side: dict[str, Array]) -> list[list[int]]:
    if source == "nuaa":
        groups: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for index, name in enumerate(side["names"]):
            match = NUAA.match(str(name).rsplit(".", 1)[0])
            if match:
                groups[match.group(1)].append((int(match.group(2)), index))
        out = []
        for frames in groups.values():
            ordered = [i for _, i in sorted(frames)]
            out += [ordered[s : s + 5] for s in range(0, len(ordered) - 4, 5)]
        return out
    count = len(side["found"])
    return [list(range(s, s + 19, 2)) for s in range(0, count - 18, 10)]


def session_rows(source: str, side: dict[str, Array]) -> Array:
    """Per session: passive log-odds mean, log10 nonplanarity, log10 motion, edge, spectral,
    specular, chroma, flicker."""
    frame_odds = FRAME_RULES["mean log-odds (pair v2, shipped)"](side["scores"])
    rows = []
    for window in windows(source, side):
        seen = [i for i in window if side["found"][i]]
        if len(seen) < 3:
            rows.append([math.nan] * 8)
            continue
        observations = [
            FrameObservation(Box(*side["box"][i]), side["points"][i], 0.5) for i in seen
        ]
        features = burst_features(observations)
        rows.append(
            [
                float(np.mean(frame_odds[seen])),
                math.log10(max(features.nonplanarity, 1e-5)),
                math.log10(max(features.motion, 1e-5)),
                float(np.mean(np.log(side["edge"][seen] + 0.5))),
                float(np.mean(side["spectral"][seen])),
                float(np.mean(np.log(side["specular"][seen] + 1e-3))),
                float(np.mean(np.log(side["chroma"][seen] + 1e-2))),
                _flicker(side["face_luma"][seen], side["luma"][seen]),
            ]
        )
    return np.array(rows)


def _flicker(face: Array, whole: Array) -> float:
    def rough(values: Array) -> float:
        return float(np.mean(np.abs(np.diff(values.astype(float), 2))) / (np.mean(values) + 1))

    return rough(face) - rough(whole)


SESSION_COLUMNS = (
    "passive",
    "nonplanarity",
    "motion",
    "edge",
    "spectral",
    "specular",
    "chroma",
    "flicker",
)


def fit_logistic(x: Array, y: Array, weights: Array, l2: float = 1.0) -> Callable[[Array], Array]:
    mean, spread = x.mean(axis=0), x.std(axis=0) + 1e-6
    design = np.column_stack([np.ones(len(x)), (x - mean) / spread])
    beta = np.zeros(design.shape[1])
    penalty = l2 * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    for _ in range(30):
        p = 1 / (1 + np.exp(-np.clip(design @ beta, -30, 30)))
        gradient = design.T @ (weights * (p - y)) + penalty @ beta
        hessian = (design * (weights * p * (1 - p))[:, None]).T @ design + penalty
        beta -= np.linalg.solve(hessian, gradient)
    return lambda z: np.column_stack([np.ones(len(z)), (z - mean) / spread]) @ beta


def loso(
    table: dict[str, dict[str, Array]],
    columns: list[int],
    gates: list[int] | None = None,
) -> tuple[float, float, float, dict[str, tuple[int, int, int, int]]]:
    """(pooled BPCER, worst type APCER, worst source APCER, per source counts)."""
    results = {}
    for held_out in table:
        training = [s for s in table if s != held_out]
        score = _scorer(table, training, columns)
        threshold = threshold_at_apcer({s: score(table[s]["attack"]) for s in training}, 0.05)
        limits = [
            np.nanpercentile(np.concatenate([table[s]["live"][:, g] for s in training]), 99)
            for g in gates or []
        ]

        def accepted(rows: Array, limits: list[float] = limits) -> Array:
            ok = np.nan_to_num(score(rows), nan=-np.inf) >= threshold  # noqa: B023
            for g, limit in zip(gates or [], limits, strict=True):
                ok &= ~(rows[:, g] > limit)
            return ok

        live, attack = accepted(table[held_out]["live"]), accepted(table[held_out]["attack"])
        results[held_out] = (int((~live).sum()), live.size, int(attack.sum()), attack.size)
    return _pooled(table, results)


def _scorer(
    table: dict[str, dict[str, Array]], training: list[str], columns: list[int]
) -> Callable[[Array], Array]:
    if len(columns) == 1:
        return lambda rows: rows[:, columns[0]]
    xs, ys, ws = [], [], []
    for source in training:
        for side, label in (("live", 1.0), ("attack", 0.0)):
            rows = table[source][side][:, columns]
            rows = rows[~np.isnan(rows).any(axis=1)]
            xs.append(rows)
            ys.append(np.full(len(rows), label))
            ws.append(np.full(len(rows), 1.0 / max(len(rows), 1)))
    model = fit_logistic(np.vstack(xs), np.concatenate(ys), np.concatenate(ws) * 50)

    def score(rows: Array) -> Array:
        out = np.full(len(rows), np.nan)
        ok = ~np.isnan(rows[:, columns]).any(axis=1)
        out[ok] = model(rows[ok][:, columns])
        return out

    return score


def _pooled(
    table: dict[str, dict[str, Array]], results: dict[str, tuple[int, int, int, int]]
) -> tuple[float, float, float, dict[str, tuple[int, int, int, int]]]:
    rejected = sum(r[0] for r in results.values()) / sum(r[1] for r in results.values())
    per_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for source, result in results.items():
        kind = str(table[source]["type"])
        per_type[kind][0] += result[2]
        per_type[kind][1] += result[3]
    worst_type = max(a / n for a, n in per_type.values())
    worst_source = max(r[2] / r[3] for r in results.values())
    return rejected, worst_type, worst_source, results


def frame_table(
    data: dict[str, dict[str, dict[str, Array]]], rule: Callable[[Array], Array]
) -> dict[str, dict[str, Array]]:
    table: dict[str, dict[str, Array]] = {}
    for source, sides in data.items():
        table[source] = {"type": sides["attack"]["type"]}
        for side in ("live", "attack"):
            odds = rule(sides[side]["scores"])
            odds[~sides[side]["found"]] = np.nan
            table[source][side] = odds[:, None]
    return table


def line(
    name: str, result: tuple[float, float, float, dict[str, tuple[int, int, int, int]]]
) -> str:
    rejected, worst_type, worst_source, per_source = result
    sources = " ".join(
        f"{s} {100 * r[0] / r[1]:.0f}/{100 * r[2] / r[3]:.0f}" for s, r in per_source.items()
    )
    return (
        f"| {name} | {100 * rejected:.1f} % | {100 * worst_type:.1f} % | "
        f"{100 * worst_source:.1f} % | {sources} |"
    )


def main() -> None:
    data = load(Path(sys.argv[1]))
    header = "| rule | BPCER | worst type APCER | worst source APCER | per source BPCER/APCER % |"
    print("Frames\n\n" + header + "\n|---|---|---|---|---|")
    for name, rule in FRAME_RULES.items():
        print(line(name, loso(frame_table(data, rule), [0])))
    sessions: dict[str, dict[str, Array]] = {}
    for source, sides in data.items():
        sessions[source] = {"type": sides["attack"]["type"]}
        for side in ("live", "attack"):
            sessions[source][side] = session_rows(source, sides[side])
    print("\nSessions\n\n" + header + "\n|---|---|---|---|---|")
    print(line("passive log-odds mean (shipped)", loso(sessions, [0])))
    for index, cue in enumerate(SESSION_COLUMNS[1:], start=1):
        print(line(f"+ {cue} (logistic)", loso(sessions, [0, index])))
        print(line(f"+ {cue} (gate)", loso(sessions, [0], [index])))
    print(line("+ nonplanarity + motion (logistic)", loso(sessions, [0, 1, 2])))
    print(line("+ all cues (logistic)", loso(sessions, list(range(8)))))


if __name__ == "__main__":
    main()
