"""The sweeps behind a plan: the allocation re-solved along the SFT budget and along the
pretraining reasoning share, drawn as PNGs (`fl report plan`)."""

from __future__ import annotations

from pathlib import Path

from frontload.allocate.config import AllocateConfig, Budget, Group
from frontload.allocate.model import load_model
from frontload.allocate.solve import solve_plan
from frontload.workspace import Workspace


def sweeps(
    config: AllocateConfig, workspace: Workspace | None, out_dir: Path, points: int = 9
) -> list[Path]:
    """PNG: predicted objective vs SFT budget, and vs pretraining reasoning share (LP mode)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    base = config.model_copy(update={"solver": "lp", "tie_break": "none"})
    paths = []
    if "sft" in base.budgets:
        budget = base.budgets["sft"]
        factors = [0.25 * 2 ** (i / 2) for i in range(points)]
        scores = []
        for f in factors:
            scaled = Budget(
                **{
                    k: (v * f if k in ("tokens", "samples", "params") and v else v)
                    for k, v in budget.model_dump().items()
                }
            )
            cfg = base.model_copy(
                update={"budgets": {**base.budgets, "sft": scaled}, "trust_region": None}
            )
            scores.append(solve_plan(cfg, workspace).objective)
        paths.append(
            _plot(
                plt,
                factors,
                scores,
                "SFT budget (x configured)",
                out_dir / f"{config.name}_sft_budget.png",
                log=True,
            )
        )
    shares = [0.02 + i * (0.6 - 0.02) / (points - 1) for i in range(points)]
    scores = []
    for share in shares:
        group = Group(name="sweep_share", phase="pretrain", min=share, max=share)
        keep = [g for g in base.groups if g.phase != "pretrain"]
        cfg = base.model_copy(update={"groups": keep + [group], "trust_region": None})
        scores.append(solve_plan(cfg, workspace).objective)
    paths.append(
        _plot(
            plt,
            shares,
            scores,
            "pretraining reasoning share",
            out_dir / f"{config.name}_pt_share.png",
            fitted=load_model(config.model).fitted_range["pt_reasoning_share"],
        )
    )
    return paths


def _plot(
    plt, xs, ys, label: str, path: Path, log: bool = False, fitted: float | None = None
) -> Path:
    """One sweep; a dashed line marks the edge of the range the model was fitted on."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(xs, ys, marker="o")
    if fitted is not None:
        ax.axvline(fitted, color="grey", linestyle="--", linewidth=1, label="fitted range ends")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title(path.stem.replace("_", " "), fontsize=9)
    if log:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(label)
    ax.set_ylabel("predicted post-SFT score")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
