"""Classical refiners to compare EGR with: OpenMM relax, Modeller, GalaxyRefineComplex.

One contract for all three::

    ok, reason = available("modeller")
    result = run_baseline("openmm", Path("decoy.pdb"), Path("out/decoy_openmm.pdb"), solvent="vacuum")
    result.status   # 'ok' | 'failed' | 'skipped'; never an exception for a per-decoy failure

The refined PDB holds heavy atoms with the decoy's chain IDs, residue numbers and insertion codes,
and is written atomically. :func:`baseline_command` is what ``egr baseline NAME DECOY --outdir DIR
[--id ID]`` runs: it writes ``DIR/<id>/<id>_<method>.pdb`` and ``DIR/<id>/<id>_<method>.json``.

Options per method (keyword arguments of ``run_baseline``):

* ``openmm``: see :func:`egr.baselines.openmm_relax.relax` (``solvent``, ``stiffness_kcal_mol_a2``,
  ``tolerance_kj_mol_nm``, ``max_iterations``, ``cutoff_nm``, ``ph``, ``platform``);
* ``modeller``: see :func:`egr.baselines.modeller.refine` (``python``, ``md_level``, ``deviation``,
  ``n_models``, ``seed``, ``timeout_s``); the Cα → all-atom rebuild for EGR-Cα is
  :func:`egr.baselines.modeller.rebuild_all_atom`;
* ``galaxy``: see :func:`egr.baselines.galaxy.refine` (``galaxy_home``, ``threads``, ``n_sample``,
  ``n_output``, ``symmetric``, ``protocol``, ``timeout_s``).
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any, Callable

from egr import layout
from egr.io import atomic_write_json, file_sha256
from egr.structure import Complex, sanitize_id

from .common import BaselineResult, Refined, run_refiner

__all__ = ["METHODS", "BaselineResult", "available", "run_baseline", "baseline_command", "baseline_record"]

METHODS = layout.baseline_methods()  # as registered in egr.layout.REGISTRY, which names each adapter

Check = Callable[..., tuple[bool, str]]
RefineFn = Callable[..., tuple[Refined, dict[str, Any]]]


def _parts(method: str) -> tuple[Check, RefineFn, bool]:
    """(availability check, refine function, whether it takes a scratch folder) of a method."""
    entry = layout.method(method)
    if entry is None or not entry.is_baseline:
        raise ValueError(f"unknown baseline {method!r}; choose from {', '.join(layout.baseline_methods())}")
    return entry.check_function(), entry.refine_function(), entry.scratch


def _location_options(check: Check, options: dict[str, Any]) -> dict[str, Any]:
    """The options the availability check takes (where the program lives)."""
    return {key: value for key, value in options.items() if key in inspect.signature(check).parameters}


def available(method: str, **options: Any) -> tuple[bool, str]:
    """Whether ``method`` can run here, detected now; the reason when not.

    ``options`` may name where the program lives (``python`` for Modeller, ``galaxy_home`` for
    GalaxyRefineComplex); other options are ignored.
    """
    check, _, _ = _parts(method)
    return check(**_location_options(check, options))


def run_baseline(method: str, decoy: Path | str, out_pdb: Path | str, **options: Any) -> BaselineResult:
    """Refine one decoy with ``method``; see the module docstring for the options.

    Returns status ``'skipped'`` (program absent, with the reason), ``'failed'`` (one-line reason;
    nothing written) or ``'ok'``. Raises only for programming errors: unknown method or option.
    """
    check, refine, takes_workdir = _parts(method)
    inspect.signature(refine).bind_partial(**options)  # an unknown option is a TypeError, not a failed decoy
    start = time.perf_counter()
    ok, reason = check(**_location_options(check, options))
    if not ok:
        return BaselineResult(method, "skipped", reason, time.perf_counter() - start, None)

    def engine(decoy_: Complex, workdir: Path) -> tuple[Refined, dict[str, Any]]:
        return refine(decoy_, workdir, **options) if takes_workdir else refine(decoy_, **options)

    return run_refiner(method, decoy, out_pdb, engine)


def baseline_command(method: str, decoy: Path | str, outdir: Path | str, decoy_id: str | None = None,
                     **options: Any) -> BaselineResult:
    """``egr baseline METHOD DECOY --outdir DIR [--id ID]``: refine and write
    ``DIR/<id>/<id>_<method>.pdb`` (when ok) and ``DIR/<id>/<id>_<method>.json`` (always).
    The ID defaults to the decoy's file name without extensions, made file-system safe
    (:func:`egr.structure.sanitize_id`, as ``egr run`` names its outputs)."""
    ident = decoy_id or sanitize_id(decoy)
    result = run_baseline(method, decoy, layout.structure(outdir, ident, method), **options)
    atomic_write_json(layout.method_record(outdir, ident, method), baseline_record(result, decoy))
    return result


def baseline_record(result: BaselineResult, decoy: Path | str) -> dict[str, Any]:
    """The ``<id>_<method>.json`` record of one refiner run, the same for ``egr baseline`` and ``egr run``:
    status (ok, skipped or failed), its reason, the output, seconds and the SHA-256 of the input decoy
    (which tells a later run whether the record still belongs to this input)."""
    return {**result.as_dict(), "seconds": round(result.seconds, 3), "input_sha256": file_sha256(decoy)}
