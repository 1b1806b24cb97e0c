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
import hashlib
import io
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
from egr.baselines import METHODS as BASELINE_METHODS
from egr.baselines import run_baseline
from egr.compare import lddt_agreement, match_native, native_index, score_methods
from egr.io import atomic_write_json, atomic_write_text
from egr.metrics import ScoringError
from egr.pipeline import PrepOptions, decoy_dir, prepare_decoy
from egr.refine import refine_bundles, write_outputs
from egr.structure import IngestError, sanitize_id
from egr.weights import ModelInfo, load_model

SUMMARY_COLUMNS = (
    "id", "input", "status", "reason", "target", "mean_plddt", "interface_plddt", "n_chains", "n_residues",
    "n_atoms", "rmsd_to_input", "surface_backend", "warnings",
    "seconds_ingest", "seconds_surface", "seconds_featurize", "seconds_refine", "seconds_total", "seconds_egr",
)
SCORE_METHODS = ("decoy", "egr", *BASELINE_METHODS)
SCORE_COLUMNS = (
    *(f"{metric}_{method}" for method in SCORE_METHODS for metric in ("dockq", "fnat", "irmsd", "lrmsd")),
    *(f"delta_{metric}_{method}" for method in SCORE_METHODS[1:] for metric in ("dockq", "fnat", "irmsd", "lrmsd")),
    "lddt_pearson", "lddt_spearman", "lddt_mae", "true_lddt_mean", "score_notes",
)
BASELINE_COLUMNS = tuple(f"{kind}_{method}" for method in BASELINE_METHODS for kind in ("status", "seconds", "reason"))
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
    unknown = set(options.refiners) - {"egr", *BASELINE_METHODS}
    if unknown:
        raise ValueError(f"unknown refiner(s) {', '.join(sorted(unknown))}; choose from egr, {', '.join(BASELINE_METHODS)}")
    inputs = attach_natives(inputs, options.natives)
    model, model_info = load_model(options.weights, options.device)
    _write_run_info(outdir, options, model_info, len(inputs))
    pool = ProcessPoolExecutor(max_workers=options.workers, initializer=_worker_init) if options.workers > 1 else None
    try:
        rows = _refine_all(inputs, options, model, model_info, pool)
        live = [item for item in inputs if rows[item.id]["status"] != "failed"]
        baselines = [m for m in BASELINE_METHODS if m in options.refiners]
        tasks = [(item, outdir, method, options.resume) for item in live for method in baselines]
        for (item, _, method, _), result in zip(tasks, _map(pool, _baseline, tasks)):
            rows[item.id].update({f"status_{method}": result["status"], f"seconds_{method}": result["seconds"],
                                  f"reason_{method}": result["reason"]})
        tasks = [(item, outdir, baselines, options.resume) for item in live if item.native is not None]
        for (item, *_), columns in zip(tasks, _map(pool, _score, tasks)):
            rows[item.id].update(columns)
    finally:
        if pool is not None:
            pool.shutdown()
    ordered = [rows[item.id] for item in inputs]
    write_summary(outdir / "summary.tsv", ordered)
    return ordered


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
                pool: ProcessPoolExecutor | None) -> dict[str, dict]:
    """Phase 1: prepare in the pool, refine in batches here; returns a summary row per decoy ID."""
    outdir = Path(options.outdir)
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
    sha = input_sha256(item.path)
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


def _score(item: DecoyInput, outdir: Path, baselines: list[str], resume: bool) -> dict:
    """Worker: score every method's structure of one decoy against its native (cached by content)."""
    folder = decoy_dir(outdir, item.id)
    structures = {"decoy": folder / f"{item.id}_clean.pdb", "egr": folder / f"{item.id}_refined.pdb"}
    structures.update({m: folder / f"{item.id}_{m}.pdb" for m in baselines if (folder / f"{item.id}_{m}.pdb").is_file()})
    target = sanitize_id(item.native)
    if not item.native.is_file():
        return {"target": target, "score_notes": f"native not found: {item.native}"}
    fingerprint = {"native": input_sha256(item.native), **{m: input_sha256(p) for m, p in structures.items()}}
    cache = folder / f"{item.id}_native_scores.json"
    if resume and cache.is_file():
        try:
            earlier = json.loads(cache.read_text())
            if earlier.get("fingerprint") == fingerprint:
                return earlier["columns"]
        except (ValueError, KeyError):
            pass
    columns: dict = {"target": target}
    try:
        scores, notes = score_methods(item.native, structures)
        columns.update(scores)
        plddt_rows = _read_plddt(folder / f"{item.id}_plddt.csv")
        columns.update(lddt_agreement(structures["egr"], item.native, plddt_rows, folder / f"{item.id}_lddt.csv"))
    except ScoringError as exc:
        notes = [f"not scored against {item.native.name}: {exc}"]
    except Exception as exc:  # a scoring crash belongs to this decoy's score cells alone
        notes = [f"scoring failed: {_one_line(exc)}"]
    columns["score_notes"] = " | ".join(notes)
    atomic_write_json(cache, {"native": str(item.native), "fingerprint": fingerprint, "columns": columns})
    return columns


def _read_plddt(path: Path) -> list[tuple[str, int, str, str, float]]:
    with path.open(newline="") as handle:
        return [(r["chain"], int(r["resseq"]), r["icode"], r["resname"], float(r["plddt"]) if r["plddt"] else float("nan"))
                for r in csv.DictReader(handle)]


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
        "target": sanitize_id(item.native) if item.native else "",
        "mean_plddt": scores.get("mean_plddt"), "interface_plddt": scores.get("interface_plddt"),
        "n_chains": len(scores["chains"]) if scores.get("chains") else None,
        "n_residues": scores.get("n_residues"), "n_atoms": scores.get("n_atoms"),
        "rmsd_to_input": scores.get("rmsd_to_input"),
        "surface_backend": ",".join(f"{ch}:{b}" for ch, b in backends.items()),
        "warnings": " | ".join(scores.get("warnings", [])),
        **{f"seconds_{s}": seconds.get(s) for s in steps},
        "seconds_total": round(total, 4) if total is not None else None,
        # the same wall time under the per-method name the comparison refiners use (seconds_openmm, …)
        "seconds_egr": round(total, 4) if total is not None else None,
    }


def write_summary(path: Path, rows: list[dict]) -> None:
    """TSV with the fixed columns first, then the score and refiner columns that any row has."""
    present = {key for row in rows for key, value in row.items() if value not in (None, "")}
    columns = [*SUMMARY_COLUMNS, *(c for c in (*SCORE_COLUMNS, *BASELINE_COLUMNS) if c in present)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, delimiter="\t", lineterminator="\n",
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
