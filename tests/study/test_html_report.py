"""`fl report html` on a workspace with a real curation run, a solved plan, a study's evaluations
(known numbers) and a loop's state files, opened in a real headless Chromium: the page loads with
no console error and no network request, the screenshot is not blank, and every number
`fl report study` prints is on the page."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest
from tests.curate.helpers import sample_recipe, write_recipe
from tests.study import browser
from tests.study.test_findings import study_folder
from typer.testing import CliRunner

from frontload.cli import app
from frontload.quickstart.sample import generate_sample
from frontload.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """A workspace holding every section's input, and the page written for it."""
    root = tmp_path_factory.mktemp("html")
    sample = root / "sample"
    generate_sample(sample, records=400, seed=5)
    recipe = write_recipe(root / "recipe.yaml", sample_recipe(sample))
    workspace = Workspace.resolve(root / "ws")
    runner = CliRunner()
    ws = ["-w", str(workspace.root)]
    result = runner.invoke(app, ["curate", "run", str(recipe), *ws])
    assert result.exit_code == 0, result.output
    corpora = ["curate", "corpora", "--dshq-min-answer-tokens", "256"]
    result = runner.invoke(app, [*corpora, "--dalf-min-answer-tokens", "512", *ws])
    assert result.exit_code == 0, result.output

    def bpb(pt, stage, sft, scale, seed):  # reasoning pretraining helps, with seed noise
        return (2.0 if pt == "none" else 1.6) + 0.1 * (sft == "LDQ") + 0.02 * seed

    folder = study_folder(workspace, bpb)
    plan = folder / "plan.yaml"
    allocate = REPO / "recipes" / "tiny" / "allocate.yaml"
    result = runner.invoke(app, ["allocate", "solve", str(allocate), "--out", str(plan), *ws])
    assert result.exit_code == 0, result.output
    loop = workspace.root / "pipeline" / "loop"
    loop.mkdir()
    model = (REPO / "src/frontload/allocate/data/default_model.yaml").read_text()
    (loop / "model.yaml").write_text(
        model + "fit:\n  runs: 24\n  cross_validation:\n"
        "    structured: {rmse: 0.0123, spearman: 0.81, decision_accuracy: 0.77}\n"
        "    ridge: {rmse: 0.0456, spearman: 0.42, decision_accuracy: 0.61}\n"
    )
    verify = [
        {"arm": "plan", "predicted": 1.61, "low": 1.55, "high": 1.67, "realized": 1.634,
         "sem": 0.004, "seeds": 2, "rank": 1},
        {"arm": "proportional", "predicted": 1.7, "low": 1.62, "high": 1.78, "realized": 1.702,
         "sem": 0.011, "seeds": 2, "rank": 2},
    ]  # fmt: skip
    (loop / "verify.json").write_text(json.dumps(verify))
    result = runner.invoke(app, ["report", "html", *ws])
    assert result.exit_code == 0, result.output
    page = workspace.reports_dir / "report.html"
    study = runner.invoke(app, ["report", "study", str(folder), *ws], env={"COLUMNS": "250"})
    assert study.exit_code == 0, study.output
    return workspace, page, study.output


def test_the_page_is_self_contained(reported):
    _, page, _ = reported
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and "<link" not in text and "<img" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert text.count("<svg") >= 2  # the curation funnel and the findings plot
    for title in ("Curation funnel", "Corpora", "toy: plan", "toy: study", "loop: model ladder",
                  "loop: verify"):  # fmt: skip
        assert title in text, title
    assert "transfer" not in text  # no transfer.json: no section


def test_fl_run_and_report_html_agree_on_the_path(reported):
    workspace, page, _ = reported
    assert page == workspace.root / "reports" / "report.html" and page.stat().st_size > 10_000


@pytest.mark.skipif(browser.available() is not None, reason=str(browser.available()))
def test_chromium_renders_it_with_no_errors_and_every_study_number(reported, tmp_path):
    from PIL import Image

    _, page, study_output = reported
    moved = tmp_path / "elsewhere.html"  # a page mailed or copied alone still renders whole
    shutil.copy(page, moved)
    rendered = browser.render(moved)
    errors = [entry for entry in rendered.console if entry["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    assert rendered.requests and all(
        url.startswith(("file:", "data:")) for url in rendered.requests
    ), rendered.requests
    image = Image.open(io.BytesIO(rendered.screenshot)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert image.size[0] >= 1000 and len(colours) > 50  # text, tables and plots, not a blank page
    numbers = study_numbers(study_output)
    assert len(numbers) > 20, study_output
    missing = [cell for cell in numbers if cell not in rendered.text]
    assert missing == [], missing
    for verdict in ("reproduced", "inconclusive"):
        assert verdict in rendered.text
    assert "0.0123" in rendered.text and "1.634" in rendered.text  # ladder and verify rows


def study_numbers(output: str) -> list[str]:
    """Every table cell of `fl report study`'s terminal output that holds a number."""
    cells = []
    for line in output.splitlines():
        if line.count("│") < 3:
            continue
        for cell in line.split("│")[1:-1]:
            cell = cell.strip()
            if re.search(r"\d", cell) and not re.match(r"^\d+\. ", cell):
                cells.append(cell)
    return cells
