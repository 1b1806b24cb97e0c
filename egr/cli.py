"""The ``egr`` command line: one subcommand per step, plus ``run`` that chains them."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from egr import __version__

SURFACE_BACKENDS = click.Choice(["auto", "msms", "builtin"])
NO_GATE = click.option("--no-gate", is_flag=True,
                       help="Write the raw refinement of every decoy, without the never-worse gate (see MODEL_CARD.md).")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", message="%(version)s")
def main() -> None:
    """egr-nf: refine and quality-assess protein-complex structures with EGR.

    Typical use: egr run --decoys 'decoys/*.pdb' --outdir results
    """
    from egr.allocator import keep_freed_memory

    keep_freed_memory()


def _fail(message: str) -> None:
    click.echo(f"egr: error: {message}", err=True)
    sys.exit(1)


@main.command()
@click.argument("decoy", type=click.Path(path_type=Path))
@click.option("--outdir", type=click.Path(path_type=Path), required=True, help="Output folder; files go to OUTDIR/<id>/.")
@click.option("--id", "decoy_id", help="Decoy ID (default: the sanitised file name).")
@click.option("--ca-only-ok", is_flag=True, help="Accept Cα-only traces (for the Cα graph).")
@click.option("--keep-going", is_flag=True,
              help="On refused input write <id>_scores.json (status failed, reason) and exit 0, so a pipeline "
                   "lists the decoy in its summary instead of losing it.")
def ingest(decoy: Path, outdir: Path, decoy_id: str | None, ca_only_ok: bool, keep_going: bool) -> None:
    """Validate and clean DECOY (PDB/mmCIF, optionally .gz): writes <id>_clean.pdb and <id>_ingest.json."""
    from egr import __version__
    from egr.io import atomic_write_json
    from egr.pipeline import decoy_dir, ingest_step
    from egr.structure import IngestError, sanitize_id

    decoy_id = sanitize_id(decoy_id or decoy)
    try:
        _, record = ingest_step(decoy, outdir, decoy_id, ca_only_ok=ca_only_ok)
    except IngestError as exc:
        if not keep_going:
            _fail(str(exc))
        click.echo(f"egr: failed: {exc}", err=True)
        failure = {"id": decoy_id, "status": "failed", "reason": exc.reason, "input": str(decoy), "egr_version": __version__}
        atomic_write_json(decoy_dir(outdir, decoy_id) / f"{decoy_id}_scores.json", failure)
        return
    for warning in record.warnings:
        click.echo(f"egr: warning: {decoy}: {warning}", err=True)


@main.command()
@click.argument("clean_pdb", type=click.Path(path_type=Path))
@click.option("--outdir", type=click.Path(path_type=Path), required=True)
@click.option("--id", "decoy_id", help="Decoy ID (default: from the file name, without _clean).")
@click.option("--backend", type=SURFACE_BACKENDS, default="auto", show_default=True,
              help="msms = the MSMS program; builtin = numerical fallback; auto = MSMS where found.")
@click.option("--msms", type=click.Path(path_type=Path), help="Path to an MSMS executable.")
def surface(clean_pdb: Path, outdir: Path, decoy_id: str | None, backend: str, msms: Path | None) -> None:
    """Per-chain atom depth and surface proximity of CLEAN_PDB: writes <id>_surface.npz."""
    from egr.pipeline import PrepOptions, surface_step
    from egr.structure import IngestError, read_decoy

    decoy_id = _step_id(decoy_id, clean_pdb, "_clean")
    try:
        complex_, _ = read_decoy(clean_pdb)
        result = surface_step(complex_, outdir, decoy_id, PrepOptions(backend, str(msms) if msms else None))
    except (IngestError, RuntimeError, FileNotFoundError) as exc:
        _fail(str(exc))
    for warning in result.warnings:
        click.echo(f"egr: warning: {clean_pdb}: {warning}", err=True)


@main.command()
@click.argument("clean_pdb", type=click.Path(path_type=Path))
@click.option("--surface", "surface_file", type=click.Path(path_type=Path), required=True,
              help="<id>_surface.npz from `egr surface`.")
@click.option("--outdir", type=click.Path(path_type=Path), required=True)
@click.option("--id", "decoy_id", help="Decoy ID (default: from the file name, without _clean).")
@click.option("--ca-graph", is_flag=True, help="Build the Cα graph (28 node / 14 edge features).")
def featurize(clean_pdb: Path, surface_file: Path, outdir: Path, decoy_id: str | None, ca_graph: bool) -> None:
    """Build the EGR k-NN graph (k = 20) of CLEAN_PDB: writes <id>_graph.pt."""
    from egr.pipeline import PrepOptions, featurize_step, load_surface
    from egr.structure import IngestError, read_decoy

    decoy_id = _step_id(decoy_id, clean_pdb, "_clean")
    try:
        complex_, _ = read_decoy(clean_pdb, ca_only_ok=ca_graph)
        featurize_step(complex_, load_surface(surface_file), outdir, decoy_id, PrepOptions(ca_graph=ca_graph))
    except (IngestError, OSError, ValueError) as exc:
        _fail(str(exc))


@main.command()
@click.argument("graphs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--outdir", type=click.Path(path_type=Path), required=True)
@click.option("--weights", type=click.Path(path_type=Path), help="EGR weights (.safetensors with a .json beside it); default: the shipped model.")
@click.option("--device", default="cpu", show_default=True, help="torch device: cpu, cuda, cuda:1, ...")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="Graphs per forward pass.")
@NO_GATE
def refine(graphs: tuple[Path, ...], outdir: Path, weights: Path | None, device: str, batch_size: int,
           no_gate: bool) -> None:
    """Refine GRAPHS (<id>_graph.pt) with EGR: writes <id>_refined.pdb, <id>_plddt.csv, <id>_scores.json."""
    from egr.graph import load_graph
    from egr.refine import refine_bundles, write_outputs
    from egr.weights import load_model

    try:
        model, info = load_model(weights, device, gate=not no_gate)
        bundles = [load_graph(g) for g in graphs]
    except (OSError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    for bundle, refinement in zip(bundles, refine_bundles(bundles, model, device, batch_size, info.gate_margin)):
        write_outputs(bundle, refinement, outdir, info, device)


@main.command()
@click.option("--decoys", help="Glob of decoy files, quoted: 'dir/*.pdb'.")
@click.option("--input", "samplesheet", type=click.Path(path_type=Path), help="Samplesheet CSV: id,decoy[,native].")
@click.option("--outdir", type=click.Path(path_type=Path), required=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Processes for the CPU steps.")
@click.option("--surface-backend", type=SURFACE_BACKENDS, default="auto", show_default=True)
@click.option("--msms", type=click.Path(path_type=Path), help="Path to an MSMS executable.")
@click.option("--weights", type=click.Path(path_type=Path), help="EGR weights; default: the shipped model.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--ca-graph", is_flag=True, help="Use the Cα graph (needs Cα weights).")
@click.option("--natives", type=click.Path(path_type=Path, file_okay=False),
              help="Folder of natives, matched by name: the native named like the decoy ID or its longest prefix.")
@click.option("--refiners", default="egr", show_default=True,
              help="Comma-separated: egr plus any of openmm, modeller, galaxy (absent programs are skipped).")
@click.option("--no-resume", is_flag=True, help="Redo decoys whose outputs are already complete.")
@click.option("--no-intermediates", is_flag=True, help="Do not keep the surface and graph files.")
@click.option("--no-report", is_flag=True, help="Do not write report.html and the MultiQC files.")
@click.option("--no-multiqc", is_flag=True, help="Write the MultiQC custom content but do not run MultiQC.")
@NO_GATE
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(decoys: str | None, samplesheet: Path | None, outdir: Path, workers: int, surface_backend: str,
        msms: Path | None, weights: Path | None, device: str, batch_size: int, ca_graph: bool, natives: Path | None,
        refiners: str, no_resume: bool, no_intermediates: bool, no_report: bool, no_multiqc: bool,
        no_gate: bool, quiet: bool) -> None:
    """Run every step on each decoy; writes OUTDIR/<id>/... and OUTDIR/summary.tsv.

    Exit status: 0 when every decoy is ok or skipped (resumed), 1 when any failed, 2 on bad usage.
    """
    from egr.pipeline import PrepOptions
    from egr.runner import InputError, RunOptions, collect_inputs
    from egr.runner import run as run_all

    try:
        inputs = collect_inputs(decoys, samplesheet)
    except InputError as exc:
        click.echo(f"egr: error: {exc}", err=True)
        sys.exit(2)
    prep = PrepOptions(surface_backend, str(msms) if msms else None, ca_graph, not no_intermediates)
    if workers > 1:
        import torch

        # the pool's processes keep the cores busy; a multi-threaded forward pass would then spin-wait
        # (measured 3× slower with 2 threads than with 1 on a busy 2-core machine)
        torch.set_num_threads(1)
    methods = tuple(m.strip() for m in refiners.split(",") if m.strip())
    options = RunOptions(outdir, prep, weights, device, batch_size, workers, not no_resume, not quiet, natives, methods,
                         not no_report, not no_multiqc, not no_gate)
    try:
        rows = run_all(inputs, options)
    except InputError as exc:
        click.echo(f"egr: error: {exc}", err=True)
        sys.exit(2)
    except (OSError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    failed = [r for r in rows if r["status"] == "failed"]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "skipped", "failed")}
    click.echo(f"egr: {counts['ok']} ok, {counts['skipped']} skipped, {counts['failed']} failed -> {outdir}/summary.tsv",
               err=True)
    for row in failed:
        click.echo(f"egr: failed: {row['input']}: {row['reason']}", err=True)
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("model", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.argument("native", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object to stdout.")
def score(model: Path, native: Path, as_json: bool) -> None:
    """DockQ, Fnat, fnonnat, iRMSD, LRMSD per interface and overall, and LDDT-Cα, of MODEL against NATIVE."""
    from egr.metrics import ScoringError, score_command

    try:
        score_command(model, native, as_json)
    except ScoringError as exc:
        _fail(f"{model}: {exc}")


@main.command()
@click.argument("method", type=click.Choice(["openmm", "modeller", "galaxy"]))
@click.argument("decoy", type=click.Path(path_type=Path))
@click.option("--outdir", type=click.Path(path_type=Path), required=True)
@click.option("--id", "decoy_id", help="Decoy ID (default: the sanitised file name).")
def baseline(method: str, decoy: Path, outdir: Path, decoy_id: str | None) -> None:
    """Refine DECOY with a comparison refiner: writes <id>_<method>.pdb and <id>_<method>.json.

    Exit status 0 when refined or skipped (program not installed; the reason is printed), 1 when failed.
    """
    from egr.baselines import baseline_command

    result = baseline_command(method, decoy, outdir, decoy_id)
    if result.status != "ok":
        click.echo(f"egr: {method} {result.status}: {decoy}: {result.reason}", err=True)
    sys.exit(1 if result.status == "failed" else 0)


def _score_columns(value: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in value.split(",") if c.strip())


@main.command()
@click.argument("results", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--outdir", type=click.Path(path_type=Path), help="Output folder (default: RESULTS).")
@click.option("--score-columns", default="", help="More QA score columns to rank by, comma-separated; NAME:lower "
              "for scores where lower is better.")
@click.option("--top-n", type=click.IntRange(min=1), default=10, show_default=True, help="N of the Top-N hit rates.")
def evaluate(results: Path, outdir: Path | None, score_columns: str, top_n: int) -> None:
    """Refinement (ΔDockQ, FI-DockQ, API-DockQ, …) and QA ranking (Top-N hit rates, ranking loss) tables of
    a finished results folder: writes evaluation.tsv and evaluation.md, and summary.tsv where the folder
    has none (built from its per-decoy files, as a Nextflow run stages them)."""
    from egr.evaluate import evaluate as evaluate_run
    from egr.evaluate import write_evaluation
    from egr.summary import summarize, write_summary

    outdir = outdir or results
    try:
        summary = results / "summary.tsv"
        if not summary.is_file():
            write_summary(summary, summarize(results))
        if outdir.resolve() != results.resolve():
            outdir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(summary, outdir / "summary.tsv")
        for path in write_evaluation(evaluate_run(results, _score_columns(score_columns), top_n), outdir):
            click.echo(f"egr: wrote {path}", err=True)
    except (OSError, ValueError, KeyError) as exc:
        _fail(str(exc))


@main.command()
@click.argument("results", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--outdir", type=click.Path(path_type=Path), help="Output folder (default: RESULTS).")
@click.option("--score-columns", default="", help="More QA score columns to rank by (as for evaluate).")
@click.option("--top-n", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--no-multiqc", is_flag=True, help="Write the MultiQC custom content only, do not run MultiQC.")
@click.option("--multiqc-config", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="MultiQC config (default: assets/multiqc_config.yml of this project).")
def report(results: Path, outdir: Path | None, score_columns: str, top_n: int, no_multiqc: bool,
           multiqc_config: Path | None) -> None:
    """report.html (one self-contained file) and MultiQC custom content (*_mqc.tsv|yaml) of a results folder."""
    from egr.report import DEFAULT_MULTIQC_CONFIG, build_report

    try:
        outputs = build_report(results, outdir, _score_columns(score_columns), top_n, not no_multiqc,
                               multiqc_config or DEFAULT_MULTIQC_CONFIG)
    except (OSError, ValueError, KeyError) as exc:
        _fail(str(exc))
    click.echo(f"egr: wrote {outputs.html}", err=True)
    if outputs.note:
        click.echo(f"egr: {outputs.note}", err=True)


def _sets(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


DATA_SETS = "bm5,dips,haddock,dockq_examples"


@main.command()
@click.option("--data", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True,
              help="Root of <set>/<target>/{decoys,native}/ folders (the layout of shared/data).")
@click.option("--sets", default=DATA_SETS, show_default=True, help="Comma-separated sets under --data.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="splits.tsv to write.")
@click.option("--fractions", default="0.7,0.15,0.15", show_default=True, help="train,val,test fractions of targets.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--min-seq-id", type=float, default=0.3, show_default=True)
@click.option("--coverage", type=float, default=0.5, show_default=True)
@click.option("--mmseqs", default="mmseqs", show_default=True, help="MMseqs2 executable.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True)
def split(data: Path, sets: str, out: Path, fractions: str, seed: int, min_seq_id: float, coverage: float,
          mmseqs: str, threads: int) -> None:
    """Split targets into train/val/test with MMseqs2 clusters (no cluster spans two splits): writes splits.tsv."""
    from egr.split import SplitError, make_splits, split_summary, write_splits

    try:
        rows = make_splits(data, _sets(sets), tuple(float(f) for f in fractions.split(",")), seed, min_seq_id,
                           coverage, mmseqs, threads)
    except (SplitError, OSError, ValueError) as exc:
        _fail(str(exc))
    write_splits(rows, out)
    click.echo(f"egr: wrote {out}: {split_summary(rows)}", err=True)


@main.command("prepare-training")
@click.option("--data", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--sets", default=DATA_SETS, show_default=True)
@click.option("--cache", type=click.Path(path_type=Path), required=True, help="Folder for the prepared graphs.")
@click.option("--surface-backend", type=SURFACE_BACKENDS, default="auto", show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
def prepare_training(data: Path, sets: str, cache: Path, surface_backend: str, workers: int) -> None:
    """Graphs with per-atom native targets and per-residue LDDT-Cα labels for every decoy/native pair."""
    from egr.dataset import prepare

    rows, failures = prepare(data, _sets(sets), cache, surface_backend, workers,
                             progress=lambda line: click.echo(line, err=True))
    for reason in failures:
        click.echo(f"egr: failed: {reason}", err=True)
    click.echo(f"egr: {len(rows)} decoys prepared in {cache}, {len(failures)} failed", err=True)


@main.command()
@click.option("--cache", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--splits", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True)
@click.option("--outdir", type=click.Path(path_type=Path), required=True)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--hidden", type=click.IntRange(min=4), default=64, show_default=True)
@click.option("--layers", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--heads", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--lddt-weight", type=float, default=0.02, show_default=True)
@click.option("--input-qa-weight", type=float, default=0.02, show_default=True)
@click.option("--noise", type=float, default=0.1, show_default=True, help="σ of Gaussian input noise, Å.")
@click.option("--rigid-rotation", type=float, default=0.0, show_default=True, help="Max rotation of one chain, degrees.")
@click.option("--rigid-translation", type=float, default=0.0, show_default=True, help="Max shift of one chain, Å.")
@click.option("--max-atoms", type=click.IntRange(min=1), default=12000, show_default=True)
@click.option("--val-dockq-decoys", type=click.IntRange(min=0), default=6, show_default=True)
@click.option("--poses", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="egr sample-poses folder: sampled poses of the training targets for the docking steps.")
@click.option("--docking-weight", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Weight of the docking-quality loss (0: no docking steps).")
@click.option("--ranking-weight", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Weight of the pairwise ranking term within a target, relative to the DockQ regression.")
@click.option("--group-size", type=click.IntRange(min=2), default=8, show_default=True,
              help="Structures of one target per docking step.")
@click.option("--groups-per-base", type=click.IntRange(min=1), default=2, show_default=True,
              help="Docking steps per sampled base and epoch.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="torch CPU threads.")
@click.option("--resume", is_flag=True, help="Continue from OUTDIR/last.pt.")
def train(cache: Path, splits: Path, outdir: Path, epochs: int, lr: float, hidden: int, layers: int, heads: int,
          lddt_weight: float, input_qa_weight: float, noise: float, rigid_rotation: float, rigid_translation: float,
          max_atoms: int, val_dockq_decoys: int, poses: Path | None, docking_weight: float, ranking_weight: float,
          group_size: int, groups_per_base: int, seed: int, device: str, threads: int, resume: bool) -> None:
    """Train EGR on prepared graphs (one or many GPUs: torchrun --nproc_per_node=N -m egr.cli train ...)."""
    import torch

    from egr.train import TrainConfig
    from egr.train import train as train_model

    torch.set_num_threads(threads)
    cfg = TrainConfig(hidden=hidden, num_layers=layers, heads=heads, epochs=epochs, lr=lr, lddt_weight=lddt_weight,
                      input_qa_weight=input_qa_weight, noise_sigma=noise, rigid_rotation_deg=rigid_rotation,
                      rigid_translation=rigid_translation, max_atoms=max_atoms, val_dockq_decoys=val_dockq_decoys,
                      docking_weight=docking_weight, ranking_weight=ranking_weight, group_size=group_size,
                      groups_per_base=groups_per_base, seed=seed)
    train_model(cache, splits, outdir, cfg, resume=resume, device=device,
                log=lambda line: click.echo(line, err=True), poses=poses)


@main.command("evaluate-model")
@click.option("--weights", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True)
@click.option("--cache", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--splits", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True)
@click.option("--split", "split_name", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@click.option("--outdir", type=click.Path(path_type=Path), required=True)
@click.option("--calibrate-gate", is_flag=True, help="Fit the never-worse gate's margin here and store it in the weights' JSON.")
@click.option("--margin", type=float, help="Gate margin to apply (default: the weights' own).")
@click.option("--device", default="cpu", show_default=True)
def evaluate_model(weights: Path, cache: Path, splits: Path, split_name: str, outdir: Path, calibrate_gate: bool,
                   margin: float | None, device: str) -> None:
    """Refine every decoy of a split with WEIGHTS and score it (RMSD, ΔDockQ, QA correlation, the gate)."""
    from egr.train import evaluate as evaluate_weights

    evaluate_weights(weights, cache, splits, split_name, outdir, margin, calibrate_gate, device,
                     log=lambda line: click.echo(line, err=True))


@main.command("sample-poses")
@click.option("--root", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True,
              help="Root of <set>/<target>/{decoys,native}/ folders (the layout of shared/data).")
@click.option("--splits", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True,
              help="splits.tsv (egr split) naming each target's split.")
@click.option("--outdir", type=click.Path(path_type=Path), required=True,
              help="Writes OUTDIR/<set>/<base_id>.base.pdb and .poses.npz, OUTDIR/index.tsv and skipped.tsv.")
@click.option("--split", "split_names", default="train,val", show_default=True,
              help="Comma-separated splits whose targets are sampled.")
@click.option("--per-target", type=click.IntRange(min=1), default=200, show_default=True,
              help="Poses per base (the native, and for bm5 also the unbound decoy), the identity included.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Each base's seed is derived from (seed, set, target, base), whatever the order or workers.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
def sample_poses(root: Path, splits: Path, outdir: Path, split_names: str, per_target: int, seed: int,
                 workers: int) -> None:
    """Rigid-body docking poses with DockQ labels for every 2-chain target of the chosen splits (egr.poses)."""
    from egr.poses import sample_dataset

    result = sample_dataset(root, splits, outdir, _sets(split_names), per_target, seed, workers,
                            progress=lambda line: click.echo(line, err=True))
    for row in result["skipped"]:
        click.echo(f"egr: skipped {row['set']}/{row['base_id'] or row['target']}: {row['reason']}", err=True)
    classes = ", ".join(f"{name} {count}" for name, count in result["classes"].items())
    click.echo(f"egr: {sum(result['classes'].values())} poses of {len(result['rows'])} bases in {outdir} "
               f"({result['reused']} bases kept from an earlier run, {len(result['skipped'])} skipped); "
               f"CAPRI classes: {classes}; {result['seconds']:.1f} s", err=True)


def _step_id(decoy_id: str | None, path: Path, suffix: str) -> str:
    from egr.structure import sanitize_id

    name = sanitize_id(decoy_id or path)
    return name[: -len(suffix)] if decoy_id is None and name.endswith(suffix) else name


if __name__ == "__main__":
    main()
