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
# A dummy refiner: one registry entry (its adapter stands in for egr.baselines') and nothing else


def dummy_available() -> tuple[bool, str]:
    return False, "dummy is never installed"


def dummy_refine(decoy, **options):  # pragma: no cover - never runs: it is never available
    raise AssertionError("not reached")


@pytest.fixture
def dummy(monkeypatch: pytest.MonkeyPatch) -> layout.Method:
    entry = layout.Method("dummy", "Dummy refiner", "Dmy", "#123456", "_dummy.pdb",
                          check=f"{__name__}:dummy_available", refine=f"{__name__}:dummy_refine",
                          nf_module="dummy_refine")
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


# ------------------------------------------------------------------------------------------------
# Nextflow: the modules' declared outputs and the schema's refiner choices


def _declared(module: str) -> list[str]:
    parsed = nm.parse_module(REPO / "modules" / "local" / module / "main.nf")
    return [i[1].strip("\"'") for d in parsed.outputs for i in d.items if i[0] == "path"]


def _per_decoy(suffix: str) -> str:
    return "${meta.id}/${meta.id}" + suffix


def _methods_of(nf_module: str) -> list[str]:
    return [name for name, entry in layout.REGISTRY.items() if entry.nf_module == nf_module]


def test_nextflow_module_outputs_follow_the_layout() -> None:
    expected = {
        "ingest": [_per_decoy(layout.CLEAN_PDB), _per_decoy(layout.INGEST_JSON), _per_decoy(layout.SCORES_JSON)],
        "msms_surface": [_per_decoy(layout.SURFACE_NPZ), _per_decoy(layout.SCORES_JSON)],
        "featurize": [_per_decoy(layout.GRAPH_PT), _per_decoy(layout.SCORES_JSON)],
        "egr_refine": [f"*/*{suffix}" for suffix in layout.REFINE_OUTPUTS],
        "dockq_score": [_per_decoy(layout.dockq_suffix("*"))],
    }
    for name in layout.baseline_methods():
        # a module that several methods share (HADDOCK3's protocols) takes the method as its `method` input
        shared = len(_methods_of(layout.REGISTRY[name].nf_module)) > 1
        named = "${method}" if shared else name
        expected[layout.REGISTRY[name].nf_module] = [_per_decoy(f"_{named}.pdb"), _per_decoy(layout.method_record_suffix(named))]
        assert layout.structure_suffix(name) == f"_{name}.pdb"
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


def test_the_baselines_subworkflow_wires_every_registered_refiner() -> None:
    text = (REPO / "subworkflows" / "local" / "run_baselines" / "main.nf").read_text()
    for name in layout.baseline_methods():
        module = layout.REGISTRY[name].nf_module
        assert f"modules/local/{module}'" in text, f"run_baselines does not include {module}"
        if len(_methods_of(module)) > 1:  # one task per (decoy, method), the method named by the task
            assert f"'{name}' in refiners" in text and "model: method" in text, name
        else:
            assert f"if ('{name}' in refiners)" in text and f"model: '{name}'" in text, name


def test_schema_refiner_choices_are_the_registry() -> None:
    schema = json.loads((REPO / "nextflow_schema.json").read_text())
    found = [props["refiners"] for group in schema.get("$defs", schema.get("definitions", {})).values()
             for props in [group.get("properties", {})] if "refiners" in props]
    assert len(found) == 1
    pattern = found[0]["pattern"]
    match = re.fullmatch(r"\^\(([\w|]+)\)\(,\(([\w|]+)\)\)\*\$", pattern)
    assert match and match.group(1) == match.group(2), pattern
    assert set(match.group(1).split("|")) == set(layout.refiners())
    for name in layout.refiners():
        assert f"`{name}`" in found[0]["help_text"] or name == "egr" or name in found[0]["description"]
    assert set(re.findall(r"\w+", found[0]["description"].split(":", 1)[1])) == set(layout.refiners())


def test_registry_entries_are_consistent() -> None:
    for name, entry in layout.REGISTRY.items():
        assert entry.name == name and entry.label and entry.short_label
        if entry.is_baseline:
            assert entry.structure_suffix == f"_{name}.pdb" and entry.nf_module
            ok, reason = entry.available()
            assert isinstance(ok, bool) and (ok or reason)
        assert replace(entry) == entry
