"""docs/scale.md from the results under out/scale (see gallery_scale.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

GIB = 2**30


def _load(out: Path, step: str) -> dict[str, Any] | None:
    for name in ("gallery.json", "result.json"):
        path = out / step / name
        if path.exists():
            loaded: dict[str, Any] = json.loads(path.read_text())
            return loaded
    return None


def _runs(out: Path) -> list[dict[str, Any]]:
    found = [_load(out, p.name) for p in sorted(out.glob("run-*"))]
    return sorted((r for r in found if r), key=lambda r: (r["dimension"], r["size"]))


def render(out: Path, machine: dict[str, Any]) -> str:
    runs = _runs(out)
    lines = [
        "# The gallery at scale: 100k and 1M templates per network",
        "",
        f"- machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"Python {machine['python']}; SQLite; FAISS on one thread per worker (the index build "
        "on every core)",
        "- command: `.venv/bin/python benchmarks/gallery_scale.py` (every step, then this page); "
        "the operator's verb is `facekey bench gallery --size N --out DIR` (`DIR/gallery.json`)",
        "- the machine is shared: each run records the load average (1, 5, 15 min) before and "
        "after it; the benchmarks ran under `nice -n 10`. Latency tails and start times on a "
        "loaded machine are pessimistic; rerun on a quiet one to compare with the targets.",
        "- gallery: every LFW person with two or more images enrolled with the first (real mates), "
        "the rest distractors drawn from a full-covariance Gaussian fitted to the same real "
        "embeddings and normalised (the hard case); probes: each mate's second image (genuine) "
        "and 1,000 people with a single image (strangers). 256-d: face-reid-0095 run with "
        "onnxruntime on chips aligned on dlib's five points (the engine is not in this tree "
        "yet); 128-d: dlib's ResNet. Templates went in through the bulk path "
        "(`facekey.flows.bulk_load`: transformed, sealed per subject, 2,000 per transaction).",
        "- recall@1: the worker's top subject equals exact search's top subject (brute force "
        "over all vectors).",
        "",
    ]
    lines += _reading(out, runs)
    lines += _runs_table(runs)
    lines += _targets(runs, out)
    lines += _identify(out)
    lines += _sweeps(out)
    lines += _milvus(out, runs)
    lines += _ten_million(runs)
    lines += _where(out)
    return "\n".join(lines) + "\n"


ROWS = [
    ("templates loaded per second (bulk path)", "bulk_load_per_s", ""),
    ("worker cold start, rebuilding from the database", "cold_start_rebuild_s", " s"),
    ("worker cold start from the snapshot, first on the machine", "cold_start_s", " s"),
    ("worker cold start from the snapshot, next workers (mapped)", "cold_start_mapped_s", " s"),
    ("search p50 (index, one thread)", "search_ms_p50", " ms"),
    ("search p99 (index, one thread)", "search_ms_p99", " ms"),
    ("search + database re-check p50", "search_and_recheck_ms_p50", " ms"),
    ("search + database re-check p99", "search_and_recheck_ms_p99", " ms"),
    ("recall@1 vs exact, all probes", "recall_at_1", ""),
    ("recall@1, genuine probes", "recall_at_1_genuine", ""),
    ("recall@1, strangers", "recall_at_1_strangers", ""),
    ("RSS per worker (two workers)", "rss_mb_per_worker", " MB"),
    ("PSS per worker (shared pages split)", "pss_mb_per_worker", " MB"),
    ("own memory per worker (anonymous: heap, delta layer)", "own_mb_per_worker", " MB"),
    ("index copy per machine (shared)", "shared_index_mb_per_machine", " MB"),
    ("machine total, two workers", "machine_mb_two_workers", " MB"),
    ("bytes per template (index + ids)", "bytes_per_template", ""),
    ("sealed snapshot on disk", "snapshot_mb", " MB"),
]


def _best(out: Path, step: str, index: str) -> dict[str, Any] | None:
    """The row of a sweep with the highest recall for one index kind."""
    result = _load(out, step)
    rows = [r for r in (result or {}).get("rows", []) if r["index"] == index]
    return max(rows, key=lambda r: r["recall_at_1"]) if rows else None


def _reading(out: Path, runs: list[dict[str, Any]]) -> list[str]:
    big = next((r for r in runs if r["size"] == 1_000_000 and r["dimension"] == 256), None)
    if big is None:
        return []
    widest = _best(out, "sweep-1000000-256-1", "one index")
    lines = [
        "## In short",
        "",
        f"- **Restarts in seconds** (met): a worker starts from the sealed snapshot in "
        f"{big['cold_start_s']} s at 1M when it is the machine's first (it decrypts the "
        f"snapshot into `/dev/shm`) and {big['cold_start_mapped_s']} s when the copy is "
        f"already there; rebuilding from the database took {big['cold_start_rebuild_s']} s "
        "on this loaded machine, once per machine, by one worker while the others wait.",
        f"- **One index copy per machine** (met): {big['shared_index_mb_per_machine']} MB "
        f"mapped by every worker, {big['bytes_per_template']} bytes per template (the "
        "vectors are 1,024 of them), each worker holding "
        f"{big['own_mb_per_worker']} MB of its own.",
        f"- **Recall on hard distractors** (not met): with HNSW M32 efConstruction 100 at 1M, "
        f"recall@1 against exact search is {big['recall_at_1']} at efSearch "
        f"{big['index']['ef_search']}"
        + (
            f" and {widest['recall_at_1']} at efSearch {widest['ef_search']} "
            f"(p50 {widest['p50_ms']} ms)"
            if widest
            else ""
        )
        + ". Distractors drawn from a Gaussian fitted to face-reid-0095 embeddings crowd far "
        "more than dlib's did in ../shared/MEASUREMENTS.md (0.974 at efSearch 256 at 1M): "
        "even genuine mates are missed. The sections below show what buys recall back (a "
        "denser graph, IVF-Flat, shards) and at what latency.",
        f"- **Search p99 ≤ 1 ms** (not met here): p50 {big['search_ms_p50']} ms and p99 "
        f"{big['search_ms_p99']} ms at 1M on one thread, on a machine whose load average was "
        "6–11 during the runs (the p99 is dominated by preemption; rerun on a quiet machine). "
        "At the efSearch needed for recall the p50 alone is over the target.",
        "- **Shards or a denser graph** (100k, below): two shards searched in two threads "
        "reach recall 0.99+ sooner than one index, but each query then takes both cores, "
        "which on this 2-core machine is the other worker's core: throughput halves. A denser "
        "graph (M48, efConstruction 200) reached 0.9926 at efSearch 256 on one core, against "
        "0.964 for the default graph and 0.9885 for two shards, for a build about 2.5 times "
        "longer (once per machine, thanks to snapshots). So shards stay off; the denser graph "
        "is the setting to measure at 1M next (`FACEKEY_HNSW_M=48`, "
        "`FACEKEY_HNSW_EF_CONSTRUCTION=200`); it was not built at 1M here (about 1.5 hours on "
        "this loaded machine).",
        "- **Bulk path**: templates are transformed, sealed per subject and written "
        f"2,000 per transaction at {big['bulk_load_per_s']} per second here "
        f"({big['bulk_load_s']} s for 1M); a load killed at any moment leaves whole chunks.",
        "",
    ]
    return lines


def _runs_table(runs: list[dict[str, Any]]) -> list[str]:
    if not runs:
        return ["No run yet.", ""]
    head = " | ".join(f"{r['size']:,} × {r['dimension']}-d" for r in runs)
    lines = ["## Measured", "", f"| measure | {head} |", "|---|" + "---|" * len(runs)]
    for label, key, unit in ROWS:
        cells = " | ".join(f"{r[key]}{unit}" if key in r else "–" for r in runs)
        lines.append(f"| {label} | {cells} |")
    loads = " | ".join(
        f"{r.get('load_average', {}).get('before', '?')} → "
        f"{r.get('load_average', {}).get('after', '?')}"
        for r in runs
    )
    dates = " | ".join(r["machine"]["date"] for r in runs)
    rerun = " | ".join(
        f"{r['workers_measured']['date']}, load {r['workers_measured']['load_average']['before']}"
        " → " + r["workers_measured"]["load_average"]["after"]
        if "workers_measured" in r
        else "with the run"
        for r in runs
    )
    lines += [
        f"| load average before → after (the run) | {loads} |",
        f"| date (the run) | {dates} |",
        f"| cold starts, search and memory measured | {rerun} |",
        "",
    ]
    lines += [
        "Both workers searched every probe before their memory was read. RSS counts every page "
        "a worker maps, the shared index included; PSS splits shared pages between the "
        "processes mapping them; own is the worker's anonymous memory (Python, database "
        "connections, the delta layer), what it alone holds. The machine holds the index once "
        "(`/dev/shm`), whatever the number of workers: machine total = own of each worker + "
        "one index copy. The worker here is `facekey.evaluation.gallery_worker` (storage and "
        "gallery as in a server worker, no face engine: add the engine's models, about "
        "100–200 MB, to each worker's own memory). The database re-check (subject active, "
        "consent) is two SQLite queries per search here, on a database of 1M subjects on a "
        "loaded machine: at 100k on a quieter machine docs/server.md measured 2–3.5 ms for "
        "search and re-check together.",
        "",
    ]
    return lines


def _targets(runs: list[dict[str, Any]], out: Path) -> list[str]:
    big = next((r for r in runs if r["size"] == 1_000_000 and r["dimension"] == 256), None)
    if big is None:
        return []
    found = [_load(out, p.name) for p in sorted(out.glob("identify-*"))]
    measured = [r for r in found if r is not None]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    rows = [
        ("search p99 ≤ 1 ms", f"{big['search_ms_p99']} ms", big["search_ms_p99"] <= 1),
        ("recall@1 ≥ 0.995 vs exact", str(big["recall_at_1"]), big["recall_at_1"] >= 0.995),
        (
            "cold start from a snapshot ≤ 20 s",
            f"{big['cold_start_s']} s",
            big["cold_start_s"] <= 20,
        ),
        (
            "one index copy per machine",
            f"{big['shared_index_mb_per_machine']} MB shared, "
            f"{big['own_mb_per_worker']} MB of its own per worker",
            big["own_mb_per_worker"] < big["shared_index_mb_per_machine"],
        ),
    ]
    for r in measured:
        rows.append(
            (
                "whole identify p50 ≤ 25 ms with an image",
                f"{r['identify_ms']['p50']} ms at {r['size']:,} × {r['dimension']}-d "
                f"({r['engine']}; 1M not measured with an image)",
                r["identify_ms"]["p50"] <= 25,
            )
        )
    head = ["## Targets at 1,000,000 templates (256-d)", "", "| target | measured | |"]
    lines = [*head, "|---|---|---|"]
    lines += [f"| {t} | {m} | {verdict(ok)} |" for t, m, ok in rows]
    lines += [
        "| 10M on one 24 GiB machine | extrapolated from the 1M run (below) | see below |",
        "| nothing lost on kill -9 (snapshot writing, bulk load, erasure) | "
        "tests/gallery/test_snapshot.py, tests/flows/test_kill_9.py (SQLite and PostgreSQL) "
        "| met |",
    ]
    return [*lines, ""]


def _identify(out: Path) -> list[str]:
    lines: list[str] = []
    for path in sorted(out.glob("identify-*")):
        r = _load(out, path.name)
        if r is None:
            continue
        lines += [
            f"## Whole `POST /v1/identify` with a 250×250 JPEG, {r['size']:,} templates "
            f"({r['engine']}, {r['dimension']}-d)",
            "",
            f"`facekey serve`, one worker, {r['requests']} requests, one at a time, the gallery "
            "bulk-loaded (real LFW mates, hard distractors): p50 "
            f"**{r['identify_ms']['p50']} ms**, p99 {r['identify_ms']['p99']} ms (target: p50 "
            f"≤ 25 ms). The server was ready after {r['serve_ready_s_rebuild']} s when it had to "
            f"rebuild the gallery and {r['serve_ready_s_snapshot']} s from the snapshot "
            "(engine load included). Load average before → after: "
            f"{r['load_average']['before']} → {r['load_average']['after']}.",
            "",
            "The face pipeline's share (decode, detect, align, embed) is in "
            "[benchmarks.md](benchmarks.md); the search part is in the tables here.",
            "",
        ]
    return lines


def _sweeps(out: Path) -> list[str]:
    lines: list[str] = []
    intros = {
        "sweep": (
            "One index or shards",
            "The same templates (the run's snapshot), one HNSW index (M32, efConstruction 100) "
            "against the same split into shards searched in parallel threads and merged; one "
            "probe at a time.",
        ),
        "alternatives": (
            "Other index kinds",
            "The same templates and probes in a denser HNSW graph and in IVF-Flat (the "
            "parameter column is efSearch or nprobe), to show where recall could come from.",
        ),
    }
    paths = [*sorted(out.glob("sweep-*")), *sorted(out.glob("alternatives-*"))]
    for path in paths:
        result = _load(out, path.name)
        if result is None:
            continue
        title, intro = intros[path.name.split("-")[0]]
        if all(r["index"] == "one index" for r in result["rows"]):
            title, intro = "efSearch", "The run's snapshot, one probe at a time."
        lines += [
            f"## {title}, {result['size']:,} × {result['dimension']}-d "
            f"(load average {result['load_average']})",
            "",
            intro,
            "",
            "| index | efSearch / nprobe | p50 ms | p99 ms | recall@1 | genuine | strangers |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['index']} | {r['ef_search']} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['recall_at_1']} | {r['recall_genuine']} | {r['recall_strangers']} |"
            for r in result["rows"]
        ]
        lines += ["", *_equal_recall(result["rows"]), ""]
    return lines


def _equal_recall(rows: list[dict[str, Any]]) -> list[str]:
    """At each recall level: the fastest (p50) setting of each index kind that reaches it."""
    kinds = list(dict.fromkeys(r["index"] for r in rows))
    if len(kinds) < 2:
        return []
    lines = [
        "At equal recall (the fastest setting of each that reaches it, p50 / p99 ms):",
        "",
        "| recall@1 ≥ | " + " | ".join(kinds) + " |",
        "|---|" + "---|" * len(kinds),
    ]
    for level in (0.95, 0.98, 0.99, 0.995):
        cells = []
        for kind in kinds:
            ok = [r for r in rows if r["index"] == kind and r["recall_at_1"] >= level]
            best = min(ok, key=lambda r: r["p50_ms"]) if ok else None
            cells.append(
                f"efSearch {best['ef_search']}: {best['p50_ms']} / {best['p99_ms']}"
                if best
                else "not reached"
            )
        lines.append(f"| {level} | " + " | ".join(cells) + " |")
    return lines


def _milvus(out: Path, runs: list[dict[str, Any]]) -> list[str]:
    if not any(_load(out, p.name) for p in out.glob("milvus-*")):
        return [
            "## Milvus (milvus-lite) beside FAISS, 100,000 × 256-d",
            "",
            "Not measured yet: in this session the step (`benchmarks/gallery_scale.py --only "
            "milvus-100000-256`: 100k upserts, then a quarter of the probes) had not finished "
            "after 30 minutes on the loaded machine, twice, whereas FAISS answered the same "
            "probes in milliseconds. The backend's contract is tested against milvus-lite "
            "(tests/gallery/test_backends.py).",
            "",
        ]
    lines: list[str] = []
    for path in sorted(out.glob("milvus-*")):
        m = _load(out, path.name)
        if m is None:
            continue
        faiss_run = next(
            (r for r in runs if r["size"] == m["size"] and r["dimension"] == m["dimension"]), None
        )
        lines += [
            f"## Milvus (milvus-lite) beside FAISS, {m['size']:,} × {m['dimension']}-d",
            "",
            "| backend | load | search p50 | search p99 | recall@1 |",
            "|---|---|---|---|---|",
            f"| {m['index']} | {m['load_s']} s | {m['p50_ms']} ms | {m['p99_ms']} ms | "
            f"{m['recall_at_1']} |",
        ]
        if faiss_run is not None:
            lines.append(
                f"| FAISS embedded (snapshot, mapped) | {faiss_run['bulk_load_s']} s bulk load "
                f"+ {faiss_run['cold_start_rebuild_s']} s first build | "
                f"{faiss_run['search_ms_p50']} ms | {faiss_run['search_ms_p99']} ms | "
                f"{faiss_run['recall_at_1']} |"
            )
        lines += [
            "",
            f"Load average during the Milvus run: {m['load_average']}. milvus-lite answers "
            "over gRPC in the same process group; a Milvus server adds a network round trip.",
            "",
        ]
    return lines


def _ten_million(runs: list[dict[str, Any]]) -> list[str]:
    big = next((r for r in runs if r["size"] == 1_000_000 and r["dimension"] == 256), None)
    if big is None:
        return []
    per = big["bytes_per_template"]
    index_gib = per * 10_000_000 / GIB
    private = big["own_mb_per_worker"] / 1024
    scale = 10 * math.log(10_000_000) / math.log(1_000_000)
    return [
        "## 10,000,000 templates on one 24 GiB machine (a measured extrapolation)",
        "",
        f"Not built here: extrapolated from the 1M run. Memory grows linearly: {per} bytes per "
        f"template gives {index_gib:.1f} GiB for the index, held once in `/dev/shm`, plus "
        f"{private:.2f} GiB of its own per worker; two workers and the index take about "
        f"{index_gib + 2 * private:.1f} GiB of 24 GiB. Rebuilding (decrypting every template and "
        f"building HNSW) grows as N log N: about {scale:.1f} × the 1M rebuild "
        f"({big['cold_start_rebuild_s']} s), i.e. "
        f"{big['cold_start_rebuild_s'] * scale / 60:.0f} minutes, once per machine, after which "
        "workers start from the snapshot (decrypting it is linear: about 10 × the 1M cold "
        f"start, {10 * big['cold_start_s']:.0f} s, for the first worker; mapping it, seconds). "
        "HNSW search cost grows roughly with log N at the same efSearch, but recall at the same "
        "efSearch falls (more distractors crowd each probe; compare 100k and 1M above), so "
        "holding recall costs a larger efSearch or a denser graph. Feasible on "
        "memory; the rebuild is the cost to plan for. A 24 GiB machine does not fit 10M "
        "templates twice, so the snapshot merge (which copies the index) needs the headroom "
        "of a second machine or runs with no workers on the machine.",
        "",
    ]


def _where(out: Path) -> list[str]:
    return [
        "## Where each backend belongs",
        "",
        "- **FAISS embedded (the default)**: one machine per network's gallery up to what its "
        "memory holds (about 10M 256-d templates on 24 GiB), the lowest latency (no network "
        "hop), sealed snapshots under facekey's own keys, start in seconds. Scale out by adding "
        "identical machines behind the load balancer (each holds the whole gallery).",
        "- **Milvus**: when one network's gallery outgrows one machine's memory, or when "
        "several services must share one vector store. Vectors live in the Milvus cluster "
        "(sharded and replicated by Milvus), so API machines hold none; each search pays a "
        "network round trip, and encryption at rest is Milvus's, not facekey's. milvus-lite is "
        "for trials and tests only.",
        "",
    ]
