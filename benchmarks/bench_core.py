"""Speed and memory of the core steps (ingest, surface, graph, inference) against complex size.

Each size runs in its own process so that its peak memory (max RSS) is its own. Sizes are real decoys
from the shared data set plus larger complexes tiled from a real 8-chain decoy (copies 100 Å apart,
new chain IDs). Prints a table; targets from the issue: ~5,000 atoms ≤ 1 s median for all four steps
on 2 cores, graph building ~n log n, peak memory ≤ 4 GiB at 50,000 atoms.

    python benchmarks/bench_core.py [--data ../shared/data] [--threads 2] [--max-atoms 50000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL = {  # label -> path relative to the data folder
    "2X9A (bm5)": "bm5/2X9A/decoys/2X9A_unbound.pdb.gz",
    "1AK4 (haddock)": "haddock/1AK4/decoys/1AK4_ti5-itw_212w.pdb.gz",
    "1A2K (dockq)": "dockq_examples/1A2K/decoys/1A2K_model.pdb.gz",
    "model_native (dockq)": "dockq_examples/model_native/decoys/model_native_model.pdb.gz",
    "1EXB (dockq, 8 chains)": "dockq_examples/1EXB/decoys/1EXB_model.pdb.gz",
}
TILE_SOURCE = "dockq_examples/1EXB/decoys/1EXB_model.pdb.gz"


def tiled_complex(source: Path, copies: int, out: Path) -> None:
    """Write ``copies`` translated copies of ``source``'s ATOM records with fresh 2-letter chain IDs."""
    import numpy as np

    lines = [l for l in gzip.decompress(source.read_bytes()).decode().splitlines() if l.startswith("ATOM")]
    chains = sorted({l[21] for l in lines})
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    xyz = np.array([[float(l[30:38]), float(l[38:46]), float(l[46:54])] for l in lines])
    out_lines = []
    for copy in range(copies):
        shifted = xyz + np.array([copy % 3, copy // 3 % 3, copy // 9]) * 100.0
        for line, (x, y, z) in zip(lines, shifted):
            chain = letters[copy] + letters[chains.index(line[21])]
            out_lines.append(f"{line[:20]}{chain}{line[22:30]}{x:8.3f}{y:8.3f}{z:8.3f}{line[54:]}")
    out.write_text("\n".join(out_lines) + "\nEND\n")


def measure(path: str, repeats: int, threads: int) -> dict:
    """Run in a child process: seconds per step (median over repeats) and peak RSS."""
    import torch

    from egr.allocator import keep_freed_memory
    from egr.graph import featurize
    from egr.refine import refine_bundles
    from egr.structure import read_decoy
    from egr.surface import compute_surface, find_msms
    from egr.weights import load_model

    keep_freed_memory()  # as the egr CLI does at start
    torch.set_num_threads(threads)
    model, info = load_model()
    times: dict[str, list[float]] = {k: [] for k in ("ingest", "surface_msms", "surface_builtin", "graph", "inference")}
    has_msms = find_msms() is not None
    for _ in range(repeats + 1):  # the first round (cold caches, heap growth) is reported apart
        t0 = time.perf_counter()
        c, _ = read_decoy(path)
        t1 = time.perf_counter()
        surface = compute_surface(c.coords, c.elements, c.chain_ids, backend="builtin")
        t2 = time.perf_counter()
        if has_msms:
            surface = compute_surface(c.coords, c.elements, c.chain_ids, backend="msms")
        t3 = time.perf_counter()
        bundle = featurize("bench", c, surface.proximity, surface.backend)
        t4 = time.perf_counter()
        refine_bundles([bundle], model, gate_margin=info.gate_margin)  # the gate's second pass included
        t5 = time.perf_counter()
        for key, value in zip(times, (t1 - t0, t3 - t2 if has_msms else math.nan, t2 - t1, t4 - t3, t5 - t4)):
            times[key].append(value)
    medians = {k: statistics.median(v[1:]) for k, v in times.items()}
    # the first round in a fresh process, as the first decoy of a run sees it (imports excluded)
    surface_key = "surface_msms" if has_msms else "surface_builtin"
    cold = sum(times[k][0] for k in ("ingest", surface_key, "graph", "inference"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB → GiB
    return {"atoms": c.n_atoms, "edges": int(bundle.graph.edge_index.shape[1]), **medians, "cold_total": cold,
            "peak_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-atoms", type=int, default=50000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]), args.threads)))
        return
    cases = [(label, args.data / rel, 7) for label, rel in REAL.items() if (args.data / rel).exists()]
    tmp = Path(tempfile.mkdtemp(prefix="egr-bench-"))
    largest = max(2, math.ceil(args.max_atoms / 13308))  # copies of the 13,308-atom source
    for copies in sorted({2, largest}):
        path = tmp / f"tiled_{copies}.pdb"
        tiled_complex(args.data / TILE_SOURCE, copies, path)
        cases.append((f"1EXB x{copies} (tiled)", path, 3 if copies < largest else 1))

    header = (f"{'complex':<24}{'atoms':>8}{'ingest s':>10}{'MSMS s':>9}{'builtin s':>10}{'graph s':>9}"
              f"{'infer s':>9}{'total s':>9}{'cold s':>8}{'graph µs/(n·log2 n)':>21}{'peak GiB':>10}")
    print(f"threads: {args.threads}; total = ingest + surface (MSMS where found, else builtin) + graph + inference, "
          "median of the rounds after the first; cold = the first round's total in a fresh process")
    print(header)
    print("-" * len(header))
    for label, path, repeats in cases:
        done = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--child", str(path),
                               str(repeats)], capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        surface = r["surface_msms"] if not math.isnan(r["surface_msms"]) else r["surface_builtin"]
        total = r["ingest"] + surface + r["graph"] + r["inference"]
        per_nlogn = r["graph"] / (r["atoms"] * math.log2(r["atoms"])) * 1e6
        print(f"{label:<24}{r['atoms']:>8}{r['ingest']:>10.3f}{r['surface_msms']:>9.3f}{r['surface_builtin']:>10.3f}"
              f"{r['graph']:>9.3f}{r['inference']:>9.3f}{total:>9.3f}{r['cold_total']:>8.3f}{per_nlogn:>21.3f}"
              f"{r['peak_gib']:>10.2f}")


if __name__ == "__main__":
    main()
