"""Plumbing shared by the baseline refiners (OpenMM relax, Modeller, GalaxyRefineComplex).

Every adapter does the same things around a different engine:

1. read the decoy with the package's ingestion (:func:`egr.structure.read_decoy`: heavy atoms of
   amino acids, modified residues mapped to their parent, ligands and waters removed), keeping
   only the standard heavy atoms the engines know (:func:`read_decoy`);
2. hand the engine a *sanitised* copy (:func:`sanitised_pdb`): one chain per unbroken segment,
   chains ``A, B, ...``, residues ``1..n``, no insertion codes. External programs choke on
   insertion codes, odd chain IDs and chain breaks in different ways; a sanitised copy side-steps
   all of them, and splitting at breaks stops every engine from bonding across a gap;
3. map the engine's atoms back onto the decoy's chain IDs, residue numbers and insertion codes
   **by order** (:func:`refined_from_structure`), after checking that residue count and names agree;
4. write the result atomically (:func:`output_complex`, :func:`egr.structure.write_pdb`).

:func:`run_refiner` wraps all of it, times it and turns any per-decoy error into a ``'failed'``
:class:`BaselineResult` with a one-line reason. :func:`run_with_timeout` runs such a call in a child
process that is killed, with everything it started, when it exceeds a wall-time limit (the refiner
timeout, ``--refiner-timeout``), which fails that decoy's cell with the reason.

Units: coordinates in Å, energies in kJ/mol unless a name says otherwise.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import gemmi
import numpy as np

from egr.chemistry import HEAVY_ATOMS, ONE_LETTER
from egr.structure import Complex, IngestError, format_pdb, write_pdb
from egr.structure import read_decoy as ingest

#: Protonation/force-field variants that refiners write for standard residues (AMBER, CHARMM).
RESIDUE_ALIASES: dict[str, str] = {
    "HID": "HIS", "HIE": "HIS", "HIP": "HIS", "HSD": "HIS", "HSE": "HIS", "HSP": "HIS",
    "CYX": "CYS", "CYM": "CYS", "LYN": "LYS", "ASH": "ASP", "GLH": "GLU",
}
#: C-terminal oxygen names of CHARMM/GROMOS-style writers.
TERMINAL_ALIASES: dict[str, str] = {"OT1": "O", "OC1": "O", "OT2": "OXT", "OC2": "OXT"}

#: The peptide C–N bond is 1.33 Å; beyond 2.0 Å it is a chain break, not a stretched bond.
PEPTIDE_BREAK_A = 2.0
#: Consecutive Cα lie 3.8 Å apart (2.9 Å for cis); used where the backbone C or N is missing.
CA_BREAK_A = 4.2
SEGMENT_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


class BaselineError(Exception):
    """A per-decoy failure; the message is the one-line reason shown to the user."""


@dataclass(frozen=True)
class BaselineResult:
    """Outcome of one baseline refinement of one decoy.

    ``seconds`` is the wall time of the whole call (reading, preparing, the engine, writing).
    ``details`` holds method-specific figures (energies in kJ/mol, displacements in Å, notes).
    """

    method: str  # 'openmm' | 'modeller' | 'galaxy'
    status: str  # 'ok' | 'failed' | 'skipped'
    reason: str  # one line; '' when ok
    seconds: float
    output: Path | None
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``output`` as a string or None)."""
        data = asdict(self)
        data["output"] = None if self.output is None else str(self.output)
        return data


@dataclass(frozen=True)
class Refined:
    """Heavy atoms an engine returned, assigned to the decoy's residues by order.

    ``atom_residue`` (A,) int indexes the decoy's residues; names (A,), elements (A,), xyz (A, 3) Å.
    """

    atom_residue: np.ndarray
    atom_name: np.ndarray
    element: np.ndarray
    xyz: np.ndarray


#: An engine gets the decoy and a scratch folder and returns its atoms and method details.
Engine = Callable[[Complex, Path], tuple[Refined, dict[str, Any]]]


def one_line(exc: BaseException) -> str:
    """One-line reason from an exception: the first line of its message (at most 300 characters),
    prefixed with the exception type unless it is one of ours."""
    lines = str(exc).strip().splitlines()
    message = lines[0].strip() if lines else ""
    if not isinstance(exc, (BaselineError, IngestError)):
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return message[:300]


def last_line(output: str | Path) -> str:
    """Last non-empty line (at most 300 characters) of a program's output, given as text or as a
    log file: usually its error message."""
    if isinstance(output, Path):
        output = output.read_text(errors="replace") if output.exists() else ""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _take(complex_: Complex, rows: np.ndarray) -> Complex:
    """The complex restricted to atom ``rows`` (residue and chain indices re-densified)."""
    sub = {key: value[rows] for key, value in complex_.__dict__.items()}
    for key in ("residue_index", "chain_index"):
        sub[key] = np.unique(sub[key], return_inverse=True)[1].astype(np.int64)
    return Complex(**sub)


def read_decoy(path: Path | str, ca_only: bool = False) -> tuple[Complex, list[str]]:
    """Read a decoy for a baseline: the package's ingestion, then only atoms the engines know.

    Atoms that are not standard heavy atoms of their residue (nor OXT) are dropped: engines would
    drop or choke on them, and the output must hold every atom the decoy keeps. With ``ca_only``
    (the Cα → all-atom rebuild) a Cα trace is accepted and only Cα atoms are kept.

    Returns:
        (complex, notes): the heavy-atom complex and one-line notes of what reading removed or renamed.
    Raises:
        IngestError / BaselineError with a one-line reason.
    """
    complex_, record = ingest(path, ca_only_ok=ca_only)
    notes = list(record.warnings)
    if record.removed_residue_names:
        notes.append("removed residues: " + ", ".join(f"{k} ×{v}" for k, v in record.removed_residue_names.items()))
    if record.mapped_residues:
        notes.append("mapped residues: " + ", ".join(f"{k} ×{v}" for k, v in record.mapped_residues.items()))
    if ca_only:
        keep = complex_.atom_names == "CA"
    else:
        keep = np.zeros(complex_.n_atoms, dtype=bool)
        for residue, atoms in HEAVY_ATOMS.items():  # 20 vectorised tests
            keep |= (complex_.res_names == residue) & np.isin(complex_.atom_names, (*atoms, "OXT"))
        if not keep.all():
            notes.append(f"removed {int((~keep).sum())} atom(s) with non-standard names")
    if not keep.any():
        raise BaselineError(f"{Path(path).name}: no atoms left for refinement")
    kept = _take(complex_, np.flatnonzero(keep))
    if kept.n_residues != complex_.n_residues:
        lost = np.setdiff1d(np.arange(complex_.n_residues), complex_.residue_index[keep])[0]
        kind = "CA" if ca_only else "standard"
        raise BaselineError(f"residue {residue_label(complex_, int(lost))} has no {kind} atom")
    return kept, notes


def residue_table(complex_: Complex) -> dict[str, np.ndarray]:
    """Per-residue columns (R,): ``chain``, ``number``, ``icode``, ``name``."""
    starts = complex_.residue_starts
    return {
        "chain": complex_.chain_ids[starts],
        "number": complex_.res_seq[starts],
        "icode": complex_.ins_codes[starts],
        "name": complex_.res_names[starts],
    }


def residue_label(complex_: Complex, index: int) -> str:
    """Human-readable label of residue ``index``, e.g. ``'A 52B LYS'``."""
    table = residue_table(complex_)
    return f"{table['chain'][index]} {table['number'][index]}{table['icode'][index]} {table['name'][index]}"


def _atom_per_residue(complex_: Complex, atom: str) -> np.ndarray:
    """(R, 3) coordinates of one named atom per residue, NaN where the residue lacks it."""
    out = np.full((complex_.n_residues, 3), np.nan)
    mask = complex_.atom_names == atom
    out[complex_.residue_index[mask]] = complex_.coords[mask]
    return out


def segments(complex_: Complex) -> np.ndarray:
    """(R,) segment index per residue: a new segment starts at each chain change and chain break.

    A break is a C(i)–N(i+1) distance above 2.0 Å; where C or N is missing, a Cα–Cα distance above
    4.2 Å, or no backbone atom to tell.
    """
    c, n, ca = (_atom_per_residue(complex_, atom) for atom in ("C", "N", "CA"))
    d_cn = np.linalg.norm(c[:-1] - n[1:], axis=1)
    d_caca = np.linalg.norm(ca[:-1] - ca[1:], axis=1)
    # NaN compares False, so each test only counts where its atoms exist.
    broken = np.where(np.isnan(d_cn), ~(d_caca <= CA_BREAK_A), d_cn > PEPTIDE_BREAK_A)
    chain = complex_.chain_index[complex_.residue_starts]
    return np.concatenate([[0], np.cumsum((chain[1:] != chain[:-1]) | broken)]).astype(np.int64)


def sanitised(complex_: Complex) -> Complex:
    """The decoy as engines get it: one chain per segment (``A``, ``B``, ...), residues numbered
    1..n per segment, no insertion codes, occupancy 1 and B-factor 0."""
    segment = segments(complex_)
    if segment[-1] >= len(SEGMENT_IDS):
        raise BaselineError(f"{segment[-1] + 1} chain segments; external refiners take at most {len(SEGMENT_IDS)}")
    number = np.arange(len(segment)) - np.searchsorted(segment, segment) + 1  # segments are sorted runs
    residue = complex_.residue_index
    return Complex(**{
        **complex_.__dict__,
        "chain_ids": np.array(list(SEGMENT_IDS))[segment][residue],
        "res_seq": number[residue],
        "ins_codes": np.full(complex_.n_atoms, ""),
        "occupancies": np.ones(complex_.n_atoms),
        "b_factors": np.zeros(complex_.n_atoms),
        "chain_index": segment[residue],
    })


def sanitised_pdb(complex_: Complex) -> str:
    """PDB text of :func:`sanitised` (``TER`` after each segment)."""
    return format_pdb(sanitised(complex_))


def segment_sequences(complex_: Complex) -> list[str]:
    """One-letter sequence of each segment, in order."""
    letters = np.array([ONE_LETTER[name] for name in residue_table(complex_)["name"].tolist()])
    bounds = np.flatnonzero(np.diff(segments(complex_))) + 1
    return ["".join(part) for part in np.split(letters, bounds)]


def normalise_resname(name: str) -> str:
    """Standard name of an engine's residue (force-field variants folded, modified → parent)."""
    if name in HEAVY_ATOMS:
        return name
    if name in RESIDUE_ALIASES:
        return RESIDUE_ALIASES[name]
    info = gemmi.find_tabulated_residue(name)
    if info is not None and info.is_amino_acid() and info.one_letter_code.islower():
        return next((k for k, v in ONE_LETTER.items() if v == info.one_letter_code.upper()), name)
    return name


def check_residue_names(complex_: Complex, names: list[str], program: str) -> None:
    """Raise :class:`BaselineError` unless ``names`` (an engine's residues, in order) match the
    decoy's residues one to one."""
    if len(names) != complex_.n_residues:
        raise BaselineError(f"{program} returned {len(names)} residues for {complex_.n_residues} in the decoy")
    got = np.array([normalise_resname(name) for name in names])
    differ = np.flatnonzero(got != residue_table(complex_)["name"])
    if differ.size:
        i = int(differ[0])
        raise BaselineError(f"{program} output residue {i + 1} is {got[i]}, the decoy has {residue_label(complex_, i)}")


def refined_from_structure(complex_: Complex, path: Path, program: str) -> Refined:
    """Read an engine's output PDB and assign its heavy atoms to the decoy's residues by order.

    Engines rename chains and renumber residues; residue count and names must still agree with
    the decoy. Hydrogens (also unlabelled ones such as ``1HD2``) and waters are ignored.
    """
    try:
        structure = gemmi.read_structure(str(path))
    except (RuntimeError, ValueError, OSError) as exc:
        raise BaselineError(f"cannot read {program} output {path.name}: {one_line(exc)}") from exc
    structure.remove_alternative_conformations()
    structure.remove_hydrogens()
    structure.remove_waters()
    residues = [residue for chain in structure[0] for residue in chain]
    check_residue_names(complex_, [residue.name for residue in residues], program)
    atom_residue = np.repeat(np.arange(len(residues)), [len(residue) for residue in residues])
    atoms = [atom for residue in residues for atom in residue]
    names = np.array([TERMINAL_ALIASES.get(atom.name, atom.name) for atom in atoms])
    return Refined(
        atom_residue=atom_residue.astype(np.int64),
        atom_name=names,
        element=np.array([atom.element.name.upper() for atom in atoms]),
        xyz=np.array([atom.pos.tolist() for atom in atoms], dtype=np.float64).reshape(-1, 3),
    )


def match_atoms(residue: np.ndarray, name: np.ndarray, want_residue: np.ndarray,
                want_name: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Locate atoms by (residue index, atom name).

    Args:
        residue, name: (N,) the atoms searched (unique pairs).
        want_residue, want_name: (W,) the atoms wanted.
    Returns:
        (rows, found): (W,) row of each wanted atom in the searched arrays and whether it exists
        (the row of a missing atom is meaningless).
    """
    keys = np.char.add(np.char.add(residue.astype(str), ":"), name.astype(str))
    wanted = np.char.add(np.char.add(want_residue.astype(str), ":"), want_name.astype(str))
    order = np.argsort(keys)
    pos = np.minimum(np.searchsorted(keys, wanted, sorter=order), len(keys) - 1)
    rows = order[pos]
    return rows, keys[rows] == wanted


def output_complex(complex_: Complex, refined: Refined) -> Complex:
    """The refined model with the decoy's identity, ready to write.

    Per residue: the decoy's atoms first (in the decoy's order) at the engine's coordinates, then
    atoms the engine added (missing side-chain atoms). A terminal OXT the decoy lacked is left out:
    each engine caps chain (and segment) ends its own way, and the output should keep the decoy's
    atom set where it was complete. Raises :class:`BaselineError` if the engine lost a decoy atom.
    """
    from_decoy, found = match_atoms(refined.atom_residue, refined.atom_name, complex_.residue_index,
                                    complex_.atom_names)
    if not found.all():
        i = int(np.flatnonzero(~found)[0])
        raise BaselineError(f"refined model lacks atom {complex_.atom_names[i]} of "
                            f"{residue_label(complex_, int(complex_.residue_index[i]))}")
    extra = np.ones(len(refined.atom_name), dtype=bool)
    extra[from_decoy] = False
    extra &= refined.atom_name != "OXT"
    take = np.concatenate([from_decoy, np.flatnonzero(extra)])
    take = take[np.argsort(refined.atom_residue[take], kind="stable")]  # stable: decoy atoms stay first
    residue = refined.atom_residue[take]
    table = residue_table(complex_)
    chain_of_residue = complex_.chain_index[complex_.residue_starts]
    return Complex(
        coords=refined.xyz[take],
        atom_names=refined.atom_name[take],
        elements=refined.element[take],
        res_names=table["name"][residue],
        chain_ids=table["chain"][residue],
        res_seq=table["number"][residue],
        ins_codes=table["icode"][residue],
        occupancies=np.ones(len(take)),
        b_factors=np.zeros(len(take)),  # baselines give no per-atom confidence
        residue_index=residue,
        chain_index=chain_of_residue[residue],
    )


def displacement(before: Complex, after: Complex) -> tuple[float, float]:
    """(RMSD, max) displacement in Å of ``before``'s atoms in ``after`` (same residues, every atom
    of ``before`` present). No superposition: a refiner must not move the frame."""
    rows, _ = match_atoms(after.residue_index, after.atom_names, before.residue_index, before.atom_names)
    moved = np.linalg.norm(after.coords[rows] - before.coords, axis=1)
    return float(np.sqrt(np.mean(moved**2))), float(moved.max())


def run_refiner(method: str, decoy_path: Path | str, out_pdb: Path | str, engine: Engine,
                ca_only: bool = False) -> BaselineResult:
    """Read, refine, map back and write one decoy; never raises for a per-decoy failure.

    The engine's scratch folder sits next to ``out_pdb`` (same file system; removed afterwards).
    ``details`` gains ``rmsd_a`` / ``max_displacement_a`` (the decoy's atoms, Å), ``n_residues``,
    ``n_atoms_out`` and the reading ``notes``.
    """
    start = time.perf_counter()
    out_pdb = Path(out_pdb)
    try:
        decoy, notes = read_decoy(decoy_path, ca_only=ca_only)
        out_pdb.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out_pdb.parent, prefix=f".egr-{method}-") as scratch:
            refined, details = engine(decoy, Path(scratch))
        model = output_complex(decoy, refined)
        rmsd, max_move = displacement(decoy, model)
        write_pdb(model, out_pdb)
    except Exception as exc:  # one decoy's failure must not stop the others
        return BaselineResult(method, "failed", one_line(exc), time.perf_counter() - start, None)
    details = {
        **details,
        "rmsd_a": round(rmsd, 4),
        "max_displacement_a": round(max_move, 4),
        "n_residues": decoy.n_residues,
        "n_atoms_out": model.n_atoms,
        "notes": notes,
    }
    return BaselineResult(method, "ok", "", time.perf_counter() - start, out_pdb, details)


def timeout_reason(method: str, timeout_s: float) -> str:
    """The one-line reason of a cell that ran past the refiner timeout."""
    return f"{method}: exceeded the {timeout_s:g} s refiner timeout"


def run_with_timeout(method: str, out_pdb: Path | str, timeout_s: float,
                     work: Callable[[Path], BaselineResult]) -> BaselineResult:
    """``work(pdb)`` (one refiner run, e.g. :func:`run_refiner`) in a child process, given at most
    ``timeout_s`` seconds of wall time, process start included; never raises for a per-decoy failure.

    The child is started with ``spawn``: a fresh interpreter, because forking a process that holds
    torch or OpenMM worker threads can deadlock the child. It leads its own process group, so that a
    timeout kills the programs an adapter started too (Modeller, GalaxyRefineComplex), not just the
    child. It writes into a scratch folder next to ``out_pdb``; only a finished, ``'ok'`` model is moved
    onto ``out_pdb`` (an atomic rename on the same file system), and the folder is removed whatever
    happened, so a killed run leaves nothing behind. ``work`` must be picklable (a module-level
    function or a :func:`functools.partial` of one) and is called with the scratch PDB path.

    Returns the child's result (output moved to ``out_pdb``; ``seconds`` is the wall time here), or
    ``'failed'`` with :func:`timeout_reason`, or ``'failed'`` when the child died without a result
    (e.g. killed for memory). ``details`` gain ``refiner_timeout_s``.
    """
    if not timeout_s > 0:
        raise ValueError(f"refiner timeout must be positive seconds, got {timeout_s!r}")
    start = time.perf_counter()
    out_pdb = Path(out_pdb)
    out_pdb.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=out_pdb.parent, prefix=f".egr-{method}-timed-"))
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(method, work, scratch / out_pdb.name, sender),
                            name=f"egr-{method}")
    result: BaselineResult | None = None
    finished = False
    try:
        try:
            child.start()
            sender.close()  # only the child's end stays open, so a dead child reads as end-of-file here
            finished = receiver.poll(timeout_s)  # True on a result and on end-of-file
            result = receiver.recv() if finished else None
        except EOFError:  # the child died before sending its result
            result = None
        finally:  # killed before it is joined (reaped), so that its pid still names its group
            _kill_group(child)
            if child.pid is not None:
                child.join()
            receiver.close()
        if result is None and finished:
            reason = f"{method}: refiner process died without a result (exit code {child.exitcode})"
            result = BaselineResult(method, "failed", reason, 0.0, None)
        elif result is None:
            result = BaselineResult(method, "failed", timeout_reason(method, timeout_s), 0.0, None)
        elif result.status == "ok" and result.output is not None:
            os.replace(result.output, out_pdb)
            result = dataclasses.replace(result, output=out_pdb)
    except Exception as exc:  # e.g. the child could not start, or the model could not be moved into place
        result = BaselineResult(method, "failed", one_line(exc), 0.0, None)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dataclasses.replace(result, seconds=time.perf_counter() - start,
                               details={**result.details, "refiner_timeout_s": timeout_s})


def _child_main(method: str, work: Callable[[Path], BaselineResult], out_pdb: Path, sender: Any) -> None:
    """Child process of :func:`run_with_timeout`: lead a new process group, run, send the result."""
    os.setsid()  # first, so that everything started from here on can be killed as one group
    try:
        result = work(out_pdb)
    except Exception as exc:  # run_refiner catches per-decoy errors; this reports anything else
        result = BaselineResult(method, "failed", one_line(exc), 0.0, None)
    sender.send(result)
    sender.close()


def _kill_group(child: multiprocessing.process.BaseProcess) -> None:
    """SIGKILL the child's process group (the child and what it started); the child alone if it had no
    time to create its group. Called before the child is joined, so its pid cannot have been reused."""
    if child.pid is None:  # never started
        return
    try:
        if os.getpgid(child.pid) == child.pid:
            os.killpg(child.pid, signal.SIGKILL)
            return
        os.kill(child.pid, signal.SIGKILL)  # not yet its own group: it has started nothing
    except ProcessLookupError:  # gone already
        pass
