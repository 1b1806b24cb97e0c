"""``egr run``: every decoy of a glob or samplesheet through ingest → surface → featurize → refine.

The CPU steps run in a pool of ``workers`` processes; inference runs in the main process in batches
(one model in memory, GPU-friendly). A decoy that fails gets status ``failed`` and a one-line reason
and the others go on; a decoy whose outputs from an earlier run are complete and valid (same input
bytes, same weights) is ``skipped`` and keeps them. ``summary.tsv`` has one row per decoy.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import os
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from egr import __version__
from egr.io import atomic_write_json, atomic_write_text
from egr.pipeline import PrepOptions, decoy_dir, prepare_decoy
from egr.refine import refine_bundles, write_outputs
from egr.structure import IngestError, sanitize_id
from egr.weights import ModelInfo, load_model

SUMMARY_COLUMNS = (
    "id", "input", "status", "reason", "mean_plddt", "interface_plddt", "n_chains", "n_residues", "n_atoms",
    "rmsd_to_input", "surface_backend", "warnings",
    "seconds_ingest", "seconds_surface", "seconds_featurize", "seconds_refine", "seconds_total",
)
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


def input_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


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
    if (scores.get("status") != "ok" or scores.get("model", {}).get("sha256") != model.sha256
            or scores.get("input_sha256") != input_sha256(item.path)):
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
    torch.set_num_threads(1)


def run(inputs: list[DecoyInput], options: RunOptions) -> list[dict]:
    """Process all decoys and write ``summary.tsv``; returns the summary rows (one per decoy, input order)."""
    outdir = Path(options.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    model, model_info = load_model(options.weights, options.device)
    _write_run_info(outdir, options, model_info, len(inputs))
    rows: dict[str, dict] = {}
    todo = []
    for item in inputs:
        done = completed_scores(item, outdir, model_info) if options.resume else None
        if done is not None:
            rows[item.id] = _summary_row(item, done, "skipped", "outputs complete from an earlier run")
        else:
            todo.append(item)
    bar = tqdm(total=len(inputs), initial=len(inputs) - len(todo), desc="decoys", unit="decoy",
               disable=not options.progress, file=sys.stderr)
    pending: list[tuple[DecoyInput, object, dict]] = []

    def flush() -> None:
        bundles = [bundle for _, bundle, _ in pending]
        for (item, bundle, record), outcome in zip(pending, _refine_each(bundles, model, options)):
            if isinstance(outcome, str):
                rows[item.id] = _fail(item, outdir, outcome, record)
            else:
                record["input_sha256"] = input_sha256(item.path)
                scores = write_outputs(bundle, outcome, outdir, model_info, options.device, record)
                rows[item.id] = _summary_row(item, scores, "ok", "")
        bar.update(len(pending))
        pending.clear()

    def accept(item: DecoyInput, result) -> None:
        bundle, record = result
        if bundle is None:
            rows[item.id] = _fail(item, outdir, record, {})
            bar.update(1)
            return
        pending.append((item, bundle, record))
        if len(pending) >= options.batch_size:
            flush()

    if options.workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=options.workers, initializer=_worker_init) as pool:
            futures: list[tuple[DecoyInput, Future]] = [
                (item, pool.submit(_prepare, item, outdir, options.prep)) for item in todo
            ]
            for item, future in futures:
                accept(item, future.result())
    else:
        for item in todo:
            accept(item, _prepare(item, outdir, options.prep))
    flush()
    bar.close()
    ordered = [rows[item.id] for item in inputs]
    write_summary(outdir / "summary.tsv", ordered)
    return ordered


def _refine_each(bundles: list, model, options: RunOptions) -> list:
    """Refinements in order; if a batch fails (e.g. out of memory), each decoy is retried alone and
    a decoy that still fails gets its one-line reason instead."""
    if not bundles:
        return []
    try:
        return refine_bundles(bundles, model, options.device, options.batch_size)
    except Exception as exc:
        if len(bundles) == 1:
            return [f"refinement failed: {_one_line(exc)}"]
    return [outcome for bundle in bundles for outcome in _refine_each([bundle], model, options)]


def _one_line(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__


def _fail(item: DecoyInput, outdir: Path, reason: str, record: dict) -> dict:
    scores = {"id": item.id, "status": "failed", "reason": reason, "input": item.input, **record,
              "egr_version": __version__}
    atomic_write_json(decoy_dir(outdir, item.id) / f"{item.id}_scores.json", scores)
    return _summary_row(item, scores, "failed", reason)


def _summary_row(item: DecoyInput, scores: dict, status: str, reason: str) -> dict:
    seconds = scores.get("seconds", {})
    steps = ("ingest", "surface", "featurize", "refine")
    total = sum(seconds.get(s, 0.0) for s in steps) if seconds else None
    backends = scores.get("surface_backend") or {}
    return {
        "id": item.id, "input": item.input, "status": status, "reason": reason,
        "mean_plddt": scores.get("mean_plddt"), "interface_plddt": scores.get("interface_plddt"),
        "n_chains": len(scores["chains"]) if scores.get("chains") else None,
        "n_residues": scores.get("n_residues"), "n_atoms": scores.get("n_atoms"),
        "rmsd_to_input": scores.get("rmsd_to_input"),
        "surface_backend": ",".join(f"{ch}:{b}" for ch, b in backends.items()),
        "warnings": " | ".join(scores.get("warnings", [])),
        **{f"seconds_{s}": seconds.get(s) for s in steps},
        "seconds_total": round(total, 4) if total is not None else None,
    }


def write_summary(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(SUMMARY_COLUMNS), delimiter="\t", lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else str(v).replace("\t", " ").replace("\n", " ")) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


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
