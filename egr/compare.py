"""Natives for decoys, and the per-method score files ``<id>_<method>_dockq.json``.

Each structure of a decoy (``decoy`` = the cleaned input, ``egr``, each comparison refiner) is scored
against the native into ``<id>_<method>_dockq.json``, the same file the Nextflow DOCKQ_SCORE step
writes with ``egr score --json``; :mod:`egr.summary` turns them into columns.

Natives are found by the samplesheet's ``native`` column or, with ``--natives DIR``, by name: the native
whose sanitised file name (extensions removed) equals the decoy ID or is its longest prefix followed by
``_`` (``1AK4.pdb`` serves ``1AK4_ti5-itw_212w``). The Nextflow pipeline applies the same rule.
"""

from __future__ import annotations

import json
from pathlib import Path

from egr.io import atomic_write_json, file_sha256
from egr.metrics import ScoringError, score_report
from egr.structure import sanitize_id

NATIVE_SUFFIXES = (".pdb", ".pdb.gz", ".cif", ".cif.gz", ".mmcif", ".mmcif.gz", ".ent", ".ent.gz")


def native_index(natives_dir: Path) -> dict[str, Path]:
    """Sanitised name → native file, for every structure file directly in ``natives_dir``."""
    files = [p for p in Path(natives_dir).iterdir() if p.is_file() and p.name.lower().endswith(NATIVE_SUFFIXES)]
    return {sanitize_id(p): p for p in sorted(files)}


def match_native(decoy_id: str, natives: dict[str, Path]) -> Path | None:
    """The native for ``decoy_id`` by the longest-prefix rule of the module docstring, or None."""
    candidates = [name for name in natives
                  if decoy_id == name or decoy_id.startswith(f"{name}_")]
    return natives[max(candidates, key=len)] if candidates else None


def write_score_file(model: Path, native: Path, out_json: Path, reuse: bool = True) -> dict:
    """Write ``egr score --json`` of ``model`` against ``native`` to ``out_json`` (``{"error": reason}``
    when it cannot be scored) and return it. With ``reuse``, a file made from the same bytes is kept."""
    fingerprint = {"model_sha256": file_sha256(model), "native_sha256": file_sha256(native)}
    if reuse and out_json.is_file():
        try:
            earlier = json.loads(out_json.read_text())
            if all(earlier.get(k) == v for k, v in fingerprint.items()):
                return earlier
        except ValueError:
            pass
    try:
        report = score_report(model, native)
    except ScoringError as exc:
        report = {"model": str(model), "native": str(native), "error": f"not scored against {Path(native).name}: {exc}"}
    except Exception as exc:  # a scoring crash belongs to this structure's cells alone
        report = {"model": str(model), "native": str(native), "error": f"scoring failed: {type(exc).__name__}: {exc}"}
    report.update(fingerprint)
    atomic_write_json(out_json, report)
    return report
