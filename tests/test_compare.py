"""Tests of egr.compare: every structure of a decoy is scored under the decoy's best chain mapping.

Homodimers are where it matters. DockQ's search keeps the mapping with the higher DockQ; for a wrong
pose the two mappings of a homodimer can be nearly tied while their LRMSDs differ by several Å, so a
structure that moved 0.2 Å can be scored under the other mapping and show a ΔLRMSD of −6 Å. Under one
fixed mapping, the interface RMSD after superposition cannot change by more than the atoms moved
(triangle inequality of the RMSD); the ligand RMSD, superposed on the receptor, can exceed that by a
lever arm of a receptor move, which the tolerance covers. Data: tests/data/SOURCES.md.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import gemmi
import numpy as np
import pytest

from egr.baselines import METHODS as BASELINE_METHODS
from egr.baselines import run_baseline
from egr.compare import (
    MAPPING_DECOY,
    MAPPING_OWN_SEARCH,
    MAPPING_SEARCH,
    method_of,
    score_decoy,
    structure_file,
    write_score_file,
)
from egr.metrics import dockq_scores
from egr.pipeline import ingest_step
from egr.summary import score_columns

DATA = Path(__file__).parent / "data"
KQ_ID = "kq_1kq1_pdb1_1_ATTRACT"  # DockQ 0.0378 with AH:HA, 0.0367 with HA:HA; LRMSD 35.1 vs 29.1 Å
KQ_DECOY = DATA / "decoys" / f"{KQ_ID}.pdb.gz"
KQ_NATIVE = DATA / "natives" / "kq_1kq1_pdb1_1.pdb.gz"
B2_ID = "b2_2b2e_pdb1_0_EQUIDOCK_NO_CLASHES"  # two identical 129-residue chains; LRMSD 46.6 vs 52.5 Å
B2_DECOY = DATA / "pairs" / "dips" / "b2_2b2e_pdb1_0" / "decoys" / f"{B2_ID}.pdb.gz"
B2_NATIVE = DATA / "pairs" / "dips" / "b2_2b2e_pdb1_0" / "native" / "b2_2b2e_pdb1_0.pdb.gz"
HDOCK = DATA / "decoys" / "kq_1kq1_pdb1_1_HDOCK.pdb.gz"  # DockQ 0.854 with AH:HA, 0.040 with HA:HA
# Chain A of the kq decoy moved by this much (Å) is scored under HA:HA by a search of its own.
KQ_FLIPPING_SHIFT = (0.0, -0.2, 0.0)
TOLERANCE = 0.05  # Å


def _clean(decoy: Path, decoy_id: str, outdir: Path) -> Path:
    """The cleaned decoy, as egr run writes it (``<outdir>/<id>/<id>_clean.pdb``)."""
    ingest_step(decoy, outdir, decoy_id)
    return structure_file(outdir / decoy_id, decoy_id, "decoy")


def _shift_chain(source: Path, target: Path, chain: str, shift: tuple[float, float, float]) -> Path:
    """``source`` with every atom of ``chain`` translated by ``shift`` (Å): a small rigid perturbation."""
    structure = gemmi.read_structure(str(source))
    for atom in (a for c in structure[0] if c.name == chain for r in c for a in r):
        atom.pos = atom.pos + gemmi.Position(*shift)
    structure.write_pdb(str(target))
    return target


def _max_ca_shift(a: Path, b: Path) -> float:
    """The largest distance (Å) between the Cα of the same residue in two structures (no superposition)."""

    def ca(path: Path) -> dict[tuple[str, str], np.ndarray]:
        model = gemmi.read_structure(str(path))[0]
        return {(c.name, str(r.seqid)): np.array(r["CA"][0].pos.tolist()) for c in model for r in c if r.find_atom("CA", "*")}

    first, second = ca(a), ca(b)
    assert first.keys() == second.keys()
    return max(float(np.linalg.norm(first[k] - second[k])) for k in first)


def _openmm(clean: Path, decoy_id: str) -> tuple[str, Path]:
    result = run_baseline("openmm", clean, structure_file(clean.parent, decoy_id, "openmm"))
    if result.status != "ok":
        pytest.skip(f"OpenMM relax {result.status}: {result.reason}")
    return "openmm", Path(result.output)


def _shifted(clean: Path, decoy_id: str, shift: tuple[float, float, float]) -> tuple[str, Path]:
    # In the place of EGR's refined structure: the rigid move stands in for a refiner's output.
    return "egr", _shift_chain(clean, structure_file(clean.parent, decoy_id, "egr"), "A", shift)


CASES = {
    "kq_1kq1-openmm": (KQ_DECOY, KQ_ID, KQ_NATIVE, _openmm),
    "kq_1kq1-shift": (KQ_DECOY, KQ_ID, KQ_NATIVE, lambda c, i: _shifted(c, i, KQ_FLIPPING_SHIFT)),
    "b2_2b2e-shift": (B2_DECOY, B2_ID, B2_NATIVE, lambda c, i: _shifted(c, i, (0.3, -0.3, 0.2))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_homodimer_deltas_are_bounded_by_how_far_the_atoms_moved(case: str, tmp_path: Path) -> None:
    decoy, decoy_id, native, refine = CASES[case]
    clean = _clean(decoy, decoy_id, tmp_path)
    method, refined = refine(clean, decoy_id)
    reports = score_decoy(decoy_id, {"decoy": clean, method: refined}, native, clean.parent)

    assert reports["decoy"]["mapping_source"] == MAPPING_SEARCH
    assert reports[method]["mapping"] == reports["decoy"]["mapping"]
    assert reports[method]["mapping_source"] == MAPPING_DECOY
    moved = _max_ca_shift(clean, refined)
    columns = score_columns(clean.parent, decoy_id)  # the summary.tsv cells
    for metric in ("lrmsd", "irmsd"):
        assert abs(columns[f"delta_{metric}_{method}"]) <= moved + TOLERANCE, (metric, moved)


def test_the_kq_shift_flips_an_independent_search(tmp_path: Path) -> None:
    """What the old rule (one search per structure) reported for the shifted kq decoy: another mapping
    and a ΔLRMSD far beyond the 0.2 Å move, so the bound test above fails on it."""
    clean = _clean(KQ_DECOY, KQ_ID, tmp_path)
    _, shifted = _shifted(clean, KQ_ID, KQ_FLIPPING_SHIFT)
    alone, decoy = dockq_scores(shifted, KQ_NATIVE), dockq_scores(clean, KQ_NATIVE)
    assert (decoy["mapping"], alone["mapping"]) == ("AH:HA", "HA:HA")
    delta = alone["interfaces"]["HA"]["lrmsd"] - decoy["interfaces"]["HA"]["lrmsd"]
    assert delta < -5 and _max_ca_shift(clean, shifted) == pytest.approx(0.2, abs=1e-3)


def test_a_score_file_is_reused_only_under_the_same_mapping(tmp_path: Path) -> None:
    out = tmp_path / "x_egr_dockq.json"
    first = write_score_file(HDOCK, KQ_NATIVE, out, mapping="AH:HA", mapping_source=MAPPING_DECOY)
    out.write_text(json.dumps({**first, "global_dockq": -1.0}))  # marks the file, so a reuse shows
    assert write_score_file(HDOCK, KQ_NATIVE, out, mapping="AH:HA", mapping_source=MAPPING_DECOY)["global_dockq"] == -1.0

    other = write_score_file(HDOCK, KQ_NATIVE, out, mapping="HA:HA", mapping_source=MAPPING_DECOY)
    assert other["mapping"] == "HA:HA" and other["global_dockq"] == pytest.approx(0.040, abs=1e-3)
    searched = write_score_file(HDOCK, KQ_NATIVE, out)  # a file of a fixed mapping is no search result
    assert (searched["mapping"], searched["mapping_source"]) == ("AH:HA", MAPPING_SEARCH)
    assert json.loads(out.read_text()) == searched


def test_without_a_scored_decoy_the_others_search_and_say_so(tmp_path: Path) -> None:
    one_chain = gemmi.read_structure(str(HDOCK))
    one_chain[0].remove_chain("A")
    decoy = tmp_path / "x_clean.pdb"
    one_chain.write_pdb(str(decoy))
    reports = score_decoy("x", {"decoy": decoy, "egr": HDOCK}, KQ_NATIVE, tmp_path)
    assert "error" in reports["decoy"] and reports["decoy"]["mapping"] is None
    assert (reports["egr"]["mapping"], reports["egr"]["mapping_source"]) == ("AH:HA", MAPPING_OWN_SEARCH)
    assert json.loads((tmp_path / "x_egr_dockq.json").read_text())["mapping_source"] == MAPPING_OWN_SEARCH


def test_structure_names_say_the_method() -> None:
    for method in ("decoy", "egr", *BASELINE_METHODS):
        assert method_of("a_b", structure_file(Path("out"), "a_b", method)) == method
    assert structure_file(Path("out"), "a_b", "decoy") == Path("out/a_b_clean.pdb")
    assert method_of("a_b", Path("a_b_graph.pdb")) is None
    assert method_of("a_b", Path("a_c_clean.pdb")) is None


def test_a_missing_native_gives_one_note_and_no_target(tmp_path: Path) -> None:
    from egr.compare import score_decoy
    from egr.summary import score_columns

    decoy = tmp_path / "d_clean.pdb"
    decoy.write_bytes(gzip.decompress((Path(__file__).parent / "data" / "decoys" / "2X9A_unbound.pdb.gz").read_bytes()))
    refined = tmp_path / "d_refined.pdb"
    refined.write_text(decoy.read_text())
    score_decoy("d", {"decoy": decoy, "egr": refined}, tmp_path / "gone" / "2X9A.pdb", tmp_path, True)
    columns = score_columns(tmp_path, "d")
    assert "target" not in columns
    assert columns["score_notes"].startswith("decoy, egr: ") and columns["score_notes"].count("|") == 0
