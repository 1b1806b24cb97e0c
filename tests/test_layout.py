"""egr.layout owns the output layout: the suffixes are spelled nowhere else in the code, a registered
method reaches every caller without other edits, and the Nextflow modules and schema agree with it."""

from __future__ import annotations

import ast
import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from egr import layout

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "nextflow"))
import nfmodule as nm  # noqa: E402

SUFFIXES = (layout.CLEAN_PDB, layout.INGEST_JSON, layout.SURFACE_NPZ, layout.GRAPH_PT, layout.REFINED_PDB,
            layout.PLDDT_CSV, layout.SCORES_JSON, layout.DOCKQ_JSON, layout.SELECTION_JSON)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def _spellings(path: Path) -> list[str]:
    """Where ``path``'s code (docstrings aside) spells an output suffix: a string that holds one other than
    after a ``<placeholder>`` (help text such as ``<id>_scores.json``), or an f-string ``{id}_{x}.pdb`` /
    ``{id}_{x}.json`` (a method's structure or record)."""
    tree = ast.parse(path.read_text())
    skip = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            for suffix in SUFFIXES:
                if re.search(rf"(?<!>){re.escape(suffix)}", node.value):
                    hits.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
        if isinstance(node, ast.JoinedStr):
            parts = node.values
            for before, value, after in zip(parts, parts[1:], parts[2:]):
                if (isinstance(before, ast.Constant) and before.value == "_"
                        and isinstance(value, ast.FormattedValue) and isinstance(after, ast.Constant)
                        and re.match(r"\.(pdb|json)\b", str(after.value))):
                    hits.append(f"{path.relative_to(REPO)}:{node.lineno}: f-string _{{…}}{after.value}")
    return hits


def test_each_output_suffix_is_spelled_only_in_egr_layout() -> None:
    others = [p for p in sorted((REPO / "egr").rglob("*.py")) if p != REPO / "egr" / "layout.py"]
    hits = [hit for path in others for hit in _spellings(path)]
    assert not hits, "output suffixes spelled outside egr/layout.py:\n" + "\n".join(hits)
    # and the test sees them where they are
    spelled = "\n".join(_spellings(REPO / "egr" / "layout.py"))
    for suffix in SUFFIXES:
        assert suffix in spelled
    assert "f-string _{…}.pdb" in spelled and "f-string _{…}.json" in spelled


def test_per_decoy_paths() -> None:
    out = Path("out")
    assert layout.clean_pdb(out, "a") == Path("out/a/a_clean.pdb")
    assert layout.scores_json(out, "a") == Path("out/a/a_scores.json")
    assert layout.structure(out, "a", "egr") == Path("out/a/a_refined.pdb")
    assert layout.structure(out, "a", "openmm") == Path("out/a/a_openmm.pdb")
    assert layout.method_record(out, "a", "galaxy") == Path("out/a/a_galaxy.json")
    assert layout.dockq_json(out, "a", "decoy") == Path("out/a/a_decoy_dockq.json")
    assert layout.refiners() == ("egr", "openmm", "modeller", "galaxy", "haddock_emref", "haddock_mdref")
    assert layout.scored_methods()[:2] == ("decoy", "egr")
    for name in layout.scored_methods():
        assert layout.method_of("a_b", layout.structure(out, "a_b", name)) == name


# ------------------------------------------------------------------------------------------------
# A dummy refiner: one entry of egr/data/refiners.json (its adapter stands in for egr.baselines') and nothing else


def dummy_available() -> tuple[bool, str]:
    return False, "dummy is never installed"


def dummy_refine(decoy, **options):  # pragma: no cover - never runs: it is never available
    raise AssertionError("not reached")


@pytest.fixture
def dummy(monkeypatch: pytest.MonkeyPatch) -> layout.Method:
    entry = layout.refiner_from_entry({
        "name": "dummy", "label": "Dummy refiner", "short_label": "Dmy", "colour": "#123456",
        "check": f"{__name__}:dummy_available", "refine": f"{__name__}:dummy_refine", "version": None,
        "scratch": False, "options": {}, "image": "egr-nf/dummy:0.1.0"})
    monkeypatch.setattr(layout, "REGISTRY", {**layout.REGISTRY, entry.name: entry})
    return entry


def test_a_registered_method_reaches_every_caller(dummy: layout.Method, tmp_path: Path) -> None:
    from egr import baselines, evaluate, multiqc_content, summary
    from egr.cli import main
    from egr.runner import InputError, RunOptions

    # --refiners and `egr baseline METHOD`
    assert "dummy" in layout.refiners()
    RunOptions(outdir=tmp_path, refiners=("egr", "dummy"))
    with pytest.raises(InputError, match="choose from egr, openmm, modeller, galaxy, haddock_emref, haddock_mdref, dummy"):
        RunOptions(outdir=tmp_path, refiners=("nope",))
    decoy = REPO / "tests" / "data" / "decoys" / "kq_1kq1_pdb1_1_HDOCK.pdb.gz"
    refused = CliRunner().invoke(main, ["run", "--decoys", str(decoy), "--outdir", str(tmp_path), "--refiners", "nope"])
    assert refused.exit_code == 2 and "haddock_mdref, dummy" in refused.output, refused.output
    result = CliRunner().invoke(main, ["baseline", "dummy", str(decoy), "--outdir", str(tmp_path), "--id", "d"])
    assert result.exit_code == 0, result.output
    record = json.loads(layout.method_record(tmp_path, "d", "dummy").read_text())
    assert record["status"] == "skipped" and record["reason"] == "dummy is never installed"
    assert baselines.available("dummy") == (False, "dummy is never installed")
    # labels and colours of evaluate and the report
    assert evaluate.method_label("dummy") == "Dummy refiner"
    assert multiqc_content.method_color("dummy", 0) == "#123456"
    assert multiqc_content.method_color("decoy", 1) == multiqc_content.OTHER_COLORS[1]  # no colour of its own
    assert layout.short_label("dummy") == "Dmy"
    # summary columns: its record and its scores
    row = summary.decoy_row(layout.scores_json(tmp_path, "d"))
    assert row["status_dummy"] == "skipped"
    assert "dockq_dummy" in layout.score_columns() and "delta_dockq_dummy" in layout.score_columns()
    assert "reason_dummy" in layout.baseline_columns()
    out = tmp_path / "summary.tsv"
    summary.write_summary(out, [{**row, "dockq_dummy": 0.5}])
    header = out.read_text().splitlines()[0].split("\t")
    assert "dockq_dummy" in header and "status_dummy" in header
    assert layout.method_of("d", tmp_path / "d_dummy.pdb") == "dummy"
    # the Nextflow side: BASELINE_REFINE runs it, and its program version reads "not installed"
    assert (dummy.nf_module, dummy.image) == (layout.BASELINE_NF_MODULE, "egr-nf/dummy:0.1.0")
    assert CliRunner().invoke(main, ["refiner-version", "dummy"]).output == "not installed\n"


# ------------------------------------------------------------------------------------------------
# Nextflow: the modules' declared outputs and the schema's refiner choices


def _declared(module: str) -> list[str]:
    parsed = nm.parse_module(REPO / "modules" / "local" / module / "main.nf")
    return [i[1].strip("\"'") for d in parsed.outputs for i in d.items if i[0] == "path"]


def _per_decoy(suffix: str) -> str:
    return "${meta.id}/${meta.id}" + suffix


def test_nextflow_module_outputs_follow_the_layout() -> None:
    expected = {
        "ingest": [_per_decoy(layout.CLEAN_PDB), _per_decoy(layout.INGEST_JSON), _per_decoy(layout.SCORES_JSON)],
        "msms_surface": [_per_decoy(layout.SURFACE_NPZ), _per_decoy(layout.SCORES_JSON)],
        "featurize": [_per_decoy(layout.GRAPH_PT), _per_decoy(layout.SCORES_JSON)],
        "egr_refine": [f"*/*{suffix}" for suffix in layout.REFINE_OUTPUTS],
        "dockq_score": [_per_decoy(layout.dockq_suffix("*"))],
    }
    # one module runs every comparison refiner, named by its `method` input
    expected[layout.BASELINE_NF_MODULE] = [_per_decoy("_${method}.pdb"), _per_decoy(layout.method_record_suffix("${method}"))]
    assert {layout.REGISTRY[name].nf_module for name in layout.baseline_methods()} == {layout.BASELINE_NF_MODULE}
    assert layout.REGISTRY["egr"].nf_module == "egr_refine"
    for module, paths in expected.items():
        declared = _declared(module)
        assert sorted(declared) == sorted(paths), f"{module}: declared {declared}, the layout says {paths}"


def test_every_refiner_module_is_registered() -> None:
    """A module folder whose outputs are a method's structure belongs to a registered method."""
    registered = {m.nf_module for m in layout.REGISTRY.values() if m.nf_module}
    for main_nf in sorted((REPO / "modules" / "local").glob("*/main.nf")):
        for path in _declared(main_nf.parent.name):
            if re.fullmatch(r"\$\{meta\.id\}/\$\{meta\.id\}_\w+\.pdb", path) and not path.endswith(layout.CLEAN_PDB):
                assert main_nf.parent.name in registered, f"{main_nf.parent.name} emits {path} but is not registered"


def test_the_pipeline_reads_the_refiners_from_the_registry_file() -> None:
    """Nextflow takes the refiner names and images from the file the registry is read from, so a new
    refiner needs no Nextflow change: the subworkflow names none, the schema's pattern lists none."""
    text = (REPO / "subworkflows" / "local" / "run_baselines" / "main.nf").read_text()
    utils = (REPO / "subworkflows" / "local" / "utils_egr_pipeline" / "main.nf").read_text()
    assert "egr/data/refiners.json" in utils and layout.REFINERS_JSON == REPO / "egr" / "data" / "refiners.json"
    assert "refinerImages()" in text and "BASELINE_REFINE(ch_jobs)" in text
    for name in layout.baseline_methods():
        assert f"'{name}'" not in text and name.upper() not in text, name
    schema = json.loads((REPO / "nextflow_schema.json").read_text())
    (refiners,) = [props["refiners"] for group in schema["$defs"].values()
                   for props in [group.get("properties", {})] if "refiners" in props]
    pattern = re.compile(refiners["pattern"])
    assert all(pattern.fullmatch(f"egr,{name}") for name in layout.baseline_methods())
    assert not any(name in refiners["pattern"] for name in layout.baseline_methods())
    registry = json.loads(layout.REFINERS_JSON.read_text())["refiners"]
    assert [entry["name"] for entry in registry] == list(layout.baseline_methods())
    assert {e["name"]: e["image"] for e in registry} == {m: layout.REGISTRY[m].image for m in layout.baseline_methods()}


def test_registry_entries_are_consistent() -> None:
    for name, entry in layout.REGISTRY.items():
        assert entry.name == name and entry.label and entry.short_label
        if entry.is_baseline:
            assert entry.structure_suffix == f"_{name}.pdb" and entry.nf_module
            ok, reason = entry.available()
            assert isinstance(ok, bool) and (ok or reason)
        assert replace(entry) == entry
