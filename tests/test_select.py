"""`egr run --select best-predicted`: per decoy, the structure (input, EGR, comparison refiners) with the highest
EGR-predicted DockQ, recorded with every candidate's prediction; the summary and `egr evaluate` show it."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from egr import layout
from egr.cli import main
from egr.io import file_sha256

DATA = Path(__file__).parent / "data"
DECOY = DATA / "decoys" / "kq_1kq1_pdb1_1_HDOCK.pdb.gz"  # the smallest bundled decoy
DECOY_ID = "kq_1kq1_pdb1_1_HDOCK"


def _run(outdir: Path, select: str = "best-predicted") -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "egr.cli", "run", "--decoys", str(DECOY), "--natives", str(DATA / "natives"),
           "--refiners", "egr,openmm", "--select", select, "--surface-backend", "builtin",
           "--outdir", str(outdir), "--quiet", "--no-report"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def selected_run(tmp_path_factory) -> Path:
    outdir = tmp_path_factory.mktemp("select") / "results"
    done = _run(outdir)
    assert done.returncode == 0, done.stderr
    return outdir


def _summary(outdir: Path) -> dict:
    with (outdir / "summary.tsv").open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))[0]


def test_selection_is_the_argmax_of_independently_predicted_candidates(selected_run: Path, one_torch_thread) -> None:
    from egr.refine import predict_docking
    from egr.structure import read_decoy
    from egr.surface import compute_surface
    from egr.weights import load_model

    record = json.loads(layout.selection_json(selected_run, DECOY_ID).read_text())
    assert record["rule"] == "best-predicted"
    assert list(record["candidates"]) == ["decoy", "egr", "openmm"]  # registry order, the input first
    assert record["missing"] == {}
    candidates = record["candidates"]
    best = max(candidates.values())
    assert record["selected"] == next(m for m, v in candidates.items() if v == best)  # ties: the earlier
    model, info = load_model(None, "cpu")
    assert record["model_sha256"] == info.sha256
    assert record["surface_used"] == {method: "builtin" for method in candidates}  # as --surface-backend asked
    for method, value in candidates.items():
        path = layout.structure(selected_run, DECOY_ID, method)
        assert record["files"][method] == file_sha256(path)
        complex_, _ = read_decoy(path)
        surface = compute_surface(complex_.coords, complex_.elements, complex_.chain_ids, backend="builtin")
        assert value == predict_docking(model, [complex_], [surface.proximity], "cpu")[0].pred_dockq
    # the input is scored like any candidate, and agrees with the refinement's own prediction of it
    scores = json.loads(layout.scores_json(selected_run, DECOY_ID).read_text())
    assert candidates["decoy"] == pytest.approx(scores["pred_dockq"], abs=2e-4)


def test_summary_and_evaluate_show_the_selection(selected_run: Path) -> None:
    record = json.loads(layout.selection_json(selected_run, DECOY_ID).read_text())
    row = _summary(selected_run)
    chosen = record["selected"]
    assert row["selected"] == chosen
    assert float(row["pred_dockq_selected"]) == record["candidates"][chosen]
    dockq = json.loads(layout.dockq_json(selected_run, DECOY_ID, chosen).read_text())["global_dockq"]
    assert float(row["dockq_selected"]) == pytest.approx(dockq, abs=1e-4) == float(row[f"dockq_{chosen}"])
    assert float(row["delta_dockq_selected"]) == pytest.approx(float(row[f"dockq_{chosen}"]) - float(row["dockq_decoy"]),
                                                               abs=2e-4)
    from egr.evaluate import evaluate_results

    evaluation = evaluate_results(selected_run)
    assert "selected" in evaluation.methods and "selected" not in layout.REGISTRY
    rows = evaluation.refinement[evaluation.refinement["method"] == "selected"]
    assert len(rows) == 2  # the target and (all)
    assert layout.label("selected") == "Best predicted (EGR's choice)"


def test_egr_select_on_one_decoys_files_is_the_runs_choice(selected_run: Path, tmp_path: Path) -> None:
    """`egr select FILE... --outdir DIR --id ID` (the Nextflow SELECT_BEST step) on the run's files,
    staged elsewhere, chooses as the run did; misnamed files and a missing input are usage errors."""
    import shutil

    staged = tmp_path / "staged"
    staged.mkdir()
    files = [layout.structure(selected_run, DECOY_ID, m) for m in ("decoy", "egr", "openmm")]
    files.append(layout.method_record(selected_run, DECOY_ID, "openmm"))
    for path in files:
        shutil.copy(path, staged / path.name)
    args = ["select", *(str(staged / p.name) for p in files), "--outdir", str(tmp_path / "out"), "--id", DECOY_ID,
            "--surface-backend", "builtin"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    mine = json.loads(layout.selection_json(tmp_path / "out", DECOY_ID).read_text())
    runs = json.loads(layout.selection_json(selected_run, DECOY_ID).read_text())
    for key in ("selected", "candidates", "missing", "files", "model_sha256", "surface_used"):
        assert mine[key] == runs[key], key
    stray = staged / "other_clean.pdb"
    shutil.copy(files[0], stray)
    result = CliRunner().invoke(main, ["select", str(stray), "--outdir", str(tmp_path / "x"), "--id", DECOY_ID])
    assert result.exit_code == 2 and "not named like a structure or refiner record of decoy" in result.output
    result = CliRunner().invoke(main, ["select", str(staged / files[1].name), "--outdir", str(tmp_path / "x"),
                                       "--id", DECOY_ID])
    assert result.exit_code == 2 and f"{DECOY_ID}_clean.pdb is a candidate and must be given" in result.output


def test_rerun_reuses_the_selection_and_no_select_removes_it(selected_run: Path) -> None:
    path = layout.selection_json(selected_run, DECOY_ID)
    before = path.stat().st_mtime_ns, path.read_bytes()
    done = _run(selected_run)
    assert done.returncode == 0, done.stderr
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before
    assert _summary(selected_run)["selected"] == json.loads(before[1])["selected"]
    # a candidate whose file changed is scored again
    record = json.loads(before[1])
    record["files"]["openmm"] = "0" * 64
    path.write_text(json.dumps(record))
    assert _run(selected_run).returncode == 0
    assert json.loads(path.read_text())["files"]["openmm"] == file_sha256(layout.structure(selected_run, DECOY_ID,
                                                                                           "openmm"))
    # a run without --select leaves no earlier choice behind to describe it
    assert _run(selected_run, "none").returncode == 0
    assert not path.exists() and "selected" not in _summary(selected_run)


def test_unknown_select_rule_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", "--decoys", str(DECOY), "--outdir", str(tmp_path / "out"),
                                       "--select", "best"])
    assert result.exit_code == 2
    assert "best-predicted" in result.output
    from egr.runner import InputError, RunOptions

    with pytest.raises(InputError, match="unknown selection rule"):
        RunOptions(tmp_path, select="best")


def test_ties_go_to_the_input_and_missing_refiners_are_no_candidates(selected_run: Path, tmp_path: Path,
                                                                     one_torch_thread) -> None:
    """A refined structure equal to the input ties with it (the input is kept); a refiner that failed has
    no structure and is listed with its record's reason."""
    import shutil

    from egr.io import atomic_write_json
    from egr.select import select_best_predicted
    from egr.weights import load_model

    outdir = tmp_path / "out"
    clean = layout.clean_pdb(outdir, DECOY_ID)
    clean.parent.mkdir(parents=True)
    shutil.copy(layout.clean_pdb(selected_run, DECOY_ID), clean)
    shutil.copy(clean, layout.structure(outdir, DECOY_ID, "egr"))
    atomic_write_json(layout.method_record(outdir, DECOY_ID, "openmm"), {"status": "failed", "reason": "boom"})
    model, info = load_model(None, "cpu")
    record = select_best_predicted(outdir, DECOY_ID, ("decoy", "egr", "openmm", "haddock_emref"), model, "cpu",
                                   "builtin", model_sha256=info.sha256)
    assert record["candidates"]["decoy"] == record["candidates"]["egr"]
    assert record["selected"] == "decoy"
    assert record["missing"] == {"openmm": "failed: boom", "haddock_emref": "no structure"}
    assert record["surface_backend"] == "builtin" and record["surface_used"] == {"decoy": "builtin", "egr": "builtin"}
    assert json.loads(layout.selection_json(outdir, DECOY_ID).read_text()) == record
