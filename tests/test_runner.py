"""`egr run` end to end on real decoys mixed with broken inputs: outputs, summary, exit status, resume."""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from egr.pipeline import PrepOptions
from egr.runner import RunOptions, collect_inputs, run
from egr.summary import BASE_COLUMNS
from egr.structure import read_decoy


def read_summary(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.fixture(scope="module")
def mixed_batch(tmp_path_factory, decoy_paths):
    """Two real decoys (one under a name with spaces and non-ASCII), and inputs that must fail."""
    folder = tmp_path_factory.mktemp("batch")
    shutil.copy(decoy_paths[0], folder / "good one.pdb.gz")
    shutil.copy(decoy_paths[1], folder / "décoy ß.pdb.gz")
    (folder / "empty.pdb").write_text("")
    (folder / "junk.pdb").write_bytes(os.urandom(3000))
    (folder / "seq.pdb").write_text(">A\nMKV\n")
    (folder / "dir.pdb").mkdir()
    os.symlink(folder / "nowhere.pdb", folder / "dangling.pdb")
    text = gzip.decompress(decoy_paths[0].read_bytes()).decode()
    chain = [line for line in text.splitlines() if line.startswith("ATOM")]
    first_chain = chain[0][21]
    (folder / "monomer.pdb").write_text("\n".join(line for line in chain if line[21] == first_chain))
    return folder


def test_egr_run_cli_mixed_batch_and_resume(tmp_path, mixed_batch):
    outdir = tmp_path / "results"
    cmd = [sys.executable, "-m", "egr.cli", "run", "--decoys", str(mixed_batch / "*"), "--outdir", str(outdir),
           "--workers", "2", "--surface-backend", "builtin", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr  # some decoys failed
    rows = {row["id"]: row for row in read_summary(outdir / "summary.tsv")}
    assert list(read_summary(outdir / "summary.tsv")[0])[:4] == ["id", "input", "status", "reason"]
    assert set(read_summary(outdir / "summary.tsv")[0]) == set(BASE_COLUMNS)
    assert rows["good_one"]["status"] == "ok" and rows["decoy"]["status"] == "ok"
    assert rows["decoy"]["input"].endswith("décoy ß.pdb.gz")
    expected_reasons = {
        "empty": "empty", "junk": "binary", "seq": "FASTA", "dir": "directory", "dangling": "dangling",
        "monomer": "only one protein chain",
    }
    for decoy_id, reason in expected_reasons.items():
        assert rows[decoy_id]["status"] == "failed" and reason in rows[decoy_id]["reason"], rows[decoy_id]
        assert "\n" not in rows[decoy_id]["reason"]
        assert f"{reason}" in done.stderr
    for decoy_id in ("good_one", "decoy"):
        for suffix in ("_refined.pdb", "_plddt.csv", "_scores.json"):
            assert (outdir / decoy_id / f"{decoy_id}{suffix}").stat().st_size > 0
    assert not list(outdir.rglob("*.tmp"))
    html = (outdir / "report.html").read_text()
    assert "good_one" in html and "only one protein chain" in html  # the report lists failures too
    assert (outdir / "egr_decoys_mqc.tsv").is_file()

    before = {p: p.stat().st_mtime_ns for p in outdir.rglob("*_refined.pdb")}
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 1
    rows = {row["id"]: row for row in read_summary(outdir / "summary.tsv")}
    assert rows["good_one"]["status"] == "skipped" and rows["decoy"]["status"] == "skipped"
    assert rows["good_one"]["mean_plddt"] != ""
    assert {p: p.stat().st_mtime_ns for p in outdir.rglob("*_refined.pdb")} == before


def test_refined_outputs_keep_the_input_and_carry_plddt(tmp_path, decoy_paths):
    decoy = next(p for p in decoy_paths if p.name.startswith("1AK4"))
    rows = run(collect_inputs(str(decoy)), RunOptions(tmp_path, PrepOptions(surface_backend="builtin"), progress=False, report=False))
    assert rows[0]["status"] == "ok"
    decoy_id = rows[0]["id"]
    original, _ = read_decoy(decoy)
    refined, _ = read_decoy(tmp_path / decoy_id / f"{decoy_id}_refined.pdb")
    for key in ("atom_names", "res_names", "chain_ids", "res_seq", "ins_codes"):
        assert np.array_equal(getattr(refined, key), getattr(original, key)), key
    shift = np.linalg.norm(refined.coords - original.coords, axis=1)
    assert shift.max() < 0.5  # the shipped weights make small moves, or the gate keeps the input
    with (tmp_path / decoy_id / f"{decoy_id}_plddt.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == original.n_residues
    plddt = np.array([float(r["plddt"]) for r in table])
    assert np.all((plddt >= 0) & (plddt <= 1))
    np.testing.assert_allclose(refined.b_factors, np.round(plddt[refined.residue_index] * 100, 2), atol=0.011)
    scores = json.loads((tmp_path / decoy_id / f"{decoy_id}_scores.json").read_text())
    assert scores["status"] == "ok" and scores["model"]["trained"] is True
    assert set(scores["gate"]) >= {"keep_refined", "predicted_gain", "margin"}
    assert 0 < scores["n_interface_residues"] < original.n_residues
    assert sum(int(r["interface"]) for r in table) == scores["n_interface_residues"]
    assert set(scores["seconds"]) == {"ingest", "surface", "featurize", "refine"}
    assert scores["surface_backend"] == {"C": "builtin", "D": "builtin"}


def test_no_gate_writes_the_raw_refinement_and_resume_tells_the_two_apart(tmp_path, decoy_paths):
    decoy = next(p for p in decoy_paths if p.name.startswith("1AK4"))
    inputs = collect_inputs(str(decoy))
    options = RunOptions(tmp_path, PrepOptions(surface_backend="builtin"), progress=False, report=False)
    gated = run(inputs, options)[0]
    scores_path = tmp_path / gated["id"] / f"{gated['id']}_scores.json"
    gated_scores = json.loads(scores_path.read_text())
    assert gated_scores["gate"]["keep_refined"] is False  # the shipped weights predict no gain here
    assert gated_scores["rmsd_to_input"] == 0.0

    raw = run(inputs, replace(options, gate=False))[0]
    assert raw["status"] == "ok"  # redone, not resumed from the gated outputs
    raw_scores = json.loads(scores_path.read_text())
    assert raw_scores["gate"] is None and raw_scores["model"]["gate_margin"] is None
    assert raw_scores["rmsd_to_input"] > 0.0
    assert run(inputs, replace(options, gate=False))[0]["status"] == "skipped"


def test_samplesheet_with_relative_paths_and_duplicate_ids(tmp_path, decoy_paths):
    shutil.copy(decoy_paths[0], tmp_path / "a.pdb.gz")
    sheet = tmp_path / "samples.csv"
    sheet.write_text("id,decoy,native\nfirst,a.pdb.gz,\nfirst,a.pdb.gz,\n")
    inputs = collect_inputs(samplesheet=sheet)
    assert [i.id for i in inputs] == ["first", "first_2"]
    assert inputs[0].path == tmp_path / "a.pdb.gz" and inputs[0].input == "a.pdb.gz"


def test_large_complex_is_refined(tmp_path, small_decoy):
    """A 60,000-atom complex: 49 copies of a real two-chain decoy on a grid, 98 chains with 2-letter IDs."""
    text = gzip.decompress(small_decoy.read_bytes()).decode()
    lines = [line for line in text.splitlines() if line.startswith("ATOM")]
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = []
    for copy in range(49):
        offset = np.array([copy % 7, (copy // 7) % 7, 0]) * 80.0
        for line in lines:
            chain = letters[copy // 26] + letters[copy % 26] if line[21] == "A" else letters[copy // 26].lower() + letters[copy % 26]
            xyz = np.array([float(line[30:38]), float(line[38:46]), float(line[46:54])]) + offset
            out.append(line[:20] + chain + line[22:30] + "".join(f"{v:8.3f}" for v in xyz) + line[54:])
    big = tmp_path / "big.pdb"
    big.write_text("\n".join(out) + "\nEND\n")
    rows = run(collect_inputs(str(big)), RunOptions(tmp_path / "out", PrepOptions(surface_backend="builtin"),
                                                    progress=False, report=False))
    assert rows[0]["status"] == "ok", rows[0]["reason"]
    assert int(rows[0]["n_atoms"]) == 49 * len(lines) >= 60000


def test_natives_are_matched_scored_and_mismatches_reported(tmp_path, decoy_paths):
    natives = Path(__file__).parent / "data" / "natives"
    chosen = [p for p in decoy_paths if p.name.startswith(("2X9A", "kq_1kq1_pdb1_1_HDOCK"))]
    sheet = tmp_path / "samples.csv"
    wrong_native = natives / "1AK4.pdb.gz"  # a different protein: DockQ cannot pair the chains
    sheet.write_text("id,decoy,native\n" + "".join(f"{p.name.split('.')[0]},{p},\n" for p in chosen)
                     + f"mismatch,{chosen[0]},{wrong_native}\nno_native,{chosen[0]},nowhere.pdb\n")
    options = RunOptions(tmp_path / "out", PrepOptions(surface_backend="builtin"), progress=False, natives=natives,
                         report=False)
    rows = {r["id"]: r for r in run(collect_inputs(samplesheet=sheet), options)}
    hdock = rows["kq_1kq1_pdb1_1_HDOCK"]
    assert hdock["target"] == "kq_1kq1_pdb1_1"
    assert hdock["dockq_decoy"] == pytest.approx(0.8543, abs=1e-3)  # labels.csv value for this decoy
    assert abs(hdock["delta_dockq_egr"]) <= 0.05  # never-worse gate: no decoy loses more than 0.05
    assert rows["2X9A_unbound"]["dockq_decoy"] == pytest.approx(0.7463, abs=1e-3)
    report = json.loads((tmp_path / "out" / "2X9A_unbound" / "2X9A_unbound_egr_dockq.json").read_text())
    assert len(report["residues"]) > 100 and 0.5 < report["lddt_ca_mean"] <= 1.0
    assert rows["2X9A_unbound"]["lddt_pearson"] is not None
    mismatch = rows["mismatch"]
    assert mismatch["status"] == "ok" and mismatch["target"] == "1AK4"
    assert "dockq_decoy" not in mismatch and "not scored" in mismatch["score_notes"]
    header = (tmp_path / "out" / "summary.tsv").read_text().splitlines()[0].split("\t")
    assert {"dockq_decoy", "dockq_egr", "delta_dockq_egr", "lddt_pearson"} <= set(header)
    summary = {r["id"]: r for r in read_summary(tmp_path / "out" / "summary.tsv")}
    assert summary["mismatch"]["dockq_egr"] == ""  # not computable: empty, never 0
    # a named native that does not exist: one note, no target from its name, not scored, still refined
    assert summary["no_native"]["status"] == "ok" and summary["no_native"]["target"] == ""
    assert summary["no_native"]["score_notes"] == f"native {tmp_path / 'nowhere.pdb'} does not exist: not scored"
    assert not list((tmp_path / "out" / "no_native").glob("*_dockq.json"))


def test_allocator_tuning_applies_on_linux_glibc() -> None:
    import platform

    from egr.allocator import keep_freed_memory

    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is expected
