"""Scores of a model against its native structure, and of predicted against true quality.

* DockQ v2 (GlobalDockQ and, per native interface, DockQ, Fnat, fnonnat, iRMSD, LRMSD, F1, clashes)
  computed in-process with the DockQ package: this module only drives DockQ's own functions the way
  its command line does (chain-mapping search included), it never recomputes a DockQ metric.
* Per-residue LDDT-Cα of a model against its native (inclusion radius 15 Å in the native,
  thresholds 0.5/1/2/4 Å, all chains together so inter-chain pairs count).
* Agreement between predicted and true per-residue quality (Pearson, Spearman, MAE).

Anything that cannot be computed (unreadable file, chains that cannot be paired, a native without an
interface) raises :class:`ScoringError` with a one-line reason; no score is ever faked as 0.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import re
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import gemmi
import numpy as np
from DockQ import DockQ as dockq_lib
from scipy import stats
from scipy.spatial import cKDTree

LDDT_INCLUSION_RADIUS = 15.0  # Å, measured in the native
LDDT_THRESHOLDS = (0.5, 1.0, 2.0, 4.0)  # Å

# Values tried, in order, for DockQ's --allowed_mismatches when chains cannot be paired
# (the same ladder that made the labels of the data set shared/data, which lives beside this repository;
# see its SOURCES.md, and tests/data/SOURCES.md for the copies here). Larger values risk
# pairing a short chain with an unrelated long one, so the ladder stops at 5.
MISMATCH_STEPS = (0, 1, 2, 5)

# DockQ's CLI switches to its low-memory mode above this many chain mappings.
_DOCKQ_LOW_MEMORY_COMBINATIONS = 100


class ScoringError(Exception):
    """A score cannot be computed for this model/native pair; the message is one line."""


class InterfaceScores(TypedDict):
    """DockQ's scores for one native chain-chain interface (distances in Å)."""

    native_chains: str  # the two native chain IDs, e.g. "AB"
    model_chains: str  # the model chains mapped onto them, e.g. "BA"
    dockq: float
    fnat: float
    fnonnat: float
    irmsd: float
    lrmsd: float
    f1: float
    clashes: int  # model residue pairs closer than DockQ's clash threshold
    nat_correct: int
    nat_total: int
    nonnat_count: int
    model_total: int


class DockQScores(TypedDict):
    """DockQ's result for a model under the best chain mapping."""

    global_dockq: float  # mean DockQ over all native interfaces ("Total DockQ" of the CLI)
    mapping: str  # model:native chain string, as the CLI prints it, e.g. "BAC:ABC"
    chain_map: dict[str, str]  # native chain -> model chain
    allowed_mismatches: int  # the value that paired the chains
    interfaces: dict[str, InterfaceScores]  # keyed by native chain pair, e.g. "AB"


# --------------------------------------------------------------------------------------------
# Hydrogen stripping
# --------------------------------------------------------------------------------------------


def is_hydrogen_record(line: str) -> bool:
    """True for a PDB ATOM/HETATM line that holds a hydrogen or deuterium.

    The element column (77-78) decides when it names an element; when it is blank or not an element
    (HADDOCK and ATTRACT leave it blank), an atom name starting with H (after any leading digit,
    as in old-style ``1HB``) marks a hydrogen.
    """
    element = line[76:78].strip()
    if element:
        atomic_number = gemmi.Element(element).atomic_number
        if atomic_number:
            return atomic_number == 1  # gemmi reads D as hydrogen too
    return line[12:16].strip().lstrip("0123456789").upper().startswith("H")


def _is_mmcif(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return name.endswith((".cif", ".mmcif"))


def write_without_hydrogens(source: Path, target: Path) -> Path:
    """Write ``source`` (PDB or mmCIF, optionally gzipped) to ``target`` with all H/D atoms removed.

    DockQ 2.1.3 drops H only when the element column says H, so files with a blank element column
    (HADDOCK, ATTRACT) would count H as contact atoms and inflate Fnat. PDB files are filtered line
    by line, so every other byte reaches DockQ unchanged; mmCIF goes through gemmi. ``target`` is
    written uncompressed and returned.
    """
    try:
        if _is_mmcif(source):
            structure = gemmi.read_structure(str(source))
            structure.remove_hydrogens()
            structure.make_mmcif_document().write_file(str(target))
            return target
        opener = gzip.open if source.name.lower().endswith(".gz") else open
        with opener(source, "rb") as handle:
            lines = handle.read().splitlines(keepends=True)
    except (OSError, RuntimeError, ValueError) as error:
        raise ScoringError(f"cannot read {source}: {error}") from None
    kept = [
        raw
        for raw in lines
        if not (raw.startswith((b"ATOM  ", b"HETATM")) and is_hydrogen_record(raw.decode("latin-1")))
    ]
    target.write_bytes(b"".join(kept))
    return target


# --------------------------------------------------------------------------------------------
# DockQ
# --------------------------------------------------------------------------------------------


class _RecordList(logging.Handler):
    """Keeps the text of error records; takes (and so silences) warnings too."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.messages.append(" ".join(record.getMessage().split()))


@contextmanager
def _dockq_failures_as_errors(context: str) -> Iterator[None]:
    """Turn DockQ's way of rejecting input (``logging.error`` then ``sys.exit``) into ScoringError.

    DockQ's helpers were written for its command line: they log the reason on the root logger and
    exit. The handler is attached only for the duration of the call, and while it is attached
    DockQ's warnings (e.g. about mismatches tried at a lower allowed_mismatches) are not printed.
    """
    handler = _RecordList()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    except SystemExit:
        reason = handler.messages[-1] if handler.messages else "DockQ rejected the input"
        raise ScoringError(f"{context}: {reason}") from None
    finally:
        root.removeHandler(handler)


def _load_for_dockq(path: Path, chains: list[str] | None, label: str) -> object:
    """Load with DockQ's own parser (protein chains only, HETATM skipped, as its CLI does)."""
    try:
        structure = dockq_lib.load_PDB(str(path), chains=chains or [])
    except Exception as error:  # DockQ falls back from PDB to mmCIF and re-raises whatever fails
        raise ScoringError(f"{label}: cannot parse: {type(error).__name__}: {error}") from None
    # DockQ memoises per chain (functools.lru_cache) on Bio.PDB hashes, which contain the file
    # path. A unique id keeps a later structure at the same path from hitting stale entries.
    structure.id = f"{path}#{uuid.uuid4().hex}"
    return structure


def _clear_dockq_caches() -> None:
    """Drop DockQ's per-chain memo tables: their keys are unique to one call (see _load_for_dockq),
    so they can never hit again and would only keep whole structures alive."""
    for member in vars(dockq_lib).values():
        if callable(getattr(member, "cache_clear", None)):
            member.cache_clear()


def _interface_scores(native_pair: str, info: Mapping) -> InterfaceScores:
    return InterfaceScores(
        native_chains=native_pair,
        model_chains=f"{info['chain1']}{info['chain2']}",
        dockq=float(info["DockQ"]),
        fnat=float(info["fnat"]),
        fnonnat=float(info["fnonnat"]),
        irmsd=float(info["iRMSD"]),
        lrmsd=float(info["LRMSD"]),
        f1=float(info["F1"]),
        clashes=int(info["clashes"]),
        nat_correct=int(info["nat_correct"]),
        nat_total=int(info["nat_total"]),
        nonnat_count=int(info["nonnat_count"]),
        model_total=int(info["model_total"]),
    )


def _pair_chains(
    model: object,
    native: object,
    model_chains: list[str],
    native_chains: list[str],
    allowed_mismatches: int,
    auto_mismatches: bool,
    label: str,
) -> tuple[dict, bool, int]:
    """DockQ's grouping of model chains under native chains of the same sequence.

    Returns DockQ's (clusters, reverse_map) and the allowed_mismatches value that paired them.
    """
    ladder = [allowed_mismatches]
    if auto_mismatches:
        ladder += [m for m in MISMATCH_STEPS if m > allowed_mismatches]
    for mismatches in ladder:
        try:
            with _dockq_failures_as_errors(f"{label}: chains cannot be paired with allowed_mismatches={mismatches}"):
                clusters, reverse_map = dockq_lib.group_chains(
                    model, native, model_chains, native_chains, mismatches
                )
            return clusters, reverse_map, mismatches
        except ScoringError as error:
            failure = error
    raise failure


def _dockq_on_files(
    model_path: Path,
    native_path: Path,
    allowed_mismatches: int,
    mapping: str | None,
    auto_mismatches: bool,
    label: str,
) -> DockQScores:
    """The steps of DockQ's CLI ``main``, on H-free files, with failures raised as ScoringError."""
    if mapping is not None and mapping.count(":") != 1:
        raise ScoringError(f"{label}: mapping {mapping!r} is not of the form MODELCHAINS:NATIVECHAINS")
    with _dockq_failures_as_errors(f"{label}: invalid mapping {mapping!r}"):
        initial_mapping, model_chains, native_chains = dockq_lib.format_mapping(mapping)
    model = _load_for_dockq(model_path, model_chains, f"{label}: model")
    native = _load_for_dockq(native_path, native_chains, f"{label}: native")
    model_ids = model_chains or [chain.id for chain in model]
    native_ids = native_chains or [chain.id for chain in native]
    # A chain named in the mapping but absent from the file makes DockQ print a traceback and exit
    # (or fail obscurely for native chains), so check the names first.
    for side, wanted, structure in (
        ("model", set(model_ids) | set(initial_mapping.values()), model),
        ("native", set(native_ids) | set(initial_mapping.keys()), native),
    ):
        missing = sorted(wanted - {chain.id for chain in structure})
        if missing:
            raise ScoringError(f"{label}: mapping {mapping!r} names {side} chain(s) {''.join(missing)} not in the file")
    if len(model_ids) < 2 or len(native_ids) < 2:
        raise ScoringError(
            f"{label}: DockQ needs at least two protein chains on each side "
            f"(model has {''.join(model_ids) or 'none'}, native has {''.join(native_ids) or 'none'})"
        )
    model_to_combine = [c for c in model_ids if c not in initial_mapping.values()]
    native_to_combine = [c for c in native_ids if c not in initial_mapping.keys()]
    clusters, reverse_map, mismatches = _pair_chains(
        model, native, model_to_combine, native_to_combine, allowed_mismatches, auto_mismatches, label
    )
    with _dockq_failures_as_errors(f"{label}: no complete chain mapping"):
        n_mappings = int(dockq_lib.count_chain_combinations(clusters))
    low_memory = n_mappings > _DOCKQ_LOW_MEMORY_COMBINATIONS

    best_total, best_result, best_map = -1.0, {}, {}
    try:
        for chain_map in dockq_lib.get_all_chain_maps(
            clusters, initial_mapping, reverse_map, model_to_combine, native_to_combine
        ):
            result, total = dockq_lib.run_on_all_native_interfaces(
                model, native, chain_map=chain_map, low_memory=low_memory
            )
            # Strictly greater, in DockQ's enumeration order: ties go to the first mapping, as in the CLI.
            if total > best_total:
                best_total, best_result, best_map = total, result, dict(chain_map)
        if best_result and low_memory:
            # Low-memory results hold DockQ only; rescore the winner in full, as the CLI does.
            best_result, best_total = dockq_lib.run_on_all_native_interfaces(
                model, native, chain_map=best_map, low_memory=False
            )
    except (AssertionError, ValueError, IndexError, np.linalg.LinAlgError) as error:
        raise ScoringError(f"{label}: DockQ failed: {type(error).__name__}: {error}") from None
    if not best_result:
        raise ScoringError(f"{label}: the native has no interface between the mapped chains")
    return DockQScores(
        global_dockq=float(best_total) / len(best_result),
        mapping=dockq_lib.format_mapping_string(best_map),
        chain_map=best_map,
        allowed_mismatches=mismatches,
        interfaces={pair: _interface_scores(pair, info) for pair, info in best_result.items()},
    )


def _scratch_name(stem: str, source: Path) -> str:
    return f"{stem}.cif" if _is_mmcif(source) else f"{stem}.pdb"


def dockq_scores(
    model: Path,
    native: Path,
    allowed_mismatches: int = 0,
    mapping: str | None = None,
    auto_mismatches: bool = True,
) -> DockQScores:
    """DockQ v2 of ``model`` against ``native``, as ``DockQ model native`` would report it.

    Both files (PDB or mmCIF, optionally gzipped) are scored on scratch copies without H/D atoms
    (see :func:`write_without_hydrogens`). Like the CLI, all mappings between chains of matching
    sequence are searched and the one with the highest summed DockQ is kept, so homomers and chain
    IDs that differ between model and native are handled.

    Args:
        model, native: structure files.
        allowed_mismatches: sequence mismatches tolerated when pairing a model chain with a native
            chain (DockQ's ``--allowed_mismatches``).
        mapping: DockQ's ``--mapping`` string, ``MODELCHAINS:NATIVECHAINS`` (e.g. ``"AB:HL"``,
            ``":BC"``), or None to search all mappings.
        auto_mismatches: if chains cannot be paired with ``allowed_mismatches``, retry with each
            larger value of :data:`MISMATCH_STEPS` (1, 2, 5) in turn; the value used is returned.
            Only pairing failures are retried, so a score computable at the given value never changes.

    Returns:
        :class:`DockQScores` (a plain dict; distances in Å).

    Raises:
        ScoringError: unreadable file, fewer than two chains, chains that cannot be paired, or a
            native without an interface between the mapped chains.
    """
    model, native = Path(model), Path(native)
    label = f"{model.name} vs {native.name}"
    with tempfile.TemporaryDirectory(prefix="egr-dockq-") as scratch:
        model_copy = write_without_hydrogens(model, Path(scratch) / _scratch_name("model", model))
        native_copy = write_without_hydrogens(native, Path(scratch) / _scratch_name("native", native))
        try:
            return _dockq_on_files(model_copy, native_copy, allowed_mismatches, mapping, auto_mismatches, label)
        finally:
            _clear_dockq_caches()


# --------------------------------------------------------------------------------------------
# LDDT-Cα
# --------------------------------------------------------------------------------------------


def lddt_ca(
    model_ca: np.ndarray,
    native_ca: np.ndarray,
    mask: np.ndarray,
    inclusion_radius: float = LDDT_INCLUSION_RADIUS,
    thresholds: Sequence[float] = LDDT_THRESHOLDS,
) -> np.ndarray:
    """Per-residue LDDT-Cα of a model against its native, all chains together.

    Row i of both coordinate arrays is the same residue. For each pair of residues whose native Cα
    are at most ``inclusion_radius`` apart, the pair is preserved at threshold t if the model Cα-Cα
    distance differs from the native one by at most t (both bounds inclusive, as in OpenStructure's
    lDDT, the reference implementation). A residue's score is the fraction of its pairs preserved,
    averaged over the thresholds. A native residue missing from the model (``mask`` False) still
    counts in its neighbours' pairs, as never preserved.

    Args:
        model_ca: (n, 3) model Cα coordinates in Å; rows where ``mask`` is False are ignored.
        native_ca: (n, 3) native Cα coordinates in Å; rows with NaN are not part of the reference.
        mask: (n,) bool, True where the model has this residue.
        inclusion_radius: Å, applied to native distances.
        thresholds: Å.

    Returns:
        (n,) float in [0, 1]; NaN where the model lacks the residue, the native lacks it, or it has
        no native neighbour within the radius.
    """
    model_ca = np.asarray(model_ca, dtype=float)
    native_ca = np.asarray(native_ca, dtype=float)
    in_native = np.isfinite(native_ca).all(axis=1)
    in_model = np.asarray(mask, dtype=bool) & np.isfinite(model_ca).all(axis=1) & in_native
    n = len(native_ca)
    reference_rows = np.flatnonzero(in_native)
    # query_pairs keeps distances <= radius, the inclusion rule of OpenStructure's reference lDDT.
    pairs = cKDTree(native_ca[reference_rows]).query_pairs(inclusion_radius, output_type="ndarray")
    i, j = reference_rows[pairs[:, 0]], reference_rows[pairs[:, 1]]
    native_d = np.linalg.norm(native_ca[i] - native_ca[j], axis=1)

    both = in_model[i] & in_model[j]
    model_d = np.linalg.norm(model_ca[i[both]] - model_ca[j[both]], axis=1)
    preserved = np.zeros(len(i))
    deviation = np.abs(model_d - native_d[both])
    preserved[both] = (deviation[:, None] <= np.asarray(thresholds, dtype=float)[None, :]).mean(axis=1)

    # Each pair counts for both of its residues.
    total = np.bincount(i, minlength=n) + np.bincount(j, minlength=n)
    kept = np.bincount(i, weights=preserved, minlength=n) + np.bincount(j, weights=preserved, minlength=n)
    scores = np.full(n, np.nan)
    defined = in_model & (total > 0)
    scores[defined] = kept[defined] / total[defined]
    return scores


@dataclass(frozen=True)
class Residue:
    """One residue of a structure file."""

    chain: str
    resseq: int
    icode: str  # insertion code, "" when none
    resname: str


@dataclass(frozen=True)
class ResidueCorrespondence:
    """Model residues paired with native residues, as arrays ready for :func:`lddt_ca`.

    Rows are the native residues (with a Cα) of the mapped native chains, in chain-map order.
    """

    native_residues: tuple[Residue, ...]  # (n,)
    native_ca: np.ndarray  # (n, 3) Å
    model_ca: np.ndarray  # (n, 3) Å, NaN where no model residue is aligned
    mask: np.ndarray  # (n,) bool, True where a model residue is aligned
    model_residues: tuple[Residue, ...]  # (m,) every model residue with a Cα, in file order
    model_row: np.ndarray  # (m,) int, row of each model residue above, -1 where unaligned


def _ca_residues(path: Path) -> dict[str, list[tuple[Residue, np.ndarray, str]]]:
    """Amino-acid residues with a Cα of the first model, per chain: (residue, Cα in Å, one-letter code)."""
    try:
        structure = gemmi.read_structure(str(path))
    except (OSError, RuntimeError, ValueError) as error:
        raise ScoringError(f"cannot read {path}: {error}") from None
    if len(structure) == 0:
        raise ScoringError(f"{path.name}: no atoms")
    chains: dict[str, list[tuple[Residue, np.ndarray, str]]] = {}
    for chain in structure[0]:
        # A chain ID can come back after other chains (e.g. split by TER); keep one list per ID.
        residues = chains.setdefault(chain.name, [])
        for residue in chain:
            info = gemmi.find_tabulated_residue(residue.name)
            ca = residue.find_atom("CA", "*")
            if info is None or not info.is_amino_acid() or ca is None:
                continue
            code = info.one_letter_code.upper() if info.one_letter_code.strip() else "X"
            entry = Residue(chain.name, residue.seqid.num, residue.seqid.icode.strip(), residue.name)
            residues.append((entry, np.array(ca.pos.tolist()), code))
    return chains


def _aligned_pairs(model_seq: str, native_seq: str) -> list[tuple[int, int]]:
    """Index pairs (model, native) of aligned positions (identical or not) of a global alignment."""
    result = gemmi.align_string_sequences(list(model_seq), list(native_seq), [], gemmi.AlignmentScoring())
    pairs = []
    m = t = 0
    for length, op in re.findall(r"(\d+)([MID])", result.cigar_str()):
        length = int(length)
        if op == "M":
            pairs.extend((m + k, t + k) for k in range(length))
            m, t = m + length, t + length
        elif op == "I":  # residues only in the model
            m += length
        else:  # "D": residues only in the native
            t += length
    return pairs


def _chain_pairs(model_chain: list[tuple[Residue, np.ndarray, str]], native_chain: list[tuple[Residue, np.ndarray, str]]) -> list[tuple[int, int]]:
    """Index pairs (model, native) of corresponding residues of two mapped chains.

    The sequence alignment decides. Where a gap could sit on either side of a repeated residue
    (e.g. a missing loop next to a duplicated Val), the alignment picks arbitrarily; a residue
    numbering shared by the two files then settles it: numbering is used when it pairs at least as
    many residues, and at least as many identical ones, as the alignment does.
    """
    model_seq = "".join(code for _, _, code in model_chain)
    native_seq = "".join(code for _, _, code in native_chain)
    aligned = _aligned_pairs(model_seq, native_seq)
    native_row = {(r.resseq, r.icode): t for t, (r, _, _) in enumerate(native_chain)}
    numbered = [
        (m, native_row[(r.resseq, r.icode)]) for m, (r, _, _) in enumerate(model_chain) if (r.resseq, r.icode) in native_row
    ]

    def identical(pairs: list[tuple[int, int]]) -> int:
        return sum(model_seq[m] == native_seq[t] for m, t in pairs)

    if len(numbered) >= len(aligned) and identical(numbered) >= identical(aligned):
        return numbered
    return aligned


def residue_correspondence(model: Path, native: Path, chain_map: Mapping[str, str]) -> ResidueCorrespondence:
    """Pair model and native residues by chain mapping and sequence alignment (not by numbering).

    Args:
        model, native: structure files (PDB or mmCIF, optionally gzipped).
        chain_map: native chain ID -> model chain ID, e.g. ``dockq_scores(...)["chain_map"]``.
            Native chains left out are not part of the reference.

    Each mapped chain pair is aligned globally (gemmi) on one-letter sequences; aligned positions are
    paired whether or not the residue types agree (a point mutation is still the same position).
    A residue numbering shared by both files only breaks ties between equally good pairings.
    """
    model_chains = _ca_residues(Path(model))
    native_chains = _ca_residues(Path(native))
    native_residues: list[Residue] = []
    native_rows: list[np.ndarray] = []
    model_xyz: list[np.ndarray] = []
    model_row_of: dict[Residue, int] = {}
    absent = [f"native chain {c}" for c in chain_map if c not in native_chains]
    absent += [f"model chain {c}" for c in chain_map.values() if c not in model_chains]
    if absent:
        raise ScoringError(
            f"{Path(model).name} vs {Path(native).name}: no amino-acid residue with a CA in {', '.join(absent)}"
        )
    for native_id, model_id in chain_map.items():
        native_list, model_list = native_chains[native_id], model_chains[model_id]
        offset = len(native_residues)
        aligned = np.full((len(native_list), 3), np.nan)
        for m, t in _chain_pairs(model_list, native_list):
            aligned[t] = model_list[m][1]
            model_row_of[model_list[m][0]] = offset + t
        native_residues.extend(r[0] for r in native_list)
        native_rows.extend(r[1] for r in native_list)
        model_xyz.append(aligned)
    all_model = tuple(r[0] for chain in model_chains.values() for r in chain)
    model_ca = np.concatenate(model_xyz) if model_xyz else np.zeros((0, 3))
    return ResidueCorrespondence(
        native_residues=tuple(native_residues),
        native_ca=np.array(native_rows, dtype=float).reshape(-1, 3),
        model_ca=model_ca,
        mask=np.isfinite(model_ca).all(axis=1),
        model_residues=all_model,
        model_row=np.array([model_row_of.get(r, -1) for r in all_model], dtype=int),
    )


@dataclass(frozen=True)
class ResidueLDDT:
    """LDDT-Cα of one model residue (NaN when it has no native counterpart or no native neighbour)."""

    chain: str
    resseq: int
    icode: str
    resname: str
    lddt: float


def per_residue_lddt(
    model: Path,
    native: Path,
    chain_map: Mapping[str, str] | None = None,
    inclusion_radius: float = LDDT_INCLUSION_RADIUS,
    thresholds: Sequence[float] = LDDT_THRESHOLDS,
) -> list[ResidueLDDT]:
    """LDDT-Cα of every model residue (with a Cα) against the native, in the model's file order.

    ``chain_map`` (native -> model chain ID) defaults to DockQ's best mapping, which resolves
    homomer symmetry; pass it explicitly for single-chain structures, which DockQ cannot map.
    """
    if chain_map is None:
        chain_map = dockq_scores(Path(model), Path(native))["chain_map"]
    pairing = residue_correspondence(Path(model), Path(native), chain_map)
    scores = lddt_ca(pairing.model_ca, pairing.native_ca, pairing.mask, inclusion_radius, thresholds)
    return [
        ResidueLDDT(r.chain, r.resseq, r.icode, r.resname, float(scores[row]) if row >= 0 else math.nan)
        for r, row in zip(pairing.model_residues, pairing.model_row)
    ]


# --------------------------------------------------------------------------------------------
# QA agreement
# --------------------------------------------------------------------------------------------


class QACorrelation(TypedDict):
    pearson: float | None
    spearman: float | None
    mae: float | None
    n: int


def qa_correlation(pred: np.ndarray, true: np.ndarray) -> QACorrelation:
    """Agreement of predicted with true per-residue quality, over the positions where both are finite.

    Args:
        pred, true: (n,) values (e.g. predicted and true LDDT-Cα); NaN marks a missing value.

    Returns:
        pearson, spearman (None with fewer than 3 pairs or when either side is constant), mae (mean
        absolute error, None without pairs) and n, the number of pairs used.
    """
    pred = np.asarray(pred, dtype=float).ravel()
    true = np.asarray(true, dtype=float).ravel()
    if pred.shape != true.shape:
        raise ValueError(f"pred and true differ in length ({pred.size} vs {true.size})")
    both = np.isfinite(pred) & np.isfinite(true)
    p, t = pred[both], true[both]
    n = int(both.sum())
    correlated = n >= 3 and np.ptp(p) > 0 and np.ptp(t) > 0
    return QACorrelation(
        pearson=float(stats.pearsonr(p, t)[0]) if correlated else None,
        spearman=float(stats.spearmanr(p, t)[0]) if correlated else None,
        mae=float(np.abs(p - t).mean()) if n else None,
        n=n,
    )


# --------------------------------------------------------------------------------------------
# `egr score`
# --------------------------------------------------------------------------------------------


def _json_ready(value: object) -> object:
    """``value`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    return value


def score_report(model: Path, native: Path, mapping: str | None = None) -> dict:
    """What ``egr score --json`` prints: the keys of :class:`DockQScores` plus ``model``, ``native``,
    ``lddt_ca_mean``, ``lddt_ca_residues`` and ``residues`` (per model residue: chain, resseq, icode,
    resname, lddt; None where undefined). JSON-ready (no NaN). ``mapping`` (DockQ's
    ``MODELCHAINS:NATIVECHAINS``) fixes the chain mapping; None searches it. Raises ScoringError."""
    model, native = Path(model), Path(native)
    scores = dockq_scores(model, native, mapping=mapping)
    residues = per_residue_lddt(model, native, scores["chain_map"])
    values = np.array([r.lddt for r in residues], dtype=float)
    scored = int(np.isfinite(values).sum())
    report = {"model": str(model), "native": str(native), **scores,
              "lddt_ca_mean": float(np.nanmean(values)) if scored else math.nan, "lddt_ca_residues": scored,
              "residues": [[r.chain, r.resseq, r.icode, r.resname, r.lddt] for r in residues]}
    return _json_ready(report)


def score_command(model: Path, native: Path, as_json: bool, mapping: str | None = None) -> None:
    """Body of ``egr score MODEL NATIVE [--json] [--mapping MODEL:NATIVE]``: with ``as_json`` one JSON
    object (:func:`score_report`) on stdout, otherwise a human-readable table. Raises ScoringError."""
    report = score_report(model, native, mapping)
    if as_json:
        json.dump(report, sys.stdout, allow_nan=False)
        sys.stdout.write("\n")
        return
    lddt = report["lddt_ca_mean"]
    print(f"model        {model}")
    print(f"native       {native}")
    print(f"mapping      {report['mapping']} (model:native), allowed mismatches {report['allowed_mismatches']}")
    print(f"GlobalDockQ  {report['global_dockq']:.3f}")
    print(f"LDDT-Ca      {'-' if lddt is None else f'{lddt:.3f}'} (mean over {report['lddt_ca_residues']} residues)")
    columns = ("native", "model", "DockQ", "Fnat", "fnonnat", "iRMSD", "LRMSD", "F1", "clashes")
    print("  ".join(f"{c:>7}" for c in columns))
    for row in report["interfaces"].values():
        cells = [row["native_chains"], row["model_chains"]]
        cells += [f"{row[k]:.3f}" for k in ("dockq", "fnat", "fnonnat", "irmsd", "lrmsd", "f1")]
        cells.append(str(row["clashes"]))
        print("  ".join(f"{c:>7}" for c in cells))
