"""HADDOCK3 refinement baseline: unrestrained ``emref`` or ``mdref`` of one given complex in the HADDOCK
force field, run by CNS (Dominguez, Boelens & Bonvin, JACS 125:1731, 2003; haddock3: Giulini et al., 2025).

HADDOCK3 is a program (``haddock3 run.cfg``) with its own Python environment: every haddock3 release
requires numpy 2, DockQ (an egr dependency) numpy < 2, so the two never share one environment. The
executable is the ``haddock3`` option, else ``$EGR_HADDOCK3``, else ``haddock3`` on ``PATH``; the CNS
binary is the one its package bundles (``haddock/cns/bin/<arch>.bin``), found through the Python
interpreter named in the executable's ``#!`` line. :func:`available` checks both at run time.

What runs, for one decoy, in a scratch folder: the decoy's sanitised copy ``complex.pdb`` (one chain per
unbroken segment, ``A, B, ...``, residues 1..n: :func:`egr.baselines.common.sanitised_pdb`) and this
workflow (:func:`workflow_config`; the protocol is ``emref`` or ``mdref``)::

    run_dir = "run"
    mode = "local"
    ncores = 1
    postprocess = false      # no analysis pages and plots
    clean = false            # keep the step folders uncompressed to read them
    offline = true
    molecules = ["complex.pdb"]

    [topoaa]                 # CNS topology (HADDOCK force field, parallhdg/OPLS nonbonded); builds
                             # hydrogens and missing heavy atoms; uncharged termini (HADDOCK's default)
    [emscoring]
    nemsteps = 0             # no minimisation: HADDOCK's energies of the structure as given ("before")
    [emref]                  # or [mdref]
    mol_fix_origin_1 = true  # keep the frame: no reorientation onto principal axes
    tolerance = 0            # the one model must come out

No restraint file is given (``ambig_fname`` and the others stay empty), so the only terms are HADDOCK's
force field: bonds, angles, dihedrals, impropers, van der Waals and electrostatics, plus the empirical
desolvation term in the score. Each chain segment is one HADDOCK component; its interface residues
(within 5 Å of another segment) are found automatically and move freely while the rest is held by
weak positional restraints in the first rounds:

* ``emref``: HADDOCK's energy minimisation (Powell, 200 steps in each of three rounds: harmonic
  restraints of 5 kcal/mol/Å² on non-interface heavy atoms, then 1 on non-interface backbone, then
  none). About 2 s of CNS for 126 residues, 9 s with haddock3's start-up and the other steps.
* ``mdref``: HADDOCK's refinement in explicit water (an 8 Å shell; the former ``itw`` stage): a short
  minimisation, heating to 300 K (3 × 100 steps), 1250 steps of MD at 300 K, cooling (3 × 500 steps),
  2 fs time steps, then water removed. About 70 s of CNS for 126 residues.

``emscoring`` writes its model on principal axes (it always reorients), and the refinement keeps that
frame; the rigid motion from topoaa's model (the input's frame) to emscoring's is recovered by
superposition (an exact rigid motion: RMSD < 0.01 Å is checked) and undone on the refined model, so
the refined coordinates lie in the decoy's frame.

HADDOCK's uncharged C-terminus has no OXT; where the decoy had one, it is rebuilt from the refined C,
CA and O (the O mirrored through the CA–C axis, a planar carboxylate), so the output keeps every decoy
atom. The refined model is mapped back onto the decoy's chain IDs, residue numbers and insertion codes
by order (hydrogens dropped).

Energies are HADDOCK's own, read from the ``REMARK`` header of each step's model, in kcal/mol: the
``energies`` line (``total`` = intermolecular van der Waals + electrostatics + restraints; bonds,
angles, improper, dihe of the whole complex), the desolvation energy, the buried surface area (Å²) and
the HADDOCK score (1.0 E_vdw + 0.2 E_elec + 1.0 E_desolv + 0.1 E_air, arbitrary units, lower is better).

A CNS failure fails this decoy only, with CNS's own fatal message in one line (:func:`cns_error`).

The HADDOCK score as a reference ranker (``egr haddock-score``, :func:`score_results`): per cleaned
decoy, ``[topoaa]`` then ``[emscoring]`` with HADDOCK's default 50 minimisation steps
(:func:`scoring_config`), the score read from emscoring's model; ``egr evaluate --external-scores``
ranks by it (lower is better).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import gemmi
import numpy as np

from egr.structure import Complex, kabsch

from .common import BaselineError, Refined, last_line, refined_from_structure, sanitised_pdb, segments

ENV_HADDOCK3 = "EGR_HADDOCK3"
PROTOCOLS = ("emref", "mdref")
#: HADDOCK3's CNS scripts define components 1..20 (``nseg20``, ``int_20_20``); a 21st aborts CNS.
MAX_COMPONENTS = 20
INPUT_FILE = "complex.pdb"
CONFIG_FILE = "egr_haddock.cfg"
RUN_DIR = "run"
#: HADDOCK writes histidine tautomers and charged forms under their own names.
HADDOCK_RESIDUE_ALIASES = {"HISD": "HIS", "HISE": "HIS", "HIS+": "HIS", "HSD": "HIS", "HSE": "HIS"}
#: A superposition of topoaa's onto emscoring's model is a pure rigid motion up to PDB rounding (0.0005 Å).
RIGID_FIT_TOLERANCE_A = 0.01
_ENV_DROP = ("PYTHONPATH", "PYTHONHOME")  # egr's own site-packages (numpy < 2) must not leak into haddock3's

_PROBE = r"""
import importlib.metadata, json, subprocess
from haddock.libs.libutil import get_cns_executable
cns = str(get_cns_executable()[0])
try:
    proc = subprocess.run([cns], input="stop\n", capture_output=True, text=True, timeout=60)
    runs, tail = proc.returncode == 0, (proc.stdout + proc.stderr).strip().splitlines()[-1:]
except OSError as exc:
    runs, tail = False, [str(exc)]
print(json.dumps({"haddock3": importlib.metadata.version("haddock3"), "cns": cns, "cns_runs": runs,
                  "cns_tail": tail[0] if tail else ""}))
"""


@dataclass(frozen=True)
class Installation:
    """A working HADDOCK3: its executable, the Python that runs it, its version and CNS binary."""

    executable: Path
    python: Path
    version: str
    cns: Path


def resolve_executable(haddock3: str | Path | None = None) -> Path | None:
    """The ``haddock3`` executable: the option, else ``$EGR_HADDOCK3``, else ``haddock3`` on ``PATH``."""
    chosen = haddock3 or os.environ.get(ENV_HADDOCK3) or shutil.which("haddock3")
    return Path(chosen) if chosen else None


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in _ENV_DROP}


def _interpreter(executable: Path) -> Path | None:
    """The Python of a pip-installed console script: its ``#!`` line, else a python beside it."""
    try:
        with executable.open("rb") as handle:
            first = handle.readline(4096).decode(errors="replace").strip()
    except OSError:
        return None
    if first.startswith("#!"):
        words = first[2:].split()
        # '#!/usr/bin/env python3' names the interpreter in its second word
        candidate = words[-1] if words and Path(words[0]).name == "env" else (words[0] if words else "")
        if "python" in Path(candidate).name:
            found = shutil.which(candidate) if not os.path.isabs(candidate) else candidate
            if found:
                return Path(found)
    for name in ("python3", "python"):
        if (executable.parent / name).exists():
            return executable.parent / name
    return None


@lru_cache(maxsize=8)
def _probe(executable: str) -> Installation | str:
    """The installation behind ``executable``, or the reason it cannot run (cached per process: the
    probe imports haddock, about a second)."""
    path = Path(executable)
    if not path.is_file() or not os.access(path, os.X_OK):
        return f"{path} is not an executable file"
    python = _interpreter(path)
    if python is None:
        return f"cannot tell which Python runs {path} (no python in its #! line or beside it)"
    try:
        proc = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True, timeout=300,
                              env=_clean_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {python}: {exc}"
    if proc.returncode != 0:
        return f"haddock3's Python {python} cannot load haddock: {last_line(proc.stderr + proc.stdout)}"
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    cns = Path(info["cns"])
    if not cns.is_file():
        return f"haddock3 {info['haddock3']} has no CNS binary at {cns}"
    if not info["cns_runs"]:
        return f"the CNS binary {cns} does not run here: {info['cns_tail'] or 'no output'}"
    return Installation(path, python, info["haddock3"], cns)


def installation(haddock3: str | Path | None = None) -> Installation | str:
    """The HADDOCK3 installation to use, or the one-line reason there is none."""
    executable = resolve_executable(haddock3)
    if executable is None:
        return (f"HADDOCK3 not found (set ${ENV_HADDOCK3} to its haddock3 executable, or put haddock3 on PATH; "
                "it needs its own environment: README, Setup)")
    return _probe(str(executable.resolve()))


def available(haddock3: str | Path | None = None) -> tuple[bool, str]:
    """Whether HADDOCK3 and its CNS binary run here, detected now; the reason when not."""
    found = installation(haddock3)
    return (False, found) if isinstance(found, str) else (True, "")


def version(haddock3: str | Path | None = None) -> str:
    """haddock3's version (for the Nextflow module's versions); raises BaselineError when absent."""
    found = installation(haddock3)
    if isinstance(found, str):
        raise BaselineError(found)
    return found.version


def workflow_config(protocol: str) -> str:
    """The haddock3 workflow egr runs on ``complex.pdb`` (see the module docstring)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    return "\n".join([
        f"# egr: unrestrained HADDOCK3 {protocol} of one complex (egr.baselines.haddock)",
        f'run_dir = "{RUN_DIR}"',
        'mode = "local"',
        "ncores = 1",
        "postprocess = false",
        "clean = false",
        "offline = true",
        f'molecules = ["{INPUT_FILE}"]',
        "",
        "[topoaa]",
        "",
        "[emscoring]",
        "# no minimisation: HADDOCK's energies of the input as it is",
        "nemsteps = 0",
        "",
        f"[{protocol}]",
        "# keep the frame (no reorientation onto the principal axes)",
        "mol_fix_origin_1 = true",
        "tolerance = 0",
        "",
    ])


# ------------------------------------------------------------------------------------------------
# HADDOCK's and CNS's output


_REMARK_NUMBERS = {
    "haddock_score": re.compile(r"^REMARK HADDOCK score:\s*(\S+)", re.M),
    "desolv": re.compile(r"^REMARK Desolvation energy:\s*(\S+)", re.M),
    "bsa_a2": re.compile(r"^REMARK buried surface area:\s*(\S+)", re.M),
}
_ENERGY_LINES = re.compile(r"^REMARK\s+(total(?:,\w+)+)\s*\nREMARK energies:\s*(.+)$", re.M)
_CNS_VERSION = re.compile(r"^REMARK VERSION:\s*(\S+)", re.M)


def read_model_header(text: str) -> dict[str, Any]:
    """HADDOCK's figures from the ``REMARK`` header of a model it wrote (emscoring, emref, mdref, ...).

    Returns ``haddock_score`` (a.u.), ``energies_kcal_mol`` (every term of the ``energies`` line by the
    names of the line above it, plus ``desolv``), ``bsa_a2`` (buried surface area, Å²) and ``cns``
    (CNS version). Raises BaselineError if the header has no energies.
    """
    match = _ENERGY_LINES.search(text)
    if match is None:
        raise BaselineError("HADDOCK model has no 'REMARK energies' line")
    names = match.group(1).split(",")
    values = [float(value) for value in match.group(2).split(",")]
    if len(names) != len(values):
        raise BaselineError(f"HADDOCK energies line has {len(values)} values for {len(names)} names")
    energies = dict(zip(names, values))
    found = {key: pattern.search(text) for key, pattern in _REMARK_NUMBERS.items()}
    if found["haddock_score"] is None:
        raise BaselineError("HADDOCK model has no 'REMARK HADDOCK score' line")
    if found["desolv"] is not None:
        energies["desolv"] = float(found["desolv"].group(1))
    version = _CNS_VERSION.search(text)
    return {
        "haddock_score": float(found["haddock_score"].group(1)),
        "energies_kcal_mol": energies,
        "bsa_a2": float(found["bsa_a2"].group(1)) if found["bsa_a2"] else None,
        "cns": version.group(1) if version else None,
    }


#: CNS's fatal messages: ' %PARSER error encountered: ...' (then 'ABORT mode will terminate ...').
_CNS_FATAL = re.compile(r"^\s*(%\S+ error encountered:.*?)\s*$", re.M)
#: CNS's non-fatal errors: ' %WDSUB-ERR: symbol not found:' followed by the offending input line.
_CNS_ERR = re.compile(r"^\s*(%[\w-]+-ERR:.*?)\s*\n\s*(.*?)\s*$", re.M)
_CNS_STOPPED = ("ABORT mode will terminate program execution", "Program will stop immediately")


def cns_error(text: str) -> str | None:
    """CNS's own reason for stopping, in one line (at most 300 characters), from its output (a ``.cnserr``
    file); None when CNS did not abort.

    Runs that succeed print non-fatal ``-ERR`` lines too (HADDOCK's scripts probe symbols that are only
    defined for some components), so only an aborted run has a reason: CNS's fatal message and, when
    ``-ERR`` lines came before it, their number and the first of them with the input line it points
    at, which is where things went wrong (a parser abort, for one, only says that errors added up), e.g.
    ``%PARSER error encountered: Encountered too many parsing errors. (100 CNS errors, the first:
    %NEXTCD-ERR: Symbol not found: if ($nseg$nchain1 ...)``.
    """
    if not any(marker in text for marker in _CNS_STOPPED):
        return None
    fatal = _CNS_FATAL.findall(text)
    errors = [" ".join(part for part in pair if part) for pair in _CNS_ERR.findall(text)]
    if fatal:
        message = fatal[-1]
        if errors:
            message += f" ({len(errors)} CNS error{'s' if len(errors) > 1 else ''}, the first: {errors[0]})"
    elif errors:
        message = errors[-1]
    else:
        message = "CNS aborted without an error message"
    return " ".join(message.split())[:300]


def _step_error(run_dir: Path) -> str | None:
    """The CNS reason of the last step that has an aborted CNS job, or None."""
    for step in sorted(run_dir.glob("[0-9]*_*"), key=lambda p: int(p.name.split("_", 1)[0]), reverse=True):
        for err in sorted(step.glob("*.cnserr*")):
            reason = cns_error(_read_text(err))
            if reason:
                return f"{step.name.split('_', 1)[1]}: CNS: {reason}"
    return None


def _read_text(path: Path) -> str:
    """A text file, gzipped or not (haddock3 gzips each .cnserr it writes)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode(errors="replace")


def _haddock_log_error(log_text: str) -> str:
    """The last ERROR line haddock3 logged (its message after the logger's prefix), else its last line."""
    errors = re.findall(r"^\[[^\]]*ERROR\]\s*(.+)$", log_text, re.M)
    return errors[-1].strip()[:300] if errors else last_line(log_text)


# ------------------------------------------------------------------------------------------------
# Running it


@dataclass(frozen=True)
class RunOutput:
    """The files of one haddock3 run: topoaa's model (input frame), emscoring's (reoriented) and the
    refined one (emscoring's frame), haddock3's log and its wall time in seconds."""

    topology_model: Path
    scoring_model: Path
    refined_model: Path
    log: Path
    seconds: float


def _run_haddock3(pdb_text: str, workdir: Path, config: str, what: str, haddock3: str | Path | None,
                  timeout_s: float) -> tuple[Path, int, float]:
    """Write ``complex.pdb`` and the workflow ``config`` in ``workdir`` and run haddock3 there; returns
    (its run folder, exit status, wall seconds). Raises BaselineError when it is absent or times out."""
    found = installation(haddock3)
    if isinstance(found, str):
        raise BaselineError(found)
    (workdir / INPUT_FILE).write_text(pdb_text)
    (workdir / CONFIG_FILE).write_text(config)
    log_path = workdir / "haddock3.log"
    start = time.perf_counter()
    try:
        with log_path.open("w") as log:
            proc = subprocess.run([str(found.executable), CONFIG_FILE], cwd=workdir, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=timeout_s, env=_clean_env())
    except subprocess.TimeoutExpired as exc:
        raise BaselineError(f"HADDOCK3 {what} timed out after {timeout_s:g} s") from exc
    return workdir / RUN_DIR, proc.returncode, time.perf_counter() - start


def _failure(run_dir: Path, what: str, returncode: int) -> BaselineError:
    """The one-line failure of a haddock3 run: CNS's own reason where a CNS job aborted, else haddock3's."""
    cns = _step_error(run_dir) if run_dir.is_dir() else None
    reason = cns or _haddock_log_error(_read_text(run_dir.parent / "haddock3.log"))
    return BaselineError(f"HADDOCK3 {what} failed (exit {returncode}): {reason}")


def run_protocol(pdb_text: str, workdir: Path, protocol: str = "emref", *, haddock3: str | Path | None = None,
                 timeout_s: float = 3600.0) -> RunOutput:
    """Run :func:`workflow_config` on the complex ``pdb_text`` in ``workdir``; raises BaselineError with
    CNS's one-line reason (or haddock3's) when a step fails."""
    run_dir, returncode, seconds = _run_haddock3(pdb_text, workdir, workflow_config(protocol), protocol, haddock3,
                                                 timeout_s)
    models = {
        "topology": sorted(run_dir.glob("0_topoaa/*_haddock.pdb")),
        "scoring": sorted(run_dir.glob("1_emscoring/emscoring_1.pdb")),
        "refined": sorted(run_dir.glob(f"2_{protocol}/{protocol}_1.pdb")),
    }
    if returncode != 0 or not all(models.values()):
        raise _failure(run_dir, protocol, returncode)
    return RunOutput(models["topology"][0], models["scoring"][0], models["refined"][0],
                     workdir / "haddock3.log", seconds)


def scoring_config(nemsteps: int = 50) -> str:
    """The haddock3 workflow of :func:`haddock_score`: topology, then HADDOCK's ``emscoring`` (a short
    unrestrained minimisation, ``nemsteps`` Powell steps, 50 being HADDOCK's default, then its score)."""
    return "\n".join([
        "# egr: HADDOCK3 score of one complex (egr.baselines.haddock.haddock_score)",
        f'run_dir = "{RUN_DIR}"', 'mode = "local"', "ncores = 1", "postprocess = false", "clean = false",
        "offline = true", f'molecules = ["{INPUT_FILE}"]', "", "[topoaa]", "", "[emscoring]",
        f"nemsteps = {int(nemsteps)}", "tolerance = 0", "",
    ])


def _components(decoy: Complex) -> int:
    """The decoy's chain segments, each a HADDOCK component; BaselineError above what HADDOCK3 takes."""
    n_segments = int(segments(decoy)[-1]) + 1
    if n_segments > MAX_COMPONENTS:
        raise BaselineError(f"{n_segments} chain segments; HADDOCK3 takes at most {MAX_COMPONENTS}")
    return n_segments


def haddock_score(decoy: Complex, workdir: Path, *, nemsteps: int = 50, haddock3: str | Path | None = None,
                  timeout_s: float = 600.0) -> dict[str, Any]:
    """HADDOCK's score of ``decoy`` as one complex (lower is better), the reference ranker beside EGR's
    predicted DockQ (``egr haddock-score``): :func:`read_model_header` of emscoring's model, plus
    ``haddock_s`` (haddock3's wall time, s). Raises BaselineError with a one-line reason."""
    _components(decoy)
    run_dir, returncode, seconds = _run_haddock3(sanitised_pdb(decoy), workdir, scoring_config(nemsteps),
                                                 "emscoring", haddock3, timeout_s)
    model = run_dir / "1_emscoring" / "emscoring_1.pdb"
    if returncode != 0 or not model.is_file():
        raise _failure(run_dir, "emscoring", returncode)
    return {**read_model_header(model.read_text()), "haddock_s": round(seconds, 3)}


def _heavy_protein_atoms(path: Path) -> tuple[gemmi.Structure, list[tuple[str, int, str]], np.ndarray]:
    """A HADDOCK model's protein heavy atoms: the structure (hydrogens, waters and other residues
    removed), each atom's (chain, residue number, name) key and its (N, 3) coordinates in Å."""
    structure = gemmi.read_structure(str(path))
    structure.remove_hydrogens()
    structure.remove_waters()
    for chain in structure[0]:
        for i in reversed(range(len(chain))):
            residue = chain[i]
            name = HADDOCK_RESIDUE_ALIASES.get(residue.name, residue.name)
            info = gemmi.find_tabulated_residue(name)
            if info is None or not info.is_amino_acid():  # e.g. TIP3 water, ions
                del chain[i]
            else:
                residue.name = name
    structure.remove_empty_chains()
    keys = [(chain.name, residue.seqid.num, atom.name) for chain in structure[0] for residue in chain
            for atom in residue]
    xyz = np.array([atom.pos.tolist() for chain in structure[0] for residue in chain for atom in residue],
                   dtype=np.float64).reshape(-1, 3)
    return structure, keys, xyz


def rigid_fit(mobile: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares rigid motion (Kabsch, no reflection) taking ``mobile`` (N, 3) onto ``target`` (N, 3):
    ``(R, t, rmsd)`` with ``target ≈ mobile @ R.T + t``; RMSD in Å."""
    rotation, translation = kabsch(mobile, target)
    fitted = mobile @ rotation.T + translation
    return rotation, translation, float(np.sqrt(np.mean(np.sum((fitted - target) ** 2, axis=1))))


def model_in_input_frame(output: RunOutput, out_pdb: Path) -> float:
    """Write the refined model's protein heavy atoms, moved back into the input's frame, to ``out_pdb``;
    returns the RMSD (Å) of the rigid fit that recovers emscoring's reorientation."""
    _, topo_keys, topo_xyz = _heavy_protein_atoms(output.topology_model)
    _, score_keys, score_xyz = _heavy_protein_atoms(output.scoring_model)
    if topo_keys != score_keys:
        raise BaselineError("HADDOCK3's emscoring model has other atoms than its topoaa model")
    rotation, translation, rmsd = rigid_fit(score_xyz, topo_xyz)
    if rmsd > RIGID_FIT_TOLERANCE_A:
        raise BaselineError(f"emscoring moved atoms relative to each other ({rmsd:.3f} Å): cannot restore the frame")
    structure, _, _ = _heavy_protein_atoms(output.refined_model)
    structure[0].transform_pos_and_adp(gemmi.Transform(gemmi.Mat33(rotation.tolist()), gemmi.Vec3(*translation)))
    structure.write_pdb(str(out_pdb))
    return rmsd


def add_missing_oxt(decoy: Complex, refined: Refined) -> tuple[Refined, int]:
    """Rebuild each OXT the decoy has and the refined atoms lack: the refined O mirrored through the
    residue's CA–C axis (C–OXT = C–O, in the CA–C–O plane). Returns the atoms and how many were built."""
    wanted = np.unique(decoy.residue_index[decoy.atom_names == "OXT"])
    have = set(refined.atom_residue[refined.atom_name == "OXT"].tolist())
    rows: list[tuple[int, np.ndarray]] = []
    for residue in wanted.tolist():
        if residue in have:
            continue
        atoms = {name: refined.xyz[i] for i in np.flatnonzero(refined.atom_residue == residue)
                 for name in [refined.atom_name[i]] if name in ("CA", "C", "O")}
        if len(atoms) < 3:
            continue  # output_complex then names the missing atom
        axis = (atoms["C"] - atoms["CA"]) / np.linalg.norm(atoms["C"] - atoms["CA"])
        bond = atoms["O"] - atoms["C"]
        along = float(bond @ axis) * axis
        rows.append((residue, atoms["C"] + along - (bond - along)))
    if not rows:
        return refined, 0
    return Refined(
        atom_residue=np.concatenate([refined.atom_residue, [r for r, _ in rows]]).astype(np.int64),
        atom_name=np.concatenate([refined.atom_name, ["OXT"] * len(rows)]),
        element=np.concatenate([refined.element, ["O"] * len(rows)]),
        xyz=np.vstack([refined.xyz, [xyz for _, xyz in rows]]),
    ), len(rows)


def refine(
    decoy: Complex,
    workdir: Path,
    *,
    protocol: str = "emref",
    haddock3: str | Path | None = None,
    timeout_s: float = 3600.0,
) -> tuple[Refined, dict[str, Any]]:
    """Refine ``decoy`` with HADDOCK3's ``emref`` or ``mdref`` (no restraints); return its heavy atoms in
    the decoy's frame and HADDOCK's figures.

    Args:
        decoy: the decoy (heavy atoms, from :func:`egr.baselines.common.read_decoy`).
        workdir: scratch folder; haddock3 runs there (``run/``).
        protocol: ``'emref'`` (energy minimisation) or ``'mdref'`` (short MD in explicit water).
        haddock3: the haddock3 executable (default ``$EGR_HADDOCK3``, else ``haddock3`` on PATH).
        timeout_s: wall-clock limit of the haddock3 run in seconds.
    Returns:
        (atoms, details): ``protocol``, ``config`` (the workflow file's text), ``haddock_score_before`` /
        ``_after`` (a.u.), ``energies_before_kcal_mol`` / ``_after`` (HADDOCK's terms, kcal/mol),
        ``bsa_before_a2`` / ``_after``, ``haddock_s`` (haddock3's wall time, s), ``frame_fit_rmsd_a``,
        ``n_oxt_rebuilt``, ``n_segments`` and ``versions`` (haddock3, CNS).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    n_segments = _components(decoy)
    output = run_protocol(sanitised_pdb(decoy), workdir, protocol, haddock3=haddock3, timeout_s=timeout_s)
    before = read_model_header(output.scoring_model.read_text())
    after = read_model_header(output.refined_model.read_text())
    model = workdir / "refined_input_frame.pdb"
    fit_rmsd = model_in_input_frame(output, model)
    refined, n_oxt = add_missing_oxt(decoy, refined_from_structure(decoy, model, "HADDOCK3"))
    found = installation(haddock3)
    details = {
        "protocol": protocol,
        "config": workflow_config(protocol),
        "haddock_score_before": before["haddock_score"],
        "haddock_score_after": after["haddock_score"],
        "energies_before_kcal_mol": before["energies_kcal_mol"],
        "energies_after_kcal_mol": after["energies_kcal_mol"],
        "bsa_before_a2": before["bsa_a2"],
        "bsa_after_a2": after["bsa_a2"],
        "haddock_s": round(output.seconds, 3),
        "frame_fit_rmsd_a": round(fit_rmsd, 5),
        "n_oxt_rebuilt": n_oxt,
        "n_segments": n_segments,
        "versions": {"haddock3": None if isinstance(found, str) else found.version, "cns": after["cns"]},
    }
    return refined, details


def score_results(results: Path, out: Path, *, nemsteps: int = 50, haddock3: str | Path | None = None,
                  progress: Any = None) -> tuple[int, list[str]]:
    """``egr haddock-score``: the HADDOCK score of every cleaned decoy of a results folder
    (``<id>/<id>_clean.pdb``, as ``egr run`` and INGEST write them), written atomically to ``out``, a TSV
    of ``id`` and ``haddock_score`` (at :func:`egr.layout.haddock_scores`, ``egr evaluate`` and the report
    rank by it, lower is better). A decoy HADDOCK fails on gets an empty cell. Returns (decoys scored, one-line
    failures ``<id>: <reason>``); ``progress`` gets one line per decoy."""
    import tempfile

    from egr import layout
    from egr.io import atomic_write_text

    from .common import one_line, read_decoy

    cleaned = sorted(results.glob(f"*/*{layout.CLEAN_PDB}"))
    rows, failures = ["id\thaddock_score"], []
    for path in cleaned:
        decoy_id = path.name[: -len(layout.CLEAN_PDB)]
        try:
            decoy, _ = read_decoy(path)
            with tempfile.TemporaryDirectory(prefix=".egr-haddock-score-") as scratch:
                figures = haddock_score(decoy, Path(scratch), nemsteps=nemsteps, haddock3=haddock3)
            rows.append(f"{decoy_id}\t{figures['haddock_score']:.4f}")
            line = f"{decoy_id}: HADDOCK score {figures['haddock_score']:.3f} ({figures['haddock_s']:.1f} s)"
        except Exception as exc:  # one decoy's failure leaves its cell empty; the others are scored
            rows.append(f"{decoy_id}\t")
            failures.append(f"{decoy_id}: {one_line(exc)}")
            line = f"{decoy_id}: failed: {one_line(exc)}"
        if progress is not None:
            progress(line)
    atomic_write_text(out, "\n".join(rows) + "\n")
    return len(cleaned) - len(failures), failures
