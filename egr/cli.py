"""The ``egr`` command line: one subcommand per step, plus ``run`` that chains them.

Exit status, every command: 0 done (decoys ok or skipped), 1 a decoy or structure failed (one line
per failure), 2 bad usage (click.UsageError / BadParameter: options, paths, samplesheet, device),
reported before any work. With --keep-going (ingest, surface, featurize, refine; the Nextflow modules use
it) a decoy that fails writes its own failure record (<id>_scores.json: status failed, reason,
failed_step) and the command exits 0, so the run's summary shows the reason. Each command imports what it
needs (torch, DockQ, pandas take seconds to load) after click has checked its arguments, so
``egr --help`` and usage errors come at once.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TypeVar

import click

from egr import __version__, layout
from egr.select import RULES as SELECT_RULES  # light: egr.select imports only layout and io

T = TypeVar("T")

# An option that sets a field of an option object (egr.runner.RunOptions, egr.pipeline.PrepOptions,
# egr.train.TrainConfig) carries the field's name as its parameter name, a --no-… flag included (it stores
# False in the field), so that the command builds the object by keyword from its parameters: the fields
# are the one list of options, and tests/test_cli.py checks that every option lands in a field.
SURFACE_BACKENDS = click.Choice(["auto", "msms", "builtin"])


class RegistryChoice(click.Choice):
    """A choice of method names from egr.layout's registry, read when a command line is parsed (so that a
    method registered after import is a choice too)."""

    def __init__(self, names: Callable[[], Sequence[str]]) -> None:
        self._names = names
        super().__init__(list(names()))

    @property
    def choices(self) -> Sequence[str]:
        return tuple(self._names())

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:  # click.Choice.__init__ sets it; the registry decides
        pass


MSMS = click.option("--msms", type=click.Path(), callback=lambda ctx, param, value: value or None,
                    help="Path to an MSMS executable.")  # a str, as PrepOptions.msms; "" = not given
REFINER_TIMEOUT = click.option(
    "--refiner-timeout", "refiner_timeout", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
    help="Wall-time limit of each comparison refiner on each decoy; past it the run is killed and that cell "
         "fails with the reason. Default: no limit.")
NO_GATE = click.option("--no-gate", "gate", is_flag=True, flag_value=False, default=True,
                       help="Write the raw refinement of every decoy, without the never-worse gate (see MODEL_CARD.md).")


def _take_fields(cls: type, params: dict) -> dict:
    """The click parameters named like fields of the dataclass ``cls``, removed from ``params``."""
    return {f.name: params.pop(f.name) for f in fields(cls) if f.name in params}


def _comma_list(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    """Callback: a comma-separated option value as a tuple of its non-empty, stripped items."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Callback: a torch device that exists here. cpu always does; any other device is checked with
    torch, which the command will load anyway to run on it."""
    if value != "cpu":
        from egr.weights import DeviceError, check_device

        try:
            check_device(value)
        except DeviceError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def _weights(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Callback: weights with their JSON sidecar, checked before torch loads."""
    if value is not None:
        from egr.weights import read_model_info

        try:
            read_model_info(value)
        except (OSError, ValueError, KeyError) as exc:
            raise click.BadParameter(str(exc)) from None
    return value


DEVICE = click.option("--device", default="cpu", show_default=True, callback=_device,
                      help="torch device: cpu, cuda, cuda:1, mps.")
WEIGHTS = click.option("--weights", type=click.Path(path_type=Path, exists=True, dir_okay=False), callback=_weights,
                       help="EGR weights (.safetensors with a .json beside it); default: the shipped model.")


KEEP_GOING = click.option("--keep-going", is_flag=True,
                          help="When this step fails on a decoy, write its <id>_scores.json (status failed, the one-line "
                               "reason, failed_step) and exit 0, so a pipeline lists the decoy with its reason.")


def _record_failure(outdir: Path, decoy_id: str, step: str, reason: str, source: str = "") -> None:
    """--keep-going: the failed decoy's ``<id>_scores.json``, the record ``egr run`` writes for a failed decoy
    (id, status failed, one-line reason, input, egr_version) plus the step it failed at (``failed_step``),
    and its one line on stderr."""
    from egr.io import atomic_write_json

    click.echo(f"egr: failed: {decoy_id}: {step}: {reason}", err=True)
    record = {"id": decoy_id, "status": "failed", "reason": reason, "failed_step": step, "input": source,
              "egr_version": __version__}
    atomic_write_json(layout.scores_json(outdir, decoy_id), record)


def _run_step(step: str, outdir: Path, decoy_id: str, keep_going: bool, expected: tuple[type[Exception], ...],
              work: Callable[[], T]) -> T | None:
    """``work()`` of one decoy's step. A failure is, with ``keep_going``, the decoy's failed record (None is
    returned); without it, an ``expected`` failure is a one-line error (exit 1) and any other is raised."""
    try:
        return work()
    except Exception as exc:
        if keep_going:
            _record_failure(outdir, decoy_id, step, _step_reason(exc))
            return None
        if not isinstance(exc, expected):
            raise
        raise click.ClickException(str(exc)) from None


def _step_reason(exc: Exception) -> str:
    """A step failure's one-line reason, worded as ``egr run`` words it (a refused structure: its reason)."""
    from egr.io import one_line
    from egr.structure import IngestError

    return exc.reason if isinstance(exc, IngestError) else one_line(exc)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", message="%(version)s")
def main() -> None:
    """egr-nf: refine and quality-assess protein-complex structures with EGR.

    Typical use: egr run --decoys 'decoys/*.pdb' --outdir results
    """
    from egr.allocator import keep_freed_memory

    keep_freed_memory()


@main.command()
@click.argument("decoy", type=click.Path(path_type=Path, exists=True))
@click.option("--outdir", type=click.Path(path_type=Path), required=True, help="Output folder; files go to OUTDIR/<id>/.")
@click.option("--id", "decoy_id", help="Decoy ID (default: the sanitised file name).")
@click.option("--ca-only-ok", is_flag=True, help="Accept Cα-only traces (for the Cα graph).")
@click.option("--keep-going", is_flag=True,
              help="On refused input write <id>_scores.json (status failed, reason, failed_step) and exit 0, so a "
                   "pipeline lists the decoy in its summary instead of losing it.")
def ingest(decoy: Path, outdir: Path, decoy_id: str | None, ca_only_ok: bool, keep_going: bool) -> None:
    """Validate and clean DECOY (PDB/mmCIF, optionally .gz): writes <id>_clean.pdb and <id>_ingest.json."""
    from egr.pipeline import ingest_step
    from egr.structure import IngestError, sanitize_id

    decoy_id = sanitize_id(decoy_id or decoy)
    try:
        _, record = ingest_step(decoy, outdir, decoy_id, ca_only_ok=ca_only_ok)
    except IngestError as exc:
        if not keep_going:
            raise click.ClickException(str(exc)) from None
        _record_failure(outdir, decoy_id, "ingest", exc.reason, str(decoy))
        return
    for warning in record.warnings:
        click.echo(f"egr: warning: {decoy}: {warning}", err=True)


@main.command()
@click.argument("clean_pdb", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--outdir", type=click.Path(path_type=Path), required=True)
@click.option("--id", "decoy_id", help="Decoy ID (default: from the file name, without _clean).")
@click.option("--backend", "surface_backend", type=SURFACE_BACKENDS, default="auto", show_default=True,
              help="msms = the MSMS program; builtin = numerical fallback; auto = MSMS where found.")
@MSMS
@KEEP_GOING
def surface(clean_pdb: Path, outdir: Path, decoy_id: str | None, keep_going: bool, **prep: str | None) -> None:
    """Per-chain atom depth and surface proximity of CLEAN_PDB: writes <id>_surface.npz."""
    from egr.pipeline import PrepOptions, surface_step
    from egr.structure import IngestError, read_decoy

    decoy_id = _step_id(decoy_id, clean_pdb, "_clean")
    result = _run_step("surface", outdir, decoy_id, keep_going, (IngestError, RuntimeError, FileNotFoundError),
                       lambda: surface_step(read_decoy(clean_pdb)[0], outdir, decoy_id, PrepOptions(**prep)))
    for warning in result.warnings if result is not None else ():
        click.echo(f"egr: warning: {clean_pdb}: {warning}", err=True)


@main.command()
@click.argument("clean_pdb", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--surface", "surface_file", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True,
              help="<id>_surface.npz from `egr surface`.")
@click.option("--outdir", type=click.Path(path_type=Path), required=True)
@click.option("--id", "decoy_id", help="Decoy ID (default: from the file name, without _clean).")
@click.option("--ca-graph", is_flag=True, help="Build the Cα graph (28 node / 14 edge features).")
@KEEP_GOING
def featurize(clean_pdb: Path, surface_file: Path, outdir: Path, decoy_id: str | None, ca_graph: bool,
              keep_going: bool) -> None:
    """Build the EGR k-NN graph (k = 20) of CLEAN_PDB: writes <id>_graph.pt."""
    from egr.pipeline import PrepOptions, featurize_step, load_surface
    from egr.structure import IngestError, read_decoy

    decoy_id = _step_id(decoy_id, clean_pdb, "_clean")
    _run_step("featurize", outdir, decoy_id, keep_going, (IngestError, OSError, ValueError),
              lambda: featurize_step(read_decoy(clean_pdb, ca_only_ok=ca_graph)[0], load_surface(surface_file), outdir,
                                     decoy_id, PrepOptions(ca_graph=ca_graph)))


@main.command()
@click.argument("graphs", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--outdir", type=click.Path(path_type=Path), required=True)
@WEIGHTS
@DEVICE
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Graphs moved to the device together; each decoy's passes run on its own graph.")
@NO_GATE
@click.option("--keep-going", is_flag=True,
              help="A decoy that fails (its graph unreadable, its refinement failing even alone) gets its own "
                   "<id>_scores.json (status failed, the one-line reason, failed_step refine) and the others go on; "
                   "exit 0.")
def refine(graphs: tuple[Path, ...], outdir: Path, weights: Path | None, device: str, batch_size: int,
           gate: bool, keep_going: bool) -> None:
    """Refine GRAPHS (<id>_graph.pt) with EGR: writes <id>_refined.pdb, <id>_plddt.csv, <id>_scores.json."""
    from egr.graph import load_graph
    from egr.refine import refine_bundles, write_outputs
    from egr.weights import load_model

    def unreadable(graph: Path, exc: Exception) -> str:
        return f"{graph.name}: not a readable egr graph ({_step_reason(exc)})"

    if not keep_going:
        bundles = []
        for graph in graphs:
            try:
                bundles.append(load_graph(graph))
            except Exception as exc:  # torch.load's errors of a damaged file include KeyError and pickle's
                raise click.ClickException(unreadable(graph, exc)) from None
        model, info = load_model(weights, device, gate=gate)
        for bundle, refinement in zip(bundles, refine_bundles(bundles, model, device, batch_size, info.gate_margin)):
            write_outputs(bundle, refinement, outdir, info, device)
        return
    from egr.runner import RunOptions, _refine_each

    bundles = []
    for graph in graphs:
        try:
            bundles.append(load_graph(graph))
        except Exception as exc:  # this graph's decoy alone
            _record_failure(outdir, _step_id(None, Path(graph.name.removesuffix(".pt")), "_graph"), "refine",
                            unreadable(graph, exc))
    if not bundles:
        return
    model, info = load_model(weights, device, gate=gate)
    # egr run's batch rule: a batch that fails is retried one decoy at a time, and a decoy that still
    # fails gets its one-line reason
    options = RunOptions(outdir=outdir, device=device, batch_size=batch_size)
    for bundle, outcome in zip(bundles, _refine_each(bundles, model, info, options)):
        if isinstance(outcome, str):
            _record_failure(outdir, bundle.decoy_id, "refine", outcome)
            continue
        try:
            write_outputs(bundle, outcome, outdir, info, device)
        except Exception as exc:  # no half-written outputs beside the failure record
            for path in (layout.refined_pdb(outdir, bundle.decoy_id), layout.plddt_csv(outdir, bundle.decoy_id)):
                path.unlink(missing_ok=True)
            _record_failure(outdir, bundle.decoy_id, "refine", _step_reason(exc))


# extra arguments are allowed through to `run` only to tell an unquoted --decoys pattern that the shell
# expanded into many files (click would say "unexpected extra arguments" and no more)
@main.command(context_settings={"allow_extra_args": True})
@click.option("--decoys", help="Glob of decoy files, quoted: 'dir/*.pdb' (or one file's path).")
@click.option("--input", "samplesheet", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Samplesheet CSV with the columns id,decoy[,native] (instead of --decoys).")
@click.option("--outdir", type=click.Path(path_type=Path), required=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Processes for the CPU steps.")
@click.option("--surface-backend", type=SURFACE_BACKENDS, default="auto", show_default=True)
@MSMS
@WEIGHTS
@DEVICE
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Graphs moved to the device together; each decoy's passes run on its own graph.")
@click.option("--ca-graph", is_flag=True, help="Use the Cα graph (needs Cα weights).")
@click.option("--natives", type=click.Path(path_type=Path, file_okay=False),
              help="Folder of natives, matched by name: the native named like the decoy ID or its longest prefix.")
@click.option("--refiners", default="egr", show_default=True, callback=_comma_list,
              help=f"Comma-separated: egr plus any of {', '.join(layout.baseline_methods())} (absent programs are skipped).")
@click.option("--no-resume", "resume", is_flag=True, flag_value=False, default=True,
              help="Redo decoys whose outputs are already complete.")
@click.option("--no-intermediates", "write_intermediates", is_flag=True, flag_value=False, default=True,
              help="Do not keep the surface and graph files.")
@click.option("--no-report", "report", is_flag=True, flag_value=False, default=True,
              help="Do not write report.html and the MultiQC files.")
@click.option("--no-multiqc", "multiqc", is_flag=True, flag_value=False, default=True,
              help="Write the MultiQC custom content but do not run MultiQC.")
@NO_GATE
@REFINER_TIMEOUT
@click.option("--select", "select", type=click.Choice(SELECT_RULES), default="none", show_default=True,
              help="best-predicted: per decoy, keep whichever of the input, EGR's and the comparison refiners' "
                   "structures has the highest EGR-predicted DockQ (<id>_selection.json; summary column selected).")
@click.option("--quiet", "progress", is_flag=True, flag_value=False, default=True, help="No progress bar.")
@click.pass_context
def run(ctx: click.Context, decoys: str | None, samplesheet: Path | None, **options: object) -> None:
    """Run every step on each decoy; writes OUTDIR/<id>/... and OUTDIR/summary.tsv.

    Exit status: 0 when every decoy is ok or skipped (resumed), 1 when any failed, 2 on bad usage,
    such as a --decoys pattern or path that matches no file.
    """
    if ctx.args:
        hint = (" --decoys takes one pattern: quote it (--decoys 'dir/*.pdb') so that the shell does not expand it"
                if decoys is not None else "")
        raise click.UsageError(f"{len(ctx.args)} unexpected extra argument(s), {ctx.args[0]!r} first;{hint}")
    from egr.pipeline import PrepOptions
    from egr.runner import InputError, RunOptions, collect_inputs
    from egr.runner import run as run_all

    prep = PrepOptions(**_take_fields(PrepOptions, options))
    try:
        run_options = RunOptions(prep=prep, **options)  # every other option is a field of RunOptions
    except InputError as exc:
        raise click.BadParameter(str(exc), param_hint="'--refiners'") from None
    outdir = run_options.outdir
    try:
        rows = run_all(collect_inputs(decoys, samplesheet), run_options)
    except InputError as exc:
        raise click.UsageError(str(exc)) from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    failed = [r for r in rows if r["status"] == "failed"]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "skipped", "failed")}
    click.echo(f"egr: {counts['ok']} ok, {counts['skipped']} skipped, {counts['failed']} failed -> {outdir}/summary.tsv",
               err=True)
    for row in failed:
        click.echo(f"egr: failed: {row['input']}: {row['reason']}", err=True)
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("models", metavar="MODEL...", nargs=-1, required=True,
                type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.argument("native", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object to stdout.")
@click.option("--mapping", metavar="MODEL:NATIVE",
              help="Fix the chain mapping, written as DockQ does (e.g. AH:HA: model A on native H, H on A); "
                   "default: the best one DockQ's search finds.")
@click.option("--outdir", type=click.Path(path_type=Path),
              help="Score every MODEL, the structures of decoy --id named as egr run names them (<id>_clean.pdb, "
                   "<id>_refined.pdb, <id>_<refiner>.pdb), all under the decoy's best chain mapping, into "
                   "OUTDIR/<id>/<id>_<method>_dockq.json.")
@click.option("--id", "decoy_id", help="The decoy ID of the MODELs (with --outdir).")
def score(models: tuple[Path, ...], native: Path, as_json: bool, mapping: str | None, outdir: Path | None,
          decoy_id: str | None) -> None:
    """DockQ, Fnat, fnonnat, iRMSD, LRMSD per interface and overall, and LDDT-Cα, of MODEL against NATIVE.

    With --outdir, of each structure of one decoy (what egr run and the Nextflow pipeline do).
    """
    if outdir is None:
        if len(models) != 1:
            raise click.UsageError("give one MODEL, or the structures of one decoy with --outdir and --id")
        from egr.metrics import ScoringError, score_command

        try:
            score_command(models[0], native, as_json, mapping)
        except ScoringError as exc:
            raise click.ClickException(f"{models[0]}: {exc}") from None
        return
    if decoy_id is None or as_json or mapping:
        raise click.UsageError("--outdir needs --id and takes neither --json nor --mapping (the decoy's is used)")
    from egr.compare import method_of, score_decoy

    structures = {method_of(decoy_id, model): model for model in models}
    if None in structures:
        named = [f"{decoy_id}{layout.structure_suffix(m)}" for m in ("decoy", "egr")]
        raise click.UsageError(f"{structures[None]}: not named like a structure of decoy {decoy_id} "
                               f"({named[0]}, {named[1]} or {decoy_id}_<refiner>.pdb)")
    for method, report in score_decoy(decoy_id, structures, native, layout.decoy_dir(outdir, decoy_id)).items():
        if "error" in report:  # the file says so too; summary.tsv shows it in score_notes
            click.echo(f"egr: warning: {decoy_id} {method}: {report['error']}", err=True)


@main.command()
@click.argument("method", type=RegistryChoice(layout.baseline_methods))
@click.argument("decoy", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--outdir", type=click.Path(path_type=Path), required=True)
@click.option("--id", "decoy_id", help="Decoy ID (default: the sanitised file name).")
@REFINER_TIMEOUT
def baseline(method: str, decoy: Path, outdir: Path, decoy_id: str | None, refiner_timeout: float | None) -> None:
    """Refine DECOY with a comparison refiner: writes <id>_<method>.pdb and <id>_<method>.json.

    Exit status 0 when refined or skipped (program not installed; the reason is printed), 1 when failed.
    """
    from egr.baselines import baseline_command

    options = layout.REGISTRY[method].refine_options()  # as `egr run` passes them
    result = baseline_command(method, decoy, outdir, decoy_id, refiner_timeout, **options)
    if result.status != "ok":
        click.echo(f"egr: {method} {result.status}: {decoy}: {result.reason}", err=True)
    sys.exit(1 if result.status == "failed" else 0)


@main.command()
@click.argument("files", metavar="FILE...", nargs=-1, required=True,
                type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--outdir", type=click.Path(path_type=Path), required=True)
@click.option("--id", "decoy_id", required=True, help="The decoy ID of the FILEs.")
@click.option("--surface-backend", type=SURFACE_BACKENDS, default="auto", show_default=True)
@MSMS
@WEIGHTS
@DEVICE
def select(files: tuple[Path, ...], outdir: Path, decoy_id: str, surface_backend: str, msms: str | None,
           weights: Path | None, device: str) -> None:
    """Keep the structure of one decoy that EGR predicts best (egr run --select best-predicted): writes
    OUTDIR/<id>/<id>_selection.json.

    FILEs are the decoy's structures and its refiners' records, named as egr run names them
    (<id>_clean.pdb, <id>_refined.pdb, <id>_<refiner>.pdb and .json); a refiner with a record but no
    structure is listed as missing, with its reason. Files outside OUTDIR/<id>/ are linked into it.
    """
    from egr.select import select_best_predicted
    from egr.weights import load_model

    methods = set()
    for path in files:
        method = layout.method_of(decoy_id, path) or layout.record_method_of(decoy_id, path)
        if method is None:
            raise click.UsageError(f"{path}: not named like a structure or refiner record of decoy {decoy_id}")
        methods.add(method)
    if "decoy" not in methods:
        raise click.UsageError(f"the input decoy {decoy_id}{layout.CLEAN_PDB} is a candidate and must be given")
    folder = layout.decoy_dir(outdir, decoy_id)
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        linked = folder / path.name
        if not (linked.exists() and linked.samefile(path)):
            linked.unlink(missing_ok=True)
            linked.symlink_to(path.resolve())
    model, info = load_model(weights, device)
    record = select_best_predicted(outdir, decoy_id, tuple(m for m in layout.REGISTRY if m in methods), model, device,
                                   surface_backend, msms, info.sha256)
    click.echo(f"egr: {decoy_id}: selected {record['selected']}", err=True)


@main.command("refiner-version")
@click.argument("method", type=RegistryChoice(layout.baseline_methods))
def refiner_version(method: str) -> None:
    """Print the version of a comparison refiner's program here ("not installed" where it is absent)."""
    click.echo(layout.REGISTRY[method].program_version())


def _no_decoys(results: Path, staged: bool) -> str | None:
    """Why the results folder has nothing to evaluate or report, or None. With ``staged``, per-decoy
    ``<id>_scores.json`` files (as a Nextflow run stages them), or the run's decoy list ``egr_decoys.tsv``
    (egr.summary.MANIFEST: a run whose every decoy failed before leaving any), stand in for a missing
    summary.tsv; the summary built from them lists each decoy, failed ones included."""
    summary = results / "summary.tsv"
    if summary.is_file():
        with summary.open() as handle:
            next(handle, None)  # the header
            return None if next(handle, None) else f"no decoys in {summary}"
    if staged and next(results.rglob(layout.SCORES_GLOB), None) is not None:
        return None
    if staged:
        from egr.summary import read_manifest

        if read_manifest(results):
            return None
    return f"no summary.tsv{' and no decoys (<id>_scores.json)' if staged else ''} in {results}"


@main.command()
@click.argument("results", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--outdir", type=click.Path(path_type=Path), help="Output folder (default: RESULTS).")
@click.option("--score-columns", default="", callback=_comma_list,
              help="More QA score columns to rank by, comma-separated; NAME:lower for scores where lower is better.")
@click.option("--top-n", type=click.IntRange(min=1), default=10, show_default=True, help="N of the Top-N hit rates.")
@click.option("--external-scores", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="TSV of scores from outside the run (an id column, then one column per score, higher = better "
                   "unless listed as NAME:lower in --score-columns), e.g. the docking program's own score; each "
                   "column is ranked beside EGR and the references.")
@click.option("--subset", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Evaluate only the decoys of this samplesheet (found by file, else by the ID egr run gives "
                   "them), e.g. one data set of a larger run; needs an --outdir other than RESULTS, which then "
                   "gets the evaluation files alone.")
def evaluate(results: Path, outdir: Path | None, score_columns: tuple[str, ...], top_n: int,
             external_scores: Path | None, subset: Path | None) -> None:
    """Refinement (ΔDockQ, FI-DockQ, API-DockQ, …) and QA ranking (Top-N hit rates, ranking loss) tables of
    a finished results folder: writes evaluation.tsv and evaluation.md, and summary.tsv where the folder
    has none (built from its per-decoy files, as a Nextflow run stages them)."""
    reason = _no_decoys(results, staged=True)
    if reason:
        raise click.BadParameter(reason, param_hint="'RESULTS'")
    from egr.evaluate import evaluate_results, write_evaluation
    from egr.summary import summarize, write_summary

    outdir = outdir or results
    if subset is not None and outdir.resolve() == results.resolve():
        raise click.UsageError("--subset needs an --outdir other than RESULTS, so that the run's own evaluation "
                               "is kept")
    summary = results / "summary.tsv"
    try:
        if not summary.is_file():
            write_summary(summary, summarize(results))
        evaluation = evaluate_results(results, score_columns, top_n, external_scores, subset)
        if outdir.resolve() != results.resolve():
            outdir.mkdir(parents=True, exist_ok=True)
            if subset is None:  # a subset's evaluation sits beside no summary of decoys it left out
                shutil.copyfile(summary, outdir / "summary.tsv")
        paths = write_evaluation(evaluation, outdir)
    except ValueError as exc:  # --score-columns, --top-n or --external-scores that this summary cannot take
        raise click.UsageError(str(exc)) from None
    except (OSError, KeyError) as exc:
        raise click.ClickException(str(exc)) from None
    for path in paths:
        click.echo(f"egr: wrote {path}", err=True)


@main.command()
@click.argument("results", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--outdir", type=click.Path(path_type=Path), help="Output folder (default: RESULTS).")
@click.option("--score-columns", default="", callback=_comma_list,
              help="More QA score columns to rank by (as for evaluate).")
@click.option("--top-n", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--no-multiqc", is_flag=True, help="Write the MultiQC custom content only, do not run MultiQC.")
@click.option("--multiqc-config", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="MultiQC config (default: assets/multiqc_config.yml of this project).")
def report(results: Path, outdir: Path | None, score_columns: tuple[str, ...], top_n: int, no_multiqc: bool,
           multiqc_config: Path | None) -> None:
    """report.html (one self-contained file) and MultiQC custom content (*_mqc.tsv|yaml) of a results folder."""
    reason = _no_decoys(results, staged=False)
    if reason:
        raise click.BadParameter(reason, param_hint="'RESULTS'")
    from egr.multiqc_content import DEFAULT_MULTIQC_CONFIG
    from egr.report import build_report

    try:
        outputs = build_report(results, outdir, score_columns, top_n, not no_multiqc,
                               multiqc_config or DEFAULT_MULTIQC_CONFIG)
    except ValueError as exc:  # --score-columns or --top-n that this summary cannot take
        raise click.UsageError(str(exc)) from None
    except (OSError, KeyError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"egr: wrote {outputs.html}", err=True)
    if outputs.note:
        click.echo(f"egr: {outputs.note}", err=True)


DATA_SETS = "bm5,dips,haddock,dockq_examples"


def _fractions(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, ...]:
    """Callback: comma-separated numbers."""
    try:
        return tuple(float(item) for item in _comma_list(ctx, param, value))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected numbers such as 0.7,0.15,0.15") from None


@main.command()
@click.option("--data", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True,
              help="Root of <set>/<target>/{decoys,native}/ folders (the layout of shared/data).")
@click.option("--sets", default=DATA_SETS, show_default=True, callback=_comma_list,
              help="Comma-separated sets under --data.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="splits.tsv to write.")
@click.option("--fractions", default="0.7,0.15,0.15", show_default=True, callback=_fractions,
              help="train,val,test fractions of targets.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--min-seq-id", type=float, default=0.3, show_default=True)
@click.option("--coverage", type=float, default=0.5, show_default=True)
@click.option("--mmseqs", default="mmseqs", show_default=True, help="MMseqs2 executable.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True)
def split(data: Path, sets: tuple[str, ...], out: Path, fractions: tuple[float, ...], seed: int, min_seq_id: float,
          coverage: float, mmseqs: str, threads: int) -> None:
    """Split targets into train/val/test with MMseqs2 clusters (no cluster spans two splits): writes splits.tsv."""
    from egr.split import SplitError, make_splits, split_summary, write_splits

    try:
        rows = make_splits(data, sets, fractions, seed, min_seq_id, coverage, mmseqs, threads)
    except ValueError as exc:  # fractions that do not make three splits
        raise click.BadParameter(str(exc), param_hint="'--fractions'") from None
    except (SplitError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    write_splits(rows, out)
    click.echo(f"egr: wrote {out}: {split_summary(rows)}", err=True)


@main.command("prepare-training")
@click.option("--data", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--sets", default=DATA_SETS, show_default=True, callback=_comma_list)
@click.option("--cache", type=click.Path(path_type=Path), required=True, help="Folder for the prepared graphs.")
@click.option("--surface-backend", type=SURFACE_BACKENDS, default="auto", show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
def prepare_training(data: Path, sets: tuple[str, ...], cache: Path, surface_backend: str, workers: int) -> None:
    """Graphs with per-atom native targets and per-residue LDDT-Cα labels for every decoy/native pair.

    Exit status 1 when any pair failed (the others are prepared)."""
    from egr.dataset import prepare

    rows, failures = prepare(data, sets, cache, surface_backend, workers,
                             progress=lambda line: click.echo(line, err=True))
    for reason in failures:
        click.echo(f"egr: failed: {reason}", err=True)
    click.echo(f"egr: {len(rows)} decoys prepared in {cache}, {len(failures)} failed", err=True)
    sys.exit(1 if failures else 0)


@main.command()
@click.option("--cache", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--splits", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True)
@click.option("--outdir", type=click.Path(path_type=Path), required=True)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--hidden", type=click.IntRange(min=4), default=64, show_default=True)
@click.option("--layers", "num_layers", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--heads", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--lddt-weight", type=float, default=0.02, show_default=True)
@click.option("--input-qa-weight", type=float, default=0.02, show_default=True)
@click.option("--noise", "noise_sigma", type=float, default=0.1, show_default=True,
              help="σ of Gaussian input noise, Å.")
@click.option("--rigid-rotation", "rigid_rotation_deg", type=float, default=0.0, show_default=True,
              help="Max rotation of one chain, degrees.")
@click.option("--rigid-translation", type=float, default=0.0, show_default=True, help="Max shift of one chain, Å.")
@click.option("--max-atoms", type=click.IntRange(min=1), default=12000, show_default=True)
@click.option("--val-dockq-decoys", type=click.IntRange(min=0), default=6, show_default=True)
@click.option("--poses", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="egr sample-poses folder: sampled poses of the training targets for the docking steps.")
@click.option("--pools", type=click.Path(path_type=Path, exists=True, file_okay=False), multiple=True,
              help="egr dock-pools folder (repeatable): its training targets' LightDock poses feed the docking steps, "
                   "its validation targets' pools enter the checkpoint criterion.")
@click.option("--docking-weight", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Weight of the docking-quality loss (0: no docking steps).")
@click.option("--ranking-weight", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Weight of the pairwise ranking term within a target, relative to the DockQ regression.")
@click.option("--group-size", type=click.IntRange(min=2), default=8, show_default=True,
              help="Structures of one target per docking step.")
@click.option("--groups-per-base", type=click.IntRange(min=1), default=2, show_default=True,
              help="Docking steps per sampled base and epoch.")
@click.option("--groups-per-real-target", type=click.IntRange(min=1), default=1, show_default=True,
              help="Docking steps per epoch for each training target with ≥ 2 real docking decoys.")
@click.option("--groups-per-pool", type=click.IntRange(min=1), default=1, show_default=True,
              help="Docking steps per training LightDock pool (from --pools) and epoch.")
@click.option("--pool-poses", type=click.Choice(["all", "members"]), default="all", show_default=True,
              help="Poses of a training LightDock pool the docking steps draw from: all LightDock returned, or "
                   "the pool's members (its best-scored distinct poses and near-natives, as egr run gets them).")
@click.option("--val-poses-per-base", type=click.IntRange(min=0), default=24, show_default=True,
              help="Sampled poses per validation base (from --poses) in the checkpoint criterion; 0: real decoys only.")
@click.option("--head-only", is_flag=True,
              help="Train the docking head alone, on the features of the initial weights' layers (no refinement "
                   "steps); with --init-weights.")
@click.option("--seed", type=int, default=0, show_default=True)
@DEVICE
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="torch CPU threads.")
@click.option("--resume", is_flag=True, help="Continue from OUTDIR/last.pt.")
@click.option("--init-weights", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Fine-tune: start from these weights (same --hidden/--layers/--heads), validated first as epoch 0.")
def train(cache: Path, splits: Path, outdir: Path, poses: Path | None, pools: tuple[Path, ...], device: str,
          threads: int, resume: bool, init_weights: Path | None, **hyperparameters: float) -> None:
    """Train EGR on prepared graphs (one or many GPUs: torchrun --nproc_per_node=N -m egr.cli train ...)."""
    import torch

    from egr.train import TrainConfig
    from egr.train import train as train_model

    torch.set_num_threads(threads)
    cfg = TrainConfig(**hyperparameters)  # every other option is a field of TrainConfig
    train_model(cache, splits, outdir, cfg, resume=resume, device=device,
                log=lambda line: click.echo(line, err=True), poses=poses, init_weights=init_weights,
                pools=pools)


@main.command("evaluate-model")
@click.option("--weights", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True,
              callback=_weights)
@click.option("--cache", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--splits", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True)
@click.option("--split", "split_name", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@click.option("--outdir", type=click.Path(path_type=Path), required=True)
@click.option("--calibrate-gate", is_flag=True, help="Fit the never-worse gate's margin here and store it in the weights' JSON.")
@click.option("--margin", type=float, help="Gate margin to apply (default: the weights' own).")
@DEVICE
def evaluate_model(weights: Path, cache: Path, splits: Path, split_name: str, outdir: Path, calibrate_gate: bool,
                   margin: float | None, device: str) -> None:
    """Refine every decoy of a split with WEIGHTS and score it (RMSD, ΔDockQ, QA correlation, the gate)."""
    from egr.train import evaluate_weights

    evaluate_weights(weights, cache, splits, split_name, outdir, margin, calibrate_gate, device,
                     log=lambda line: click.echo(line, err=True))


# the data-set options of the commands that work on whole targets (sample-poses, dock-pools)
DATA_ROOT = click.option("--root", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True,
                         help="Root of <set>/<target>/{decoys,native}/ folders (the layout of shared/data).")
SPLITS_FILE = click.option("--splits", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True,
                           help="splits.tsv (egr split) naming each target's split.")


def _echo_skipped(rows: list[dict]) -> None:
    """One stderr line per base of ``skipped.tsv`` (set, target, base_id, reason)."""
    for row in rows:
        click.echo(f"egr: skipped {row['set']}/{row['base_id'] or row['target']}: {row['reason']}", err=True)


@main.command("sample-poses")
@DATA_ROOT
@SPLITS_FILE
@click.option("--outdir", type=click.Path(path_type=Path), required=True,
              help="Writes OUTDIR/<set>/<base_id>.base.pdb and .poses.npz, OUTDIR/index.tsv and skipped.tsv.")
@click.option("--split", "split_names", default="train,val", show_default=True, callback=_comma_list,
              help="Comma-separated splits whose targets are sampled.")
@click.option("--per-target", type=click.IntRange(min=1), default=200, show_default=True,
              help="Poses per base (the native, and for bm5 also the unbound decoy), the identity included.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Each base's seed is derived from (seed, set, target, base), whatever the order or workers.")
@click.option("--embedded-fraction", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0, show_default=True,
              help="Share of the poses that interpenetrate their receptor at a wrong site (egr.poses: 'embedded').")
@click.option("--docked-fraction", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0, show_default=True,
              help="Share of the poses that are wrong-site approaches climbed to more contacts − 10 × clashes "
                   "(egr.poses: 'docked').")
@click.option("--pushed-fraction", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0, show_default=True,
              help="Share of the poses that are the base with its ligand pushed into the receptor (egr.poses: "
                   "'pushed').")
@click.option("--clash-budget", type=click.Choice(["native", "base"]), default="native", show_default=True,
              help="Whose clashes (inter-chain pairs < 3 Å) bound a pose's: the native's, or also the base's own "
                   "(an unbound base interpenetrates at the right pose; egr.poses.SamplerConfig).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
def sample_poses(root: Path, splits: Path, outdir: Path, split_names: tuple[str, ...], per_target: int, seed: int,
                 embedded_fraction: float, docked_fraction: float, pushed_fraction: float, clash_budget: str,
                 workers: int) -> None:
    """Rigid-body docking poses with DockQ labels for every 2-chain target of the chosen splits (egr.poses)."""
    from egr.poses import SamplerConfig, sample_dataset

    config = SamplerConfig(embedded_fraction=embedded_fraction, docked_fraction=docked_fraction,
                           pushed_fraction=pushed_fraction,
                           clash_budget_from_base=clash_budget == "base")
    if config.near_native_fraction + embedded_fraction + docked_fraction + pushed_fraction > 1.0:
        raise click.BadParameter(f"near-native ({config.near_native_fraction}), embedded, docked and pushed poses "
                                 "exceed all poses",
                                 param_hint="'--embedded-fraction' / '--docked-fraction' / '--pushed-fraction'")
    result = sample_dataset(root, splits, outdir, split_names, per_target, seed, workers, config,
                            progress=lambda line: click.echo(line, err=True))
    _echo_skipped(result["skipped"])
    classes = ", ".join(f"{name} {count}" for name, count in result["classes"].items())
    click.echo(f"egr: {sum(result['classes'].values())} poses of {len(result['rows'])} bases in {outdir} "
               f"({result['reused']} bases kept from an earlier run, {len(result['skipped'])} skipped); "
               f"CAPRI classes: {classes}; {result['seconds']:.1f} s", err=True)


@main.command("split-samplesheet")
@DATA_ROOT
@SPLITS_FILE
@click.option("--split", "split_names", default="test", show_default=True, callback=_comma_list,
              help="Comma-separated splits whose targets' decoys are listed.")
@click.option("--sets", default=DATA_SETS, show_default=True, callback=_comma_list, help="Data sets under --root.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Samplesheet to write (id,decoy,native; absolute paths), the input of egr run --input.")
def split_samplesheet(root: Path, splits: Path, split_names: tuple[str, ...], sets: tuple[str, ...], out: Path) -> None:
    """The samplesheet of every decoy (with its native) of the targets of one split, for scoring a model on
    the held-out real decoys through the product path: egr run --input OUT, then egr evaluate."""
    from egr.dataset import split_pairs
    from egr.runner import write_samplesheet
    from egr.split import SplitError

    try:
        pairs = split_pairs(root, splits, split_names, sets)
        if not pairs:
            raise click.UsageError(f"no decoy of the {','.join(split_names)} targets of {splits} in the sets "
                                   f"{','.join(sets)} under {root}")
        write_samplesheet(out, [{"id": pair.decoy_id, "decoy": pair.decoy.resolve(),
                                 "native": pair.native.resolve()} for pair in pairs])
    except (OSError, ValueError, SplitError) as exc:  # a set missing under --root, a malformed splits.tsv, --out
        raise click.ClickException(str(exc)) from None
    targets = len({(pair.set_name, pair.target) for pair in pairs})
    click.echo(f"egr: wrote {out}: {len(pairs)} decoys of {targets} targets", err=True)


@main.command("dock-pools")
@DATA_ROOT
@SPLITS_FILE
@click.option("--outdir", type=click.Path(path_type=Path), required=True,
              help="Writes OUTDIR/samplesheet.csv, lightdock_scores.tsv, pool.tsv, skipped.tsv, decoys/ and per base "
                   "OUTDIR/<set>/<base_id>.base.pdb and .pool.npz.")
@click.option("--split", "split_names", default="val,test", show_default=True, callback=_comma_list,
              help="Comma-separated splits whose targets are docked.")
@click.option("--sets", default="bm5,dips", show_default=True, callback=_comma_list,
              help="Data sets whose targets are docked (one base per target: BM5's unbound partners, else the native).")
@click.option("--swarms", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--glowworms", type=click.IntRange(min=1), default=30, show_default=True, help="Poses per swarm.")
@click.option("--steps", type=click.IntRange(min=1), default=30, show_default=True, help="GSO steps.")
@click.option("--top", "n_top", type=click.IntRange(min=1), default=20, show_default=True,
              help="Best-scored distinct poses per pool.")
@click.option("--near", "n_near", type=click.IntRange(min=0), default=5, show_default=True,
              help="At most this many further acceptable-or-better poses LightDock found but ranked lower.")
@click.option("--restraints", type=click.Choice(["none", "true-interface"]), default="none", show_default=True,
              help="true-interface: the base's interface residues go to LightDock as restraints, as in the "
                   "benchmarks' 'true interface' scenario (egr.dock_pools).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Each target's LightDock seed is derived from (seed, set, target).")
@click.option("--max-targets", type=click.IntRange(min=1), default=None,
              help="Per split, dock only this many targets, a subset drawn with --seed (default: all).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
def dock_pools(root: Path, splits: Path, outdir: Path, split_names: tuple[str, ...], sets: tuple[str, ...],
               swarms: int, glowworms: int, steps: int, n_top: int, n_near: int, restraints: str, seed: int,
               max_targets: int | None, workers: int) -> None:
    """Single-program decoy pools: LightDock docks each target, its own score picks the pool (egr.dock_pools).
    Then: egr run --input OUTDIR/samplesheet.csv and egr evaluate --external-scores OUTDIR/lightdock_scores.tsv."""
    from egr.dock_pools import PoolConfig, dock_dataset, lightdock_available

    available, reason = lightdock_available()
    if not available:
        raise click.UsageError(reason)
    config = PoolConfig(swarms=swarms, glowworms=glowworms, steps=steps, n_top=n_top, n_near=n_near,
                        restraints=restraints.replace("-", "_"))
    result = dock_dataset(root, splits, outdir, split_names, sets, seed, workers, config,
                          progress=lambda line: click.echo(line, err=True), max_targets=max_targets)
    _echo_skipped(result["skipped"])
    hits = sum(row["capri_class"] != "incorrect" for row in result["rows"])
    click.echo(f"egr: {len(result['rows'])} pool decoys ({hits} acceptable or better) in {outdir} "
               f"({result['reused']} bases kept from an earlier run, {len(result['skipped'])} skipped); "
               f"{result['seconds']:.1f} s", err=True)
    if result["skipped"]:
        sys.exit(1)


@main.command("haddock-score")
@click.argument("results", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="TSV to write (default: RESULTS/haddock_scores.tsv, which egr evaluate and egr report read).")
@click.option("--nemsteps", type=click.IntRange(min=0), default=50, show_default=True,
              help="Minimisation steps before scoring (HADDOCK's emscoring default: 50).")
def haddock_score(results: Path, out: Path | None, nemsteps: int) -> None:
    """HADDOCK3's score (emscoring; no native needed, lower is better) of every cleaned decoy of a results
    folder, as a reference ranker: egr evaluate and egr report rank by RESULTS/haddock_scores.tsv beside
    EGR's score. Needs HADDOCK3 ($EGR_HADDOCK3). Exit 1 when a decoy failed (its cell is empty)."""
    from egr.baselines.haddock import available, score_results

    ok, reason = available()
    if not ok:
        raise click.UsageError(reason)
    out = out or layout.haddock_scores(results)
    scored, failures = score_results(results, out, nemsteps=nemsteps,
                                     progress=lambda line: click.echo(f"egr: {line}", err=True))
    for failure in failures:
        click.echo(f"egr: failed: {failure}", err=True)
    click.echo(f"egr: {scored} decoys scored -> {out}", err=True)
    sys.exit(1 if failures else 0)


def _step_id(decoy_id: str | None, path: Path, suffix: str) -> str:
    from egr.structure import sanitize_id

    name = sanitize_id(decoy_id or path)
    return name[: -len(suffix)] if decoy_id is None and name.endswith(suffix) else name


if __name__ == "__main__":
    main()
