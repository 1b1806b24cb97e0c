"""Tests of egr.metrics on real decoy/native pairs (tests/data/pairs, see tests/data/SOURCES.md).

References used: the DockQ command-line tool (subprocess), the DockQ 2.1.3 labels shipped with the
data, OpenStructure's lDDT (Debian python3-ost, run with /usr/bin/python3), and hand-computed cases.
"""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import gemmi
import numpy as np
import pytest

from egr.metrics import (
    ScoringError,
    dockq_scores,
    is_hydrogen_record,
    lddt_ca,
    per_residue_lddt,
    qa_correlation,
    residue_correspondence,
    score_command,
    write_without_hydrogens,
)

PAIRS = Path(__file__).parent / "data" / "pairs"
OST_PYTHON = "/usr/bin/python3"


def _labels() -> dict[str, dict[str, str]]:
    with open(PAIRS / "labels.csv", newline="") as handle:
        return {row["decoy_id"]: row for row in csv.DictReader(handle)}


LABELS = _labels()


def _files(decoy_id: str) -> tuple[Path, Path]:
    row = LABELS[decoy_id]
    target = PAIRS / row["set"] / row["target"]
    return target / "decoys" / f"{decoy_id}.pdb.gz", target / "native" / f"{row['target']}.pdb.gz"


@pytest.fixture(scope="module")
def scored() -> dict[str, dict]:
    """dockq_scores of every labelled pair, computed once for the module."""
    return {decoy_id: dockq_scores(*_files(decoy_id)) for decoy_id in LABELS}


def _dockq_cli(model: Path, native: Path, workdir: Path, *options: str) -> dict:
    """The DockQ command-line tool on H-free copies of the two files."""
    model_copy = write_without_hydrogens(model, workdir / "model.pdb")
    native_copy = write_without_hydrogens(native, workdir / "native.pdb")
    out = workdir / "out.json"
    subprocess.run(
        [sys.executable, "-m", "DockQ", str(model_copy), str(native_copy), "--json", str(out), "--n_cpu", "1", *options],
        check=True,
        capture_output=True,
    )
    return json.loads(out.read_text())


# --------------------------------------------------------------------------------------------
# DockQ
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("decoy_id", sorted(LABELS))
def test_dockq_agrees_with_cli(decoy_id: str, scored: dict, tmp_path: Path) -> None:
    ours = scored[decoy_id]
    cli = _dockq_cli(*_files(decoy_id), tmp_path, "--allowed_mismatches", str(ours["allowed_mismatches"]))
    assert ours["global_dockq"] == pytest.approx(cli["GlobalDockQ"], abs=1e-3)
    assert ours["mapping"] == cli["best_mapping_str"]
    assert ours["chain_map"] == cli["best_mapping"]
    assert set(ours["interfaces"]) == set(cli["best_result"])
    for pair, theirs in cli["best_result"].items():
        mine = ours["interfaces"][pair]
        assert mine["model_chains"] == theirs["chain1"] + theirs["chain2"]
        for key, cli_key in [("dockq", "DockQ"), ("fnat", "fnat"), ("fnonnat", "fnonnat"),
                             ("irmsd", "iRMSD"), ("lrmsd", "LRMSD"), ("f1", "F1")]:
            assert mine[key] == pytest.approx(theirs[cli_key], abs=1e-3), (pair, key)
        assert mine["clashes"] == theirs["clashes"]


@pytest.mark.parametrize("decoy_id", sorted(LABELS))
def test_dockq_matches_labels(decoy_id: str, scored: dict) -> None:
    label, ours = LABELS[decoy_id], scored[decoy_id]
    assert ours["global_dockq"] == pytest.approx(float(label["dockq"]), abs=1e-3)
    assert ours["mapping"] == label["chain_mapping"]
    needed = re.search(r"--allowed_mismatches (\d+)", label["note"])
    assert ours["allowed_mismatches"] == (int(needed.group(1)) if needed else 0)
    if int(label["n_interfaces"]) == 1:  # with more, the labels' fnat/irmsd/lrmsd are of merged partners
        (interface,) = ours["interfaces"].values()
        for key in ("fnat", "irmsd", "lrmsd"):
            assert interface[key] == pytest.approx(float(label[key]), abs=1e-3), key


def test_homodimer_needs_the_swapped_mapping(scored: dict, tmp_path: Path) -> None:
    # SOURCES.md: kq_1kq1_pdb1_1_HDOCK scores 0.854 with AH:HA and 0.040 with the mapping fixed.
    model, native = _files("kq_1kq1_pdb1_1_HDOCK")
    fixed = dockq_scores(model, native, mapping="HA:HA")
    cli = _dockq_cli(model, native, tmp_path, "--mapping", "HA:HA")
    assert fixed["mapping"] == "HA:HA"
    assert fixed["global_dockq"] == pytest.approx(cli["GlobalDockQ"], abs=1e-3)
    assert fixed["global_dockq"] == pytest.approx(0.040, abs=1e-3)
    assert scored["kq_1kq1_pdb1_1_HDOCK"]["global_dockq"] > 0.85


def test_mismatches_are_raised_only_when_chains_cannot_be_paired() -> None:
    model, native = _files("1EFN_205w")
    with pytest.raises(ScoringError, match="allowed_mismatches=0"):
        dockq_scores(model, native, auto_mismatches=False)
    assert dockq_scores(model, native, allowed_mismatches=2, auto_mismatches=False)["allowed_mismatches"] == 2


# --------------------------------------------------------------------------------------------
# Hydrogens
# --------------------------------------------------------------------------------------------


def _atom_line(name: str, element: str) -> str:
    # Fixed PDB columns: name 13-16, coordinates 31-54, element 77-78.
    line = f"ATOM  {1:>5} {name:<4} ALA A{1:>4}    {0.0:>8.3f}{0.0:>8.3f}{0.0:>8.3f}{1.0:>6.2f}{0.0:>6.2f}          {element:>2}"
    assert line[12:16] == name and line[76:78].strip() == element
    return line


@pytest.mark.parametrize(
    ("name", "element", "hydrogen"),
    [(" HN ", "", True), ("HD21", "", True), ("1HB ", "", True), (" HA ", "H", True), (" D  ", "D", True),
     (" HE ", "34", True), (" N  ", "", False), (" CA ", "C", False), (" HG ", "HG", False), (" OH ", "O", False)],
)
def test_hydrogen_records(name: str, element: str, hydrogen: bool) -> None:
    assert is_hydrogen_record(_atom_line(name, element)) is hydrogen


@pytest.mark.parametrize("decoy_id", sorted(LABELS))
def test_stripped_decoy_keeps_exactly_the_heavy_atoms(decoy_id: str, tmp_path: Path) -> None:
    # n_atoms_heavy in the labels was counted independently (gemmi: not H/D, not water).
    stripped = write_without_hydrogens(_files(decoy_id)[0], tmp_path / "model.pdb")
    atoms = [line for line in stripped.read_text().splitlines() if line.startswith(("ATOM  ", "HETATM"))]
    heavy = [line for line in atoms if line[17:20] not in ("HOH", "WAT")]
    assert len(heavy) == int(LABELS[decoy_id]["n_atoms_heavy"])


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def _assert_one_line(error: pytest.ExceptionInfo) -> None:
    assert "\n" not in str(error.value) and str(error.value)


def test_unrelated_native_is_an_error() -> None:
    model, _ = _files("1AK4_ti5-itw_212w")
    _, other_native = _files("2X9A_unbound")
    with pytest.raises(ScoringError, match="chains cannot be paired") as error:
        dockq_scores(model, other_native)
    _assert_one_line(error)
    assert "1AK4_ti5-itw_212w.pdb.gz vs 2X9A.pdb.gz" in str(error.value)


def _edited_native(tmp_path: Path, edit) -> Path:
    structure = gemmi.read_structure(str(_files("2X9A_unbound")[1]))
    edit(structure[0])
    path = tmp_path / "edited_native.pdb"
    structure.write_pdb(str(path))
    return path


def test_native_with_one_chain_is_an_error(tmp_path: Path) -> None:
    native = _edited_native(tmp_path, lambda model: model.remove_chain("B"))
    with pytest.raises(ScoringError, match="at least two protein chains") as error:
        dockq_scores(_files("2X9A_unbound")[0], native)
    _assert_one_line(error)


def test_native_without_interface_is_an_error(tmp_path: Path) -> None:
    def pull_apart(model: gemmi.Model) -> None:
        for residue in model["B"]:
            for atom in residue:
                atom.pos = gemmi.Position(atom.pos.x + 200.0, atom.pos.y, atom.pos.z)

    native = _edited_native(tmp_path, pull_apart)
    with pytest.raises(ScoringError, match="no interface") as error:
        dockq_scores(_files("2X9A_unbound")[0], native)
    _assert_one_line(error)


def test_missing_files_and_bad_mappings_are_errors(tmp_path: Path) -> None:
    model, native = _files("2X9A_unbound")
    with pytest.raises(ScoringError, match="cannot read"):
        dockq_scores(tmp_path / "absent.pdb", native)
    with pytest.raises(ScoringError, match="names model chain"):
        dockq_scores(model, native, mapping="AZ:AB")
    with pytest.raises(ScoringError, match="MODELCHAINS:NATIVECHAINS"):
        dockq_scores(model, native, mapping="AB")
    with pytest.raises(ScoringError, match="model chain Z"):
        residue_correspondence(model, native, {"A": "A", "B": "Z"})


def test_mmcif_scores_like_pdb(scored: dict, tmp_path: Path) -> None:
    converted = []
    for source in _files("1AK4_ti5-itw_212w"):  # H with a blank element column must go in mmCIF too
        structure = gemmi.read_structure(str(source))
        path = tmp_path / source.name.replace(".pdb.gz", ".cif")
        structure.make_mmcif_document().write_file(str(path))
        converted.append(path)
    assert dockq_scores(*converted) == scored["1AK4_ti5-itw_212w"]


# --------------------------------------------------------------------------------------------
# LDDT-Cα
# --------------------------------------------------------------------------------------------


def test_lddt_hand_computed() -> None:
    native = np.array([[0.0, 0.0, 0.0], [3.8, 0.0, 0.0], [0.0, 3.8, 0.0], [20.0, 0.0, 0.0]])
    model = native.copy()
    model[1, 0] += 0.7  # B moves 0.7 Å away from A
    # AB: |4.5 - 3.8| = 0.7 Å -> kept at 1, 2, 4 Å (3/4). AC: unchanged (4/4).
    # BC: |sqrt(4.5² + 3.8²) - sqrt(2)·3.8| = 0.516 Å -> 3/4. D has no native neighbour within 15 Å.
    scores = lddt_ca(model, native, np.ones(4, bool))
    np.testing.assert_allclose(scores[:3], [(0.75 + 1) / 2, (0.75 + 0.75) / 2, (1 + 0.75) / 2])
    assert np.isnan(scores[3])
    # Without B in the model, its pairs count as lost for A and C, and B itself is undefined.
    masked = lddt_ca(model, native, np.array([True, False, True, True]))
    np.testing.assert_allclose(masked[[0, 2]], [0.5, 0.5])
    assert np.isnan(masked[1]) and np.isnan(masked[3])


def test_lddt_bounds_are_inclusive_like_openstructure() -> None:
    # Checked against ost.mol.alg.lDDTScorer: a native distance of exactly 15 Å is included and a
    # deviation of exactly 0.5 Å is kept at the 0.5 Å threshold.
    native = np.array([[0.0, 0.0, 0.0], [15.0, 0.0, 0.0]])
    model = np.array([[0.0, 0.0, 0.0], [15.5, 0.0, 0.0]])
    np.testing.assert_array_equal(lddt_ca(model, native, np.ones(2, bool)), [1.0, 1.0])


def test_lddt_of_native_against_itself_is_one() -> None:
    _, native = _files("1A2K_model")
    scores = [r.lddt for r in per_residue_lddt(native, native, {"A": "A", "B": "B", "C": "C"})]
    assert len(scores) == 444
    np.testing.assert_array_equal(scores, 1.0)


def test_lddt_is_superposition_free() -> None:
    pairing = residue_correspondence(*_files("1A2K_model"), {"A": "B", "B": "A", "C": "C"})
    reference = lddt_ca(pairing.model_ca, pairing.native_ca, pairing.mask)
    quarter_turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    moved = pairing.model_ca @ quarter_turn.T + np.array([10.0, -5.0, 3.0])
    np.testing.assert_allclose(lddt_ca(moved, pairing.native_ca, pairing.mask), reference, atol=1e-12)
    assert np.nanmin(reference) < 1.0  # chain C moved in this model


def _brute_force_lddt(model: np.ndarray, native: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Textbook per-residue LDDT-Cα, one residue at a time (reference for the vectorised version)."""
    scores = np.full(len(native), np.nan)
    for i in range(len(native)):
        if not mask[i]:
            continue
        kept, total = 0.0, 0
        for j in range(len(native)):
            d0 = np.linalg.norm(native[i] - native[j])
            if j == i or d0 > 15.0:
                continue
            total += 1
            if mask[j]:
                deviation = abs(np.linalg.norm(model[i] - model[j]) - d0)
                kept += np.mean([deviation <= t for t in (0.5, 1.0, 2.0, 4.0)])
        if total:
            scores[i] = kept / total
    return scores


def test_correspondence_uses_alignment_not_numbering(tmp_path: Path) -> None:
    """A native copy with chains renamed, residues renumbered and some residues deleted."""
    _, native = _files("2X9A_unbound")
    structure = gemmi.read_structure(str(native))
    model = structure[0]
    deleted = {"A": (10, 11), "B": (40,)}  # residue indices
    for chain in model:
        for index in reversed(deleted[chain.name]):
            del chain[index]
        for residue in chain:
            residue.seqid = gemmi.SeqId(residue.seqid.num + 1000, " ")
    model["A"].name, model["B"].name = "Q", "R"
    path = tmp_path / "renumbered.pdb"
    structure.write_pdb(str(path))

    pairing = residue_correspondence(path, native, {"A": "Q", "B": "R"})
    assert int((~pairing.mask).sum()) == 3
    for residue, row in zip(pairing.model_residues, pairing.model_row):
        partner = pairing.native_residues[row]
        assert (partner.resseq + 1000, partner.resname) == (residue.resseq, residue.resname)
    expected = _brute_force_lddt(pairing.model_ca, pairing.native_ca, pairing.mask)
    np.testing.assert_allclose(lddt_ca(pairing.model_ca, pairing.native_ca, pairing.mask), expected, equal_nan=True)
    assert np.nanmin(expected) < 1.0  # the deleted residues' neighbours lose pairs


def test_homodimer_lddt_uses_dockq_mapping() -> None:
    model, native = _files("kq_1kq1_pdb1_1_HDOCK")
    chain_map = {"A": "H", "H": "A"}  # DockQ's best mapping (AH:HA)
    # HDOCK numbers its copy of the chain from 6, the native from 1: pairing follows the sequence.
    pairing = residue_correspondence(model, native, chain_map)
    paired = [(r, pairing.native_residues[row]) for r, row in zip(pairing.model_residues, pairing.model_row) if row >= 0]
    assert all(m.resname == n.resname for m, n in paired)
    assert {n.resseq - m.resseq for m, n in paired if m.chain == "H"} == {-5}

    mapped = np.array([r.lddt for r in per_residue_lddt(model, native)])  # mapping found by DockQ
    np.testing.assert_array_equal(mapped, [r.lddt for r in per_residue_lddt(model, native, chain_map)])
    # The symmetry-equivalent but wrong mapping spoils the inter-chain pairs.
    identity = np.array([r.lddt for r in per_residue_lddt(model, native, {"A": "A", "H": "H"})])
    assert np.nanmean(mapped) > np.nanmean(identity) + 0.05


_OST_SCRIPT = r"""
import json, sys
from ost import io, mol
from ost.mol import alg

def ca_residues(path, chain_ids):
    source = io.LoadPDB(path)
    for chain_id in chain_ids:
        for residue in source.FindChain(chain_id).residues:
            ca = residue.FindAtom("CA")
            if ca.IsValid() and residue.IsPeptideLinking():
                icode = residue.number.ins_code.strip("\0 ")
                yield (k_of[chain_id], residue.number.num, icode), residue.name, ca.pos

def merged(residues, number_of):
    # lDDTScorer of OST 2.3 scores only the first chain, so all Cα of the complex go into one chain.
    # OST pairs model and native residues by number: number_of gives both the same number when they
    # share (mapped chain, residue number, insertion code), and model-only residues numbers of their own.
    for key, _, _ in residues:
        number_of.setdefault(key, len(number_of) + 1)
    entity = mol.CreateEntity()
    editor = entity.EditXCS()
    chain = editor.InsertChain("A")
    for key, name, pos in sorted(residues, key=lambda item: number_of[item[0]]):
        residue = editor.AppendResidue(chain, name, mol.ResNum(number_of[key]))
        residue.SetChemClass("L")
        editor.InsertAtom(residue, "CA", pos, "C")
    return entity

args = json.loads(sys.argv[1])
native_chains = list(args["chain_map"])
k_of = {chain_id: k for k, chain_id in enumerate(native_chains)}
number_of = {}
native = merged(list(ca_residues(args["native"], native_chains)), number_of)
k_of = {args["chain_map"][chain_id]: k for k, chain_id in enumerate(native_chains)}
model = merged(list(ca_residues(args["model"], [args["chain_map"][c] for c in native_chains])), number_of)
key_of = {number: key for key, number in number_of.items()}
settings = alg.lDDTSettings(15.0, 0, [0.5, 1.0, 2.0, 4.0], "lddt")
scorer = alg.lDDTScorer(references=[native.Select("")], model=model.Select(""), settings=settings)
rows = []
for score in scorer.local_scores:
    if score.total_dist > 0:
        k, number, icode = key_of[score.rnum]
        rows.append([native_chains[k], number, icode, score.local_lddt])
print(json.dumps(rows))
"""


def _ost_available() -> bool:
    try:
        return subprocess.run([OST_PYTHON, "-c", "import ost"], capture_output=True).returncode == 0
    except OSError:
        return False


@pytest.mark.skipif(not _ost_available(), reason=f"OpenStructure not importable by {OST_PYTHON} (apt-get install python3-ost)")
@pytest.mark.parametrize("decoy_id", ["1A2K_model", "2X9A_unbound", "1AK4_ti5-itw_212w"])
def test_lddt_agrees_with_openstructure(decoy_id: str, scored: dict, tmp_path: Path) -> None:
    # OST pairs residues by number: these pairs share numbering once chains are mapped.
    model, native = _files(decoy_id)
    chain_map = scored[decoy_id]["chain_map"]
    request = json.dumps({"native": str(native.resolve()), "model": str(model.resolve()), "chain_map": chain_map})
    run = subprocess.run([OST_PYTHON, "-c", _OST_SCRIPT, request], capture_output=True, text=True, cwd=tmp_path, check=True)
    ost = {(chain, number, icode): value for chain, number, icode, value in json.loads(run.stdout)}
    native_of = {m: n for n, m in chain_map.items()}
    ours = {
        (native_of[r.chain], r.resseq, r.icode): r.lddt
        for r in per_residue_lddt(model, native, chain_map)
        if math.isfinite(r.lddt)
    }
    assert set(ours) == set(ost)
    difference = np.array([ours[key] - ost[key] for key in ours])
    assert np.abs(difference).max() < 1e-5  # OST computes in float32


# --------------------------------------------------------------------------------------------
# QA correlation
# --------------------------------------------------------------------------------------------


def test_qa_correlation() -> None:
    pred = np.array([0.1, 0.4, 0.35, 0.8, np.nan, 0.9])
    true = np.array([0.2, 0.5, 0.3, 0.7, 0.6, np.nan])
    result = qa_correlation(pred, true)
    kept_p, kept_t = pred[:4], true[:4]
    assert result["n"] == 4
    assert result["pearson"] == pytest.approx(np.corrcoef(kept_p, kept_t)[0, 1])
    assert result["spearman"] == pytest.approx(1.0)
    assert result["mae"] == pytest.approx(np.mean(np.abs(kept_p - kept_t)))


def test_qa_correlation_undefined_cases() -> None:
    few = qa_correlation(np.array([0.1, 0.2, np.nan]), np.array([0.3, 0.1, 0.5]))
    assert few == {"pearson": None, "spearman": None, "mae": pytest.approx(0.15), "n": 2}
    flat = qa_correlation(np.full(5, 0.5), np.linspace(0, 1, 5))
    assert flat["pearson"] is None and flat["spearman"] is None and flat["n"] == 5
    assert qa_correlation(np.array([np.nan]), np.array([1.0]))["mae"] is None


# --------------------------------------------------------------------------------------------
# egr score
# --------------------------------------------------------------------------------------------


def test_score_command_json_and_table(scored: dict, capsys: pytest.CaptureFixture[str]) -> None:
    model, native = _files("1A2K_model")
    score_command(model, native, as_json=True)
    report = json.loads(capsys.readouterr().out)
    assert report["global_dockq"] == pytest.approx(scored["1A2K_model"]["global_dockq"])
    assert report["mapping"] == "BAC:ABC"
    assert set(report["interfaces"]) == {"AB", "AC", "BC"}
    assert 0.9 < report["lddt_ca_mean"] <= 1.0 and report["lddt_ca_residues"] == 444

    score_command(model, native, as_json=False)
    table = capsys.readouterr().out
    assert "GlobalDockQ  0.653" in table and "BAC:ABC" in table


def test_score_cli_mapping_fixes_the_chain_mapping() -> None:
    from click.testing import CliRunner

    from egr.cli import main

    model, native = _files("kq_1kq1_pdb1_1_HDOCK")
    result = CliRunner().invoke(main, ["score", str(model), str(native), "--json", "--mapping", "HA:HA"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["mapping"] == "HA:HA" and report["global_dockq"] == pytest.approx(0.040, abs=1e-3)
