"""`make demo`: the tiny study from nothing (sample -> ... -> report) on CPU, in a few minutes.

Runs recipes/tiny/study.yaml (which generates the sample dump first) in the given workspace and
prints the comparison tables; rerunning skips the stages that are already up to date. It runs the
same code as `fl run` (frontload.study) and prints with the same printers (frontload.study.report);
it never imports the CLI.
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
    from frontload.study.pipeline import run_pipeline
    from frontload.study.report import print_stage_tables, print_tables
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


if __name__ == "__main__":
    sys.exit(main())
