"""Restrained AMBER14 energy minimisation with OpenMM ("relax"), the always-available baseline.

Protocol (the idea of AlphaFold's relax, written from scratch for complexes with chain breaks):

1. the decoy's sanitised copy (one chain per unbroken segment) goes to PDBFixer, which adds
   missing heavy atoms and hydrogens but no missing residues: the output keeps the decoy's
   residues, and segment ends are capped as termini instead of being bonded across the gap;
2. AMBER14 (``amber14-all.xml``), in vacuum or with GBn2 implicit solvent;
3. harmonic positional restraints ``E = ½ k |x − x₀|²`` on the decoy's own heavy atoms
   (k = 10 kcal/mol/Å² by default); heavy atoms PDBFixer built and all hydrogens move freely;
4. L-BFGS minimisation (``LocalEnergyMinimizer``) to a force tolerance or an iteration cap.

Energies are in kJ/mol and exclude the restraint term; the restraint energy at the end is
reported on its own. CPU threads follow OpenMM's ``OPENMM_CPU_THREADS`` environment variable.

Default solvent: ``'vacuum'``. With the restraints deciding where heavy atoms go, the two solvent models
give structures about 0.1 Å apart and the same DockQ, while GBn2 costs an order of magnitude more
minimisation time (measurements: benchmarks/README.md, "OpenMM relax"), so vacuum is the default and
``solvent='gbn2'`` is one option away.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import time
from typing import Any

import numpy as np

from egr.structure import Complex

from .common import BaselineError, Refined, check_residue_names, match_atoms, residue_label, sanitised_pdb

#: Solvent models: name -> (extra force-field file or None, OpenMM nonbonded method).
SOLVENTS: dict[str, tuple[str | None, str]] = {
    "vacuum": (None, "NoCutoff"),
    # GBn2 needs a cutoff to be affordable on CPUs (without one it is O(N²) and far too slow).
    "gbn2": ("implicit/gbn2.xml", "CutoffNonPeriodic"),
}
KCAL_PER_MOL_A2_TO_KJ_PER_MOL_NM2 = 4.184 * 100.0
ANGSTROM_PER_NM = 10.0


def available() -> tuple[bool, str]:
    """OpenMM relax needs the ``openmm`` and ``pdbfixer`` packages (the ``relax`` extra)."""
    missing = [name for name in ("openmm", "pdbfixer") if importlib.util.find_spec(name) is None]
    if missing:
        return False, f"Python package(s) {', '.join(missing)} not installed (pip install 'egr-nf[relax]')"
    return True, ""


def relax(
    decoy: Complex,
    *,
    solvent: str = "vacuum",
    stiffness_kcal_mol_a2: float = 10.0,
    tolerance_kj_mol_nm: float = 10.0,
    max_iterations: int = 0,
    cutoff_nm: float = 1.0,
    ph: float = 7.0,
    platform: str | None = None,
) -> tuple[Refined, dict[str, Any]]:
    """Minimise ``decoy`` under positional restraints; return its heavy atoms and the figures.

    Args:
        decoy: the decoy (heavy atoms, from :func:`egr.baselines.common.read_decoy`).
        solvent: ``'vacuum'`` (no cutoff) or ``'gbn2'`` (GBn2 implicit solvent, non-periodic cutoff).
        stiffness_kcal_mol_a2: restraint force constant k in kcal/mol/Å².
        tolerance_kj_mol_nm: stop when the RMS force is below this (kJ/mol/nm).
        max_iterations: L-BFGS iteration cap; 0 means until converged.
        cutoff_nm: nonbonded cutoff in nm for ``'gbn2'`` (vacuum has none).
        ph: pH for PDBFixer's choice of protonation states.
        platform: OpenMM platform name (``'CPU'``, ``'CUDA'``, ...); None lets OpenMM pick the fastest.

    Returns:
        (atoms, details): heavy atoms assigned to the decoy's residues by order, and a dict with
        ``energy_before_kj_mol`` / ``energy_after_kj_mol`` (force field only),
        ``restraint_energy_kj_mol``, ``n_atoms_added`` (heavy atoms PDBFixer built, terminal
        OXT not counted), ``prepare_s`` / ``minimise_s``, the settings and the package versions.
    """
    if solvent not in SOLVENTS:
        raise ValueError(f"solvent must be one of {sorted(SOLVENTS)}, got {solvent!r}")
    import openmm
    from openmm import app, unit
    from pdbfixer import PDBFixer

    start = time.perf_counter()
    fixer = PDBFixer(pdbfile=io.StringIO(sanitised_pdb(decoy)))
    fixer.missingResidues = {}  # keep the decoy's residues: never model gaps or missing termini
    fixer.findMissingAtoms()
    n_added = sum(len(atoms) for atoms in fixer.missingAtoms.values())
    fixer.addMissingAtoms()
    fixer.addMissingHydrogens(ph)
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

    extra_ff, method = SOLVENTS[solvent]
    forcefield = app.ForceField("amber14-all.xml", *([extra_ff] if extra_ff else []))
    options: dict[str, Any] = {"nonbondedMethod": getattr(app, method), "constraints": None}
    if method != "NoCutoff":
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
    context = (
        openmm.Context(system, integrator, openmm.Platform.getPlatformByName(platform))
        if platform
        else openmm.Context(system, integrator)
    )
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
        "force_field": "amber14-all.xml" + (f" + {extra_ff}" if extra_ff else ""),
        "nonbonded_method": method,
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
        "prepare_s": round(prepared - start, 3),
        "minimise_s": round(minimised - prepared, 3),
    }
    return refined, details


def _energy(context: Any, groups: set[int]) -> float:
    """Potential energy of the given force groups in kJ/mol."""
    from openmm import unit

    state = context.getState(getEnergy=True, groups=groups)
    return float(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
