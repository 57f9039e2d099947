"""Base pydantic model for every recipe/plan file and a YAML loader whose errors name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from frontload.errors import ConfigError, InputError

ModelT = TypeVar("ModelT", bound=BaseModel)


class StrictModel(BaseModel):
    """Recipe models reject unknown keys so that a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def format_validation_error(error: ValidationError, source: str) -> str:
    """One line per problem: `source: key.path: message`."""
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (typo?)"
        elif item["type"] == "value_error":  # our validators' own words, without pydantic's tag
            message = message.removeprefix("Value error, ")
        lines.append(f"{source}: {key}: {message}")
    return "\n".join(lines)


# libyaml's safe loader when PyYAML was built with it (same documents, ~10x faster: a loop reads
# its plans and recipes hundreds of times), else the pure-Python one
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing file or a syntax error names the file and line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: file not found",
            "check the path (a recipe named inside a pipeline file is relative to that file)",
        )
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise InputError(
            f"{path}{where}: invalid YAML: {getattr(error, 'problem', error)}"
        ) from error
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error.reason})") from error


def validate(model: type[ModelT], data: Any, source: str) -> ModelT:
    """Validate plain data against a model, turning pydantic's errors into a ConfigError."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, source)) from error


def load_yaml(path: str | Path, model: type[ModelT]) -> ModelT:
    """Load and validate a YAML file as `model`; relative paths inside stay as written."""
    return validate(model, read_yaml(path), str(path))


def dump_yaml(data: BaseModel | dict, path: str | Path) -> None:
    """Write YAML atomically (write, then rename) so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(payload, sort_keys=False, allow_unicode=True), encoding="utf-8")
    tmp.replace(path)
