"""Baseline refiners: OpenMM relax for real on a real decoy; Modeller and GalaxyRefineComplex through
their inputs, their real-format outputs and, where installed, a real run.

Modeller and GalaxyRefineComplex cannot be installed here (licence key; user-provided program). Their
run path (subprocess, working folder, output collection, mapping) is exercised with stand-in
executables that replay real-format output files; the real-run tests skip with the detection reason.
"""

from __future__ import annotations

import gzip
import json
import os
import stat
from pathlib import Path

import gemmi
import numpy as np
import pytest

from egr.baselines import METHODS, BaselineResult, available, baseline_command, run_baseline
from egr.baselines import galaxy, modeller
from egr.baselines.common import (
    BaselineError,
    output_complex,
    read_decoy,
    refined_from_structure,
    residue_table,
    sanitised,
    sanitised_pdb,
    segments,
)

DATA = Path(__file__).parent / "data" / "baselines"
DECOY = DATA / "kq_1kq1_pdb1_1_HDOCK.pdb.gz"  # DIPS homodimer docked by HDOCK: chains H (1-66), A (1-60)
MODELLER_MODEL = DATA / "modeller_refined.B99990001.pdb.gz"
GALAXY_MODEL = DATA / "galaxy_model_1.pdb.gz"
GALAXY_ENERGIES = DATA / "galaxy_energy_s.dat"
# real BM5 decoy excerpt with a segment ID and numbers in columns 73-80 (tests/data/SOURCES.md)
JUNK_COLUMNS = DATA.parent / "junk_columns" / "2PCC_unbound_excerpt.pdb.gz"


def _atoms(path: Path) -> dict[tuple[str, str, str], np.ndarray]:
    """Heavy atoms of model 1 keyed by (chain, residue number + insertion code, atom name)."""
    structure = gemmi.read_structure(str(path))
    structure.remove_hydrogens()
    structure.remove_ligands_and_waters()
    return {
        (chain.name, f"{residue.seqid.num}{residue.seqid.icode.strip()}", atom.name): np.array(atom.pos.tolist())
        for chain in structure[0]
        for residue in chain
        for atom in residue
    }


def _residues(path: Path) -> list[tuple[str, str, str]]:
    """(chain, number + insertion code, name) of every residue of model 1 except waters and ligands."""
    structure = gemmi.read_structure(str(path))
    structure.remove_ligands_and_waters()
    return [(c.name, f"{r.seqid.num}{r.seqid.icode.strip()}", r.name) for c in structure[0] for r in c]


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real decoy with the awkward things real decoys have, edited as text:

    insertion codes (H 30, 31 → H 29A, 29B), a selenomethionine (H 32 MET → HETATM MSE with SE), a
    truncated side chain (A 36 LYS without CD, CE, NZ), a chain break (A 20 deleted), a zinc ion
    and a water.
    """
    out = []
    for line in gzip.decompress(DECOY.read_bytes()).decode().splitlines():
        if line.startswith("ATOM"):
            chain, number, name = line[21], int(line[22:26]), line[12:16].strip()
            if chain == "H" and number in (30, 31):
                line = f"{line[:22]}  29{'AB'[number - 30]}{line[27:]}"
            elif chain == "H" and number == 32:
                atom = "SE  " if name == "SD" else line[12:16]
                element = "SE" if name == "SD" else name[0]
                line = f"HETATM{line[6:12]}{atom} MSE{line[20:54]}  1.00 20.00          {element:>2s}"
            elif (chain, number) == ("A", 20) or ((chain, number) == ("A", 36) and name in ("CD", "CE", "NZ")):
                continue
        elif line.startswith("END"):
            out.append("HETATM 2001 ZN    ZN A 101      -5.000   3.000  12.000  1.00 20.00          ZN")
            out.append("HETATM 2002  O   HOH A 201      -8.000   1.000  10.000  1.00 20.00           O")
        out.append(line)
    path = tmp_path_factory.mktemp("variant") / "kq_variant.pdb"
    path.write_text("\n".join(out) + "\n")
    return path


@pytest.fixture(scope="module")
def relaxed(variant: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[BaselineResult, Path]:
    """One real OpenMM relax of the variant through the CLI entry point (the expensive step, ~5 s)."""
    outdir = tmp_path_factory.mktemp("relax")
    result = baseline_command("openmm", variant, outdir)
    return result, outdir / "kq_variant"


# --- reading and sanitising ------------------------------------------------------------------


def test_read_decoy_records_what_it_changed(variant: Path) -> None:
    complex_, notes = read_decoy(variant)
    table = residue_table(complex_)
    assert complex_.n_residues == 125
    assert "ZN" in " ".join(notes) and "MSE->MET" in " ".join(notes)
    met = np.flatnonzero((table["chain"] == "H") & (table["number"] == 32))[0]
    assert table["name"][met] == "MET"
    assert "SD" in complex_.atom_names[complex_.residue_index == met]


def test_sanitised_copy_splits_at_chain_breaks(variant: Path) -> None:
    complex_, _ = read_decoy(variant)
    segment = segments(complex_)
    # H, then A split at the deleted residue A 20 (C–N of A 19 / A 21 is far beyond a peptide bond)
    assert np.bincount(segment).tolist() == [66, 19, 40]
    clean = sanitised(complex_)
    assert sorted(set(clean.chain_ids.tolist())) == ["A", "B", "C"]
    assert set(clean.ins_codes.tolist()) == {""}
    assert clean.res_seq[clean.chain_ids == "C"].max() == 40
    text = sanitised_pdb(complex_)
    assert sum(line.startswith("TER") for line in text.splitlines()) == 3
    assert np.array_equal(clean.coords, complex_.coords)


# --- OpenMM relax, for real ---------------------------------------------------------------------


def test_openmm_relax_keeps_identity_and_atoms(variant: Path, relaxed: tuple[BaselineResult, Path]) -> None:
    result, folder = relaxed
    assert result.status == "ok", result.reason
    assert result.output == folder / "kq_variant_openmm.pdb"
    # every residue of the input, same chains (order H then A), numbers and insertion codes;
    # MSE comes back as its parent MET, the ion and the water are not refined
    expected = [(c, n, "MET" if r == "MSE" else r) for c, n, r in _residues(variant) if r not in ("ZN", "HOH")]
    assert _residues(result.output) == expected
    assert ("H", "29A", "PHE") in expected and ("H", "29B", "GLN") in expected

    before, after = _atoms(variant), _atoms(result.output)
    renamed = {("H", "32", "SE"): ("H", "32", "SD")}
    input_keys = {renamed.get(key, key) for key in before}
    added = set(after) - input_keys
    # the truncated lysine got its side chain back; nothing else was added or lost (no OXT)
    assert added == {("A", "36", "CD"), ("A", "36", "CE"), ("A", "36", "NZ")}
    assert input_keys <= set(after)


def test_openmm_relax_lowers_energy_within_restraints(variant: Path, relaxed: tuple[BaselineResult, Path]) -> None:
    result, _ = relaxed
    details = result.details
    assert details["energy_after_kj_mol"] < details["energy_before_kj_mol"]
    assert details["n_atoms_added"] == 3
    before, after = _atoms(variant), _atoms(result.output)
    keys = [key for key in before if key[2] != "SE"]
    moved = np.linalg.norm(np.array([after[k] for k in keys]) - np.array([before[k] for k in keys]), axis=1)
    assert moved.max() < 1.5 and np.sqrt(np.mean(moved**2)) < 0.5
    assert details["rmsd_a"] == pytest.approx(np.sqrt(np.mean(moved**2)), abs=0.01)
    # the ends at the chain break were not pulled together (no bond across the gap)
    gap = np.linalg.norm(after[("A", "19", "C")] - after[("A", "21", "N")])
    assert abs(gap - np.linalg.norm(before[("A", "19", "C")] - before[("A", "21", "N")])) < 0.5


def test_openmm_relax_writes_result_files_atomically(relaxed: tuple[BaselineResult, Path]) -> None:
    result, folder = relaxed
    assert sorted(p.name for p in folder.iterdir()) == ["kq_variant_openmm.json", "kq_variant_openmm.pdb"]
    record = json.loads((folder / "kq_variant_openmm.json").read_text())
    # the record `egr run` writes too (egr.baselines.baseline_record): the result, rounded seconds, input hash
    # and the options given (none here)
    assert {k: v for k, v in record.items() if k not in ("seconds", "input_sha256", "options")} == \
        {k: v for k, v in json.loads(json.dumps(result.as_dict())).items() if k != "seconds"}
    assert record["seconds"] == round(result.seconds, 3) and len(record["input_sha256"]) == 64
    assert record["options"] == {}
    assert record["status"] == "ok" and record["reason"] == ""
    assert 0 < result.details["minimise_s"] < result.seconds
    assert result.output.read_text().rstrip().endswith("END")


@pytest.mark.parametrize("tail", [None, "       2SNI 1 95.0"], ids=["bm5-as-is", "reported-format"])
def test_openmm_relax_of_a_decoy_with_junk_in_columns_73_80(tmp_path: Path, tail: str | None) -> None:
    # as is, gemmi reads one residue's elements as X; in the format (columns 67 onwards of every
    # ATOM line replaced) every element as iodine, for which AMBER has no template
    lines = gzip.decompress(JUNK_COLUMNS.read_bytes()).decode().splitlines()
    if tail:
        lines = [line[:66] + tail if line.startswith("ATOM") else line for line in lines]
    decoy = tmp_path / "junk.pdb"
    decoy.write_text("\n".join(lines) + "\n")
    result = run_baseline("openmm", decoy, tmp_path / "junk_openmm.pdb")
    assert result.status == "ok", result.reason
    assert sum(note.startswith("element column disagreed") for note in result.details["notes"]) == 1
    atoms = [line for line in result.output.read_text().splitlines() if line.startswith("ATOM")]
    assert [line[76:78].strip() for line in atoms] == [line[12:16].strip()[0] for line in atoms]
    assert len(atoms) == 248 + 3  # the truncated LYS A 278 got CD, CE, NZ back


# --- failures and programming errors ---------------------------------------------------------


@pytest.mark.parametrize("content", [None, b"", b"this is not a structure\n", b"\x1f\x8b\x08\x00broken"])
def test_unusable_decoy_fails_with_one_line(tmp_path: Path, content: bytes | None) -> None:
    decoy = tmp_path / "bad.pdb"
    if content is not None:
        decoy.write_bytes(content)
    result = baseline_command("openmm", decoy, tmp_path / "out")
    assert result.status == "failed" and result.output is None
    assert result.reason and "\n" not in result.reason
    assert not (tmp_path / "out" / "bad" / "bad_openmm.pdb").exists()
    assert json.loads((tmp_path / "out" / "bad" / "bad_openmm.json").read_text())["status"] == "failed"


@pytest.mark.parametrize("method", ["openmm", "galaxy"])
def test_a_failed_or_skipped_rerun_leaves_no_earlier_structure(tmp_path: Path, method: str) -> None:
    """A structure from an earlier run must not be scored (or selected) beside this run's failed record."""
    earlier = tmp_path / "out" / "bad" / f"bad_{method}.pdb"
    earlier.parent.mkdir(parents=True)
    earlier.write_text("ATOM  from an earlier run\nEND\n")
    decoy = tmp_path / "bad.pdb"
    decoy.write_text("this is not a structure\n")
    options = {"galaxy_home": tmp_path} if method == "galaxy" else {}  # galaxy: not installed, skipped
    result = baseline_command(method, decoy, tmp_path / "out", **options)
    assert result.status in ("failed", "skipped")
    assert not earlier.exists()


def test_unknown_method_or_option_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown baseline"):
        run_baseline("rosetta", DECOY, tmp_path / "x.pdb")
    with pytest.raises(TypeError):
        run_baseline("openmm", DECOY, tmp_path / "x.pdb", temperature=300)
    assert METHODS == ("openmm", "modeller", "galaxy", "haddock_emref", "haddock_mdref")
    with pytest.raises(ValueError, match="haddock_emref always runs with protocol='emref'"):
        run_baseline("haddock_emref", DECOY, tmp_path / "x.pdb", protocol="mdref")


def test_engine_output_with_other_residues_is_rejected(variant: Path, tmp_path: Path) -> None:
    complex_, _ = read_decoy(variant)
    model = tmp_path / "model_1.pdb"
    model.write_bytes(gzip.decompress(GALAXY_MODEL.read_bytes()))
    with pytest.raises(BaselineError, match="returned 126 residues for 125"):
        refined_from_structure(complex_, model, "GalaxyRefineComplex")


# --- Modeller ------------------------------------------------------------------------------


def test_modeller_alignment_covers_every_segment(variant: Path) -> None:
    complex_, _ = read_decoy(variant)
    text = modeller.pir_alignment(complex_)
    lines = text.splitlines()
    assert lines[0] == ">P1;decoy" and lines[1] == "structureX:decoy:1:A:40:C:::-1.00:-1.00"
    target = lines.index(">P1;refined")
    assert lines[target + 1] == "sequence:refined:::::::0.00:0.00"
    assert len(lines[1].split(":")) == len(lines[target + 1].split(":")) == 10  # PIR header: 10 fields
    template_seq = "".join(lines[2:target]).strip()
    target_seq = "".join(lines[target + 2:])
    assert template_seq == target_seq
    structure = gemmi.read_structure(str(DECOY))
    h, a = (gemmi.one_letter_code([r.name for r in chain]) for chain in structure[0])
    assert target_seq == f"{h}/{a[:19]}/{a[20:]}*"
    assert max(len(line) for line in lines) <= 75


def test_modeller_scripts_are_valid_python_with_the_intended_protocol() -> None:
    refine = modeller.modeller_script(md_level="very_fast", deviation=0.0, n_models=1, seed=-8123, fix_ca=False)
    compile(refine, modeller.SCRIPT_FILE, "exec")
    assert "model.rand_method = None" in refine and "model.md_level = refine.very_fast" in refine
    assert "alnfile='egr.ali', knowns='decoy', sequence='refined'" in refine
    assert "select_atoms" not in refine
    rebuild = modeller.modeller_script(md_level="none", deviation=4.0, n_models=2, seed=-2, fix_ca=True)
    compile(rebuild, modeller.SCRIPT_FILE, "exec")
    assert "only_atom_types('CA')" in rebuild and "model.rand_method = randomize.xyz" in rebuild
    assert "model.md_level = None" in rebuild and "model.ending_model = 2" in rebuild
    with pytest.raises(ValueError):
        modeller.modeller_script(md_level="very_fast", deviation=0.0, n_models=3, seed=-8123, fix_ca=False)
    with pytest.raises(ValueError):
        modeller.modeller_script(md_level="medium", deviation=0.0, n_models=1, seed=-8123, fix_ca=False)


def test_modeller_best_model_and_mapping(tmp_path: Path) -> None:
    text = gzip.decompress(MODELLER_MODEL.read_bytes()).decode()
    (tmp_path / "refined.B99990001.pdb").write_text(text)
    worse = text.replace("OBJECTIVE FUNCTION:       712.3452", "OBJECTIVE FUNCTION:       958.0100")
    (tmp_path / "refined.B99990002.pdb").write_text(worse)
    path, molpdf = modeller.best_model(tmp_path)
    assert path.name == "refined.B99990001.pdb" and molpdf == pytest.approx(712.3452)

    complex_, _ = read_decoy(DECOY)
    model = output_complex(complex_, refined_from_structure(complex_, path, "Modeller"))
    # Modeller's chains A/B and residues 1..126 go back to the decoy's H 1-66 and A 1-60
    assert model.chain_names == ["H", "A"]
    assert np.array_equal(residue_table(model)["number"], residue_table(complex_)["number"])
    assert np.array_equal(model.atom_names, complex_.atom_names)  # same atoms, same order, no OXT
    assert not np.allclose(model.coords, complex_.coords)
    fixture = _atoms(tmp_path / "refined.B99990001.pdb")
    assert np.allclose(model.coords[0], fixture[("A", "1", "N")], atol=1e-3)
    assert np.allclose(model.coords[-1], fixture[("B", "126", complex_.atom_names[-1])], atol=1e-3)


def test_modeller_ca_rebuild_mapping_keeps_the_trace_first(tmp_path: Path) -> None:
    trace, _ = read_decoy(DECOY, ca_only=True)
    assert set(trace.atom_names.tolist()) == {"CA"} and trace.n_residues == 126
    model_path = tmp_path / "refined.B99990001.pdb"
    model_path.write_bytes(gzip.decompress(MODELLER_MODEL.read_bytes()))
    model = output_complex(trace, refined_from_structure(trace, model_path, "Modeller"))
    full, _ = read_decoy(DECOY)
    assert model.n_atoms == full.n_atoms  # every heavy atom rebuilt, OXT excluded
    starts = model.residue_starts
    assert set(model.atom_names[starts].tolist()) == {"CA"}  # the trace's own atom leads each residue


def _stand_in(path: Path, script: str) -> Path:
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_modeller_run_path_with_a_stand_in(tmp_path: Path) -> None:
    """A stand-in 'python' that accepts the import probe and leaves Modeller's real-format model."""
    model = tmp_path / "model.pdb"
    model.write_bytes(gzip.decompress(MODELLER_MODEL.read_bytes()))
    seen = tmp_path / "seen"
    seen.mkdir()
    python = _stand_in(tmp_path / "python", (
        '[ "$1" = "-c" ] && exit 0\n'
        f'cp decoy.pdb egr.ali "$1" {seen}/ && cp {model} refined.B99990001.pdb\n'
    ))
    assert available("modeller", python=str(python)) == (True, "")
    result = run_baseline("modeller", DECOY, tmp_path / "out" / "m.pdb", python=str(python))
    assert result.status == "ok", result.reason
    assert result.details["molpdf"] == pytest.approx(712.3452) and result.details["mode"] == "refine"
    complex_, _ = read_decoy(DECOY)
    assert (seen / "egr.ali").read_text() == modeller.pir_alignment(complex_)
    assert (seen / "decoy.pdb").read_text() == sanitised_pdb(complex_)
    assert "alnfile='egr.ali'" in (seen / modeller.SCRIPT_FILE).read_text()
    assert _residues(result.output) == _residues(DECOY)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["m.pdb"]  # scratch folder removed

    broken = _stand_in(tmp_path / "broken", '[ "$1" = "-c" ] && exit 0\necho "ModellerError: bad alignment"; exit 1\n')
    failed = run_baseline("modeller", DECOY, tmp_path / "out2" / "m.pdb", python=str(broken))
    assert failed.status == "failed" and failed.reason == "Modeller failed (exit 1): ModellerError: bad alignment"


def test_modeller_real_run_or_skip(tmp_path: Path) -> None:
    ok, reason = available("modeller")
    result = run_baseline("modeller", DECOY, tmp_path / "m.pdb")
    if not ok:
        assert result.status == "skipped" and result.reason == reason and result.output is None
        pytest.skip(reason)
    assert result.status == "ok", result.reason
    assert _residues(result.output) == _residues(DECOY)
    assert result.details["rmsd_a"] < 2.0


# --- GalaxyRefineComplex ---------------------------------------------------------------------


def test_galaxy_command_line() -> None:
    program = Path("/opt/galaxy/bin/GalaxyRefineComplex")
    assert galaxy.command(program, "input.pdb") == [str(program), "-p", "input.pdb", "-t", "egr"]
    assert galaxy.command(program, "input.pdb", n_sample=16, n_output=5, symmetric=True, protocol=1)[4:] == [
        "egr", "-s", "16", "-o", "5", "--sym", "--protocol1"]
    with pytest.raises(ValueError):
        galaxy.command(program, "input.pdb", protocol=3)


def test_galaxy_energy_table_and_top_model(tmp_path: Path) -> None:
    rows = galaxy.read_energy_table(GALAXY_ENERGIES)
    assert len(rows) == 10 and rows[0] == (1, pytest.approx(-4332.0594))
    assert [energy for _, energy in rows] == sorted(energy for _, energy in rows)
    (tmp_path / "energy_s.dat").write_text("MODEL_01     -100.0\nMODEL_02     -250.5\n")
    with pytest.raises(BaselineError, match="model_2.pdb is missing"):
        galaxy.top_model(tmp_path)
    (tmp_path / "model_2.pdb").write_text("END\n")
    assert galaxy.top_model(tmp_path) == (tmp_path / "model_2.pdb", -250.5)


def test_galaxy_output_mapping_drops_hydrogens(tmp_path: Path) -> None:
    path = tmp_path / "model_1.pdb"
    path.write_bytes(gzip.decompress(GALAXY_MODEL.read_bytes()))
    complex_, _ = read_decoy(DECOY)
    model = output_complex(complex_, refined_from_structure(complex_, path, "GalaxyRefineComplex"))
    assert model.chain_names == ["H", "A"]
    assert np.array_equal(model.atom_names, complex_.atom_names)  # H (e.g. '1HD2') and OXT left out
    assert np.abs(model.coords - complex_.coords).max() < 1.5


def test_galaxy_detection_reasons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(galaxy.ENV_HOME, raising=False)
    ok, reason = available("galaxy")
    assert not ok and galaxy.ENV_HOME in reason
    ok, reason = available("galaxy", galaxy_home=tmp_path)
    assert not ok and "no executable" in reason
    skipped = run_baseline("galaxy", DECOY, tmp_path / "g.pdb", galaxy_home=tmp_path)
    assert skipped.status == "skipped" and skipped.reason == reason


def test_galaxy_run_path_with_a_stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in installation whose program checks its arguments and environment, then leaves
    GalaxyRefineComplex's real-format outputs where the program writes them."""
    home = tmp_path / "GalaxyRefineComplex"
    (home / "bin").mkdir(parents=True)
    (home / "data").mkdir()
    model = tmp_path / "model_1.pdb"
    model.write_bytes(gzip.decompress(GALAXY_MODEL.read_bytes()))
    _stand_in(home / "bin" / "GalaxyRefineComplex", (
        f'[ "$*" = "-p input.pdb -t egr -s 4" ] && [ "$GALAXY_HOME" = "{home}" ] && [ "$NSLOTS" = "2" ] '
        '|| { echo "unexpected call: $* GALAXY_HOME=$GALAXY_HOME NSLOTS=$NSLOTS"; exit 2; }\n'
        'grep -q "^TER" input.pdb || exit 3\n'
        f'mkdir -p egr/model && cp {model} egr/model/model_1.pdb && cp {GALAXY_ENERGIES} egr/model/energy_s.dat\n'
    ))
    monkeypatch.setenv(galaxy.ENV_HOME, str(home))
    assert available("galaxy") == (True, "")
    result = baseline_command("galaxy", DECOY, tmp_path / "out", decoy_id="kq", threads=2, n_sample=4)
    assert result.status == "ok", result.reason
    assert result.output == tmp_path / "out" / "kq" / "kq_galaxy.pdb"
    assert result.details["galaxy_energy"] == pytest.approx(-4332.0594) and result.details["model"] == "model_1.pdb"
    assert _residues(result.output) == _residues(DECOY)

    failed = run_baseline("galaxy", DECOY, tmp_path / "out" / "x.pdb", threads=3)
    assert failed.status == "failed"
    assert failed.reason.startswith("GalaxyRefineComplex failed (exit 2): unexpected call")


def test_galaxy_real_run_or_skip(tmp_path: Path) -> None:
    ok, reason = available("galaxy")
    if not ok:
        pytest.skip(reason)
    result = run_baseline("galaxy", DECOY, tmp_path / "g.pdb", threads=os.cpu_count())
    assert result.status == "ok", result.reason
    assert _residues(result.output) == _residues(DECOY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pdb"]  # its scratch folder is gone
