"""HADDOCK3 as a comparison refiner (egr.baselines.haddock): the real emref on a bundled decoy, and the
readers of HADDOCK's and CNS's output on files captured from real runs (tests/data/SOURCES.md).

The real runs need HADDOCK3 in its own environment (tests/haddock/setup_haddock3.sh, which .ci/run
runs): ``$EGR_HADDOCK3``, else the place that script installs to. Without it they skip with the reason.
One emref run (about 10 s of haddock3 on an idle core) and one CNS failure (a few seconds) run here;
mdref (over a minute on one core) runs only with ``EGR_TEST_MDREF=1``.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
import tomllib
from pathlib import Path

import gemmi
import numpy as np
import pytest
from click.testing import CliRunner

from egr import layout
from egr.baselines import baseline_command
from egr.baselines import haddock
from egr.baselines.common import BaselineError, Refined, read_decoy, residue_table, sanitised_pdb
from egr.cli import main
from egr.structure import read_decoy as ingest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
DECOY = DATA / "decoys" / "kq_1kq1_pdb1_1_HDOCK.pdb.gz"  # the smallest bundled two-chain decoy: 126 residues
CAPTURED = DATA / "haddock"
TOOLS_DIR = Path(os.environ.get("EGR_NF_TOOLS", Path.home() / ".cache" / "egr-nf"))
INSTALLED = TOOLS_DIR / "haddock3-venv" / "bin" / "haddock3"  # where tests/haddock/setup_haddock3.sh installs
HADDOCK3 = os.environ.get("EGR_HADDOCK3") or (str(INSTALLED) if INSTALLED.exists() else None)


def _haddock_or_skip() -> str:
    ok, reason = haddock.available(HADDOCK3)
    if not ok:
        pytest.skip(f"HADDOCK3 is not installed here ({reason}); tests/haddock/setup_haddock3.sh installs it")
    return str(HADDOCK3)


@pytest.fixture
def haddock_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """$EGR_HADDOCK3 set to the installation, as a user (or .ci/run) sets it; skips without one."""
    executable = _haddock_or_skip()
    monkeypatch.setenv(haddock.ENV_HADDOCK3, executable)
    return executable


def _residues(path: Path) -> list[tuple[str, str, str]]:
    structure = gemmi.read_structure(str(path))
    structure.remove_ligands_and_waters()
    return [(c.name, f"{r.seqid.num}{r.seqid.icode.strip()}", r.name) for c in structure[0] for r in c]


def _atom_keys(path: Path) -> set[tuple[str, str, str]]:
    structure = gemmi.read_structure(str(path))
    structure.remove_hydrogens()
    structure.remove_ligands_and_waters()
    return {(c.name, f"{r.seqid.num}{r.seqid.icode.strip()}", a.name) for c in structure[0] for r in c for a in r}


def _chains_of_two_residues(n_chains: int) -> str:
    """PDB text of the decoy's first 2 × n_chains residues, each pair a chain of its own."""
    decoy, _ = read_decoy(DECOY)
    ids = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    lines = []
    for line in sanitised_pdb(decoy).splitlines():
        if line.startswith("ATOM") and line[21] == "A" and int(line[22:26]) <= 2 * n_chains:
            lines.append(line[:21] + ids[(int(line[22:26]) - 1) // 2] + line[22:])
    return "\n".join(lines) + "\nEND\n"


# ------------------------------------------------------------------------------------------------
# What runs (no HADDOCK3 needed)


def test_each_protocol_is_a_method_of_its_own() -> None:
    """emref and mdref are two refiners, so that one run scores both side by side."""
    entries = [layout.REGISTRY[f"haddock_{protocol}"] for protocol in haddock.PROTOCOLS]
    assert [entry.refine_options() for entry in entries] == [{"protocol": p} for p in haddock.PROTOCOLS]
    assert len({entry.structure_suffix for entry in entries}) == len({entry.colour for entry in entries}) == 2


@pytest.mark.parametrize("protocol", haddock.PROTOCOLS)
def test_workflow_is_topology_scoring_then_one_unrestrained_refinement(protocol: str) -> None:
    config = tomllib.loads(haddock.workflow_config(protocol))
    steps = [key for key, value in config.items() if isinstance(value, dict)]
    assert steps == ["topoaa", "emscoring", protocol]
    assert config["molecules"] == [haddock.INPUT_FILE] and config["ncores"] == 1
    assert config["emscoring"] == {"nemsteps": 0}  # the input's energies, not minimised
    assert config[protocol] == {"mol_fix_origin_1": True, "tolerance": 0}
    assert config["postprocess"] is False and config["clean"] is False
    # no restraint of any kind: HADDOCK's *_fname parameters (ambig, unambig, hbond, dihe, ...) are unset
    assert not [key for step in steps for key in config[step] if key.endswith("fname")]
    with pytest.raises(ValueError, match="emref, mdref"):
        haddock.workflow_config("flexref")


def test_header_of_real_haddock_models() -> None:
    before = haddock.read_model_header((CAPTURED / "emscoring_1_header.pdb").read_text())
    after = haddock.read_model_header((CAPTURED / "emref_1_header.pdb").read_text())
    assert (before["haddock_score"], after["haddock_score"]) == (49.1669, -117.385)
    assert before["cns"] == after["cns"] == "1.3U" and after["bsa_a2"] == 1470.51
    for figures in (before, after):
        e = figures["energies_kcal_mol"]
        assert list(e)[:7] == ["total", "bonds", "angles", "improper", "dihe", "vdw", "elec"] and "desolv" in e
        # HADDOCK's 'total' is the intermolecular energy, and its score weighs vdw, elec and desolvation:
        # the columns were read under the right names only if both relations hold
        assert e["total"] == pytest.approx(e["vdw"] + e["elec"] + e["air"], abs=1e-3)
        assert figures["haddock_score"] == pytest.approx(e["vdw"] + 0.2 * e["elec"] + e["desolv"] + 0.1 * e["air"],
                                                         abs=2e-3)
    with pytest.raises(BaselineError, match="no 'REMARK energies' line"):
        haddock.read_model_header("REMARK HADDOCK score: 1.0\n")


def test_cns_abort_gives_its_own_message_in_one_line() -> None:
    aborted = gzip.decompress((CAPTURED / "emref_abort.cnserr.gz").read_bytes()).decode()
    reason = haddock.cns_error(aborted)
    assert reason is not None and "\n" not in reason and len(reason) <= 300
    assert reason.startswith("%PARSER error encountered: Encountered too many parsing errors.")
    # the first error is where it went wrong: component 21 has no interaction weight in HADDOCK's scripts
    assert "the first: %WDSUB-ERR: symbol not found: evaluate ($scale.int_$nmol1_$nmol2" in reason
    # a run that succeeded prints non-fatal -ERR lines too, and has no reason
    succeeded = gzip.decompress((CAPTURED / "emref_ok.cnserr.gz").read_bytes()).decode()
    assert "-ERR:" in succeeded and haddock.cns_error(succeeded) is None
    assert haddock.cns_error(" ABORT mode will terminate program execution.\n") == "CNS aborted without an error message"


def test_the_failed_step_is_found_in_a_run_folder(tmp_path: Path) -> None:
    """haddock3's layout: <n>_<module>/<module>_<i>.cnserr.gz; the aborted one is named with its step."""
    for folder, source in (("1_emscoring", "emref_ok"), ("2_emref", "emref_abort")):
        (tmp_path / folder).mkdir()
        shutil.copy(CAPTURED / f"{source}.cnserr.gz", tmp_path / folder / f"{folder[2:]}_1.cnserr.gz")
    assert haddock._step_error(tmp_path).startswith("emref: CNS: %PARSER error encountered")
    (tmp_path / "2_emref" / "emref_1.cnserr.gz").unlink()
    assert haddock._step_error(tmp_path) is None


def test_rigid_fit_recovers_a_rigid_motion_and_refuses_a_mirror() -> None:
    decoy, _ = read_decoy(DECOY)
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotation = q * np.sign(np.linalg.det(q))  # a proper rotation
    moved = decoy.coords @ rotation.T + np.array([30.0, -12.0, 5.0])
    fit_rotation, fit_translation, rmsd = haddock.rigid_fit(moved, decoy.coords)
    assert rmsd < 1e-8
    assert np.allclose(moved @ fit_rotation.T + fit_translation, decoy.coords, atol=1e-8)
    _, _, mirrored = haddock.rigid_fit(decoy.coords * np.array([1.0, 1.0, -1.0]), decoy.coords)
    assert mirrored > 1.0  # a reflection is no rigid motion: the frame check would refuse it


def test_missing_oxt_is_rebuilt_in_the_carboxyl_plane() -> None:
    decoy, _ = read_decoy(DECOY)
    last = np.flatnonzero(np.diff(np.append(decoy.chain_index[decoy.residue_starts], -1)) != 0)  # each chain's end
    refined = Refined(decoy.residue_index, decoy.atom_names, decoy.elements, decoy.coords)
    with_oxt = type(decoy)(**{**decoy.__dict__, "atom_names": decoy.atom_names.copy()})
    # the decoy as if it had OXT on its chain ends: rename each end's last side-chain atom (its position is
    # irrelevant, only the name is asked for) so that the decoy wants an OXT the refined atoms lack
    for residue in last.tolist():
        rows = np.flatnonzero(decoy.residue_index == residue)
        with_oxt.atom_names[rows[-1]] = "OXT"
    completed, n_built = haddock.add_missing_oxt(with_oxt, refined)
    assert n_built == len(last) == 2
    for residue in last.tolist():
        atom = {name: completed.xyz[i] for i in np.flatnonzero(completed.atom_residue == residue)
                for name in [completed.atom_name[i]] if name in ("CA", "C", "O", "OXT")}
        c_o, c_oxt = atom["O"] - atom["C"], atom["OXT"] - atom["C"]
        ca_c = atom["CA"] - atom["C"]
        assert np.linalg.norm(c_oxt) == pytest.approx(np.linalg.norm(c_o), abs=1e-9)  # same bond length
        angle = lambda u, v: np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v)))  # noqa: E731
        assert angle(ca_c, c_oxt) == pytest.approx(angle(ca_c, c_o), abs=1e-6)
        assert abs(np.cross(ca_c, c_o) @ c_oxt) < 1e-9  # planar carboxylate
        assert 100 < angle(c_o, c_oxt) < 135  # on the other side of the CA–C axis from O
    assert haddock.add_missing_oxt(decoy, refined) == (refined, 0)  # no OXT asked for, nothing built


def test_detection_reasons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(haddock.ENV_HADDOCK3, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no haddock3 on it
    ok, reason = haddock.available()
    assert not ok and "$EGR_HADDOCK3" in reason
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a program\n")
    assert haddock.available(text_file) == (False, f"{text_file.resolve()} is not an executable file")
    # a console script of a Python without haddock (this test's own interpreter, like egr's environment)
    script = tmp_path / "haddock3"
    script.write_text(f"#!{sys.executable}\nimport haddock\n")
    script.chmod(0o755)
    ok, reason = haddock.available(script)
    assert not ok and "cannot load haddock" in reason and "ModuleNotFoundError" in reason, reason


def test_more_chain_segments_than_haddock_takes_fail_before_running(tmp_path: Path) -> None:
    path = tmp_path / "many.pdb"
    path.write_text(_chains_of_two_residues(21))
    decoy, _ = read_decoy(path)
    with pytest.raises(BaselineError, match="^21 chain segments; HADDOCK3 takes at most 20$"):
        haddock.refine(decoy, tmp_path)


def test_the_protocol_reaches_the_refiner_and_its_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`egr run` hands each haddock method its protocol, and the record keeps it (resume compares it)."""
    from egr import runner

    seen = {}

    def refine(decoy, workdir, protocol="emref", haddock3=None, timeout_s=None):
        seen["protocol"] = protocol
        raise BaselineError("stopped here")

    monkeypatch.setattr(haddock, "available", lambda haddock3=None: (True, ""))
    monkeypatch.setattr(haddock, "refine", refine)  # stands in only to observe the options it gets
    item = runner.DecoyInput("kq", str(DECOY), DECOY)
    record = runner._baseline(item, tmp_path, "haddock_mdref", True, layout.REGISTRY["haddock_mdref"].refine_options())
    assert seen == {"protocol": "mdref"} and record["options"] == {"protocol": "mdref"}
    assert record["status"] == "failed" and record["reason"].endswith("stopped here")


# ------------------------------------------------------------------------------------------------
# The real thing


@pytest.fixture(scope="module")
def emref_run(tmp_path_factory: pytest.TempPathFactory):
    """`egr baseline haddock_emref DECOY --outdir OUT --id kq`, run once for real."""
    executable = _haddock_or_skip()
    out = tmp_path_factory.mktemp("haddock")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(haddock.ENV_HADDOCK3, executable)
        result = CliRunner().invoke(main, ["baseline", "haddock_emref", str(DECOY), "--outdir", str(out), "--id",
                                           "kq"])
    record = json.loads(layout.method_record(out, "kq", "haddock_emref").read_text())
    return result, record, out


def test_emref_keeps_chains_numbering_and_every_atom(emref_run) -> None:
    result, record, out = emref_run
    assert result.exit_code == 0 and record["status"] == "ok", (result.output, record.get("reason"))
    model = layout.structure(out, "kq", "haddock_emref")
    assert Path(record["output"]) == model and model.read_text().rstrip().endswith("END")
    assert _residues(model) == _residues(DECOY)  # chains H then A, numbering and names as in the decoy
    decoy, _ = read_decoy(DECOY)
    table = residue_table(decoy)
    decoy_keys = {(c, f"{n}{i}", a) for c, n, i, a in zip(table["chain"][decoy.residue_index],
                                                          table["number"][decoy.residue_index],
                                                          table["icode"][decoy.residue_index], decoy.atom_names)}
    assert _atom_keys(model) == decoy_keys  # HADDOCK built no extra heavy atom here and lost none
    parsed, record_in = ingest(model)  # and egr's own reader takes it as a decoy
    assert parsed.n_residues == 126 and parsed.n_atoms == decoy.n_atoms and not record_in.warnings


def test_emref_lowers_haddocks_own_energies(emref_run) -> None:
    _, record, _ = emref_run
    details = record["details"]
    before, after = details["energies_before_kcal_mol"], details["energies_after_kcal_mol"]
    assert details["haddock_score_after"] < details["haddock_score_before"]
    bonded = ("bonds", "angles", "improper")
    assert sum(after[k] for k in bonded) < sum(before[k] for k in bonded)
    assert after["vdw"] < before["vdw"] and after["total"] < before["total"]
    assert after["air"] == before["air"] == 0.0  # no restraints
    assert details["protocol"] == "emref" and details["config"] == haddock.workflow_config("emref")
    assert details["versions"] == {"haddock3": haddock.version(HADDOCK3), "cns": "1.3U"}
    assert record["options"] == {"protocol": "emref"}
    # the decoy's frame: the reorientation of emscoring is undone exactly, and the atoms moved a little
    assert details["frame_fit_rmsd_a"] < haddock.RIGID_FIT_TOLERANCE_A
    assert 0.05 < details["rmsd_a"] < 2.0 and details["n_segments"] == 2
    assert 0 < details["haddock_s"] < record["seconds"]


def test_a_run_resumes_the_record_only_for_the_same_options(emref_run, monkeypatch: pytest.MonkeyPatch) -> None:
    from egr import runner

    _, record, out = emref_run
    item = runner.DecoyInput("kq", str(DECOY), DECOY)
    assert runner._baseline(item, out, "haddock_emref", True, {"protocol": "emref"}) == record  # reused, not rerun

    class Rerun(Exception):
        pass

    def rerun(method, decoy, out_pdb, refiner_timeout_s=None, **options):
        raise Rerun(options)

    monkeypatch.setattr(runner, "run_baseline", rerun)  # stands in only to observe the decision
    with pytest.raises(Rerun, match="mdref"):
        runner._baseline(item, out, "haddock_emref", True, {"protocol": "mdref"})


def test_a_cns_failure_is_its_own_message_in_one_line(haddock_env: str, tmp_path: Path) -> None:
    """21 chains: HADDOCK's CNS scripts define 20 components, so CNS aborts in emref (refine() refuses
    such a decoy before running; run_protocol is the engine under it)."""
    with pytest.raises(BaselineError) as failure:
        haddock.run_protocol(_chains_of_two_residues(21), tmp_path, "emref")
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith("HADDOCK3 emref failed (exit 1): emref: CNS: %PARSER error encountered"), message
    assert "symbol not found" in message


def test_haddock_score_ranks_the_cleaned_decoys_of_a_run(haddock_env: str, tmp_path: Path) -> None:
    """`egr haddock-score RESULTS`: emscoring (50 minimisation steps) of each <id>/<id>_clean.pdb, a TSV
    that `egr evaluate --external-scores` takes, lower is better."""
    import pandas as pd

    from egr.evaluate import parse_rankers, with_external_scores

    ingested = CliRunner().invoke(main, ["ingest", str(DECOY), "--outdir", str(tmp_path), "--id", "kq"])
    assert ingested.exit_code == 0, ingested.output
    result = CliRunner().invoke(main, ["haddock-score", str(tmp_path)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "haddock_scores.tsv", sep="\t", dtype={"id": str})
    assert list(table.columns) == ["id", "haddock_score"] and table["id"].tolist() == ["kq"]
    # 50 steps of minimisation can only lower the score of the input as it is (captured: 49.1669)
    assert np.isfinite(table["haddock_score"][0]) and table["haddock_score"][0] < 49.1669
    merged, names = with_external_scores(pd.DataFrame({"id": ["kq", "other"]}), tmp_path / "haddock_scores.tsv")
    assert names == ("haddock_score",) and merged["haddock_score"].isna().tolist() == [False, True]
    (ranker,) = [r for r in parse_rankers(["haddock_score:lower"]) if r.key == "haddock_score"]
    assert not ranker.higher_is_better


@pytest.mark.skipif(os.environ.get("EGR_TEST_MDREF") != "1", reason="mdref takes over a minute on one core: "
                    "set EGR_TEST_MDREF=1 to run it")
def test_mdref_for_real(haddock_env: str, tmp_path: Path) -> None:
    result = baseline_command("haddock_mdref", DECOY, tmp_path, "kq")
    assert result.status == "ok", result.reason
    assert _residues(result.output) == _residues(DECOY)
    assert result.details["haddock_score_after"] < result.details["haddock_score_before"]
    assert result.details["config"] == haddock.workflow_config("mdref")
