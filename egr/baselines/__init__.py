"""Classical refiners to compare EGR with: OpenMM relax, Modeller, GalaxyRefineComplex, HADDOCK3.

One contract for all of them::

    ok, reason = available("modeller")
    result = run_baseline("openmm", Path("decoy.pdb"), Path("out/decoy_openmm.pdb"), solvent="vacuum")
    result.status   # 'ok' | 'failed' | 'skipped'; never an exception for a per-decoy failure

The refined PDB holds heavy atoms with the decoy's chain IDs, residue numbers and insertion codes,
and is written atomically. :func:`baseline_command` is what ``egr baseline NAME DECOY --outdir DIR
[--id ID] [--refiner-timeout SECONDS]`` runs: it writes ``DIR/<id>/<id>_<method>.pdb`` and
``DIR/<id>/<id>_<method>.json``. ``refiner_timeout_s`` (``run_baseline``, ``baseline_command``) bounds
any method's run on one decoy (:func:`egr.baselines.common.run_with_timeout`).

Options per method (keyword arguments of ``run_baseline``):

* ``openmm``: see :func:`egr.baselines.openmm_relax.relax` (``solvent``, ``stiffness_kcal_mol_a2``,
  ``tolerance_kj_mol_nm``, ``max_iterations``, ``cutoff_nm``, ``ph``, ``platform``, ``seed``,
  ``deterministic``);
* ``modeller``: see :func:`egr.baselines.modeller.refine` (``python``, ``md_level``, ``deviation``,
  ``n_models``, ``seed``, ``timeout_s``); the Cα → all-atom rebuild for EGR-Cα is
  :func:`egr.baselines.modeller.rebuild_all_atom`;
* ``galaxy``: see :func:`egr.baselines.galaxy.refine` (``galaxy_home``, ``threads``, ``n_sample``,
  ``n_output``, ``symmetric``, ``protocol``, ``timeout_s``);
* ``haddock_emref`` and ``haddock_mdref``: see :func:`egr.baselines.haddock.refine` (``haddock3``,
  ``timeout_s``); the registry entry fixes ``protocol`` (``'emref'`` or ``'mdref'``), so both can run in
  one run and be compared.
"""

from __future__ import annotations

import functools
import inspect
import time
from pathlib import Path
from typing import Any, Callable

from egr import layout
from egr.io import atomic_write_json, file_sha256
from egr.structure import Complex, sanitize_id

from .common import BaselineResult, Refined, run_refiner, run_with_timeout

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


def run_baseline(method: str, decoy: Path | str, out_pdb: Path | str, refiner_timeout_s: float | None = None,
                 **options: Any) -> BaselineResult:
    """Refine one decoy with ``method``; see the module docstring for the options.

    ``refiner_timeout_s`` (``--refiner-timeout``): wall-time limit in seconds of this decoy's run; the
    run then happens in a child process (:func:`egr.baselines.common.run_with_timeout`), which is
    killed when it runs past the limit, and the cell fails with a reason such as "openmm: exceeded the
    600 s refiner timeout". None: no limit, and the run stays in this process (the subprocess-based
    refiners still have their own ``timeout_s``). The child costs ~0.15 s per decoy
    (benchmarks/README.md, "OpenMM relax").

    Returns status ``'skipped'`` (program absent, with the reason), ``'failed'`` (one-line reason;
    nothing written, and an earlier ``out_pdb`` removed) or ``'ok'``. Raises only for programming errors: unknown method or option.
    """
    check, refine, _ = _parts(method)
    fixed = layout.REGISTRY[method].refine_options()  # e.g. haddock_mdref's protocol
    contradicted = sorted(k for k in fixed if k in options and options[k] != fixed[k])
    if contradicted:
        raise ValueError(f"{method} always runs with {', '.join(f'{k}={fixed[k]!r}' for k in contradicted)}")
    options = {**options, **fixed}
    inspect.signature(refine).bind_partial(**options)  # an unknown option is a TypeError, not a failed decoy
    # an earlier run's structure must not outlive this run's record: it would be scored (and could be
    # selected) under a failed or skipped status
    Path(out_pdb).unlink(missing_ok=True)
    start = time.perf_counter()
    ok, reason = check(**_location_options(check, options))
    if not ok:
        return BaselineResult(method, "skipped", reason, time.perf_counter() - start, None)
    if refiner_timeout_s is None:
        return _refine(method, decoy, out_pdb, options)
    return run_with_timeout(method, out_pdb, refiner_timeout_s, functools.partial(_refine, method, decoy,
                                                                                  options=options))


def _refine(method: str, decoy: Path | str, out_pdb: Path | str, options: dict[str, Any]) -> BaselineResult:
    """The refinement itself, availability already checked (module-level, so that a child process
    started by :func:`run_baseline` for its timeout can be given it)."""
    _, refine, takes_workdir = _parts(method)

    def engine(decoy_: Complex, workdir: Path) -> tuple[Refined, dict[str, Any]]:
        return refine(decoy_, workdir, **options) if takes_workdir else refine(decoy_, **options)

    return run_refiner(method, decoy, out_pdb, engine)


def baseline_command(method: str, decoy: Path | str, outdir: Path | str, decoy_id: str | None = None,
                     refiner_timeout_s: float | None = None, **options: Any) -> BaselineResult:
    """``egr baseline METHOD DECOY --outdir DIR [--id ID]``: refine and write
    ``DIR/<id>/<id>_<method>.pdb`` (when ok) and ``DIR/<id>/<id>_<method>.json`` (always).
    The ID defaults to the decoy's file name without extensions, made file-system safe
    (:func:`egr.structure.sanitize_id`, as ``egr run`` names its outputs)."""
    ident = decoy_id or sanitize_id(decoy)
    result = run_baseline(method, decoy, layout.structure(outdir, ident, method), refiner_timeout_s, **options)
    atomic_write_json(layout.method_record(outdir, ident, method), baseline_record(result, decoy, options))
    return result


def baseline_record(result: BaselineResult, decoy: Path | str,
                    options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``<id>_<method>.json`` record of one refiner run, the same for ``egr baseline`` and ``egr run``:
    status (ok, skipped or failed), its reason, the output, seconds, the SHA-256 of the input decoy and
    the options the refiner was given (input and options tell a later run whether the record still
    belongs to this run)."""
    return {**result.as_dict(), "seconds": round(result.seconds, 3), "input_sha256": file_sha256(decoy),
            "options": dict(options or {})}
