"""Restrained AMBER14 energy minimisation with OpenMM ("relax"), the always-available baseline.

Protocol (the idea of AlphaFold's relax, written from scratch for complexes with chain breaks):

1. the decoy's sanitised copy (one chain per unbroken segment) goes to PDBFixer, which adds
   missing heavy atoms and hydrogens (relaxed with AMBER14 itself, heavy atoms fixed) but no missing
   residues: the output keeps the decoy's residues, and segment ends are capped as termini instead of
   being bonded across the gap;
2. AMBER14 (``amber14-all.xml``), in vacuum or with GBn2 implicit solvent;
3. harmonic positional restraints ``E = ½ k |x − x₀|²`` on the decoy's own heavy atoms
   (k = 10 kcal/mol/Å² by default); heavy atoms PDBFixer built and all hydrogens move freely;
4. L-BFGS minimisation (``LocalEnergyMinimizer``) to a force tolerance or an iteration cap.

Energies are in kJ/mol and exclude the restraint term; the restraint energy at the end is
reported on its own. Energies with and without a cutoff are not comparable (the reaction field shifts
every pair's Coulomb term).

Nonbonded interactions (``cutoff_nm``, default 1.0 nm): a non-periodic cutoff with the reaction-field
electrostatics OpenMM uses beyond it (``CutoffNonPeriodic``, ε_rf = 78.3), in vacuum as with GBn2, at
every size, so every decoy is relaxed under the same energy function. Without a cutoff one energy
evaluation costs O(N²): a 19,962-heavy-atom complex (40,000 atoms with hydrogens) needed 674 s of
minimisation on 2 cores, against about 20 s with the cutoff on one, and on small decoys the two give the
same ΔDockQ (benchmarks/README.md, "OpenMM relax"). ``cutoff_nm=None`` is vacuum without a cutoff
(``NoCutoff``). The record says which was used and why (``nonbonded_method``, ``cutoff_nm``,
``nonbonded_note``).

Reproducibility (``deterministic=True``, the default): two things made reruns of one decoy differ (its
energy before minimisation came out 47,859, 37,387 and 40,886 kJ/mol in three runs). OpenMM's
``Modeller.addHydrogens``, which PDBFixer calls, jitters every new hydrogen with Python's global
``random`` and relaxes them for only 50 iterations, so the jitter survives; and OpenMM's CPU platform with
more than one thread sums energies and forces in an order that follows thread timing, even with its
``DeterministicForces`` property (checked with OpenMM 8.6), which L-BFGS's line searches amplify to
output differences of 0.02-0.04 Å. So hydrogens are placed under a fixed ``seed`` (the caller's
``random`` state is restored afterwards), and every Context, PDBFixer's included, runs with
``DeterministicForces`` and, on the CPU platform, one thread (the record's ``platform_properties``): a
rerun on the same platform gives the same model to the byte. On CUDA/HIP the property alone is asked for
(not checked here: no GPU). ``deterministic=False``: ``OPENMM_CPU_THREADS`` threads, faster on idle
cores, not repeatable.

Default solvent: ``'vacuum'``. With the restraints deciding where heavy atoms go, the two solvent models
give structures about 0.1 Å apart and the same DockQ, while GBn2 costs an order of magnitude more
minimisation time (measurements: benchmarks/README.md, "OpenMM relax"), so vacuum is the default and
``solvent='gbn2'`` is one option away.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import io
import random
import time
from typing import Any, Iterator

import numpy as np

from egr.structure import Complex

from .common import BaselineError, Refined, check_residue_names, match_atoms, residue_label, sanitised_pdb

#: Solvent models: name -> extra force-field file or None.
SOLVENTS: dict[str, str | None] = {
    "vacuum": None,
    "gbn2": "implicit/gbn2.xml",
}
#: Why the run used the nonbonded method it did (the record's ``nonbonded_note``).
NONBONDED_NOTES: dict[str, str] = {
    "CutoffNonPeriodic": "non-periodic cutoff with reaction-field electrostatics (eps_rf 78.3): "
                         "cost linear in atoms, same DockQ as no cutoff on small decoys",
    "NoCutoff": "no cutoff (cutoff_nm=None): every atom pair, cost quadratic in atoms",
}
KCAL_PER_MOL_A2_TO_KJ_PER_MOL_NM2 = 4.184 * 100.0
ANGSTROM_PER_NM = 10.0


def available() -> tuple[bool, str]:
    """OpenMM relax needs the ``openmm`` and ``pdbfixer`` packages (the ``relax`` extra)."""
    missing = [name for name in ("openmm", "pdbfixer") if importlib.util.find_spec(name) is None]
    if missing:
        return False, f"Python package(s) {', '.join(missing)} not installed (pip install 'egr-nf[relax]')"
    return True, ""


def version() -> str:
    """OpenMM's version (the pipeline's software versions)."""
    import openmm

    return openmm.__version__


def relax(
    decoy: Complex,
    *,
    solvent: str = "vacuum",
    stiffness_kcal_mol_a2: float = 10.0,
    tolerance_kj_mol_nm: float = 10.0,
    max_iterations: int = 0,
    cutoff_nm: float | None = 1.0,
    ph: float = 7.0,
    platform: str | None = None,
    seed: int = 1,
    deterministic: bool = True,
) -> tuple[Refined, dict[str, Any]]:
    """Minimise ``decoy`` under positional restraints; return its heavy atoms and the figures.

    Args:
        decoy: the decoy (heavy atoms, from :func:`egr.baselines.common.read_decoy`).
        solvent: ``'vacuum'`` or ``'gbn2'`` (GBn2 implicit solvent).
        stiffness_kcal_mol_a2: restraint force constant k in kcal/mol/Å².
        tolerance_kj_mol_nm: stop when the RMS force is below this (kJ/mol/nm).
        max_iterations: L-BFGS iteration cap; 0 means until converged.
        cutoff_nm: non-periodic nonbonded cutoff in nm (reaction field beyond it); None: no cutoff,
            vacuum only (GBn2 without a cutoff is O(N²) and far too slow on CPUs).
        ph: pH for PDBFixer's choice of protonation states.
        platform: OpenMM platform name (``'CPU'``, ``'CUDA'``, ...); None: the fastest installed.
        seed: seed of PDBFixer's random hydrogen (and missing-atom) placement.
        deterministic: reproducible reruns: ``DeterministicForces`` and, on the CPU platform, one thread
            (11 % slower than two on the 20,000-atom benchmark); False: ``OPENMM_CPU_THREADS`` threads.

    Returns:
        (atoms, details): heavy atoms assigned to the decoy's residues by order, and a dict with
        ``energy_before_kj_mol`` / ``energy_after_kj_mol`` (force field only),
        ``restraint_energy_kj_mol``, ``n_atoms_added`` (heavy atoms PDBFixer built, terminal
        OXT not counted), ``n_atoms_system`` (with hydrogens), ``nonbonded_method``, ``cutoff_nm``
        and ``nonbonded_note`` (why), ``prepare_s`` / ``minimise_s``, the settings and the package
        versions.
    """
    if solvent not in SOLVENTS:
        raise ValueError(f"solvent must be one of {sorted(SOLVENTS)}, got {solvent!r}")
    if cutoff_nm is None and solvent != "vacuum":
        raise ValueError(f"solvent {solvent!r} needs a cutoff (cutoff_nm=None is for vacuum only)")
    if cutoff_nm is not None and cutoff_nm <= 0:
        raise ValueError(f"cutoff_nm must be positive or None, got {cutoff_nm}")
    import openmm
    from openmm import app, unit
    from pdbfixer import PDBFixer

    start = time.perf_counter()
    engine = _platform(platform)
    properties = _deterministic_properties(engine) if deterministic else {}
    forcefield = app.ForceField("amber14-all.xml", *([SOLVENTS[solvent]] if SOLVENTS[solvent] else []))
    fixer = PDBFixer(pdbfile=io.StringIO(sanitised_pdb(decoy)), platform=engine)
    fixer.missingResidues = {}  # keep the decoy's residues: never model gaps or missing termini
    fixer.findMissingAtoms()
    n_added = sum(len(atoms) for atoms in fixer.missingAtoms.values())
    # PDBFixer's Contexts take the platform's default properties only, hence the temporary defaults.
    with _seeded(seed), _platform_defaults(engine, properties):
        fixer.addMissingAtoms(seed=seed)
        # Hydrogens relaxed with AMBER14 itself (heavy atoms fixed) rather than PDBFixer's generic
        # H-H repulsion: the placement then sees the neighbours' charges and van der Waals radii, and
        # OpenMM's optimised nonbonded kernel beats the custom force (~30 s vs 60-90 s at 40,000 atoms).
        fixer.addMissingHydrogens(ph, forcefield=forcefield if SOLVENTS[solvent] is None
                                  else app.ForceField("amber14-all.xml"))
    topology, positions = fixer.topology, fixer.positions
    check_residue_names(decoy, [residue.name for residue in topology.residues()], "PDBFixer")

    atoms = list(topology.atoms())
    atom_residue = np.array([atom.residue.index for atom in atoms], dtype=np.int64)
    atom_name = np.array([atom.name for atom in atoms])
    element = np.array([atom.element.symbol.upper() for atom in atoms])
    rows, found = match_atoms(atom_residue, atom_name, decoy.residue_index, decoy.atom_names)
    if not found.all():
        i = int(np.flatnonzero(~found)[0])
        raise BaselineError(
            f"PDBFixer lost atom {decoy.atom_names[i]} of {residue_label(decoy, int(decoy.residue_index[i]))}"
        )

    method = "NoCutoff" if cutoff_nm is None else "CutoffNonPeriodic"
    options: dict[str, Any] = {"nonbondedMethod": getattr(app, method), "constraints": None}
    if cutoff_nm is not None:
        options["nonbondedCutoff"] = cutoff_nm * unit.nanometer
    # Minimisation only (no dynamics), so no bond constraints: every degree of freedom relaxes.
    system = forcefield.createSystem(topology, **options)
    for force in system.getForces():
        force.setForceGroup(0)

    xyz_nm = np.asarray(positions.value_in_unit(unit.nanometer))
    restraint = openmm.CustomExternalForce("0.5*k_restraint*((x-x0)^2+(y-y0)^2+(z-z0)^2)")
    restraint.addGlobalParameter("k_restraint", stiffness_kcal_mol_a2 * KCAL_PER_MOL_A2_TO_KJ_PER_MOL_NM2)
    for name in ("x0", "y0", "z0"):
        restraint.addPerParticleParameter(name)
    for row in rows.tolist():
        restraint.addParticle(row, xyz_nm[row].tolist())
    restraint.setForceGroup(1)  # its own group, so force-field energies can be read without it
    system.addForce(restraint)

    integrator = openmm.VerletIntegrator(0.001)  # a Context needs one; it is never stepped
    context = openmm.Context(system, integrator, engine, properties)
    context.setPositions(positions)
    energy_before = _energy(context, {0})
    prepared = time.perf_counter()
    openmm.LocalEnergyMinimizer.minimize(context, tolerance_kj_mol_nm, max_iterations)
    minimised = time.perf_counter()
    energy_after = _energy(context, {0})
    restraint_after = _energy(context, {1})
    final_nm = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    platform_name = context.getPlatform().getName()
    if not np.isfinite(energy_after):
        raise BaselineError(f"minimisation diverged (energy {energy_after} kJ/mol)")

    heavy = element != "H"
    refined = Refined(
        atom_residue=atom_residue[heavy],
        atom_name=atom_name[heavy],
        element=element[heavy],
        xyz=np.asarray(final_nm)[heavy] * ANGSTROM_PER_NM,
    )
    details = {
        "solvent": solvent,
        "force_field": "amber14-all.xml" + (f" + {SOLVENTS[solvent]}" if SOLVENTS[solvent] else ""),
        "nonbonded_method": method,
        "cutoff_nm": cutoff_nm,
        "nonbonded_note": NONBONDED_NOTES[method],
        "seed": seed,
        "platform_properties": properties,
        "stiffness_kcal_mol_a2": stiffness_kcal_mol_a2,
        "tolerance_kj_mol_nm": tolerance_kj_mol_nm,
        "max_iterations": max_iterations,
        "platform": platform_name,
        "versions": {"openmm": openmm.__version__, "pdbfixer": importlib.metadata.version("pdbfixer")},
        "energy_before_kj_mol": round(energy_before, 2),
        "energy_after_kj_mol": round(energy_after, 2),
        "restraint_energy_kj_mol": round(restraint_after, 2),
        "n_atoms_added": n_added,
        "n_atoms_restrained": int(len(rows)),
        "n_atoms_system": system.getNumParticles(),
        "prepare_s": round(prepared - start, 3),
        "minimise_s": round(minimised - prepared, 3),
    }
    return refined, details


def _energy(context: Any, groups: set[int]) -> float:
    """Potential energy of the given force groups in kJ/mol."""
    from openmm import unit

    state = context.getState(getEnergy=True, groups=groups)
    return float(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))


def _platform(name: str | None) -> Any:
    """The OpenMM platform called ``name``, or the fastest one installed (as OpenMM itself picks)."""
    import openmm

    if name:
        return openmm.Platform.getPlatformByName(name)
    platforms = [openmm.Platform.getPlatform(i) for i in range(openmm.Platform.getNumPlatforms())]
    return max(platforms, key=lambda platform: platform.getSpeed())


def _deterministic_properties(platform: Any) -> dict[str, str]:
    """Context properties that make ``platform``'s results independent of thread scheduling.

    On CUDA and HIP, ``DeterministicForces``. On the CPU platform that property is not enough (measured
    with OpenMM 8.6: hydrogens placed by three runs under it and 2 threads still differed), since the
    minimiser's energies are summed over threads too; one thread is what makes a CPU run repeatable.
    """
    names = platform.getPropertyNames()
    properties = {"DeterministicForces": "true"} if "DeterministicForces" in names else {}
    if platform.getName() == "CPU":
        properties["Threads"] = "1"
    return properties


@contextlib.contextmanager
def _platform_defaults(platform: Any, properties: dict[str, str]) -> Iterator[None]:
    """Set ``platform``'s default Context properties for the block, then put the old ones back
    (the defaults are process-wide)."""
    before = {name: platform.getPropertyDefaultValue(name) for name in properties}
    for name, value in properties.items():
        platform.setPropertyDefaultValue(name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            platform.setPropertyDefaultValue(name, value)


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Python's global ``random`` seeded for the block (PDBFixer and OpenMM's Modeller draw from it),
    its state restored afterwards so that callers' own random streams are untouched."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)
