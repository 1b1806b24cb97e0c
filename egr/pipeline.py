"""The per-decoy steps with their file outputs, shared by the step commands and by ``egr run``.

Layout under ``outdir/<id>/``: ``<id>_clean.pdb`` + ``<id>_ingest.json`` (ingest),
``<id>_surface.npz`` (surface: depth and proximity per atom, and the backend of each value),
``<id>_graph.pt`` (featurize), then the refinement outputs (see :mod:`egr.refine`).
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from egr import layout
from egr.io import atomic_write_bytes, atomic_write_json
from egr.structure import Complex, IngestRecord, read_decoy, write_pdb

# egr.surface (scipy) and egr.graph (whose builders load torch and PyTorch Geometric) are imported by the
# steps that use them: `egr run` imports this module before it checks its arguments, and `egr ingest`
# needs neither
if TYPE_CHECKING:
    from egr.graph import GraphBundle
    from egr.surface import SurfaceResult


@dataclass(frozen=True)
class PrepOptions:
    """Options of the CPU steps before inference."""

    surface_backend: str = "auto"  # auto | msms | builtin
    msms: str | None = None  # path to an MSMS executable
    ca_graph: bool = False
    write_intermediates: bool = True  # surface and graph files beside the outputs (the clean PDB is always kept)


def ingest_step(decoy: Path, outdir: Path, decoy_id: str, ca_only_ok: bool = False,
                write: bool = True) -> tuple[Complex, IngestRecord]:
    """Read and clean ``decoy``; write ``<id>_clean.pdb`` and ``<id>_ingest.json``. Raises IngestError."""
    complex_, record = read_decoy(decoy, ca_only_ok=ca_only_ok)
    if write:
        write_pdb(complex_, layout.clean_pdb(outdir, decoy_id))
        atomic_write_json(layout.ingest_json(outdir, decoy_id), asdict(record))
    return complex_, record


def save_surface(path: Path, surface: SurfaceResult) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, depth=surface.depth, proximity=surface.proximity, backend=np.asarray(surface.backend, dtype=str))
    atomic_write_bytes(path, buffer.getvalue())


def load_surface(path: Path) -> SurfaceResult:
    from egr.surface import SurfaceResult

    with np.load(path, allow_pickle=False) as data:
        return SurfaceResult(depth=data["depth"], proximity=data["proximity"], backend=data["backend"], warnings=[])


def surface_step(complex_: Complex, outdir: Path, decoy_id: str, options: PrepOptions) -> SurfaceResult:
    from egr.surface import compute_surface

    surface = compute_surface(complex_.coords, complex_.elements, complex_.chain_ids,
                              backend=options.surface_backend, msms_exe=options.msms)
    if options.write_intermediates:
        save_surface(layout.surface_npz(outdir, decoy_id), surface)
    return surface


def featurize_step(complex_: Complex, surface: SurfaceResult, outdir: Path, decoy_id: str,
                   options: PrepOptions) -> GraphBundle:
    from egr.graph import featurize, save_graph

    bundle = featurize(decoy_id, complex_, surface.proximity, surface.backend, ca=options.ca_graph)
    if options.write_intermediates:
        save_graph(bundle, layout.graph_pt(outdir, decoy_id))
    return bundle


def prepare_decoy(decoy: Path, decoy_id: str, outdir: Path, options: PrepOptions) -> tuple[GraphBundle, dict]:
    """Ingest → surface → featurize one decoy. Returns the graph and a record with warnings and
    seconds per step. Raises IngestError (bad input) or another exception (a step failed)."""
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    complex_, record = ingest_step(decoy, outdir, decoy_id, ca_only_ok=options.ca_graph)
    seconds["ingest"] = time.perf_counter() - began
    began = time.perf_counter()
    surface = surface_step(complex_, outdir, decoy_id, options)
    seconds["surface"] = time.perf_counter() - began
    began = time.perf_counter()
    bundle = featurize_step(complex_, surface, outdir, decoy_id, options)
    seconds["featurize"] = time.perf_counter() - began
    summary = {
        "warnings": [*record.warnings, *surface.warnings],
        "removed": record.removed,
        "mapped_residues": record.mapped_residues,
        "seconds": {step: round(value, 4) for step, value in seconds.items()},
    }
    return bundle, summary
