"""The output layout of a run, in one place: per-decoy paths, the method registry and the score columns.

Every per-decoy file of ``egr run`` (and of the single steps, and of the Nextflow modules) lies in
``OUTDIR/<id>/`` and is named ``<id><suffix>``:

- ``<id>_clean.pdb``, ``<id>_ingest.json`` (ingest), ``<id>_surface.npz`` (surface), ``<id>_graph.pt``
  (featurize);
- ``<id>_refined.pdb``, ``<id>_plddt.csv``, ``<id>_scores.json`` (EGR's refinement);
- ``<id>_<method>.pdb`` and ``<id>_<method>.json`` (a comparison refiner's structure and record);
- ``<id>_<method>_dockq.json`` (a method's structure scored against the native);
- ``<id>_selection.json`` (``egr run --select``: the structure chosen among the methods', :mod:`egr.select`).

The suffixes are spelled here and nowhere else in the code; callers ask the functions below.

:data:`REGISTRY` holds the methods a decoy's structures come from, in the order the tables show them:
``decoy`` (the cleaned input), ``egr`` and the comparison refiners. The comparison refiners are data,
``egr/data/refiners.json`` (:data:`REFINERS_JSON`), which the Nextflow pipeline reads too: each entry
names its adapter in :mod:`egr.baselines` (availability check, refine and version functions, as
``module:function``, imported when used) and the container image the pipeline runs it in. Adding a
refiner is one entry there, its adapter and its image; nothing else changes, in Python or in Nextflow.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

# ------------------------------------------------------------------------------------------------
# Per-decoy files

CLEAN_PDB = "_clean.pdb"
INGEST_JSON = "_ingest.json"
SURFACE_NPZ = "_surface.npz"
GRAPH_PT = "_graph.pt"
REFINED_PDB = "_refined.pdb"
PLDDT_CSV = "_plddt.csv"
SCORES_JSON = "_scores.json"
DOCKQ_JSON = "_dockq.json"  # after _<method>
SELECTION_JSON = "_selection.json"  # `egr run --select`: the candidate chosen and each one's prediction
# what EGR's refinement writes, scores last: a decoy whose three files exist is complete (resume)
REFINE_OUTPUTS = (REFINED_PDB, PLDDT_CSV, SCORES_JSON)
HADDOCK_SCORES_TSV = "haddock_scores.tsv"  # run-level: `egr haddock-score RESULTS` (id, haddock_score)
SCORES_GLOB = f"*{SCORES_JSON}"


def haddock_scores(outdir: Path | str) -> Path:
    """The run's HADDOCK scores (``egr haddock-score``), which ``egr evaluate`` and the report rank by."""
    return Path(outdir) / HADDOCK_SCORES_TSV


def decoy_dir(outdir: Path | str, decoy_id: str) -> Path:
    """``outdir/<id>``: the folder of one decoy's files."""
    return Path(outdir) / decoy_id


def decoy_path(outdir: Path | str, decoy_id: str, suffix: str) -> Path:
    """``outdir/<id>/<id><suffix>``."""
    return decoy_dir(outdir, decoy_id) / f"{decoy_id}{suffix}"


def clean_pdb(outdir: Path | str, decoy_id: str) -> Path:
    return decoy_path(outdir, decoy_id, CLEAN_PDB)


def ingest_json(outdir: Path | str, decoy_id: str) -> Path:
    return decoy_path(outdir, decoy_id, INGEST_JSON)


def surface_npz(outdir: Path | str, decoy_id: str) -> Path:
    return decoy_path(outdir, decoy_id, SURFACE_NPZ)


def graph_pt(outdir: Path | str, decoy_id: str) -> Path:
    return decoy_path(outdir, decoy_id, GRAPH_PT)


def refined_pdb(outdir: Path | str, decoy_id: str) -> Path:
    return decoy_path(outdir, decoy_id, REFINED_PDB)


def plddt_csv(outdir: Path | str, decoy_id: str) -> Path:
    return decoy_path(outdir, decoy_id, PLDDT_CSV)


def scores_json(outdir: Path | str, decoy_id: str) -> Path:
    return decoy_path(outdir, decoy_id, SCORES_JSON)


def method_record_suffix(method: str) -> str:
    """``_<method>.json``: a comparison refiner's record."""
    return f"_{method}.json"


def method_record(outdir: Path | str, decoy_id: str, method: str) -> Path:
    """``outdir/<id>/<id>_<method>.json``: a comparison refiner's record (status, reason, seconds)."""
    return decoy_path(outdir, decoy_id, method_record_suffix(method))


def dockq_suffix(method: str) -> str:
    """``_<method>_dockq.json``."""
    return f"_{method}{DOCKQ_JSON}"


def dockq_json(outdir: Path | str, decoy_id: str, method: str) -> Path:
    """``outdir/<id>/<id>_<method>_dockq.json``: ``method``'s structure scored against the native."""
    return decoy_path(outdir, decoy_id, dockq_suffix(method))


def selection_json(outdir: Path | str, decoy_id: str) -> Path:
    """``outdir/<id>/<id>_selection.json``: which method's structure ``egr run --select`` chose, and why."""
    return decoy_path(outdir, decoy_id, SELECTION_JSON)


def structure_suffix(method: str) -> str:
    """The suffix of the structure scored as ``method``: its registry entry's, else ``_<method>.pdb``."""
    entry = REGISTRY.get(method)
    return entry.structure_suffix if entry is not None else f"_{method}.pdb"


def structure(outdir: Path | str, decoy_id: str, method: str) -> Path:
    """``outdir/<id>/<id><structure suffix>``: the structure scored as ``method``."""
    return decoy_path(outdir, decoy_id, structure_suffix(method))


def decoy_id_of_scores(scores_file: Path | str) -> str:
    """The decoy ID of a ``<id>_scores.json`` file, by its name."""
    return Path(scores_file).name[: -len(SCORES_JSON)]


# ------------------------------------------------------------------------------------------------
# Methods


def _resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Method:
    """A source of a decoy's structure: the decoy itself, EGR or a comparison refiner.

    ``check``, ``refine`` and ``version`` name a comparison refiner's adapter (``module:function``): the
    availability check ``check(**location) -> (ok, reason)``, ``refine(decoy, [workdir,] **options)``
    and ``version() -> str`` (the program's version; None where the adapter cannot tell); ``scratch``
    says whether ``refine`` takes a scratch folder. ``options`` are keyword options that ``refine``
    always gets for this method, e.g. ``(("protocol", "emref"),)``: one program run two ways is two
    methods, so that both can be scored side by side in one run. ``nf_module`` is the module under
    modules/local that runs it; ``image`` the container image it runs in there.
    """

    name: str
    label: str  # in tables and prose
    short_label: str  # narrow table headers
    colour: str | None  # in the report's plots; None takes the next of the report's spare colours
    structure_suffix: str
    check: str | None = None
    refine: str | None = None
    version: str | None = None
    scratch: bool = False
    nf_module: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    image: str | None = None

    @property
    def is_baseline(self) -> bool:
        """A comparison refiner, run by :mod:`egr.baselines`."""
        return self.refine is not None

    def available(self, **location: Any) -> tuple[bool, str]:
        """Whether the method can run here, and the reason when not; decoy and egr always can."""
        if self.check is None:
            return True, ""
        return _resolve(self.check)(**location)

    def refine_options(self) -> dict[str, Any]:
        """The keyword options of :attr:`refine` for this method (:attr:`options`)."""
        return dict(self.options)

    def check_function(self) -> Callable[..., tuple[bool, str]]:
        if self.check is None:
            raise ValueError(f"{self.name} has no availability check")
        return _resolve(self.check)

    def refine_function(self) -> Callable[..., Any]:
        if self.refine is None:
            raise ValueError(f"{self.name} is not a comparison refiner")
        return _resolve(self.refine)

    def program_version(self) -> str:
        """The refiner's program version here; ``not installed`` or ``not reported`` where there is none."""
        ok, _ = self.available()
        if not ok:
            return "not installed"
        return _resolve(self.version)() if self.version else "not reported"


REFINERS_JSON = Path(__file__).parent / "data" / "refiners.json"
BASELINE_NF_MODULE = "baseline_refine"  # runs every comparison refiner: `egr baseline <name>` in its image


def refiner_from_entry(entry: Mapping[str, Any]) -> Method:
    """A comparison refiner's :class:`Method` from its entry in :data:`REFINERS_JSON`."""
    fields = dict(entry)
    name = fields.pop("name")
    options = tuple(sorted(fields.pop("options", {}).items()))
    return Method(name, structure_suffix=f"_{name}.pdb", nf_module=BASELINE_NF_MODULE, options=options, **fields)


REGISTRY: dict[str, Method] = {m.name: m for m in (
    Method("decoy", "Decoy", "Decoy", None, CLEAN_PDB),
    Method("egr", "EGR", "EGR", "#2563eb", REFINED_PDB, nf_module="egr_refine"),
    *(refiner_from_entry(entry) for entry in json.loads(REFINERS_JSON.read_text())["refiners"]),
)}


# Summary columns that are not a refiner's: ``selected`` is the structure `egr run --select` chose among the
# methods' (egr.select), its DockQ-family columns copied from the chosen method's. It is no REGISTRY entry
# (nothing refines or is scored as "selected", and --refiners does not take it); it has a label only, so
# that `egr evaluate` and the report, which take every ``dockq_<m>`` column as a method, name it.
SELECTED = "selected"
PSEUDO_LABELS = {SELECTED: ("Best predicted (EGR's choice)", "Selected")}


def method(name: str) -> Method | None:
    return REGISTRY.get(name)


def scored_methods() -> tuple[str, ...]:
    """Every method whose structure is scored against the native: decoy, egr and the refiners."""
    return tuple(REGISTRY)


def baseline_methods() -> tuple[str, ...]:
    """The comparison refiners."""
    return tuple(name for name, m in REGISTRY.items() if m.is_baseline)


def refiners() -> tuple[str, ...]:
    """What ``--refiners`` takes: egr and the comparison refiners."""
    return tuple(name for name in REGISTRY if name != "decoy")


def label(name: str) -> str:
    entry = REGISTRY.get(name)
    return entry.label if entry is not None else PSEUDO_LABELS.get(name, (name, name))[0]


def short_label(name: str) -> str:
    entry = REGISTRY.get(name)
    return entry.short_label if entry is not None else PSEUDO_LABELS.get(name, (name, name))[1]


def colour(name: str) -> str | None:
    entry = REGISTRY.get(name)
    return entry.colour if entry is not None else None


def method_of(decoy_id: str, structure_file: Path | str) -> str | None:
    """The method whose structure file ``structure_file`` is (by name), or None."""
    for name in REGISTRY:
        if Path(structure_file).name == f"{decoy_id}{structure_suffix(name)}":
            return name
    return None


def record_method_of(decoy_id: str, record_file: Path | str) -> str | None:
    """The comparison refiner whose record ``record_file`` is (``<id>_<method>.json``, by name), or None."""
    for name in baseline_methods():
        if Path(record_file).name == f"{decoy_id}{method_record_suffix(name)}":
            return name
    return None


# ------------------------------------------------------------------------------------------------
# Score columns of summary.tsv

METRICS = ("dockq", "fnat", "irmsd", "lrmsd")
AGREEMENT_COLUMNS = ("lddt_pearson", "lddt_spearman", "lddt_mae", "true_lddt_mean", "score_notes")
BASELINE_FIELDS = ("status", "seconds", "reason")


def score_columns() -> tuple[str, ...]:
    """The DockQ-family column of each method and metric, the Δ of each method but the decoy, then the
    pLDDT agreement."""
    methods = scored_methods()
    return (
        *(f"{metric}_{m}" for m in methods for metric in METRICS),
        *(f"delta_{metric}_{m}" for m in methods[1:] for metric in METRICS),
        *AGREEMENT_COLUMNS,
    )


def selection_columns() -> tuple[str, ...]:
    """``egr run --select``: the chosen method, its predicted DockQ, and its DockQ-family columns and Δs
    (those of the chosen method's structure)."""
    return (SELECTED, f"pred_dockq_{SELECTED}", *(f"{metric}_{SELECTED}" for metric in METRICS),
            *(f"delta_{metric}_{SELECTED}" for metric in METRICS))


def baseline_columns() -> tuple[str, ...]:
    """status, seconds and reason of each comparison refiner."""
    return tuple(f"{kind}_{m}" for m in baseline_methods() for kind in BASELINE_FIELDS)
