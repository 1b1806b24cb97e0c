"""Read, validate, clean and write protein complexes (the ``ingest`` step).

A decoy is read with gemmi (PDB, mmCIF, either gzipped), reduced to the heavy atoms of amino-acid
residues of its first model, and held as a :class:`Complex` of parallel numpy arrays in file order.
Every refusal is an :class:`IngestError` whose message is one line naming the file and the reason;
everything removed or repaired is counted in the :class:`IngestRecord`.

Choices where the input is ambiguous:
- altlocs: per residue, the alternate conformer with the highest mean occupancy is kept (ties: first).
- duplicated atoms (same chain, residue, insertion code and atom name): the first is kept, the rest
  dropped with a warning.
- a Cα-only trace is refused in all-atom mode (EGR needs side chains) and accepted with ``ca_only_ok``.
- an ATOM/HETATM line cut before the end of its coordinates (a truncated last line) is dropped with a
  warning.
- modified residues are mapped to their parent when the file's MODRES/``_pdbx_struct_mod_residue`` or the
  PDB chemical component table names one (MSE→MET with SE renamed SD); atoms the parent lacks are dropped.
- residues of unknown type (neither amino acid nor water) are removed like ligands and listed.

Columns that are checked, not believed (docking and benchmark files put segment IDs, serial numbers
and other data in PDB columns 73-80 and beyond, e.g. ``...  1.00 26.64       2SNI 1 95.0``):
- element (columns 77-78, mmCIF ``type_symbol``): every atom that is kept belongs to an amino acid
  (ligands, waters and unknown residues are removed; modified residues keep only their parent's atoms),
  so its element is the one its atom name implies (N, CA → C, OXT → O, SD → S, SE → SE:
  :func:`egr.chemistry.element_of_amino_acid_atom`). Where the column disagrees, the name wins and one
  warning counts the atoms. A name outside that scheme keeps what gemmi read: the column when it holds
  an element symbol, else gemmi's inference from the name's alignment (a name starting in column 13 is
  a two-letter element), X when neither tells.
- hydrogens are recognised by name (H or D after any leading digits), not by the element column, which
  in such files can say H for every heavy atom.
- formal charge (columns 79-80, mmCIF ``pdbx_formal_charge``): not read. EGR uses no charges (the
  refiners protonate for themselves), and gemmi refuses a whole file for a charge field such as ``95``
  ("Wrong format for charge"), so the field is blanked (PDB) or the column dropped (mmCIF) before parsing.
- occupancy: a value that is not a number or lies outside 0-1 is not an occupancy; NaN and values above
  1 become 1, negative values 0, with one warning, before the altloc choice compares them.
  gemmi reads a blank or unreadable field as 0, which the zero-occupancy warning reports.
- B-factor: used in no computation, only carried to the cleaned file; a value that is not finite becomes
  0 with one warning (``nan`` in a PDB column breaks readers downstream); finite values are kept, clipped
  to the column's range when written.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import gemmi
import numpy as np

from egr.chemistry import AMINO_ACIDS, HEAVY_ATOMS, WATER_NAMES, element_of_amino_acid_atom
from egr.io import atomic_write_text

_MIN_COORD_LINE = 54  # an ATOM record needs columns 31-54 for x, y, z
# columns 79-80 (formal charge) of ATOM/HETATM records; group 1 is columns 1-78
_PDB_CHARGE_FIELD = re.compile(r"^((?:ATOM  |HETATM).{72}).{1,2}", re.MULTILINE)
_CIF_CHARGE_TAG = "_atom_site.pdbx_formal_charge"
_STRUCTURE_SUFFIXES = (".gz", ".pdb", ".ent", ".cif", ".mmcif", ".pdbx")


class IngestError(ValueError):
    """A decoy that cannot be used; ``str()`` is one line: ``<file>: <reason>``."""

    def __init__(self, source: str | Path, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{source}: {reason}")


@dataclass(frozen=True)
class Complex:
    """Heavy atoms of a cleaned protein complex, one row per atom, grouped by chain and residue.

    coords (n, 3) float64 Å; string arrays are numpy unicode; ``residue_index`` (n,) maps each atom to
    its residue (0..n_residues-1, increasing); ``chain_index`` (n,) maps it to its chain (0..n_chains-1).
    """

    coords: np.ndarray
    atom_names: np.ndarray
    elements: np.ndarray
    res_names: np.ndarray
    chain_ids: np.ndarray
    res_seq: np.ndarray
    ins_codes: np.ndarray
    occupancies: np.ndarray
    b_factors: np.ndarray
    residue_index: np.ndarray
    chain_index: np.ndarray

    @property
    def n_atoms(self) -> int:
        return int(self.coords.shape[0])

    @property
    def n_residues(self) -> int:
        return int(self.residue_index[-1]) + 1

    @property
    def residue_starts(self) -> np.ndarray:
        """(n_residues,) index of each residue's first atom."""
        return np.flatnonzero(np.r_[True, np.diff(self.residue_index) != 0])

    @property
    def chain_names(self) -> list[str]:
        starts = np.flatnonzero(np.r_[True, np.diff(self.chain_index) != 0])
        return [str(c) for c in self.chain_ids[starts]]

    def with_coords(self, coords: np.ndarray) -> "Complex":
        return Complex(**{**self.__dict__, "coords": np.asarray(coords, dtype=np.float64)})


@dataclass
class IngestRecord:
    """What ingestion kept, removed and repaired for one decoy (written as ``<id>_ingest.json``)."""

    source: str
    format: str = ""
    n_atoms_read: int = 0
    n_atoms_kept: int = 0
    n_residues: int = 0
    chains: dict[str, int] = field(default_factory=dict)  # chain ID -> residues kept
    removed: dict[str, int] = field(default_factory=dict)  # reason -> atoms removed
    removed_residue_names: dict[str, int] = field(default_factory=dict)  # ligand/unknown name -> residues
    mapped_residues: dict[str, int] = field(default_factory=dict)  # "MSE->MET" -> residues
    warnings: list[str] = field(default_factory=list)


def sanitize_id(path: str | Path) -> str:
    """A file-system- and shell-safe decoy ID from a file name: ``'my decoy ä.pdb.gz'`` → ``'my_decoy_a'``."""
    name = Path(path).name
    while True:
        stem, dot, suffix = name.rpartition(".")
        if dot and stem and f".{suffix.lower()}" in _STRUCTURE_SUFFIXES:
            name = stem
        else:
            break
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("._-")
    return safe or "decoy"


def read_decoy(path: str | Path, ca_only_ok: bool = False) -> tuple[Complex, IngestRecord]:
    """Read, validate and clean one decoy file. Raises :class:`IngestError` with a one-line reason.

    Chains keep the order of their first appearance and residues their order in the file; atoms within
    a residue are put in the standard PDB order (N, CA, C, O, side chain, OXT, then any other names in
    file order), so that no docking program's own atom order reaches the model's features."""
    path = Path(path)
    text = _read_text(path)
    record = IngestRecord(source=str(path))
    structure = _parse(path, text, record)
    table = _atom_table(structure)
    record.n_atoms_read = len(table["name"])
    complex_ = _clean(path, table, structure, record, ca_only_ok)
    record.n_atoms_kept = complex_.n_atoms
    record.warnings += [f"removed {count} atom(s): {reason.replace('_', ' ')}" for reason, count in record.removed.items()
                        if reason not in ("duplicate_atoms", "truncated_lines", "extra_models")]
    record.n_residues = complex_.n_residues
    starts = complex_.residue_starts
    names, counts = np.unique(complex_.chain_index[starts], return_counts=True)
    record.chains = {complex_.chain_names[i]: int(c) for i, c in zip(names, counts)}
    return complex_, record


def _read_text(path: Path) -> str:
    if path.is_symlink() and not path.exists():
        raise IngestError(path, "dangling symbolic link")
    if not path.exists():
        raise IngestError(path, "no such file")
    if path.is_dir():
        raise IngestError(path, "is a directory, not a structure file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise IngestError(path, f"corrupt gzip data ({exc})") from None
    if not raw.strip():
        raise IngestError(path, "empty or whitespace-only file")
    head = np.frombuffer(raw[:65536], dtype=np.uint8)
    printable = np.count_nonzero(((head >= 32) & (head < 127)) | np.isin(head, (9, 10, 13)))
    if np.any(head == 0) or printable < 0.9 * len(head):
        raise IngestError(path, "binary data, not a PDB or mmCIF text file")
    # latin-1 maps every byte, so stray non-UTF-8 bytes in REMARKs cannot break reading
    return raw.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n")


def _parse(path: Path, text: str, record: IngestRecord) -> gemmi.Structure:
    is_cif = re.search(r"^data_", text, re.MULTILINE) is not None and "_atom_site." in text
    try:
        if is_cif:
            record.format = "mmcif"
            block = gemmi.cif.read_string(text).sole_block()
            charges = block.find_values(_CIF_CHARGE_TAG)
            if charges:  # formal charges are unused (see the module docstring); junk there stops gemmi
                charges.get_loop().remove_column(_CIF_CHARGE_TAG)
            structure = gemmi.make_structure_from_block(block)
        else:
            record.format = "pdb"
            text = _drop_truncated_atom_lines(path, text, record)
            structure = gemmi.read_pdb_string(_PDB_CHARGE_FIELD.sub(r"\1  ", text))
    except (RuntimeError, ValueError) as exc:
        raise IngestError(path, f"unreadable {record.format.upper()}: {str(exc).splitlines()[0]}") from None
    if len(structure) == 0 or structure[0].count_atom_sites() == 0:
        first = next((line for line in text.splitlines() if line.strip()), "")
        if first.startswith(">"):
            raise IngestError(path, "FASTA sequence, not a structure (no atom records)")
        raise IngestError(path, "no ATOM/HETATM records: not a PDB or mmCIF structure")
    if len(structure) > 1:
        record.warnings.append(f"{len(structure)} models: used the first")
        record.removed["extra_models"] = sum(m.count_atom_sites() for m in list(structure)[1:])
        for index in range(len(structure) - 1, 0, -1):
            del structure[index]
    return structure


def _drop_truncated_atom_lines(path: Path, text: str, record: IngestRecord) -> str:
    lines = text.split("\n")
    short = [
        i for i, line in enumerate(lines)
        if line.startswith(("ATOM  ", "HETATM")) and len(line.rstrip()) < _MIN_COORD_LINE
    ]
    if not short:
        return text
    record.warnings.append(f"dropped {len(short)} ATOM/HETATM line(s) cut before the coordinates end")
    record.removed["truncated_lines"] = len(short)
    keep = np.ones(len(lines), dtype=bool)
    keep[short] = False
    return "\n".join(np.asarray(lines, dtype=object)[keep])


def _atom_table(structure: gemmi.Structure) -> dict[str, np.ndarray]:
    """All atom sites of model 1 as numpy columns (gemmi's mmCIF export does the per-atom work in C++)."""
    block = structure.make_mmcif_document().sole_block()
    tags = {
        "group": "group_PDB", "element": "type_symbol", "name": "label_atom_id", "altloc": "label_alt_id",
        "resname": "label_comp_id", "icode": "pdbx_PDB_ins_code", "x": "Cartn_x", "y": "Cartn_y",
        "z": "Cartn_z", "occ": "occupancy", "b": "B_iso_or_equiv", "seq": "auth_seq_id", "chain": "auth_asym_id",
    }
    table = block.find("_atom_site.", list(tags.values()))
    columns = {key: np.array(list(table.column(i)), dtype=str) for i, key in enumerate(tags)}
    for key in ("altloc", "icode"):
        columns[key] = np.where(np.isin(columns[key], ["?", "."]), "", columns[key])
    for key in ("name", "resname"):
        columns[key] = np.char.strip(np.char.strip(columns[key], '"'), "'")
    columns["element"] = np.char.upper(columns["element"])
    return columns


def _float_column(path: Path, values: np.ndarray, what: str, missing: str) -> np.ndarray:
    values = np.where(np.isin(values, ["?", "."]), missing, values)
    try:
        return values.astype(np.float64)
    except ValueError:
        raise IngestError(path, f"unreadable {what} values") from None


def _occupancies_and_b_factors(path: Path, t: dict[str, np.ndarray],
                               record: IngestRecord) -> tuple[np.ndarray, np.ndarray]:
    """(n,) occupancies in 0-1 and (n,) finite B-factors (Å²); values that are not are replaced and
    counted in one warning each (see the module docstring)."""
    occupancy = _float_column(path, t["occ"], "occupancy", "1")
    odd = ~((occupancy >= 0) & (occupancy <= 1))  # NaN fails both comparisons
    if odd.any():
        record.warnings.append(f"{int(odd.sum())} atom record(s) with an occupancy that is not a number in 0-1: "
                               "set to 1 (NaN, above 1) or 0 (negative)")
    occupancy = np.where(odd, np.where(occupancy < 0, 0.0, 1.0), occupancy)
    b_factor = _float_column(path, t["b"], "B-factor", "0")
    odd = ~np.isfinite(b_factor)
    if odd.any():
        record.warnings.append(f"{int(odd.sum())} atom record(s) with a B-factor that is not a finite number: "
                               "set to 0")
    return occupancy, np.where(odd, 0.0, b_factor)


def _subset(cols: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {key: value[rows] for key, value in cols.items()}


def _clean(
    path: Path, t: dict[str, np.ndarray], structure: gemmi.Structure, record: IngestRecord, ca_only_ok: bool
) -> Complex:
    occupancies, b_factors = _occupancies_and_b_factors(path, t, record)
    cols = {
        "coords": np.stack([_float_column(path, t[k], "coordinate", "nan") for k in "xyz"], axis=1),
        "occupancies": occupancies,
        "b_factors": b_factors,
        "res_seq": _float_column(path, t["seq"], "residue number", "0").astype(np.int64),
        "atom_names": t["name"], "elements": t["element"], "res_names": t["resname"],
        "chain_ids": t["chain"], "ins_codes": t["icode"], "altloc": t["altloc"], "group": t["group"],
    }
    if np.any(np.char.str_len(cols["chain_ids"]) > 2):
        raise IngestError(path, "chain IDs longer than 2 characters cannot be written to PDB output")

    def drop(cols: dict[str, np.ndarray], mask: np.ndarray, reason: str) -> dict[str, np.ndarray]:
        if mask.any():
            record.removed[reason] = record.removed.get(reason, 0) + int(mask.sum())
        return _subset(cols, ~mask)

    bare = np.char.lstrip(cols["atom_names"], "0123456789")
    hydrogen = np.char.startswith(bare, "H") | np.char.startswith(bare, "D")  # by name: see the module docstring
    cols = drop(cols, hydrogen, "hydrogens")
    cols = drop(cols, np.isin(cols["res_names"], list(WATER_NAMES)), "waters")
    cols = _map_residue_types(cols, structure, record, drop)
    if len(cols["coords"]) == 0:
        raise IngestError(path, "no protein atoms (no amino-acid residues with heavy atoms)")
    cols = drop(cols, ~_altloc_keep_mask(cols), "altloc_atoms")
    duplicate = ~_first_occurrence(cols["chain_ids"], cols["res_seq"], cols["ins_codes"], cols["atom_names"])
    if duplicate.any():
        record.warnings.append(f"removed {int(duplicate.sum())} duplicated atom record(s) (kept the first)")
    cols = drop(cols, duplicate, "duplicate_atoms")

    if not np.isfinite(cols["coords"]).all():
        raise IngestError(path, "non-finite (NaN or infinite) coordinates")
    if np.ptp(cols["coords"], axis=0).max() < 1e-3:
        raise IngestError(path, "all atoms sit on one point (degenerate coordinates)")
    chain_labels, chain_order = np.unique(cols["chain_ids"], return_inverse=True)
    if len(chain_labels) < 2:
        only = chain_labels[0] or "blank"
        raise IngestError(path, f"only one protein chain ({only}); EGR needs a complex of at least 2 chains")
    # chain parts split in the file (e.g. by ligands) are regrouped so each chain is contiguous;
    # chains keep the order of their first appearance
    first_seen = np.full(len(chain_labels), len(chain_order))
    np.minimum.at(first_seen, chain_order, np.arange(len(chain_order)))
    rank = np.argsort(np.argsort(first_seen))
    cols = _subset(cols, np.argsort(rank[chain_order], kind="stable"))
    return _assemble(path, _elements_from_names(cols, record), record, ca_only_ok)


def _elements_from_names(cols: dict[str, np.ndarray], record: IngestRecord) -> dict[str, np.ndarray]:
    """Set each amino-acid atom's element to the one its name implies; one warning counts the atoms
    whose element column said otherwise (see the module docstring)."""
    names, inverse = np.unique(cols["atom_names"], return_inverse=True)
    implied = np.array([element_of_amino_acid_atom(name) for name in names.tolist()], dtype="U2")[inverse]
    elements = np.where(implied == "", cols["elements"], implied)
    n_wrong = int(np.sum(elements != cols["elements"]))
    if n_wrong:
        record.warnings.append(f"element column disagreed with the atom name for {n_wrong} atom(s) (non-standard "
                               "data in PDB columns 73-80?); elements taken from the atom names")
    return {**cols, "elements": elements}


def _map_residue_types(cols: dict[str, np.ndarray], structure: gemmi.Structure, record: IngestRecord,
                       drop) -> dict[str, np.ndarray]:
    """Keep amino acids (modified ones renamed to their parent); drop ligands and unknown residues."""
    resnames = cols["res_names"]
    unique_names, inverse = np.unique(resnames, return_inverse=True)
    parent_of = _parent_residue_names(unique_names, structure)
    parent = np.array([parent_of.get(str(r), "") for r in unique_names], dtype="U3")[inverse]
    first = _residue_first_atom_mask(cols)
    not_amino = parent == ""
    for name, count in zip(*np.unique(resnames[not_amino & first], return_counts=True)):
        record.removed_residue_names[str(name)] = int(count)
    unknown_polymer = not_amino & (cols["group"] != "HETATM")
    if unknown_polymer.any():
        record.warnings.append("removed polymer residues of unknown type: "
                               + ", ".join(sorted(set(resnames[unknown_polymer].tolist()))))
    cols = drop(cols, not_amino, "ligands_and_unknown_residues")
    resnames, parent, first = resnames[~not_amino], parent[~not_amino], first[~not_amino]
    modified = parent != resnames
    if not modified.any():
        return cols
    pairs, counts = np.unique(np.char.add(np.char.add(resnames[modified & first], "->"), parent[modified & first]),
                              return_counts=True)
    record.mapped_residues = {str(p): int(c) for p, c in zip(pairs, counts)}
    selenium = modified & (parent == "MET") & (cols["atom_names"] == "SE")
    cols = {**cols, "atom_names": np.where(selenium, "SD", cols["atom_names"]),
            "elements": np.where(selenium, "S", cols["elements"]), "res_names": parent}
    return drop(cols, modified & ~_atom_in_residue(cols["atom_names"], parent), "modified_residue_extra_atoms")


def _parent_residue_names(names: np.ndarray, structure: gemmi.Structure) -> dict[str, str]:
    """Residue name → standard amino-acid parent ('' entries are omitted): the file's MODRES first,
    then the PDB chemical component table that gemmi carries (lower-case one-letter code = modified)."""
    from_file = {m.res_id.name: m.parent_comp_id for m in structure.mod_residues if m.parent_comp_id in HEAVY_ATOMS}
    one_to_three = {gemmi.find_tabulated_residue(a).one_letter_code: a for a in AMINO_ACIDS}
    parents: dict[str, str] = {}
    for name in names.tolist():  # loop over distinct residue names, a handful per file
        if name in HEAVY_ATOMS:
            parents[name] = name
        elif name in from_file:
            parents[name] = from_file[name]
        else:
            info = gemmi.find_tabulated_residue(name)
            code = info.one_letter_code if info is not None and info.is_amino_acid() else ""
            if code.islower() and code.upper() in one_to_three:
                parents[name] = one_to_three[code.upper()]
    return parents


def _atom_in_residue(atom_names: np.ndarray, res_names: np.ndarray) -> np.ndarray:
    """(n,) bool: the atom name belongs to the standard heavy atoms of its residue type (or is OXT)."""
    allowed = np.zeros(len(atom_names), dtype=bool)
    for residue, atoms in HEAVY_ATOMS.items():  # 20 residue types, each a vectorised test
        allowed |= (res_names == residue) & np.isin(atom_names, (*atoms, "OXT"))
    return allowed


def _combined_codes(*columns: np.ndarray) -> np.ndarray:
    """(n,) int64 code equal for two rows exactly when all the given columns are equal."""
    code = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        values, inverse = np.unique(column, return_inverse=True)
        code = code * len(values) + inverse
        code = np.unique(code, return_inverse=True)[1]  # re-densify so the product never overflows
    return code


def _residue_first_atom_mask(cols: dict[str, np.ndarray]) -> np.ndarray:
    """(n,) bool: the atom opens a new residue (a change of chain, number, insertion code or name)."""
    n = len(cols["res_names"])
    change = np.zeros(max(n - 1, 0), dtype=bool)
    for key in ("chain_ids", "res_seq", "ins_codes", "res_names"):
        change |= cols[key][1:] != cols[key][:-1]
    return np.r_[True, change] if n else np.zeros(0, dtype=bool)


def _altloc_keep_mask(cols: dict[str, np.ndarray]) -> np.ndarray:
    """(n,) bool: atoms without altloc, plus each residue's alternate conformer of highest mean occupancy."""
    altloc = cols["altloc"]
    has_alt = altloc != ""
    if not has_alt.any():
        return np.ones(len(altloc), dtype=bool)
    residue = np.cumsum(_residue_first_atom_mask(cols)) - 1
    conformers, conformer = np.unique(_combined_codes(residue, altloc)[has_alt], return_inverse=True)
    mean_occ = np.bincount(conformer, cols["occupancies"][has_alt]) / np.bincount(conformer)
    conformer_residue = residue[has_alt][np.unique(conformer, return_index=True)[1]]
    # best conformer per residue: sort by (residue, -occupancy, first appearance) and take the first
    order = np.lexsort((np.arange(len(conformers)), -mean_occ, conformer_residue))
    best = order[np.r_[True, conformer_residue[order][1:] != conformer_residue[order][:-1]]]
    keep = np.ones(len(altloc), dtype=bool)
    keep[np.flatnonzero(has_alt)] = np.isin(conformer, best)
    return keep


def _first_occurrence(*columns: np.ndarray) -> np.ndarray:
    """(n,) bool: True for the first row of every distinct combination of the given columns."""
    first = np.zeros(len(columns[0]), dtype=bool)
    first[np.unique(_combined_codes(*columns), return_index=True)[1]] = True
    return first


def _standard_atom_rank(res_names: np.ndarray, atom_names: np.ndarray) -> np.ndarray:
    """(n,) int: position of each atom name in its residue type's standard heavy-atom list; OXT right
    after the list, names outside it after that."""
    keys, inverse = np.unique(np.char.add(np.char.add(res_names, " "), atom_names), return_inverse=True)
    rank_of_key = []
    for key in keys.tolist():  # loop over distinct (residue, atom name) pairs: a few hundred at most
        residue, _, name = key.partition(" ")
        standard = HEAVY_ATOMS[residue]
        rank_of_key.append(standard.index(name) if name in standard else len(standard) + (name != "OXT"))
    return np.asarray(rank_of_key, dtype=np.int64)[inverse]


def _assemble(path: Path, cols: dict[str, np.ndarray], record: IngestRecord, ca_only_ok: bool) -> Complex:
    new_residue = _residue_first_atom_mask(cols)
    residue_index = np.cumsum(new_residue) - 1
    # lexsort is stable: residues stay in file order, atoms of equal rank too
    standard_order = np.lexsort((_standard_atom_rank(cols["res_names"], cols["atom_names"]), residue_index))
    cols = _subset(cols, standard_order)
    chain_ids = cols["chain_ids"]
    chain_index = np.cumsum(np.r_[True, chain_ids[1:] != chain_ids[:-1]]) - 1
    n_residues = int(residue_index[-1]) + 1
    atoms_per_residue = np.bincount(residue_index, minlength=n_residues)
    if not ca_only_ok and np.mean(atoms_per_residue <= 1) > 0.9:
        raise IngestError(path, "Cα-only trace: the all-atom model needs side chains (use the Cα graph)")
    names = cols["atom_names"]
    with_ca = np.bincount(residue_index[names == "CA"], minlength=n_residues) > 0
    heavy = np.bincount(residue_index[names != "OXT"], minlength=n_residues)
    expected = np.array([len(HEAVY_ATOMS[r]) for r in cols["res_names"][new_residue].tolist()])
    incomplete = int(np.sum(heavy < expected))
    if incomplete:
        record.warnings.append(f"{incomplete} residue(s) miss heavy atoms ({int((~with_ca).sum())} without CA)")
    zero_occupancy = int(np.sum(cols["occupancies"] <= 0))
    if zero_occupancy:
        record.warnings.append(f"{zero_occupancy} atom(s) with zero occupancy kept at their given coordinates")
    return Complex(
        coords=cols["coords"], atom_names=names, elements=cols["elements"], res_names=cols["res_names"],
        chain_ids=chain_ids, res_seq=cols["res_seq"], ins_codes=cols["ins_codes"],
        occupancies=cols["occupancies"], b_factors=cols["b_factors"],
        residue_index=residue_index, chain_index=chain_index,
    )


def format_pdb(complex_: Complex, b_factors: np.ndarray | None = None, remarks: list[str] | None = None) -> str:
    """PDB text of the complex (ATOM records, TER after each chain, END); columns built with numpy.

    ``b_factors`` (n,) replaces the B-factor column (e.g. predicted LDDT × 100).
    """
    n = complex_.n_atoms
    b = complex_.b_factors if b_factors is None else np.asarray(b_factors, dtype=np.float64)
    names = complex_.atom_names
    # PDB convention: names shorter than 4 characters start in column 14
    padded = np.where(np.char.str_len(names) < 4, np.char.add(" ", np.char.ljust(names, 3)), names)
    chain = np.char.rjust(complex_.chain_ids, 2)
    icode = np.char.ljust(complex_.ins_codes, 1)
    serial = np.arange(1, n + 1) % 100000
    x, y, z = (np.char.mod("%8.3f", complex_.coords[:, k]) for k in range(3))
    pieces = [
        np.char.mod("ATOM  %5d ", serial), padded, np.char.mod(" %3s", complex_.res_names), chain,
        np.char.mod("%4d", complex_.res_seq), icode, "   ", x, y, z,
        np.char.mod("%6.2f", np.clip(complex_.occupancies, 0, 999.99)), np.char.mod("%6.2f", np.clip(b, -99.99, 999.99)),
        "          ", np.char.rjust(complex_.elements, 2),
    ]
    lines = pieces[0]
    for piece in pieces[1:]:
        lines = np.char.add(lines, piece)
    chain_end = np.flatnonzero(np.r_[complex_.chain_index[1:] != complex_.chain_index[:-1], True])
    lines = np.insert(lines.astype(object), chain_end + 1, "TER")
    header = [f"REMARK 250 {line}" for line in (remarks or [])]
    return "\n".join([*header, *lines.tolist(), "END", ""])


def write_pdb(complex_: Complex, path: Path, b_factors: np.ndarray | None = None,
              remarks: list[str] | None = None) -> None:
    """Write the complex to ``path`` atomically."""
    atomic_write_text(path, format_pdb(complex_, b_factors, remarks))


def kabsch(mobile: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R (3, 3) and translation t (3,) minimising ‖mobile @ Rᵀ + t − reference‖ (both (m, 3) Å)."""
    mobile_centre, reference_centre = mobile.mean(0), reference.mean(0)
    h = (mobile - mobile_centre).T @ (reference - reference_centre)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))  # no reflections
    rotation = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return rotation, reference_centre - mobile_centre @ rotation.T
