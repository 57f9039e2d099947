"""`make demo`: the tiny study from nothing (sample -> ... -> report) on CPU, in a few minutes.

Runs recipes/tiny/study.yaml (which generates the sample dump first) in the given workspace and
prints the comparison table; rerunning skips the stages that are already up to date.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from frontload.errors import FrontloadError

STUDY = Path("recipes") / "tiny" / "study.yaml"


def find_study() -> Path:
    """recipes/tiny/study.yaml of this checkout, else of the current folder."""
    for root in (Path(__file__).resolve().parents[3], Path.cwd()):
        if (root / STUDY).is_file():
            return root / STUDY
    raise FrontloadError(f"{STUDY} not found", "run the demo from the frontload checkout")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workspace", default="demo-workspace", help="workspace folder")
    parser.add_argument("--pipeline", type=Path, default=None, help="pipeline file to run instead")
    args = parser.parse_args(argv)
    from frontload.cli.pipeline import print_tables
    from frontload.study.pipeline import run_pipeline
    from frontload.workspace import Workspace

    try:
        workspace = Workspace.resolve(args.workspace)
        study = run_pipeline(args.pipeline or find_study(), workspace)
        md_path, png_path, tables = study.report
    except FrontloadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print_stage_tables(workspace, study.folder / "plan.yaml")
    print_tables(tables)
    print(f"report: {md_path}\nchart:  {png_path}")
    return 0


def print_stage_tables(workspace, plan_path: Path) -> None:
    """What each stage made: curation step counts, the corpora, and the allocation plan."""
    from frontload.cli.corpora import stats_compare
    from frontload.cli.curate import stats_summary

    stats_summary(workspace=workspace.root)
    stats_compare(names=None, workspace=workspace.root)
    if plan_path.is_file():
        from frontload.allocate.plan import load_plan
        from frontload.allocate.report import explain

        print(explain(load_plan(plan_path)))


if __name__ == "__main__":
    sys.exit(main())
