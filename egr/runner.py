"""``egr run``: every decoy of a glob or samplesheet through ingest → surface → featurize → refine,
then the comparison refiners and, where a native exists, scoring.

Three phases: (1) the CPU steps run in a pool of ``workers`` processes while inference runs in the
main process in batches (one model in memory, GPU-friendly); (2) each comparison refiner named in
``refiners`` runs on each decoy in the pool; (3) decoys with a native are scored in the pool. A decoy
that fails gets status ``failed`` and a one-line reason and the others go on; a refiner that fails on
one decoy fails only that decoy's cell for that method. Outputs from an earlier run that are complete
and valid for the same input bytes and weights are reused (status ``skipped``). ``summary.tsv`` has
one row per decoy.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from egr import __version__
from egr.allocator import keep_freed_memory
from egr.baselines import METHODS as BASELINE_METHODS
from egr.baselines import run_baseline
from egr.compare import match_native, native_index, write_score_file
from egr.io import atomic_write_json, file_sha256
from egr.pipeline import PrepOptions, decoy_dir, prepare_decoy
from egr.refine import refine_bundles, write_outputs
from egr.structure import IngestError, sanitize_id
from egr.summary import decoy_row, write_summary
from egr.weights import ModelInfo, load_model

OUTPUT_SUFFIXES = ("_refined.pdb", "_plddt.csv", "_scores.json")


@dataclass(frozen=True)
class DecoyInput:
    """One row of work: sanitised ID, the path as the user gave it, the resolved path, optional native."""

    id: str
    input: str
    path: Path
    native: Path | None = None


@dataclass(frozen=True)
class RunOptions:
    outdir: Path
    prep: PrepOptions = field(default_factory=PrepOptions)
    weights: Path | None = None
    device: str = "cpu"
    batch_size: int = 8
    workers: int = 1
    resume: bool = True
    progress: bool = True
    natives: Path | None = None  # folder of natives matched to decoys by name (egr.compare)
    refiners: tuple[str, ...] = ("egr",)  # egr and any of egr.baselines.METHODS
    report: bool = True  # report.html and MultiQC custom content at the end
    multiqc: bool = True  # also run MultiQC on them, where it is installed
    gate: bool = True  # the never-worse gate of the weights (egr.gate); False writes the raw refinement


class InputError(ValueError):
    """The run as a whole cannot start (no decoys, unreadable samplesheet)."""


def collect_inputs(decoys: str | None = None, samplesheet: Path | None = None) -> list[DecoyInput]:
    """Decoys from a glob pattern or a CSV samplesheet (``id,decoy[,native]``; relative paths are taken
    relative to the samplesheet's folder). IDs are sanitised and made unique with ``_2``, ``_3``, …"""
    rows: list[tuple[str, str, Path, Path | None]] = []
    if samplesheet is not None:
        rows = _read_samplesheet(Path(samplesheet))
    if decoys is not None:
        matches = sorted(glob.glob(os.path.expanduser(decoys), recursive=True))
        if not matches and Path(decoys).exists() is False and not glob.has_magic(decoys):
            matches = [decoys]  # a single named file that is missing: report it as a failed decoy
        rows += [(sanitize_id(m), m, Path(m), None) for m in matches]
    if not rows:
        raise InputError(f"no decoys matched {decoys!r}" if decoys else "no decoys given (use --decoys or --input)")
    seen: dict[str, int] = {}
    unique = []
    for decoy_id, given, path, native in rows:
        seen[decoy_id] = seen.get(decoy_id, 0) + 1
        if seen[decoy_id] > 1:
            decoy_id = f"{decoy_id}_{seen[decoy_id]}"
        unique.append(DecoyInput(decoy_id, given, path, native))
    return unique


def _read_samplesheet(path: Path) -> list[tuple[str, str, Path, Path | None]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in reader.fieldnames or []]
            if "decoy" not in header:
                raise InputError(f"{path}: samplesheet needs a 'decoy' column (columns: id,decoy[,native])")
            rows = []
            for number, row in enumerate(reader, start=2):
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
                if not row.get("decoy"):
                    raise InputError(f"{path}:{number}: empty 'decoy' value")
                decoy = _resolve(path, row["decoy"])
                native = _resolve(path, row["native"]) if row.get("native") else None
                rows.append((sanitize_id(row.get("id") or row["decoy"]), row["decoy"], decoy, native))
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: unreadable samplesheet ({exc})") from None


def _resolve(samplesheet: Path, value: str) -> Path:
    candidate = Path(os.path.expanduser(value))
    return candidate if candidate.is_absolute() else samplesheet.parent / candidate


def completed_scores(item: DecoyInput, outdir: Path, model: ModelInfo) -> dict | None:
    """The scores of an earlier run if its outputs are complete and valid for this input and model."""
    folder = decoy_dir(outdir, item.id)
    paths = [folder / f"{item.id}{suffix}" for suffix in OUTPUT_SUFFIXES]
    if not all(p.is_file() and p.stat().st_size > 0 for p in paths):
        return None
    try:
        scores = json.loads(paths[2].read_text())
    except (OSError, ValueError):
        return None
    earlier_model = scores.get("model", {})
    if (scores.get("status") != "ok" or earlier_model.get("sha256") != model.sha256
            or earlier_model.get("gate_margin") != model.gate_margin
            or scores.get("input_sha256") != file_sha256(item.path)):
        return None
    pdb_tail = paths[0].read_bytes()[-64:]
    csv_rows = paths[1].read_text().count("\n") - 1
    if not pdb_tail.rstrip().endswith(b"END") or csv_rows != scores.get("n_residues"):
        return None
    return scores


def _prepare(item: DecoyInput, outdir: Path, prep: PrepOptions):
    """Worker: returns (bundle, record) or (None, reason); never raises, so one decoy cannot stop the pool."""
    try:
        return prepare_decoy(item.path, item.id, outdir, prep)
    except IngestError as exc:
        return None, exc.reason
    except Exception as exc:  # any step failure belongs to this decoy alone
        return None, _one_line(exc)


def _worker_init() -> None:
    keep_freed_memory()  # a spawned worker does not inherit the parent's malloc settings
    torch.set_num_threads(1)


def run(inputs: list[DecoyInput], options: RunOptions) -> list[dict]:
    """Process all decoys and write ``summary.tsv``; returns the summary rows (one per decoy, input order)."""
    outdir = Path(options.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    unknown = set(options.refiners) - {"egr", *BASELINE_METHODS}
    if unknown:
        raise ValueError(f"unknown refiner(s) {', '.join(sorted(unknown))}; choose from egr, {', '.join(BASELINE_METHODS)}")
    inputs = attach_natives(inputs, options.natives)
    model, model_info = load_model(options.weights, options.device, gate=options.gate)
    _write_run_info(outdir, options, model_info, len(inputs))
    pool = ProcessPoolExecutor(max_workers=options.workers, initializer=_worker_init) if options.workers > 1 else None
    try:
        status = _refine_all(inputs, options, model, model_info, pool)
        live = [item for item in inputs if status[item.id] != "failed"]
        baselines = [m for m in BASELINE_METHODS if m in options.refiners]
        tasks = [(item, outdir, method, options.resume) for item in live for method in baselines]
        list(_map(pool, _baseline, tasks))
        tasks = [(item, outdir, method, options.resume) for item in live if item.native is not None
                 for method in ("decoy", "egr", *baselines)]
        list(_map(pool, _score, tasks))
    finally:
        if pool is not None:
            pool.shutdown()
    rows = []
    for item in inputs:
        row = decoy_row(decoy_dir(outdir, item.id) / f"{item.id}_scores.json")
        row["input"] = item.input
        if status[item.id] == "skipped":
            row.update(status="skipped", reason="outputs complete from an earlier run")
        rows.append(row)
    write_summary(outdir / "summary.tsv", rows)
    if options.report:
        _report(outdir, options.multiqc)
    return rows


def _report(outdir: Path, multiqc: bool) -> None:
    """The run's report; a report that cannot be built is a warning, the run's outputs stand."""
    from egr.report import build_report  # pandas and the HTML renderer load only when a report is made

    try:
        outputs = build_report(outdir, multiqc=multiqc)
        if outputs.note:
            print(f"egr: {outputs.note}", file=sys.stderr)
    except Exception as exc:
        print(f"egr: warning: report not written: {_one_line(exc)}", file=sys.stderr)


def attach_natives(inputs: list[DecoyInput], natives: Path | None) -> list[DecoyInput]:
    """Fill in each decoy's native from ``natives`` by name (egr.compare), where none was given."""
    if natives is None:
        return inputs
    if not Path(natives).is_dir():
        raise InputError(f"--natives {natives}: not a folder")
    index = native_index(Path(natives))
    return [item if item.native is not None else
            DecoyInput(item.id, item.input, item.path, match_native(item.id, index)) for item in inputs]


def _map(pool: ProcessPoolExecutor | None, function, tasks: list[tuple]):
    """Results of ``function(*task)`` in task order, in the pool when there is one."""
    if pool is None:
        return (function(*task) for task in tasks)
    return pool.map(function, *zip(*tasks)) if tasks else iter(())


def _refine_all(inputs: list[DecoyInput], options: RunOptions, model, model_info: ModelInfo,
                pool: ProcessPoolExecutor | None) -> dict[str, str]:
    """Phase 1: prepare in the pool, refine in batches here; returns the status per decoy ID."""
    outdir = Path(options.outdir)
    rows: dict[str, str] = {}
    todo = []
    for item in inputs:
        if options.resume and completed_scores(item, outdir, model_info) is not None:
            rows[item.id] = "skipped"
        else:
            todo.append(item)
    bar = tqdm(total=len(inputs), initial=len(inputs) - len(todo), desc="decoys", unit="decoy",
               disable=not options.progress, file=sys.stderr)
    pending: list[tuple[DecoyInput, object, dict]] = []

    def flush() -> None:
        bundles = [bundle for _, bundle, _ in pending]
        for (item, bundle, record), outcome in zip(pending, _refine_each(bundles, model, model_info, options)):
            if isinstance(outcome, str):
                rows[item.id] = _fail(item, outdir, outcome, record)
            else:
                record.update(input=item.input, input_sha256=file_sha256(item.path))
                write_outputs(bundle, outcome, outdir, model_info, options.device, record)
                rows[item.id] = "ok"
        bar.update(len(pending))
        pending.clear()

    tasks = [(item, outdir, options.prep) for item in todo]
    for item, (bundle, record) in zip(todo, _map(pool, _prepare, tasks)):
        if bundle is None:
            rows[item.id] = _fail(item, outdir, record, {})
            bar.update(1)
            continue
        pending.append((item, bundle, record))
        if len(pending) >= options.batch_size:
            flush()
    flush()
    bar.close()
    return rows


def _baseline(item: DecoyInput, outdir: Path, method: str, resume: bool) -> dict:
    """Worker: one comparison refiner on one decoy; writes ``<id>_<method>.pdb`` and ``.json``."""
    folder = decoy_dir(outdir, item.id)
    record_path = folder / f"{item.id}_{method}.json"
    sha = file_sha256(item.path)
    if resume and record_path.is_file():
        try:
            earlier = json.loads(record_path.read_text())
        except ValueError:
            earlier = {}
        output = earlier.get("output")
        if earlier.get("status") == "ok" and earlier.get("input_sha256") == sha and output and Path(output).is_file():
            return earlier
    result = run_baseline(method, item.path, folder / f"{item.id}_{method}.pdb")
    record = {**result.as_dict(), "seconds": round(result.seconds, 3), "input_sha256": sha}
    atomic_write_json(record_path, record)
    return record


def _score(item: DecoyInput, outdir: Path, method: str, resume: bool) -> None:
    """Worker: ``<id>_<method>_dockq.json`` of one structure against the decoy's native."""
    folder = decoy_dir(outdir, item.id)
    structure = folder / (f"{item.id}_clean.pdb" if method == "decoy" else
                          f"{item.id}_refined.pdb" if method == "egr" else f"{item.id}_{method}.pdb")
    if structure.is_file():
        write_score_file(structure, item.native, folder / f"{item.id}_{method}_dockq.json", reuse=resume)


def _refine_each(bundles: list, model, model_info: ModelInfo, options: RunOptions) -> list:
    """Refinements in order; if a batch fails (e.g. out of memory), each decoy is retried alone and
    a decoy that still fails gets its one-line reason instead."""
    if not bundles:
        return []
    try:
        return refine_bundles(bundles, model, options.device, options.batch_size, model_info.gate_margin)
    except Exception as exc:
        if len(bundles) == 1:
            return [f"refinement failed: {_one_line(exc)}"]
    return [outcome for bundle in bundles for outcome in _refine_each([bundle], model, model_info, options)]


def _one_line(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__


def _fail(item: DecoyInput, outdir: Path, reason: str, record: dict) -> str:
    scores = {"id": item.id, "status": "failed", "reason": reason, "input": item.input, **record,
              "egr_version": __version__}
    atomic_write_json(decoy_dir(outdir, item.id) / f"{item.id}_scores.json", scores)
    return "failed"


def _write_run_info(outdir: Path, options: RunOptions, model_info: ModelInfo, n_inputs: int) -> None:
    info = {
        "egr_version": __version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "n_decoys": n_inputs,
        "options": {**asdict(options), "outdir": str(options.outdir)},
        "model": asdict(model_info),
        "versions": {"torch": torch.__version__, "python": sys.version.split()[0]},
    }
    atomic_write_json(outdir / "pipeline_info" / "run_info.json", info)
