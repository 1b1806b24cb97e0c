"""The command line's contract: exit status 0 / 1 / 2, usage errors in one line before any work, and
no torch where nothing needs inference."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from egr.cli import main
from egr.io import file_sha256
from egr.weights import read_model_info

DECOYS = Path(__file__).parent / "data" / "decoys"
HEAVY_MODULES = ("torch", "torch_geometric", "pandas", "DockQ")


def egr(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def loaded_after(code: str) -> list[str]:
    """The heavy modules that a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_loads_no_heavy_module() -> None:
    assert loaded_after("import egr.cli") == []
    code = ("from click.testing import CliRunner\nfrom egr.cli import main\n"
            "assert CliRunner().invoke(main, ['--help']).exit_code == 0")
    assert loaded_after(code) == []


def test_unknown_refiner_is_a_usage_error_before_any_work(tmp_path: Path) -> None:
    code, output = egr("run", "--decoys", DECOYS / "*.pdb.gz", "--refiners", "egr,opnmm", "--outdir", tmp_path / "out")
    assert code == 2
    assert "unknown refiner 'opnmm'; choose from egr, openmm, modeller, galaxy" in output
    assert not (tmp_path / "out").exists()


def test_unquoted_glob_gets_a_hint(tmp_path: Path) -> None:
    decoys = sorted(DECOYS.glob("*.pdb.gz"))
    code, output = egr("run", "--decoys", *decoys, "--outdir", tmp_path)
    assert code == 2 and "quote it" in output and f"{len(decoys) - 1} unexpected extra argument" in output


@pytest.mark.parametrize("pattern", ["nowhere.pdb", "nothing*.pdb"])
def test_missing_path_and_empty_glob_are_the_same_usage_error(tmp_path: Path, pattern: str) -> None:
    code, output = egr("run", "--decoys", tmp_path / pattern, "--outdir", tmp_path / "out")
    assert code == 2 and "no file matches --decoys" in output


def test_decoys_and_samplesheet_together_are_refused(tmp_path: Path) -> None:
    sheet = Path(__file__).parent / "data" / "samplesheet.csv"
    code, output = egr("run", "--decoys", DECOYS / "*.pdb.gz", "--input", sheet, "--outdir", tmp_path)
    assert code == 2 and "--decoys and --input both given" in output


@pytest.mark.parametrize(("text", "where", "message"), [
    ("decoy,native\na.pdb,\n", 1, "no 'id' column"),
    ("id,decoy,native\na,a.pdb,\nb,b.pdb\n", 3, "2 fields, the header has 3"),
    ("id,decoy\n\na,a.pdb,extra\n", 3, "3 fields, the header has 2"),
    ("id,decoy\n,a.pdb\n", 2, "empty 'id'"),
])
def test_malformed_samplesheet_names_file_and_line(tmp_path: Path, text: str, where: int, message: str) -> None:
    sheet = tmp_path / "samples.csv"
    sheet.write_text(text)
    code, output = egr("run", "--input", sheet, "--outdir", tmp_path / "out")
    assert code == 2 and f"{sheet}:{where}: " in output and message in output


def test_unavailable_device_is_one_line(tmp_path: Path) -> None:
    code, output = egr("run", "--decoys", DECOYS / "*.pdb.gz", "--device", "gpu", "--outdir", tmp_path)
    assert code == 2 and "use cpu, cuda, cuda:N or mps" in output and "Traceback" not in output
    code, output = egr("run", "--decoys", DECOYS / "*.pdb.gz", "--device", "cuda:99", "--outdir", tmp_path)
    assert code == 2 and "no such CUDA device here" in output


def test_weights_without_their_json_are_a_usage_error(tmp_path: Path) -> None:
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"\0")
    code, output = egr("run", "--decoys", DECOYS / "*.pdb.gz", "--weights", weights, "--outdir", tmp_path)
    assert code == 2 and "model config not found beside the weights" in output


def test_empty_results_folder_is_a_usage_error(tmp_path: Path) -> None:
    code, output = egr("evaluate", tmp_path)
    assert code == 2 and f"no summary.tsv and no decoys (<id>_scores.json) in {tmp_path}" in output
    code, output = egr("report", tmp_path)
    assert code == 2 and f"no summary.tsv in {tmp_path}" in output
    (tmp_path / "summary.tsv").write_text("id\tinput\tstatus\n")
    for command in ("evaluate", "report"):
        code, output = egr(command, tmp_path)
        assert code == 2 and f"no decoys in {tmp_path / 'summary.tsv'}" in output


def test_step_commands_refuse_missing_files(tmp_path: Path) -> None:
    assert egr("ingest", tmp_path / "nowhere.pdb", "--outdir", tmp_path)[0] == 2
    assert egr("refine", tmp_path / "nowhere_graph.pt", "--outdir", tmp_path)[0] == 2
    assert egr("baseline", "openmm", tmp_path / "nowhere.pdb", "--outdir", tmp_path)[0] == 2
    assert egr("split", "--data", tmp_path, "--fractions", "a,b", "--out", tmp_path / "s.tsv")[0] == 2


def test_refused_decoy_exits_1(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pdb"
    empty.write_text("")
    code, output = egr("ingest", empty, "--outdir", tmp_path)
    assert code == 1 and "empty" in output


def test_resumed_run_loads_no_torch_and_records_versions(tmp_path: Path) -> None:
    """A decoy whose outputs are complete (written here as an earlier run leaves them) is skipped
    without importing torch; run_info.json records the versions and the model hash."""
    decoy = DECOYS / "2X9A_unbound.pdb.gz"
    folder = tmp_path / "out" / "2X9A_unbound"
    folder.mkdir(parents=True)
    info = read_model_info()
    (folder / "2X9A_unbound_refined.pdb").write_text("ATOM\nEND\n")
    (folder / "2X9A_unbound_plddt.csv").write_text("chain,resseq,icode,resname,plddt,interface\nA,1,,GLY,0.5,0\n")
    scores = {"id": "2X9A_unbound", "status": "ok", "n_residues": 1, "input_sha256": file_sha256(decoy),
              "model": {"sha256": info.sha256, "gate_margin": info.gate_margin}}
    (folder / "2X9A_unbound_scores.json").write_text(json.dumps(scores))
    args = ["run", "--decoys", str(decoy), "--outdir", str(tmp_path / "out"), "--no-report", "--quiet"]
    code = ("import sys\nfrom egr.cli import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code")
    assert not {"torch", "torch_geometric"} & set(loaded_after(code))
    summary = (tmp_path / "out" / "summary.tsv").read_text().splitlines()
    assert summary[1].split("\t")[:3] == ["2X9A_unbound", str(decoy), "skipped"]
    run_info = json.loads((tmp_path / "out" / "pipeline_info" / "run_info.json").read_text())
    assert {"python", "torch", "torch_geometric", "numpy", "gemmi", "DockQ", "msms"} <= set(run_info["versions"])
    assert run_info["model"]["sha256"] == info.sha256


def _captured(monkeypatch: pytest.MonkeyPatch, module: str, name: str) -> dict:
    """Replace ``module.name`` with a stub that records its arguments (what the command built) and returns []."""
    seen: dict = {}

    def stub(*args: object, **kwargs: object) -> list:
        seen.update(args=args, kwargs=kwargs)
        return []

    monkeypatch.setattr(f"{module}.{name}", stub)
    return seen


def test_run_builds_its_options_by_keyword_with_the_dataclass_defaults(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    """Every option of `egr run` is a field of RunOptions or PrepOptions (--no-X flags store False in the
    field X): no option given, the objects equal the dataclasses' defaults; each given, it lands in its field."""
    from egr.pipeline import PrepOptions
    from egr.runner import RunOptions

    seen = _captured(monkeypatch, "egr.runner", "run")
    code, output = egr("run", "--decoys", DECOYS / "*.pdb.gz", "--outdir", tmp_path / "out")
    assert code == 0, output
    assert seen["args"][1] == RunOptions(tmp_path / "out")
    natives = tmp_path / "natives"
    natives.mkdir()
    code, output = egr("run", "--decoys", DECOYS / "*.pdb.gz", "--outdir", tmp_path / "out", "--workers", 3,
                       "--surface-backend", "builtin", "--msms", "/opt/msms", "--batch-size", 2, "--ca-graph",
                       "--natives", natives, "--refiners", "egr,openmm", "--no-resume", "--no-intermediates",
                       "--no-report", "--no-multiqc", "--no-gate", "--quiet", "--refiner-timeout", 90)
    assert code == 0, output
    assert seen["args"][1] == RunOptions(
        outdir=tmp_path / "out", prep=PrepOptions(surface_backend="builtin", msms="/opt/msms", ca_graph=True,
                                                  write_intermediates=False),
        workers=3, batch_size=2, natives=natives, refiners=("egr", "openmm"), resume=False, progress=False,
        report=False, multiqc=False, gate=False, refiner_timeout=90.0)


def test_train_builds_its_config_by_keyword_with_the_dataclass_defaults(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    """Every hyperparameter option of `egr train` is a field of TrainConfig, default and all."""
    from dataclasses import replace

    from egr.train import TrainConfig

    seen = _captured(monkeypatch, "egr.train", "train")
    splits = tmp_path / "splits.tsv"
    splits.write_text("")
    required = ["train", "--cache", tmp_path, "--splits", splits, "--outdir", tmp_path / "out"]
    code, output = egr(*required)
    assert code == 0, output
    assert seen["args"][3] == TrainConfig()
    given = {"epochs": 3, "lr": 0.5, "hidden": 16, "layers": 2, "heads": 2, "lddt-weight": 0.5,
             "input-qa-weight": 0.25, "noise": 0.3, "rigid-rotation": 5.0, "rigid-translation": 1.5,
             "max-atoms": 99, "val-dockq-decoys": 2, "docking-weight": 0.5, "ranking-weight": 2.0,
             "group-size": 4, "groups-per-base": 3, "seed": 9}
    code, output = egr(*required, *(item for name, value in given.items() for item in (f"--{name}", value)))
    assert code == 0, output
    renamed = {"layers": "num_layers", "noise": "noise_sigma", "rigid-rotation": "rigid_rotation_deg"}
    assert seen["args"][3] == replace(TrainConfig(), **{renamed.get(name, name.replace("-", "_")): value
                                                        for name, value in given.items()})
