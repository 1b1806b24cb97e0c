"""Natives for decoys, and the per-method score files ``<id>_<method>_dockq.json``.

Each structure of a decoy (``decoy`` = the cleaned input, ``egr``, each comparison refiner) is scored
against the native into ``<id>_<method>_dockq.json`` by :func:`score_decoy`, for ``egr run`` and for
the Nextflow DOCKQ_SCORE step (``egr score ... --outdir``) alike; :mod:`egr.summary` turns them into
columns.

All structures of a decoy are scored under one chain mapping, the decoy's best. On a homomer DockQ
searches the mappings of model chains onto native chains and keeps the best; searched per structure, a
refiner that moved its atoms by 0.1 Å can tip a near-tie to the other mapping and show a ΔLRMSD of
several Å that no atom made. So the decoy is scored first, with the search, and every other structure
of it with the decoy's mapping fixed: the deltas compare like with like. Each file records the
``mapping`` used and its ``mapping_source``: :data:`MAPPING_SEARCH` (the decoy's own search),
:data:`MAPPING_DECOY` or, when the decoy could not be scored, :data:`MAPPING_OWN_SEARCH`.

Natives are found by the samplesheet's ``native`` column or, with ``--natives DIR``, by name: the native
whose sanitised file name (extensions removed) equals the decoy ID or is its longest prefix followed by
``_`` (``1AK4.pdb`` serves ``1AK4_ti5-itw_212w``). The Nextflow pipeline applies the same rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from egr import layout
from egr.io import atomic_write_json, file_sha256
from egr.metrics import ScoringError, score_report
from egr.structure import sanitize_id

NATIVE_SUFFIXES = (".pdb", ".pdb.gz", ".cif", ".cif.gz", ".mmcif", ".mmcif.gz", ".ent", ".ent.gz")

MAPPING_SEARCH = "search"  # DockQ's search over chain mappings: how the decoy itself is scored
MAPPING_DECOY = "decoy"  # the decoy's best mapping, fixed
MAPPING_OWN_SEARCH = "search (decoy not scored)"  # no decoy mapping to fix: this structure's own search

def native_index(natives_dir: Path) -> dict[str, Path]:
    """Sanitised name → native file, for every structure file directly in ``natives_dir``."""
    files = [p for p in Path(natives_dir).iterdir() if p.is_file() and p.name.lower().endswith(NATIVE_SUFFIXES)]
    return {sanitize_id(p): p for p in sorted(files)}


def match_native(decoy_id: str, natives: dict[str, Path]) -> Path | None:
    """The native for ``decoy_id`` by the longest-prefix rule of the module docstring, or None."""
    candidates = [name for name in natives
                  if decoy_id == name or decoy_id.startswith(f"{name}_")]
    return natives[max(candidates, key=len)] if candidates else None


def structure_file(folder: Path, decoy_id: str, method: str) -> Path:
    """The structure scored as ``method``: ``<id>_clean.pdb`` (decoy), ``<id>_refined.pdb`` (egr) or
    ``<id>_<method>.pdb`` (a comparison refiner), in ``folder``."""
    return Path(folder) / f"{decoy_id}{layout.structure_suffix(method)}"


def method_of(decoy_id: str, structure: Path) -> str | None:
    """The method whose structure file ``structure`` is (by name, see :func:`structure_file`), or None."""
    return layout.method_of(decoy_id, structure)


def score_file(folder: Path, decoy_id: str, method: str) -> Path:
    """``<id>_<method>_dockq.json`` in ``folder``."""
    return Path(folder) / f"{decoy_id}{layout.dockq_suffix(method)}"


def write_score_file(model: Path, native: Path, out_json: Path, reuse: bool = True, mapping: str | None = None,
                     mapping_source: str = MAPPING_SEARCH) -> dict:
    """Write ``egr score --json`` of ``model`` against ``native`` under ``mapping`` (DockQ's
    ``MODELCHAINS:NATIVECHAINS``; None searches) to ``out_json`` and return it, with ``mapping_source``
    and the SHA-256 of both files added; ``{"error": reason}`` stands in for the scores when it cannot
    be scored. With ``reuse``, a file made from the same bytes under the same mapping is kept."""
    fingerprint = {"model_sha256": file_sha256(model), "native_sha256": file_sha256(native),
                   "mapping_source": mapping_source}
    if reuse and out_json.is_file():
        try:
            earlier = json.loads(out_json.read_text())
            # A searched file holds whatever mapping the search found; a fixed one must hold this one.
            same_mapping = mapping is None or earlier.get("mapping") == mapping
            if same_mapping and all(earlier.get(k) == v for k, v in fingerprint.items()):
                return earlier
        except ValueError:
            pass
    failed = {"model": str(model), "native": str(native), "mapping": mapping}
    try:
        report = score_report(model, native, mapping)
    except ScoringError as exc:
        report = {**failed, "error": f"not scored against {Path(native).name}: {exc}"}
    except Exception as exc:  # a scoring crash belongs to this structure's cells alone
        report = {**failed, "error": f"scoring failed: {type(exc).__name__}: {exc}"}
    report.update(fingerprint)
    atomic_write_json(out_json, report)
    return report


def score_decoy(decoy_id: str, structures: Mapping[str, Path], native: Path, folder: Path,
                reuse: bool = True) -> dict[str, dict]:
    """Score each structure of one decoy (method → file; ``decoy`` is the cleaned input) against
    ``native`` into ``folder/<id>_<method>_dockq.json`` and return the reports by method.

    The decoy is scored first, with DockQ's mapping search; every other structure is scored under the
    decoy's best mapping (module docstring), or with its own search, so recorded, when there is no
    decoy or it cannot be scored.
    """
    reports: dict[str, dict] = {}
    mapping, source = None, MAPPING_OWN_SEARCH
    if "decoy" in structures:
        reports["decoy"] = write_score_file(structures["decoy"], native, score_file(folder, decoy_id, "decoy"), reuse)
        if "error" not in reports["decoy"]:
            mapping, source = reports["decoy"]["mapping"], MAPPING_DECOY
    for method, structure in structures.items():
        if method != "decoy":
            reports[method] = write_score_file(structure, native, score_file(folder, decoy_id, method), reuse,
                                               mapping, source)
    return reports
