"""Amino-acid chemistry tables shared by ingestion, featurization and scoring."""

HEAVY_ATOMS: dict[str, tuple[str, ...]] = {
    "ALA": ("N", "CA", "C", "O", "CB"),
    "ARG": ("N", "CA", "C", "O", "CB", "CG", "CD", "NE", "CZ", "NH1", "NH2"),
    "ASN": ("N", "CA", "C", "O", "CB", "CG", "OD1", "ND2"),
    "ASP": ("N", "CA", "C", "O", "CB", "CG", "OD1", "OD2"),
    "CYS": ("N", "CA", "C", "O", "CB", "SG"),
    "GLN": ("N", "CA", "C", "O", "CB", "CG", "CD", "OE1", "NE2"),
    "GLU": ("N", "CA", "C", "O", "CB", "CG", "CD", "OE1", "OE2"),
    "GLY": ("N", "CA", "C", "O"),
    "HIS": ("N", "CA", "C", "O", "CB", "CG", "ND1", "CD2", "CE1", "NE2"),
    "ILE": ("N", "CA", "C", "O", "CB", "CG1", "CG2", "CD1"),
    "LEU": ("N", "CA", "C", "O", "CB", "CG", "CD1", "CD2"),
    "LYS": ("N", "CA", "C", "O", "CB", "CG", "CD", "CE", "NZ"),
    "MET": ("N", "CA", "C", "O", "CB", "CG", "SD", "CE"),
    "PHE": ("N", "CA", "C", "O", "CB", "CG", "CD1", "CD2", "CE1", "CE2", "CZ"),
    "PRO": ("N", "CA", "C", "O", "CB", "CG", "CD"),
    "SER": ("N", "CA", "C", "O", "CB", "OG"),
    "THR": ("N", "CA", "C", "O", "CB", "OG1", "CG2"),
    "TRP": ("N", "CA", "C", "O", "CB", "CG", "CD1", "CD2", "NE1", "CE2", "CE3", "CZ2", "CZ3", "CH2"),
    "TYR": ("N", "CA", "C", "O", "CB", "CG", "CD1", "CD2", "CE1", "CE2", "CZ", "OH"),
    "VAL": ("N", "CA", "C", "O", "CB", "CG1", "CG2"),
}
AMINO_ACIDS: tuple[str, ...] = tuple(HEAVY_ATOMS)

# One-letter codes of the standard amino acids (the report's sequence track, the baselines' sequences).
ONE_LETTER: dict[str, str] = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E", "GLY": "G",
    "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F", "PRO": "P", "SER": "S",
    "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V",
}

# Heavy-atom elements of amino acids. Their PDB atom names begin with the element symbol (N, CA, OXT,
# SD, NZ, ...; OT1/OC2 of other writers too); the one two-letter symbol is the SE of selenomethionine.
AMINO_ACID_ELEMENTS: tuple[str, ...] = ("C", "N", "O", "S", "SE")


def element_of_amino_acid_atom(name: str) -> str:
    """Element symbol implied by the PDB name of an amino-acid heavy atom ('CA' → 'C', 'OXT' → 'O',
    'SE' → 'SE'); '' for a name outside that scheme."""
    if name == "SE":
        return "SE"
    return name[:1] if name[:1] in AMINO_ACID_ELEMENTS else ""

# Atom-name vocabulary of the all-atom graph (docs/design.md, "EGR, precisely"); names outside it map to "UNX".
ATOM_VOCAB: tuple[str, ...] = (
    "N", "CA", "C", "O", "CB", "OG", "CG", "CD1", "CD2", "CE1", "CE2", "CZ", "OD1", "ND2", "CG1",
    "CG2", "CD", "CE", "NZ", "OD2", "OE1", "NE2", "OE2", "OH", "NE", "NH1", "NH2", "OG1", "SD",
    "ND1", "SG", "NE1", "CE3", "CZ2", "CZ3", "CH2", "OXT", "UNX",
)

# Single-bond covalent radii in Å (Pauling-style values, as docs/design.md suggests); other elements use 0.77.
COVALENT_RADII: dict[str, float] = {"C": 0.77, "N": 0.70, "O": 0.67, "S": 1.04, "SE": 1.17}

WATER_NAMES = frozenset({"HOH", "WAT", "DOD", "H2O", "TIP", "TIP3", "SOL"})
