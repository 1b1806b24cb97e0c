"""Modeller baselines: restrained all-atom refinement of a complex, and the Cα → all-atom rebuild
behind the EGR-Cα variant.

Modeller needs a licence key, so it is detected at run time and runs in a subprocess (the Python
that has ``modeller``: ``python=`` option, else ``$EGR_MODELLER_PYTHON``, else this interpreter).
Everything Modeller gets is plain text built here and testable without it:

* the decoy's sanitised copy ``decoy.pdb`` (one chain per unbroken segment, ``A, B, ...``,
  residues 1..n; see :func:`egr.baselines.common.sanitised_pdb`),
* a PIR alignment ``egr.ali`` of that structure with its own sequence (:func:`pir_alignment`),
  ``/`` between segments,
* a script ``egr_modeller.py`` (:func:`modeller_script`).

Refinement (``refine``) is AutoModel with the decoy as its own template: CHARMM stereochemistry
plus distance and dihedral restraints taken from the decoy itself, variable-target conjugate
gradients, then simulated-annealing MD (``md_level``, default ``very_fast``). By default the run
starts from the decoy's coordinates (no randomisation), so it refines rather than re-models; a
``deviation`` > 0 Å randomises the start, and ``n_models`` > 1 then samples several and keeps the
one with the lowest Modeller objective function (molpdf).

Cα rebuild (:func:`rebuild_all_atom`): the same machinery on a Cα-only template, with the Cα atoms
excluded from optimisation so they stay exactly where EGR-Cα put them; every other heavy atom is
built and optimised.

Modeller renames chains and renumbers residues; its model is mapped back onto the decoy's chain
IDs, residue numbers and insertion codes by order.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

from egr.structure import Complex

from .common import (
    BaselineError,
    BaselineResult,
    Refined,
    last_line,
    refined_from_structure,
    run_refiner,
    sanitised,
    sanitised_pdb,
    segment_sequences,
)

ENV_PYTHON = "EGR_MODELLER_PYTHON"
MD_LEVELS = ("none", "very_fast", "fast", "slow", "very_slow")
TEMPLATE_CODE = "decoy"
TARGET_CODE = "refined"
ALIGNMENT_FILE = "egr.ali"
SCRIPT_FILE = "egr_modeller.py"
_MOLPDF = re.compile(r"^REMARK   6 MODELLER OBJECTIVE FUNCTION:\s*(\S+)", re.MULTILINE)


def modeller_python(python: str | None = None) -> str:
    """The Python interpreter that runs Modeller: ``python``, else ``$EGR_MODELLER_PYTHON``,
    else the current interpreter."""
    return python or os.environ.get(ENV_PYTHON) or sys.executable


def available(python: str | None = None) -> tuple[bool, str]:
    """Whether Modeller can be imported (module installed, licence key accepted) and why not."""
    interpreter = modeller_python(python)
    if interpreter == sys.executable and importlib.util.find_spec("modeller") is None:
        return False, (
            "Python module 'modeller' is not installed (it needs a licence key: https://salilab.org/modeller/; "
            f"or point ${ENV_PYTHON} at a Python that has it)"
        )
    try:
        probe = subprocess.run([interpreter, "-c", "import modeller"], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"cannot run {interpreter}: {exc}"
    if probe.returncode != 0:
        return False, f"'import modeller' failed: {last_line(probe.stderr + probe.stdout)}"
    return True, ""


def pir_alignment(decoy: Complex) -> str:
    """PIR alignment of the sanitised decoy (template ``decoy``) with its own sequence (target
    ``refined``); segments are separated by ``/`` in both, residue ranges name the first and last
    residue of the sanitised copy (``1:A`` to ``n:<last chain>``)."""
    clean = sanitised(decoy)
    chain, number = clean.chain_ids, clean.res_seq
    sequence = "/".join(segment_sequences(decoy)) + "*"
    body = "\n".join(textwrap.wrap(sequence, 75, break_on_hyphens=False))
    header = f"structureX:{TEMPLATE_CODE}:{number[0]}:{chain[0]}:{number[-1]}:{chain[-1]}:::-1.00:-1.00"
    return (
        f">P1;{TEMPLATE_CODE}\n{header}\n{body}\n\n"
        f">P1;{TARGET_CODE}\nsequence:{TARGET_CODE}:::::::0.00:0.00\n{body}\n"
    )


def modeller_script(*, md_level: str, deviation: float, n_models: int, seed: int, fix_ca: bool) -> str:
    """Text of the Modeller script (Modeller ≥ 10 names: ``Environ``, ``AutoModel``, ...).

    Args:
        md_level: MD refinement after conjugate gradients, one of :data:`MD_LEVELS`.
        deviation: randomisation of the starting coordinates in Å; 0 starts from the template.
        n_models: number of models to build (needs ``deviation`` > 0 to differ).
        seed: Modeller random seed (−50000 ≤ seed ≤ −2).
        fix_ca: keep Cα atoms out of the optimisation (Cα → all-atom rebuild).
    """
    if md_level not in MD_LEVELS:
        raise ValueError(f"md_level must be one of {MD_LEVELS}, got {md_level!r}")
    if n_models < 1 or (n_models > 1 and deviation <= 0):
        raise ValueError("n_models > 1 needs deviation > 0 Å, otherwise every model is the same")
    if not -50000 <= seed <= -2:
        raise ValueError("Modeller's seed must lie in [-50000, -2]")
    select = (
        "\n    def select_atoms(self):\n"
        "        # Calpha atoms stay where they are; every other atom is built and optimised.\n"
        "        return Selection(self) - Selection(self).only_atom_types('CA')\n"
        if fix_ca
        else "\n    pass\n"
    )
    purpose = "Calpha -> all-atom rebuild" if fix_ca else "restrained refinement"
    return (
        f'"""Written by egr.baselines.modeller ({purpose})."""\n'
        "from modeller import Environ, Selection, log\n"
        "from modeller.automodel import AutoModel, randomize, refine\n\n"
        "log.minimal()\n"
        f"env = Environ(rand_seed={seed})\n"
        "env.io.atom_files_directory = ['.']\n\n\n"
        f"class EgrModel(AutoModel):{select}\n\n"
        f"model = EgrModel(env, alnfile={ALIGNMENT_FILE!r}, knowns={TEMPLATE_CODE!r}, sequence={TARGET_CODE!r})\n"
        "model.starting_model = 1\n"
        f"model.ending_model = {n_models}\n"
        f"model.deviation = {deviation!r}\n"
        f"model.rand_method = {'randomize.xyz' if deviation > 0 else 'None'}\n"
        f"model.md_level = {'None' if md_level == 'none' else f'refine.{md_level}'}\n"
        "model.make()\n"
    )


def objective_function(pdb_text: str) -> float:
    """Modeller's objective function (molpdf) from the ``REMARK   6`` header of its model."""
    match = _MOLPDF.search(pdb_text)
    if match is None:
        raise BaselineError("Modeller model has no 'MODELLER OBJECTIVE FUNCTION' remark")
    return float(match.group(1))


def best_model(workdir: Path) -> tuple[Path, float]:
    """The model ``refined.B9999*.pdb`` in ``workdir`` with the lowest molpdf, and that molpdf."""
    models = sorted(workdir.glob(f"{TARGET_CODE}.B9999*.pdb"))
    if not models:
        raise BaselineError(f"Modeller wrote no model: {last_line(workdir / 'modeller.log')}")
    scores = [objective_function(path.read_text()) for path in models]
    best = int(np.argmin(scores))
    return models[best], scores[best]


def _run(decoy: Complex, workdir: Path, script: str, python: str | None, timeout_s: float) -> tuple[Path, float]:
    """Write Modeller's inputs into ``workdir``, run it, return (best model, molpdf)."""
    (workdir / f"{TEMPLATE_CODE}.pdb").write_text(sanitised_pdb(decoy))
    (workdir / ALIGNMENT_FILE).write_text(pir_alignment(decoy))
    (workdir / SCRIPT_FILE).write_text(script)
    log_path = workdir / "modeller.log"
    try:
        with log_path.open("w") as log:
            proc = subprocess.run(
                [modeller_python(python), SCRIPT_FILE], cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                timeout=timeout_s,
            )
    except subprocess.TimeoutExpired as exc:
        raise BaselineError(f"Modeller timed out after {timeout_s:g} s") from exc
    if proc.returncode != 0:
        raise BaselineError(f"Modeller failed (exit {proc.returncode}): {last_line(log_path)}")
    return best_model(workdir)


def refine(
    decoy: Complex,
    workdir: Path,
    *,
    python: str | None = None,
    md_level: str = "very_fast",
    deviation: float = 0.0,
    n_models: int = 1,
    seed: int = -8123,
    timeout_s: float = 7200.0,
) -> tuple[Refined, dict[str, Any]]:
    """Restrained all-atom refinement of the whole complex with Modeller's AutoModel.

    Args:
        decoy: the decoy (heavy atoms, from :func:`egr.baselines.common.read_decoy`).
        workdir: scratch folder for Modeller's inputs and outputs.
        python: interpreter with ``modeller`` (see :func:`modeller_python`).
        md_level: MD annealing after conjugate gradients, one of :data:`MD_LEVELS`.
        deviation: start randomisation in Å (0: start from the decoy).
        n_models: models to build; the lowest molpdf wins.
        seed: Modeller random seed.
        timeout_s: wall-clock limit for Modeller in seconds.
    Returns:
        (atoms mapped onto the decoy's residues, details with ``molpdf`` and the settings).
    """
    script = modeller_script(md_level=md_level, deviation=deviation, n_models=n_models, seed=seed, fix_ca=False)
    model, molpdf = _run(decoy, workdir, script, python, timeout_s)
    details = {"mode": "refine", "molpdf": molpdf, "md_level": md_level, "deviation_a": deviation, "n_models": n_models}
    return refined_from_structure(decoy, model, "Modeller"), details


def rebuild_all_atom(
    ca_pdb: Path | str,
    out_pdb: Path | str,
    *,
    python: str | None = None,
    md_level: str = "very_fast",
    deviation: float = 4.0,
    n_models: int = 1,
    seed: int = -8123,
    timeout_s: float = 7200.0,
) -> BaselineResult:
    """Rebuild all heavy atoms around a Cα trace (EGR-Cα's output) with Cα held fixed.

    Only the Cα atoms of ``ca_pdb`` are used. The non-Cα atoms start from ideal internal
    coordinates randomised by ``deviation`` Å (AutoModel's default, 4 Å) and are optimised against
    CHARMM stereochemistry and Modeller's dihedral restraints. Returns a :class:`BaselineResult`
    (method ``'modeller'``, ``details['mode'] == 'ca_rebuild'``); the output has the trace's chain
    IDs and residue numbering. Never raises for a per-structure failure.
    """
    script = modeller_script(md_level=md_level, deviation=deviation, n_models=n_models, seed=seed, fix_ca=True)

    def engine(decoy: Complex, workdir: Path) -> tuple[Refined, dict[str, Any]]:
        model, molpdf = _run(decoy, workdir, script, python, timeout_s)
        details = {"mode": "ca_rebuild", "molpdf": molpdf, "md_level": md_level, "deviation_a": deviation,
                   "n_models": n_models}
        return refined_from_structure(decoy, model, "Modeller"), details

    start = time.perf_counter()
    ok, reason = available(python)
    if not ok:
        return BaselineResult("modeller", "skipped", reason, time.perf_counter() - start, None)
    return run_refiner("modeller", ca_pdb, out_pdb, engine, ca_only=True)
