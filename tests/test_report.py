"""egr.report and egr.multiqc_content: interface residues, track encoding, MultiQC custom content, the
self-contained HTML page and its templates (and, where the tools are installed, a MultiQC build, a
headless-Chromium screenshot of the page and a run of its script).

The results folder is laid out as ``egr run`` writes it, from the bundled real decoys: refined PDBs
are the real structures, DockQ of the decoys are their real labels (tests/data/pairs/labels.csv);
refined scores, pLDDT and EGR's predicted DockQ values are made up; contacts − 10×clashes is computed on
the real decoys. A second folder lacks both ranker columns, as a run from before they existed.
"""

from __future__ import annotations

import ast
import fnmatch
import html as html_text
import importlib.util
import json
import re
import shutil
import struct
import subprocess
import tomllib
import zlib
from pathlib import Path

import numpy as np
import pytest
from markupsafe import escape

from egr.multiqc_content import methods_ran, multiqc_contents, multiqc_subtitle
from egr.report import MIN_DELTA_REACH, Residues, build_report, encode_track, load_run, read_residues
from egr.physics import interface_physics
from egr.refine import interface_residues, plddt_table
from egr.structure import format_pdb, read_decoy

DECOYS = Path(__file__).parent / "data" / "decoys"
FAILED_REASON = 'decoys/broken.pdb: line 12: <HETATM> only & no "protein" residues'
# decoy -> EGR's predicted DockQ of the input decoy (made up)
PRED_DOCKQ = {"kq_1kq1_pdb1_1_HDOCK": 0.31, "kq_1kq1_pdb1_1_ATTRACT": 0.42, "2X9A_unbound": 0.6}
# decoy -> (file, target, DockQ of the decoy (real label), DockQ after EGR (made up), native given)
DECOY_ROWS = {
    "kq_1kq1_pdb1_1_HDOCK": ("kq_1kq1_pdb1_1_HDOCK.pdb.gz", "kq_1kq1_pdb1_1", 0.8543, 0.8601, True),
    "kq_1kq1_pdb1_1_ATTRACT": ("kq_1kq1_pdb1_1_ATTRACT.pdb.gz", "kq_1kq1_pdb1_1", 0.0378, 0.0350, True),
    "2X9A_unbound": ("2X9A_unbound.pdb.gz", "2X9A", 0.7463, 0.7463, False),
}


def make_results(folder: Path, with_natives: bool = True, ranker_columns: bool = True) -> Path:
    """A results folder as ``egr run`` writes it (see the module docstring) plus one failed decoy;
    ``ranker_columns`` False: without pred_dockq and contacts_clashes (a run from before they existed)."""
    rng = np.random.default_rng(7)
    header = ["id", "input", "status", "reason", "target", "mean_plddt", "interface_plddt", "n_residues",
              "seconds_total"]
    if ranker_columns:
        header += ["pred_dockq", "contacts_clashes"]
    if with_natives:
        header += ["dockq_decoy", "dockq_egr", "delta_dockq_egr", "lddt_pearson", "true_lddt_mean",
                   "status_openmm", "reason_openmm"]
    lines = ["\t".join(header)]
    for decoy, (file, target, dockq, refined, has_lddt) in DECOY_ROWS.items():
        complex_, _ = read_decoy(DECOYS / file)
        starts = complex_.residue_starts
        plddt = np.round(rng.uniform(0.3, 0.9, len(starts)), 4)
        out = folder / decoy
        out.mkdir(parents=True)
        (out / f"{decoy}_refined.pdb").write_text(format_pdb(complex_, plddt[complex_.residue_index] * 100))
        (out / f"{decoy}_plddt.csv").write_text(plddt_table(complex_, plddt, interface_residues(complex_)))
        if has_lddt and with_natives:
            scored = [[str(complex_.chain_ids[s]), int(complex_.res_seq[s]), str(complex_.ins_codes[s]),
                       str(complex_.res_names[s]), round(float(rng.uniform(0.5, 1.0)), 4)] for s in starts]
            (out / f"{decoy}_egr_dockq.json").write_text(json.dumps({"residues": scored}))
        values = [decoy, f"decoys/{file}", "ok", "", target if with_natives else "", f"{plddt.mean():.4f}",
                  f"{plddt.mean() - 0.01:.4f}", str(len(starts)), "1.5"]
        if ranker_columns:
            values += [str(PRED_DOCKQ[decoy]), f"{interface_physics(complex_).contacts_clashes:.0f}"]
        if with_natives:
            values += [str(dockq), str(refined), f"{refined - dockq:.4f}", "0.41" if has_lddt else "",
                       "0.8" if has_lddt else "", "skipped", "OpenMM not installed"]
        lines.append("\t".join(values))
    failed = ["broken", "decoys/broken.pdb", "failed", FAILED_REASON, "kq_1kq1_pdb1_1" if with_natives else ""]
    lines.append("\t".join(failed + [""] * (len(header) - len(failed))))
    (folder / "summary.tsv").write_text("\n".join(lines) + "\n")
    (folder / "pipeline_info").mkdir()
    (folder / "pipeline_info" / "run_info.json").write_text(json.dumps({
        "egr_version": "0.1.0", "started": "2026-01-01T00:00:00+0000",
        "options": {"device": "cpu", "refiners": ["egr", "openmm"]},
        "model": {"description": "test weights", "trained": False, "sha256": "ab" * 32},
        "versions": {"torch": "2.x", "python": "3.11"}}))
    return folder


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(results folder, report folder) of one report built without MultiQC."""
    results = make_results(tmp_path_factory.mktemp("results"))
    outdir = tmp_path_factory.mktemp("report")
    build_report(results, outdir, multiqc=False)
    return results, outdir


def page_blob(html: str) -> dict:
    """The page's one JSON block: decoys, plots (hover points by plot), residue_names."""
    blocks = re.findall(r'<script id="egr-data" type="application/json">(.*?)</script>', html, re.S)
    assert len(blocks) == 1, f"{len(blocks)} page data blocks"
    return json.loads(blocks[0])


def page_payload(html: str) -> list[dict]:
    """Per decoy: its track, details and links."""
    return page_blob(html)["decoys"]


# ------------------------------------------------------------------------------------------------
# residues, interface, encoding
# ------------------------------------------------------------------------------------------------


def test_residues_carry_the_run_interface_and_true_lddt(report: tuple[Path, Path]) -> None:
    from egr.refine import interface_residues

    results, _ = report
    complex_, _ = read_decoy(DECOYS / DECOY_ROWS["kq_1kq1_pdb1_1_HDOCK"][0])
    residues = read_residues(results, "kq_1kq1_pdb1_1_HDOCK")
    assert residues.interface.sum() > 10 and np.array_equal(residues.interface, interface_residues(complex_))
    scored = json.loads((results / "kq_1kq1_pdb1_1_HDOCK" / "kq_1kq1_pdb1_1_HDOCK_egr_dockq.json").read_text())
    np.testing.assert_allclose(residues.true_lddt, [row[4] for row in scored["residues"]])
    assert read_residues(results, "2X9A_unbound").true_lddt is None


def test_encode_track_runs_insertion_codes_and_ranges() -> None:
    residues = Residues(
        chain=np.array(["A", "A", "A", "A", "A", "B", "B"]),
        resseq=np.array([1, 2, 3, 3, 7, 1, 2]),
        icode=np.array(["", "", "", "A", "", "", ""]),
        resname=np.array(["ALA", "GLY", "TRP", "MSE", "SER", "LYS", "VAL"]),
        plddt=np.array([0.5, 0.555, np.nan, 0.9, 1.0, 0.0, 0.25]),
        true_lddt=np.array([np.nan] * 6 + [0.5]),
    )
    track = encode_track(residues, np.array([False, True, True, False, False, True, True]))
    # runs break at a residue with an insertion code, at a gap in numbering and at a chain change
    assert track["c"] == [["A", 1, 3], ["A", "3A", 1], ["A", 7, 1], ["B", 1, 2]]
    assert track["s"] == "AGWXSKV"
    assert track["p"] == [50, 56, None, 90, 100, 0, 25]  # missing stays missing, never 0
    assert track["t"] == [None] * 6 + [50]
    assert track["f"] == [[1, 2], [5, 6]]


# ------------------------------------------------------------------------------------------------
# MultiQC custom content
# ------------------------------------------------------------------------------------------------


def _load_yaml(text: str) -> object:
    """YAML as MultiQC reads it (PyYAML, a MultiQC dependency). Without PyYAML: the files are written as
    JSON values (a subset of YAML), so a line ``key: <JSON>`` or a whole JSON document still parses."""
    if importlib.util.find_spec("yaml") is not None:
        import yaml

        return yaml.safe_load(text)
    if text.lstrip().startswith("{"):
        return json.loads(text)
    return {key.strip(): json.loads(value) for key, value in (line.split(":", 1) for line in text.splitlines())}


def _tsv_header(text: str) -> tuple[dict, list[list[str]]]:
    comments = [line[1:] for line in text.splitlines() if line.startswith("#")]
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return _load_yaml("\n".join(comments)), rows


def test_multiqc_files_parse(report: tuple[Path, Path]) -> None:
    _, outdir = report
    names = sorted(p.name for p in outdir.glob("*_mqc*"))
    assert names == [
        "egr_decoys_mqc.tsv",
        "egr_delta_dockq_mqc.yaml",
        "egr_dockq_scatter_mqc.yaml",
        "egr_plddt_mqc.yaml",
        "egr_qa_mqc.tsv",
        "egr_qa_rankers_mqc.tsv",
        "egr_refinement_mqc.tsv",
        "egr_software_mqc_versions.yml",
    ]
    for path in outdir.glob("*_mqc.tsv"):
        config, rows = _tsv_header(path.read_text())
        assert {"id", "section_name", "description", "plot_type", "pconfig"} <= set(config), path.name
        assert config["plot_type"] == "table" and config["pconfig"]["id"]
        assert len({len(r) for r in rows}) == 1, f"{path.name}: ragged rows"
    config, rows = _tsv_header((outdir / "egr_decoys_mqc.tsv").read_text())
    assert [r[0] for r in rows[1:]] == [*DECOY_ROWS, "broken"]
    assert set(config["headers"]) == set(rows[0][1:])
    failed = dict(zip(rows[0], rows[-1]))
    assert failed["status"] == "failed" and failed["reason"] == FAILED_REASON and failed["mean_plddt"] == ""
    for path in outdir.glob("*_mqc.yaml"):
        content = _load_yaml(path.read_text())
        assert {"id", "section_name", "description", "plot_type", "pconfig", "data"} <= set(content), path.name
        assert content["plot_type"] in ("bargraph", "scatter")
    scatter = _load_yaml((outdir / "egr_dockq_scatter_mqc.yaml").read_text())
    # one dataset per method (EGR, OpenMM); OpenMM never ran, so its dataset is empty
    assert [d["name"] for d in scatter["pconfig"]["data_labels"]] == ["EGR", "OpenMM relax"]
    assert scatter["data"][0]["kq_1kq1_pdb1_1_HDOCK"] == {"x": 0.8543, "y": 0.8601} and scatter["data"][1] == {}
    delta = _load_yaml((outdir / "egr_delta_dockq_mqc.yaml").read_text())
    assert delta["data"]["kq_1kq1_pdb1_1_ATTRACT"] == {"EGR": pytest.approx(-0.0028)}
    assert "broken" not in delta["data"]  # no value, no bar (not a zero bar)


def test_multiqc_ranker_table(report: tuple[Path, Path]) -> None:
    _, outdir = report
    config, rows = _tsv_header((outdir / "egr_qa_rankers_mqc.tsv").read_text())
    assert config["id"] == "egr_qa_rankers" and set(config["headers"]) == set(rows[0][1:])
    table = {row[0]: dict(zip(rows[0][1:], row[1:])) for row in rows[1:]}
    assert list(table) == ["EGR predicted DockQ", "Contacts − 10×clashes", "Contacts (< 5 Å)", "Input order",
                           "Random (expected)", "Best possible"]
    # kq_1kq1_pdb1_1: HDOCK (0.8543) vs ATTRACT (0.0378); EGR's made-up score puts ATTRACT first
    egr = table["EGR predicted DockQ"]
    assert (egr["n_targets"], egr["top1_acceptable"], egr["targets_acceptable"]) == ("1", "0", "1")
    assert float(egr["ranking_loss_mean"]) == pytest.approx(0.8543 - 0.0378)
    # pooled over the 3 decoys with a DockQ (2X9A's single decoy included): acceptable HDOCK (0.31) and 2X9A
    # (0.6) against ATTRACT (0.42) -> AUC ½; score ranks 1, 2, 3 against DockQ ranks 3, 1, 2 -> Spearman −½
    assert egr["auc_acceptable"] == "0.5" and egr["spearman"] == "-0.5" and egr["n_decoys"] == "3"
    assert egr["spearman_per_target"] == "" and egr["ranking_loss_std"] == ""  # a 2-decoy target; one target
    assert table["Best possible"]["auc_acceptable"] == "1" and table["Random (expected)"]["auc_acceptable"] == "0.5"
    assert table["Random (expected)"]["top1_acceptable"] == "0.5"


def test_report_without_ranker_columns(tmp_path: Path) -> None:
    """A summary without pred_dockq and contacts_clashes: the rankers are listed empty, nothing crashes."""
    results = make_results(tmp_path / "results", ranker_columns=False)
    outputs = build_report(results, tmp_path / "out", multiqc=False)
    html = outputs.html.read_text()
    assert "Rankers side by side" in html
    assert "<td class=\"\">EGR predicted DockQ</td><td class=\"num\">0</td>" in html
    assert "no contacts_clashes column" in html  # the note
    config, rows = _tsv_header((tmp_path / "out" / "egr_qa_rankers_mqc.tsv").read_text())
    table = {row[0]: dict(zip(rows[0][1:], row[1:])) for row in rows[1:]}
    assert table["Contacts − 10×clashes"]["auc_acceptable"] == "" and table["Best possible"]["auc_acceptable"] == "1"


def test_what_ran_is_named(tmp_path: Path) -> None:
    """OpenMM asked for but skipped everywhere did not run: EGR only; once it refines a decoy, it is named."""
    results = make_results(tmp_path / "results")
    run = load_run(results)
    assert methods_ran(run.summary) == "EGR only (no comparison refiner ran)"
    assert multiqc_subtitle(run) == "EGR refinement and quality assessment: EGR only (no comparison refiner ran)"
    config, _ = _tsv_header(multiqc_contents(run)["egr_decoys_mqc.tsv"])
    assert config["description"].startswith("EGR only (no comparison refiner ran). ")  # also without `egr report`
    summary = (results / "summary.tsv").read_text().replace("\tskipped\tOpenMM not installed", "\tok\t", 1)
    (results / "summary.tsv").write_text(summary)
    assert multiqc_subtitle(load_run(results)) == "EGR refinement and quality assessment: EGR compared with OpenMM relax"


def _refinement_ticks(html: str) -> list[str]:
    """Tick labels of the ΔDockQ strip plot (the first plot of the refinement section)."""
    section = html[html.index('<section id="refinement"'):]
    strips = section[:section.index("</svg>")]
    return re.findall(r'class="tick" text-anchor="middle">([^<]*)</text>', strips)


def test_delta_axis_and_colours_follow_dockq_precision(report: tuple[Path, Path], tmp_path: Path) -> None:
    """Changes of a few thousandths sit on an axis of at least ±0.05 (not blown up to fill it); a large change
    scales the axis; a Δ within DockQ's printed precision (0.001) is grey, beyond it green or red."""
    _, outdir = report
    html = (outdir / "report.html").read_text()
    assert MIN_DELTA_REACH == 0.05
    # Δ here: +0.0058, −0.0028, 0 -> the axis is the minimum ±0.05, ticks every 0.02
    assert _refinement_ticks(html) == ["−0.04", "−0.02", "0.00", "+0.02", "+0.04"]
    assert "at least ±0.05" in html and "improved by more than 0.001" in html
    assert 'class="num d-up" data-v="0.0058"' in html and 'class="num d-down" data-v="-0.0028"' in html
    results = make_results(tmp_path / "results")
    summary = (results / "summary.tsv").read_text()
    summary = summary.replace("0.8543\t0.8601\t0.0058", "0.5\t0.8\t0.3000")  # HDOCK: +0.3
    summary = summary.replace("0.7463\t0.7463\t0.0000", "0.7463\t0.7469\t0.0006")  # 2X9A: +0.0006
    (results / "summary.tsv").write_text(summary)
    html = build_report(results, tmp_path / "out", multiqc=False).html.read_text()
    assert _refinement_ticks(html) == ["−0.2", "0.0", "+0.2"]  # ±0.3 × 1.08: scaled to the data
    assert 'class="num d-zero" data-v="0.0006"' in html and 'class="num d-up" data-v="0.3"' in html
    # FI-DockQ: 1 of 3 scored decoys improved (+0.0006 is not an improvement)
    assert "FI-DockQ 33.3% of 3 decoys" in html


def test_multiqc_files_without_natives(tmp_path: Path) -> None:
    run = load_run(make_results(tmp_path / "results", with_natives=False))
    assert set(multiqc_contents(run)) == {"egr_decoys_mqc.tsv", "egr_plddt_mqc.yaml", "egr_software_mqc_versions.yml"}


@pytest.mark.skipif(
    importlib.util.find_spec("multiqc") is None,
    reason="MultiQC not installed (optional extra: pip install 'egr-nf[report]')",
)
def test_multiqc_builds_a_report(tmp_path: Path) -> None:
    results = make_results(tmp_path / "results")
    outputs = build_report(results, tmp_path / "out")
    assert outputs.multiqc_report is not None, outputs.note
    html = outputs.multiqc_report.read_text()
    for section in ("egr_decoys", "egr_refinement", "egr_delta_dockq", "egr_dockq_scatter", "egr_plddt", "egr_qa",
                    "egr_qa_rankers"):
        assert section in html, f"MultiQC report lacks section {section}"
    data = json.loads((outputs.multiqc_report.parent / "multiqc_data" / "multiqc_data.json").read_text())
    assert data["config_title"].startswith("egr-nf")  # assets/multiqc_config.yml was used
    # the config's run-independent subtitle is replaced by what ran (OpenMM was skipped everywhere)
    assert data["config_subtitle"] == "EGR refinement and quality assessment: EGR only (no comparison refiner ran)"
    # resumed: decoys kept from an earlier run are ok to MultiQC, so its content and report stay as they are
    summary = results / "summary.tsv"
    rows = summary.read_text().splitlines()
    header = rows[0].split("\t")
    status, reason = header.index("status"), header.index("reason")

    def resumed(cells: list[str]) -> list[str]:
        if cells[status] == "ok":
            cells[status], cells[reason] = "skipped", "outputs complete from an earlier run"
        return cells

    rows = [rows[0], *("\t".join(resumed(r.split("\t"))) for r in rows[1:])]
    summary.write_text("\n".join(rows) + "\n")
    built = outputs.multiqc_report.stat().st_mtime_ns
    again = build_report(results, tmp_path / "out")
    assert again.note.startswith("MultiQC report unchanged") and again.multiqc_report.stat().st_mtime_ns == built
    (tmp_path / "out" / "egr_decoys_mqc.tsv").unlink()
    assert build_report(results, tmp_path / "out").note.startswith("MultiQC report unchanged")  # same bytes rewritten


# ------------------------------------------------------------------------------------------------
# report.html
# ------------------------------------------------------------------------------------------------

# Anything that would make the browser fetch: a URL in src/href/action/poster, CSS url()/@import with
# a scheme or protocol-relative host, or a script/stylesheet tag pointing elsewhere.
EXTERNAL = re.compile(
    r"""(?:src|href|action|poster|srcset|xlink:href)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:|//)"""
    r"""|url\(\s*["']?\s*(?:[a-z][a-z0-9+.-]*:|//)|@import|<link\b|<script[^>]*\bsrc\s*=""",
    re.I,
)


def test_html_is_self_contained(report: tuple[Path, Path]) -> None:
    _, outdir = report
    html = (outdir / "report.html").read_text()
    assert not EXTERNAL.search(html), EXTERNAL.search(html).group(0)
    assert not re.search(r"https?://", html)  # not even a namespace URL: nothing for a strict proxy to block
    assert "fetch(" not in html and "XMLHttpRequest" not in html


def test_html_has_every_decoy_and_the_failure_reason(report: tuple[Path, Path]) -> None:
    _, outdir = report
    html = (outdir / "report.html").read_text()
    for decoy in (*DECOY_ROWS, "broken"):
        assert f">{decoy}</td>" in html
    assert str(escape(FAILED_REASON)) in html and FAILED_REASON not in html  # shown, and escaped (no markup injection)
    assert "Untrained weights" in html  # the run's model card says so
    assert "single decoy: no ranking" in html  # 2X9A has one decoy
    assert "Rankers side by side" in html and "Top-1 hit per target" in html
    labels = ("EGR predicted DockQ", "Contacts − 10×clashes", "Input order", "Random (expected)", "Best possible")
    for label in labels:
        assert f">{label}</td>" in html


def test_html_payload_tracks(report: tuple[Path, Path]) -> None:
    results, outdir = report
    data = page_payload((outdir / "report.html").read_text())
    assert [d["id"] for d in data] == [*DECOY_ROWS, "broken"]
    hdock = data[0]
    residues = read_residues(results, "kq_1kq1_pdb1_1_HDOCK")
    assert len(hdock["p"]) == len(residues) and len(hdock["t"]) == len(residues)
    assert hdock["p"][0] == round(residues.plddt[0] * 100)
    assert "t" not in data[2]  # no native LDDT for 2X9A here
    assert "p" not in data[3] and data[3]["i"][1] == ["reason", FAILED_REASON]
    links = dict(hdock["l"])  # relative to the report's folder, so they work when both folders move together
    assert (outdir / links["refined.pdb"]).resolve() == (
        results / "kq_1kq1_pdb1_1_HDOCK" / "kq_1kq1_pdb1_1_HDOCK_refined.pdb"
    ).resolve()


def test_html_payload_plots_and_residue_names(report: tuple[Path, Path]) -> None:
    """Every plot finds its hover points in the page data; the script gets the residue names from there
    (egr.chemistry.ONE_LETTER, the one table), not a copy of its own."""
    from egr.chemistry import ONE_LETTER

    _, outdir = report
    html = (outdir / "report.html").read_text()
    blob = page_blob(html)
    plots = re.findall(r'<svg class="plot pts"[^>]*data-plot="([^"]+)"', html)
    assert plots == ["plddt", "delta_dockq", "dockq_scatter"] and set(blob["plots"]) == set(plots)
    assert blob["plots"]["dockq_scatter"]["series"] == ["EGR", "OpenMM relax"]
    # scatter points: [x, y, decoy index, series, DockQ before, after]; HDOCK (decoy 0) 0.8543 -> 0.8601
    assert [p[2:] for p in blob["plots"]["dockq_scatter"]["pts"] if p[2] == 0] == [[0, 0, 0.8543, 0.8601]]
    assert blob["residue_names"] == {one: three for three, one in ONE_LETTER.items()}
    assert "data-pts" not in html and "THREE = {" not in html


def test_page_data_cannot_end_its_script_element(tmp_path: Path) -> None:
    """A reason that holds </script> or <!-- stays inside the JSON block (and is escaped everywhere else)."""
    results = make_results(tmp_path / "results")
    evil = "</script><script>document.title='x'</script><!-- & </SCRIPT >"
    summary = results / "summary.tsv"
    summary.write_text(summary.read_text().replace(FAILED_REASON, evil))
    html = build_report(results, tmp_path / "out", multiqc=False).html.read_text()
    assert html.count("<script") == 2 and html.lower().count("</script") == 2  # the data block and the script
    assert page_payload(html)[3]["i"][1] == ["reason", evil]


def test_templates_are_package_data() -> None:
    """Every file of egr/templates is shipped by a non-editable install (pyproject's package-data)."""
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["egr"]
    templates = Path(__file__).parents[1] / "egr" / "templates"
    files = [p.relative_to(templates.parent).as_posix() for p in templates.iterdir() if p.is_file()]
    assert {"templates/report.html.j2", "templates/report.css", "templates/report.js"} <= set(files)
    assert [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)] == []
    assert any(r.startswith("jinja2") for r in pyproject["project"]["dependencies"])


def test_report_modules_hold_no_markup() -> None:
    """The page's HTML, SVG, CSS and JS live in egr/templates: no string of the report's Python modules
    (docstrings aside) holds a tag, a CSS rule or a script."""
    markup = re.compile(r"<[a-zA-Z!/][^>]*>|\{[^{}]*:[^{}]*;[^{}]*\}|=>|function\s*\(")
    for module in ("report.py", "multiqc_content.py"):
        tree = ast.parse((Path(__file__).parents[1] / "egr" / module).read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        strings = [node.value for node in ast.walk(tree)
                   if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]
        assert [text for text in strings if markup.search(text)] == [], module


def test_flat_layout_as_nextflow_stages_it(tmp_path: Path) -> None:
    """Per-decoy files side by side in one folder (Nextflow's stageAs: 'results/*') work the same."""
    nested = make_results(tmp_path / "nested")
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in nested.rglob("*"):
        if path.is_file():
            shutil.copy(path, flat / path.name)
    data_nested = page_payload(build_report(nested, tmp_path / "a", multiqc=False).html.read_text())
    data_flat = page_payload(build_report(flat, tmp_path / "b", multiqc=False).html.read_text())
    assert [{k: v for k, v in d.items() if k != "l"} for d in data_flat] == [
        {k: v for k, v in d.items() if k != "l"} for d in data_nested
    ]


def _png_pixels(path: Path) -> np.ndarray:
    """(height, width, channels) of a PNG: with Pillow where it is installed (a MultiQC dependency), else
    with the small zlib decoder below (8-bit RGB/RGBA, non-interlaced: what Chromium writes), which is
    exact but slow on rows that use the Average/Paeth filters."""
    if importlib.util.find_spec("PIL") is not None:
        from PIL import Image

        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    return _png_pixels_zlib(path)


def _png_pixels_zlib(path: Path) -> np.ndarray:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG to (height, width, channels) with zlib and numpy."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, chunks = 8, {}
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        chunks.setdefault(kind, []).append(data[position + 8 : position + 8 + length])
        position += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"][0])
    assert depth == 8 and color in (2, 6) and interlace == 0, "unexpected PNG format"
    channels = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks[b"IDAT"])), dtype=np.uint8).reshape(height, -1)
    stride = width * channels
    image = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.int64)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int64)
        if kind == 0:
            row = line
        elif kind == 1:  # Sub: running sum along the row, per channel
            row = np.cumsum(line.reshape(width, channels), axis=0).ravel()
        elif kind == 2:  # Up
            row = line + previous
        else:  # Average / Paeth depend on the reconstructed left neighbour: byte by byte
            row = line.tolist()
            up = previous.tolist()
            for i in range(stride):
                left = row[i - channels] if i >= channels else 0
                if kind == 3:
                    row[i] = (row[i] + ((left + up[i]) >> 1)) & 255
                else:
                    corner = up[i - channels] if i >= channels else 0
                    p = left + up[i] - corner
                    pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - corner)
                    predictor = left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner
                    row[i] = (row[i] + predictor) & 255
            row = np.array(row, dtype=np.int64)
        previous = row & 255
        image[y] = previous
    return image.reshape(height, width, channels)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


NO_CHROMIUM = "chromium not installed (Debian: apt-get install -y chromium)"


def _chromium(page: Path, tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    """Open ``page`` in headless Chromium with ``flags``; its console messages go to stderr."""
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--force-device-scale-factor=1",
        "--enable-logging=stderr",
        "--v=0",
        *flags,
        page.resolve().as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_screenshot_renders_the_page(report: tuple[Path, Path], tmp_path: Path) -> None:
    _, outdir = report
    png = tmp_path / "report.png"
    done = _chromium(outdir / "report.html", tmp_path, f"--screenshot={png}", "--window-size=1400,2000")
    assert png.is_file() and png.stat().st_size > 10_000, "no screenshot written"
    errors = [line for line in done.stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line]
    assert not errors, f"the page's script failed: {errors}"
    pixels = _png_pixels(png)[..., :3].astype(float)
    assert pixels.shape[:2] == (2000, 1400)
    grey = pixels.mean(axis=2)
    assert grey.std() > 20, "screenshot looks blank"
    # content all the way down, not just a header: every 400-pixel band has text or plot detail
    bands = grey.reshape(5, 400, 1400).std(axis=(1, 2))
    assert (bands > 8).all(), f"a blank band in the screenshot: {bands.round(1)}"
    # the header band is the dark blue gradient; the body is light
    assert grey[:60].mean() < 120 < grey[300:].mean()


# Run after the page's own script (a moment after load, so that its observers have fired): what a reader
# does, each step's visible result recorded on <body data-exercised>. A step that throws leaves no record
# and an "Uncaught" console line.
EXERCISE = """
// the first track opens from an IntersectionObserver, whose callback has no fixed time: wait for it (at most 10 s)
const whenOpened = (go, tries = 100) => document.querySelector('tr.detail svg') || !tries ? go()
  : setTimeout(() => whenOpened(go, tries - 1), 100);
// bring the table on screen as a reader scrolling down would: where it starts depends on the fonts' line heights
window.addEventListener('load', () => document.getElementById('decoy-table').scrollIntoView());
window.addEventListener('load', () => whenOpened(() => {
  const out = {}, table = document.getElementById('decoy-table'), heads = [...table.tHead.rows[0].cells];
  const shown = () => [...table.tBodies[0].rows].filter(r => r.classList.contains('main')).map(r => r.cells[0].textContent);
  out.opened = document.querySelectorAll('tr.detail svg').length;
  const sort = heads.find(c => c.textContent === 'pLDDT');
  sort.click(); sort.click();
  out.sorted = shown();
  const filter = document.getElementById('filter');
  filter.value = '2x9a'; filter.dispatchEvent(new Event('input'));
  out.filtered = document.getElementById('page-info').textContent;
  filter.value = ''; filter.dispatchEvent(new Event('input'));
  const row = [...table.tBodies[0].rows].find(r => r.classList.contains('main') && !r.classList.contains('open')
    && r.querySelector('canvas.spark'));
  row.click();
  const box = row.nextElementSibling, track = box.querySelector('svg'), R = track.getBoundingClientRect();
  track.dispatchEvent(new MouseEvent('mousemove', {clientX: R.left + R.width / 2, clientY: R.top + R.height / 2}));
  out.readout = box.querySelector('.readout').textContent;
  const page = JSON.parse(document.getElementById('egr-data').textContent), tip = document.querySelector('.tip');
  out.tips = [...document.querySelectorAll('svg.pts')].map(plot => {
    const p = page.plots[plot.dataset.plot].pts[0], P = plot.getBoundingClientRect(), vb = plot.viewBox.baseVal;
    plot.dispatchEvent(new MouseEvent('mousemove',
      {clientX: P.left + p[0] * P.width / vb.width, clientY: P.top + p[1] * P.height / vb.height}));
    return tip.textContent;
  });
  out.sparks = document.querySelectorAll('canvas.spark[data-drawn]').length;
  document.body.dataset.exercised = JSON.stringify(out);
}));
"""


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_page_script_runs_without_console_errors(report: tuple[Path, Path], tmp_path: Path) -> None:
    """The page's script runs to its end (it marks <body data-rendered="1">) with nothing on the console, and
    sorting, filtering, opening a decoy's track and hovering the track and the plots work."""
    results, outdir = report
    page = tmp_path / "exercise.html"
    page.write_text((outdir / "report.html").read_text().replace("</body>", f"<script>{EXERCISE}</script></body>"))
    # the virtual time budget lets the observers fire (sparklines drawn, first track opened) and the exercise
    # wait for them before the dump
    done = _chromium(page, tmp_path, "--window-size=1400,700", "--virtual-time-budget=12000", "--dump-dom")
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert not console, f"the page wrote to the console (it never does unless something failed): {console}"
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body, f"no DOM dumped (exit {done.returncode}): {done.stderr[-2000:]}"
    assert 'data-rendered="1"' in body.group(1), "the page's script stopped before its end"
    exercised = re.search(r'data-exercised="([^"]*)"', body.group(1))
    assert exercised, "the exercise did not run through"
    out = json.loads(html_text.unescape(exercised.group(1)))
    # sorted by pLDDT, highest first, the failed decoy (no value) last
    summary = load_run(results).summary
    expected = summary.sort_values("mean_plddt", ascending=False, na_position="last")["id"].tolist()
    assert out["sorted"] == expected
    assert out["filtered"] == "1–1 of 1 (filtered from 4)"
    assert out["opened"] == 1  # the first decoy with a true LDDT opened itself once the table was in view
    assert re.fullmatch(r"[A-Z] -?\d+\w* (ALA|ARG|ASN|ASP|CYS|GLN|GLU|GLY|HIS|ILE|LEU|LYS|MET|PHE|PRO|SER|THR|TRP"
                        r"|TYR|VAL|UNK)   predicted \d\.\d\d(   true \d\.\d\d)?(   interface)?", out["readout"]), out
    ids = "|".join(map(re.escape, DECOY_ROWS))
    assert len(out["tips"]) == 3 and all(re.match(rf"({ids}) · .+: ", tip) for tip in out["tips"]), out["tips"]
    assert out["sparks"] == 3  # the three decoys with per-residue data


def _png_bytes(image: np.ndarray, filters: list[int]) -> bytes:
    """An RGB PNG of ``image`` whose row y uses PNG filter ``filters[y]`` (to test the decoder on all five)."""
    height, width, channels = image.shape
    flat = image.reshape(height, width * channels).astype(np.int64)
    lines = []
    for y, kind in enumerate(filters):
        row, up = flat[y], flat[y - 1] if y else np.zeros_like(flat[0])
        left = np.r_[np.zeros(channels, dtype=np.int64), row[:-channels]]
        corner = np.r_[np.zeros(channels, dtype=np.int64), up[:-channels]]
        p = left + up - corner
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, corner))
        predictor = [0, left, up, (left + up) // 2, paeth][kind]
        lines.append(bytes([kind]) + ((row - predictor) & 255).astype(np.uint8).tobytes())

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(lines)))
        + chunk(b"IEND", b"")
    )


def test_png_decoder_handles_every_filter(tmp_path: Path) -> None:
    image = np.random.default_rng(3).integers(0, 256, size=(10, 7, 3), dtype=np.uint8)
    path = tmp_path / "filters.png"
    path.write_bytes(_png_bytes(image, [0, 1, 2, 3, 4, 4, 3, 2, 1, 0]))
    assert np.array_equal(_png_pixels_zlib(path), image)
