"""OpenMM relax with and without a nonbonded cutoff: time on a ~20,000-heavy-atom complex, ΔDockQ on
small decoys, reproducibility of reruns and the cost of the refiner timeout's child process.

Figures for benchmarks/README.md, "OpenMM relax". Four parts, each printed as a Markdown table:

1. large complexes: the real 8-chain 1EXB decoy (13,308 heavy atoms) and a 19,962-heavy-atom complex
   built from it (1EXB plus a second copy of its chains A, B, E and F, 95 Å above it along z, new chain
   IDs), relaxed with the default 1.0 nm cutoff and, within ``--bound`` seconds (the refiner timeout
   kills it there; printed as "> N"), without one;
2. small decoys: the 5 bundled decoys (tests/data/decoys, natives in tests/data/natives) and 5 more
   from the shared data set, relaxed with and without the cutoff, each output scored with DockQ
   against the native under the decoy's chain mapping (egr.compare.write_score_file);
   ΔDockQ = DockQ(relaxed) − DockQ(decoy);
3. three reruns of one decoy, each in a fresh process (the refiner timeout's child), with and without
   ``deterministic``: energy before minimisation and the output's SHA-256;
4. the refiner timeout's overhead: one small decoy in this process and in a child process.

    python benchmarks/openmm_cutoff.py [--data ../shared/data] [--bound 600] [--skip-large]

CPU threads: OpenMM's ``OPENMM_CPU_THREADS`` (the deterministic default uses one thread regardless).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TILE_SOURCE = "dockq_examples/1EXB/decoys/1EXB_model.pdb.gz"
#: chains of 1EXB copied once more (two 2,557-atom and two 770-atom chains: 6,654 heavy atoms)
TILE_CHAINS = {"A": "I", "B": "J", "E": "K", "F": "L"}
TILE_SHIFT_A = 95.0  # along z: 1EXB spans 85 Å in z, so the copy sits ~10 Å clear of it
BUNDLED = ["1AK4_ti5-itw_212w", "1EFN_unbound", "2X9A_unbound", "kq_1kq1_pdb1_1_ATTRACT", "kq_1kq1_pdb1_1_HDOCK"]
SHARED = {  # decoy id -> (decoy, native) relative to the data folder; incorrect to high, 3 sets
    "1AY7_106w": ("haddock/1AY7/decoys/1AY7_106w.pdb.gz", "haddock/1AY7/native/1AY7.pdb.gz"),
    "aq_2aqp_pdb1_0_ATTRACT": ("dips/aq_2aqp_pdb1_0/decoys/aq_2aqp_pdb1_0_ATTRACT.pdb.gz",
                               "dips/aq_2aqp_pdb1_0/native/aq_2aqp_pdb1_0.pdb.gz"),
    "aq_2aqp_pdb1_0_HDOCK": ("dips/aq_2aqp_pdb1_0/decoys/aq_2aqp_pdb1_0_HDOCK.pdb.gz",
                             "dips/aq_2aqp_pdb1_0/native/aq_2aqp_pdb1_0.pdb.gz"),
    "1FFW_unbound": ("bm5/1FFW/decoys/1FFW_unbound.pdb.gz", "bm5/1FFW/native/1FFW.pdb.gz"),
    "1J2J_unbound": ("bm5/1J2J/decoys/1J2J_unbound.pdb.gz", "bm5/1J2J/native/1J2J.pdb.gz"),
}
RERUN_DECOY = "kq_1kq1_pdb1_1_HDOCK"


def tiled_complex(source: Path, out: Path) -> None:
    """Write ``source``'s ATOM records plus a copy of chains :data:`TILE_CHAINS` shifted along z."""
    lines = [line for line in gzip.decompress(source.read_bytes()).decode().splitlines() if line.startswith("ATOM")]
    copies = []
    for line in lines:
        if line[21] in TILE_CHAINS:
            z = float(line[46:54]) + TILE_SHIFT_A
            copies.append(f"{line[:21]}{TILE_CHAINS[line[21]]}{line[22:46]}{z:8.3f}{line[54:]}")
    out.write_text("\n".join(lines + copies) + "\nEND\n")


def heavy_atoms(path: Path) -> int:
    """Heavy atoms the refiner keeps (egr.baselines.common.read_decoy)."""
    from egr.baselines.common import read_decoy

    return read_decoy(path)[0].n_atoms


def relax(decoy: Path, out: Path, bound_s: float | None = None, **options: object) -> dict:
    """One ``run_baseline('openmm', ...)``; with ``bound_s``, in a child process killed after that long."""
    from egr.baselines import run_baseline

    result = run_baseline("openmm", decoy, out, refiner_timeout_s=bound_s, **options)
    return {"status": result.status, "reason": result.reason, "seconds": result.seconds, **result.details}


def large(data: Path, tmp: Path, bound_s: float) -> None:
    """Part 1: the two large complexes with the cutoff, the tiled one also without (bounded)."""
    tiled = tmp / "1EXB_x1.5.pdb"
    tiled_complex(data / TILE_SOURCE, tiled)
    default, two_threads, no_cutoff = {}, {"deterministic": False}, {"cutoff_nm": None}
    cases = [("1EXB (dockq, 8 chains)", data / TILE_SOURCE, [default]),
             ("1EXB ×1.5 (12 chains)", tiled, [default, two_threads, no_cutoff])]
    print("| complex | heavy atoms | atoms with H | nonbonded | total s | prepare s | minimise s "
          "| energy before → after kJ/mol | RMSD Å |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, path, variants in cases:
        n_heavy = heavy_atoms(path)
        for options in variants:
            row = relax(path, tmp / "large_openmm.pdb", bound_s, **options)
            method = "NoCutoff" if "cutoff_nm" in options else "cutoff 1.0 nm"
            method += ", OPENMM_CPU_THREADS threads" if options.get("deterministic") is False else ", 1 thread"
            if row["status"] != "ok":
                print(f"| {label} | {n_heavy:,} | — | {method} | > {bound_s:g} ({row['reason']}) | | | | |", flush=True)
                continue
            print(f"| {label} | {n_heavy:,} | {row['n_atoms_system']:,} | {method} | {row['seconds']:.1f} "
                  f"| {row['prepare_s']:.1f} | {row['minimise_s']:.1f} | {row['energy_before_kj_mol']:,.0f} → "
                  f"{row['energy_after_kj_mol']:,.0f} | {row['rmsd_a']:.3f} |", flush=True)


def small_cases(data: Path) -> list[tuple[str, Path, Path]]:
    """(id, decoy, native) of the 10 small decoys."""
    from egr.compare import match_native, native_index

    natives = native_index(REPO / "tests/data/natives")
    cases = [(ident, REPO / "tests/data/decoys" / f"{ident}.pdb.gz", match_native(ident, natives)) for ident in BUNDLED]
    cases += [(ident, data / decoy, data / native) for ident, (decoy, native) in SHARED.items()]
    return cases


def small(data: Path, tmp: Path) -> None:
    """Part 2: ΔDockQ with and without the cutoff on the small decoys."""
    from egr.baselines.common import read_decoy
    from egr.compare import MAPPING_DECOY, write_score_file

    print("| decoy | heavy atoms | DockQ decoy | ΔDockQ cutoff 1 nm | ΔDockQ NoCutoff | minimise s cutoff / NoCutoff "
          "| RMSD Å cutoff / NoCutoff | cutoff vs NoCutoff RMSD Å |")
    print("|---|---|---|---|---|---|---|---|")
    deltas: dict[str, list[float]] = {"cut": [], "nocut": []}
    for ident, decoy, native in small_cases(data):
        base = write_score_file(decoy, native, tmp / f"{ident}_decoy.json", reuse=False)
        rows, scores, xyz = {}, {}, {}
        for key, cutoff in (("cut", 1.0), ("nocut", None)):
            out = tmp / key / f"{ident}_openmm.pdb"
            rows[key] = relax(decoy, out, cutoff_nm=cutoff)
            report = write_score_file(out, native, tmp / f"{ident}_{key}.json", False, base["mapping"], MAPPING_DECOY)
            scores[key] = report["global_dockq"] - base["global_dockq"]
            deltas[key].append(scores[key])
            xyz[key] = read_decoy(out)[0].coords
        between = float(np.sqrt(((xyz["cut"] - xyz["nocut"]) ** 2).sum(axis=1).mean()))
        print(f"| {ident} | {heavy_atoms(decoy):,} | {base['global_dockq']:.3f} | {scores['cut']:+.4f} | {scores['nocut']:+.4f} "
              f"| {rows['cut']['minimise_s']:.1f} / {rows['nocut']['minimise_s']:.1f} "
              f"| {rows['cut']['rmsd_a']:.3f} / {rows['nocut']['rmsd_a']:.3f} | {between:.3f} |", flush=True)
    print(f"| mean | | | {statistics.mean(deltas['cut']):+.4f} | {statistics.mean(deltas['nocut']):+.4f} | | | |")
    worse = [a - b for a, b in zip(deltas["cut"], deltas["nocut"])]
    print(f"\nΔDockQ(cutoff) − ΔDockQ(NoCutoff): min {min(worse):+.4f}, max {max(worse):+.4f}")


def reruns(tmp: Path) -> None:
    """Part 3: three fresh-process reruns of one decoy, deterministic and not."""
    decoy = REPO / "tests/data/decoys" / f"{RERUN_DECOY}.pdb.gz"
    print(f"| {RERUN_DECOY} | run | energy before kJ/mol | energy after kJ/mol | output SHA-256 |")
    print("|---|---|---|---|---|")
    for deterministic in (True, False):
        for run in range(3):
            out = tmp / "rerun" / f"{RERUN_DECOY}_openmm.pdb"
            row = relax(decoy, out, 600.0, deterministic=deterministic)
            digest = hashlib.sha256(out.read_bytes()).hexdigest()[:12]
            print(f"| deterministic={deterministic} | {run + 1} | {row['energy_before_kj_mol']:,.2f} "
                  f"| {row['energy_after_kj_mol']:,.2f} | {digest} |", flush=True)


def overhead(tmp: Path) -> None:
    """Part 4: wall time of one small decoy in this process and in the timeout's child process."""
    decoy = REPO / "tests/data/decoys" / f"{RERUN_DECOY}.pdb.gz"
    relax(decoy, tmp / "warm_openmm.pdb")  # imports and force-field files loaded once here
    here, child = [], []
    for _ in range(3):
        start = time.perf_counter()
        relax(decoy, tmp / "here_openmm.pdb")
        here.append(time.perf_counter() - start)
        start = time.perf_counter()
        relax(decoy, tmp / "child_openmm.pdb", 600.0)
        child.append(time.perf_counter() - start)
    print(f"{RERUN_DECOY}: in this process {statistics.median(here):.2f} s, in a child process (refiner timeout) "
          f"{statistics.median(child):.2f} s (medians of 3)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--bound", type=float, default=600.0, help="seconds allowed to the run without a cutoff")
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if not args.skip_large:
            print("## Large complexes\n")
            large(args.data, tmp, args.bound)
        print("\n## Small decoys\n")
        small(args.data, tmp)
        print("\n## Reruns in fresh processes\n")
        reruns(tmp)
        print("\n## Refiner timeout overhead\n")
        overhead(tmp)


if __name__ == "__main__":  # the refiner timeout's child processes are spawned: they import this file
    main()
