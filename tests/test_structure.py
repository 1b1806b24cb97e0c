"""Ingestion on real decoys and on the malformed inputs the issue lists (derived from real files)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from egr.pipeline import ingest_step
from egr.structure import IngestError, format_pdb, read_decoy, sanitize_id, write_pdb

# real BM5 decoy excerpt: a segment ID and a running number in columns 73-80 (tests/data/SOURCES.md)
JUNK_COLUMNS = Path(__file__).parent / "data" / "junk_columns" / "2PCC_unbound_excerpt.pdb.gz"
ELEMENT_WARNING = "element column disagreed with the atom name for {} atom(s)"


def atom_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("ATOM", "HETATM"))]


def written_and_implied_elements(pdb_text: str) -> tuple[list[str], list[str]]:
    """Per ATOM line: the element in columns 77-78, and the one its amino-acid atom name implies
    (the first letter: every name in these files is a C, N, O or S atom's)."""
    lines = atom_lines(pdb_text)
    return [line[76:78].strip() for line in lines], [line[12:16].strip()[0] for line in lines]


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("latin-1"))
    return path


def test_real_decoys_read_with_original_ids(decoy_paths):
    for path in decoy_paths:
        c, record = read_decoy(path)
        assert c.coords.shape == (c.n_atoms, 3) and c.n_atoms > 500
        assert len(record.chains) >= 2
        assert not np.any(np.char.startswith(c.atom_names, "H"))
        assert np.all(np.diff(c.residue_index) >= 0) and np.all(np.diff(c.chain_index) >= 0)
    c, _ = read_decoy(Path(__file__).parent / "data/decoys/1AK4_ti5-itw_212w.pdb.gz")
    assert c.chain_names == ["C", "D"]


def test_hydrogens_with_blank_element_are_removed(tmp_path, decoy_paths):
    attract = next(p for p in decoy_paths if "ATTRACT" in p.name)
    text = gzip.decompress(attract.read_bytes()).decode()
    n_h = sum(1 for line in atom_lines(text) if line[12:16].strip().startswith("H"))
    assert n_h > 0
    c, record = read_decoy(attract)
    assert record.removed["hydrogens"] == n_h
    assert c.n_atoms == len(atom_lines(text)) - n_h


def test_clean_pdb_round_trips(tmp_path, small_decoy):
    c, _ = read_decoy(small_decoy)
    path = write(tmp_path, "clean.pdb", format_pdb(c))
    again, record = read_decoy(path)
    assert record.warnings == []
    np.testing.assert_allclose(again.coords, c.coords, atol=1e-3)
    for key in ("atom_names", "res_names", "chain_ids", "res_seq", "ins_codes", "residue_index", "chain_index"):
        assert np.array_equal(getattr(again, key), getattr(c, key)), key


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.pdb", "", "empty"),
        ("blank.pdb", "   \n\t\n", "empty"),
        ("junk.pdb", bytes(range(256)) * 20, "binary"),
        ("seq.fasta", ">sp|P69905|HBA_HUMAN\nMVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHF\n", "FASTA"),
        ("notes.txt", "These are my notes about the complex.\nNothing structural here.\n", "no ATOM/HETATM"),
        ("broken.pdb.gz", b"\x1f\x8b\x08\x00garbage-not-deflate", "corrupt gzip"),
    ],
)
def test_refused_inputs_give_one_line(tmp_path, name, content, reason):
    path = write(tmp_path, name, content)
    with pytest.raises(IngestError) as info:
        read_decoy(path)
    message = str(info.value)
    assert reason in message and str(path) in message and "\n" not in message


def test_single_chain_and_no_protein_are_refused(tmp_path, small_decoy_text):
    lines = atom_lines(small_decoy_text)
    chain_a = [line for line in lines if line[21] == "A"]
    with pytest.raises(IngestError, match="only one protein chain"):
        read_decoy(write(tmp_path, "one.pdb", "\n".join(chain_a) + "\nEND\n"))
    waters = [f"HETATM{i:5d}  O   HOH W{i:4d}    {i:8.3f}{0:8.3f}{0:8.3f}  1.00  0.00           O" for i in range(1, 5)]
    with pytest.raises(IngestError, match="no protein atoms"):
        read_decoy(write(tmp_path, "water.pdb", "\n".join(waters) + "\nEND\n"))


def test_nan_and_collapsed_coordinates_are_refused(tmp_path, small_decoy_text):
    lines = atom_lines(small_decoy_text)
    nan = [lines[0][:30] + f"{'nan':>8}" + lines[0][38:]] + lines[1:]
    with pytest.raises(IngestError, match="non-finite"):
        read_decoy(write(tmp_path, "nan.pdb", "\n".join(nan)))
    point = [line[:30] + f"{1.0:8.3f}{2.0:8.3f}{3.0:8.3f}" + line[54:] for line in lines]
    with pytest.raises(IngestError, match="one point"):
        read_decoy(write(tmp_path, "point.pdb", "\n".join(point)))


def test_directory_and_dangling_link_are_refused(tmp_path):
    with pytest.raises(IngestError, match="directory"):
        read_decoy(tmp_path)
    link = tmp_path / "gone.pdb"
    os.symlink(tmp_path / "missing.pdb", link)
    with pytest.raises(IngestError, match="dangling"):
        read_decoy(link)


def test_messy_but_usable_inputs(tmp_path, small_decoy, small_decoy_text):
    reference, _ = read_decoy(small_decoy)
    lines = atom_lines(small_decoy_text)
    crlf = write(tmp_path, "crlf.pdb", "\r\n".join(["REMARK 99 caf\xe9 \xff\xfe bytes", *lines, "END"]) + "\r\n")
    c, _ = read_decoy(crlf)
    assert c.n_atoms == reference.n_atoms

    models = "MODEL        1\n" + "\n".join(lines) + "\nENDMDL\nMODEL        2\n" + "\n".join(lines) + "\nENDMDL\nEND\n"
    c, record = read_decoy(write(tmp_path, "models.pdb", models))
    assert c.n_atoms == reference.n_atoms and any("models" in w for w in record.warnings)

    truncated = write(tmp_path, "cut.pdb", "\n".join(lines) + "\n" + lines[-1][:40])
    c, record = read_decoy(truncated)
    assert c.n_atoms == reference.n_atoms and record.removed["truncated_lines"] == 1

    duplicated = write(tmp_path, "dup.pdb", "\n".join(lines + lines[:10]))
    c, record = read_decoy(duplicated)
    assert c.n_atoms == reference.n_atoms and record.removed["duplicate_atoms"] == 10


def test_altlocs_keep_the_most_occupied_conformer(tmp_path, small_decoy_text):
    lines = atom_lines(small_decoy_text)
    first_residue = [i for i, line in enumerate(lines) if line[17:27] == lines[0][17:27]]
    edited = []
    for i, line in enumerate(lines):
        if i in first_residue:
            edited.append(line[:16] + "A" + line[17:54] + "  0.30" + line[60:])
            shifted = float(line[30:38]) + 5.0
            edited.append(line[:16] + "B" + line[17:30] + f"{shifted:8.3f}" + line[38:54] + "  0.70" + line[60:])
        else:
            edited.append(line)
    c, record = read_decoy(write(tmp_path, "alt.pdb", "\n".join(edited)))
    assert c.n_atoms == len(lines)
    np.testing.assert_allclose(c.coords[0, 0], float(lines[0][30:38]) + 5.0, atol=1e-3)
    assert record.removed["altloc_atoms"] == len(first_residue)


def test_mse_maps_to_met_and_ligands_waters_are_dropped(tmp_path, small_decoy_text):
    lines = atom_lines(small_decoy_text)
    met = [line for line in lines if line[17:20] == "MET"]
    assert met, "test decoy should contain a methionine"
    key = met[0][17:27]
    edited = []
    for line in lines:
        if line[17:27] == key:
            line = "HETATM" + line[6:17] + "MSE" + line[20:]
            if line[12:16] == " SD ":
                line = line[:12] + "SE  " + line[16:76] + "SE"
        edited.append(line)
    edited.append("HETATM 9001  O   HOH W   1      10.000  10.000  10.000  1.00  0.00           O")
    edited.append("HETATM 9002  C1  NAG L   1      12.000  10.000  10.000  1.00  0.00           C")
    c, record = read_decoy(write(tmp_path, "mse.pdb", "\n".join(edited)))
    assert record.mapped_residues == {"MSE->MET": 1}
    assert record.removed["waters"] == 1 and record.removed_residue_names["NAG"] == 1
    assert "MSE" not in c.res_names and np.sum((c.res_names == "MET") & (c.atom_names == "SD")) == len(
        {line[17:27] for line in lines if line[17:20] == "MET"})


def test_negative_numbers_insertion_codes_and_missing_atoms(tmp_path, small_decoy_text):
    lines = atom_lines(small_decoy_text)
    key = lines[0][17:27]
    edited = [line[:22] + "  -5" + "A" + line[27:] if line[17:27] == key else line for line in lines]
    edited = [line for line in edited if not (line[22:27] == "  -5A" and line[12:16] == " CA ")]
    c, record = read_decoy(write(tmp_path, "odd.pdb", "\n".join(edited)))
    assert c.res_seq[0] == -5 and c.ins_codes[0] == "A"
    assert any("without CA" in w for w in record.warnings)
    out = format_pdb(c)
    assert "  -5A" in out.splitlines()[0]


def test_ca_only_trace_is_refused_in_all_atom_mode(tmp_path, small_decoy_text):
    ca = [line for line in atom_lines(small_decoy_text) if line[12:16] == " CA "]
    path = write(tmp_path, "ca.pdb", "\n".join(ca))
    with pytest.raises(IngestError, match="Cα-only"):
        read_decoy(path)
    c, _ = read_decoy(path, ca_only_ok=True)
    assert c.n_atoms == len(ca)


def test_mmcif_input_matches_pdb(tmp_path, small_decoy):
    import gemmi

    structure = gemmi.read_structure(str(small_decoy))
    structure.setup_entities()
    cif = tmp_path / "decoy.cif"
    structure.make_mmcif_document().write_file(str(cif))
    from_pdb, _ = read_decoy(small_decoy)
    from_cif, record = read_decoy(cif)
    assert record.format == "mmcif"
    np.testing.assert_allclose(from_cif.coords, from_pdb.coords)
    assert np.array_equal(from_cif.chain_ids, from_pdb.chain_ids)


def test_sanitize_id():
    assert sanitize_id("/x/my decoy ä.pdb.gz") == "my_decoy_a"
    assert sanitize_id("model.1.cif") == "model.1"
    assert sanitize_id("???.pdb") == "decoy"



def test_atoms_follow_the_standard_order_whatever_the_docking_program():
    # ATTRACT writes N CA CB … C O; HDOCK writes N CA C O CB …: after ingestion both read alike.
    decoys = Path(__file__).parent / "data" / "decoys"
    attract, _ = read_decoy(decoys / "kq_1kq1_pdb1_1_ATTRACT.pdb.gz")
    hdock, _ = read_decoy(decoys / "kq_1kq1_pdb1_1_HDOCK.pdb.gz")
    assert attract.atom_names[attract.residue_index == 0].tolist() == ["N", "CA", "C", "O", "CB", "CG", "SD", "CE"]

    def atom_keys(c) -> list[str]:
        return [f"{chain}{seq}{ins}:{name}" for chain, seq, ins, name in
                zip(c.chain_ids, c.res_seq, c.ins_codes, c.atom_names)]

    attract_keys, hdock_keys = atom_keys(attract), atom_keys(hdock)
    shared = set(attract_keys) & set(hdock_keys)
    assert len(shared) > 1000
    assert [k for k in attract_keys if k in shared] == [k for k in hdock_keys if k in shared]


def test_junk_in_columns_73_80_of_a_real_decoy(tmp_path):
    source = atom_lines(gzip.decompress(JUNK_COLUMNS.read_bytes()).decode())
    assert {line[72:80] for line in source if line[17:26] == "ASN A 272"} == {"A   A   "}  # gemmi: element X
    c, record = ingest_step(JUNK_COLUMNS, tmp_path, "2PCC")
    assert c.n_atoms == len(source)
    written, implied = written_and_implied_elements((tmp_path / "2PCC" / "2PCC_clean.pdb").read_text())
    assert written == implied and set(written) == {"C", "N", "O"}
    assert [w for w in record.warnings if w.startswith("element")] == [
        ELEMENT_WARNING.format(8) + " (non-standard data in PDB columns 73-80?); elements taken from the atom names"]
    assert (tmp_path / "2PCC" / "2PCC_ingest.json").read_text().count(ELEMENT_WARNING.format(8)) == 1


@pytest.mark.parametrize("tail", ["2SNI 1 95.0", "2SNB 95.0", "2SNH"])
def test_reported_junk_format_in_columns_73_80(tmp_path, tail):
    # the format: a segment ID in columns 74-77, so the element column reads I (iodine),
    # B (boron) or H (every heavy atom taken for a hydrogen), and numbers from column 79 ("95" is no
    # charge gemmi accepts: it refused the whole file)
    text = gzip.decompress(JUNK_COLUMNS.read_bytes()).decode()
    lines = [line[:66] + "       " + tail if line.startswith("ATOM") else line for line in text.splitlines()]
    c, record = read_decoy(write(tmp_path, "junk.pdb", "\n".join(lines) + "\n"))
    reference, _ = read_decoy(JUNK_COLUMNS)
    assert c.n_atoms == reference.n_atoms
    np.testing.assert_array_equal(c.coords, reference.coords)
    np.testing.assert_array_equal(c.elements, reference.elements)
    assert sum(w.startswith(ELEMENT_WARNING.format(c.n_atoms)) for w in record.warnings) == 1
    refined = tmp_path / "junk_refined.pdb"  # written as egr.refine writes a refined decoy
    write_pdb(c.with_coords(c.coords + 0.1), refined, b_factors=np.full(c.n_atoms, 87.5))
    written, implied = written_and_implied_elements(refined.read_text())
    assert written == implied


def test_junk_occupancy_b_factor_and_charge_columns(tmp_path, small_decoy_text):
    lines = [line[:78].ljust(78) + "95" for line in atom_lines(small_decoy_text)]  # no charge gemmi accepts
    n, ca, c, o = lines[:4]  # ALA A 1 in the standard order
    lines[:4] = [n[:54] + "   nan" + n[60:], ca[:54] + " 30.00" + ca[60:], c[:54] + " -1.00" + c[60:],
                 o[:60] + "   nan" + o[66:]]
    complex_, record = read_decoy(write(tmp_path, "junk.pdb", "\n".join(lines)))
    reference, _ = read_decoy(Path(__file__).parent / "data" / "decoys" / "2X9A_unbound.pdb.gz")
    assert complex_.n_atoms == reference.n_atoms
    assert complex_.occupancies[:4].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert complex_.b_factors[3] == 0.0 and np.isfinite(complex_.b_factors).all()
    assert "3 atom record(s) with an occupancy that is not a number in 0-1" in record.warnings[0]
    assert "1 atom record(s) with a B-factor that is not a finite number" in record.warnings[1]
    assert "nan" not in format_pdb(complex_)

    import gemmi

    structure = gemmi.read_structure(str(write(tmp_path, "clean.pdb", format_pdb(reference))))
    structure.setup_entities()
    document = structure.make_mmcif_document()
    document.sole_block().find_values("_atom_site.pdbx_formal_charge")[0] = "95.0"
    document.write_file(str(tmp_path / "junk.cif"))
    from_cif, _ = read_decoy(tmp_path / "junk.cif")
    assert from_cif.n_atoms == reference.n_atoms
