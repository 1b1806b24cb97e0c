"""Ingestion on real decoys and on the malformed inputs the issue lists (derived from real files)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from egr.structure import IngestError, format_pdb, read_decoy, sanitize_id


def atom_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("ATOM", "HETATM"))]


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
