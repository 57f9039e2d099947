"""Task registry: name -> class. Adding a benchmark is one module plus one line here."""

from __future__ import annotations

import importlib

from frontload.errors import ConfigError
from frontload.evaluate.tasks.base import Task

REGISTRY = {
    "gsm8k": "gsm8k:GSM8K",
    "math500": "math500:Math500",
    "math": "mathfiles:MathSolutions",
    "minerva_math": "mathfiles:MinervaMath",
    "olympiadbench": "mathfiles:OlympiadBench",
    "aime24": "competition:AIME24",
    "aime25": "competition:AIME25",
    "amc23": "competition:AMC23",
    "mmlu": "choice:MMLU",
    "mmlu_pro": "choice:MMLUPro",
    "gpqa_diamond": "choice:GPQADiamond",
    "humaneval": "humaneval:HumanEval",
    "mbpp": "mbpp:MBPP",
    "humaneval_plus": "evalplus:HumanEvalPlus",
    "mbpp_plus": "evalplus:MBPPPlus",
    "livecodebench": "livecodebench:LiveCodeBench",
    "arc_c": "general:ARCChallenge",
    "hellaswag": "general:HellaSwag",
    "winogrande": "general:WinoGrande",
    "race": "general:RACE",
    "ifeval": "ifeval:IFEval",
}


def get_task(name: str) -> Task:
    """An instance of the named task; unknown names list the known ones."""
    key = name.strip().lower().replace("-", "_")
    if key not in REGISTRY:
        raise ConfigError(
            f"unknown task {name!r}", hint=f"known tasks: {', '.join(sorted(REGISTRY))}"
        )
    module, cls = REGISTRY[key].split(":")
    return getattr(importlib.import_module(f"frontload.evaluate.tasks.{module}"), cls)()


def parse_tasks(spec: str) -> list[Task]:
    """`gsm8k,math500` -> tasks (duplicates removed, order kept)."""
    names = [part for part in (p.strip() for p in spec.split(",")) if part]
    if not names:
        raise ConfigError(
            "no tasks given", hint=f"e.g. --tasks gsm8k,math500; known: {', '.join(REGISTRY)}"
        )
    return [get_task(name) for name in dict.fromkeys(names)]
