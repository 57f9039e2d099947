"""Comparing what a program produced with what was expected, on the trusted side.

Everything here takes the candidate's output as hostile: a reply is parsed only within bounds
(`boot.decode_reply`), and no comparison raises (an overflowing float, an unorderable value or a
recursion limit is a wrong output, never an evaluator error).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from frontload.grading.sandbox.boot import ReplyRejected, decode, decode_reply

RTOL = 1e-7  # numpy.allclose's default, which evalplus uses


@dataclass(frozen=True)
class Raised:
    """An exception raised by the candidate for one input (compared as never equal)."""

    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def outputs_match(actual: str, expected: str) -> bool:
    """LiveCodeBench-style comparison: lines compared after stripping trailing whitespace."""
    left = [line.rstrip() for line in actual.strip().splitlines()]
    right = [line.rstrip() for line in expected.strip().splitlines()]
    return left == right


def reply_value(line: bytes, max_bytes: int, max_items: int) -> Any:
    """A candidate's reply line as a value: the decoded result, a `Raised` for the exception it
    reported, or a `Raised("InvalidReply", why)` when the line is malformed or over bounds."""
    try:
        reply = decode_reply(line, max_bytes, max_items, json.loads)
        if "ok" in reply:
            return decode(reply["ok"])
        kind, message = reply["err"]
        return Raised(str(kind)[:100], str(message)[:300])
    except Exception as error:  # noqa: BLE001 - any malformed reply is a wrong output
        return Raised("InvalidReply", f"the program's reply was refused ({_why(error)})")


def _why(error: Exception) -> str:
    if isinstance(error, ReplyRejected):
        return str(error)
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return "not a valid reply"


def same_json(actual: str, expected: str, max_items: int = 1_000_000) -> bool:
    """Whether a program's printed JSON equals the expected JSON (LiveCodeBench's functional
    tests), parsing the program's side within bounds; text that is not JSON, or JSON too large or
    too deep to parse, is compared with whitespace removed. Never raises."""

    def normal(text: str) -> str:
        try:
            data = text.encode("utf-8", "replace")
            return json.dumps(decode_reply(data, len(data), max_items, json.loads))
        except Exception:  # noqa: BLE001 - not JSON (or over bounds): compared as text
            return "".join(text.split())

    return normal(actual) == normal(expected)


def _is_floats(value: Any) -> bool:
    """evalplus's `is_floats`: a float, or a non-empty list or tuple of floats."""
    if isinstance(value, float):
        return True
    if isinstance(value, list | tuple) and value:
        return all(isinstance(item, float) for item in value)
    return False


def _close(actual: Any, expected: float, atol: float) -> bool:
    """One element of numpy.allclose(actual, expected, rtol=1e-7, atol): a real number only."""
    if type(actual) not in (int, float, bool):
        return False
    try:
        value = float(actual)
    except OverflowError:
        return False
    if math.isinf(value) or math.isinf(expected):
        return value == expected
    return abs(value - expected) <= atol + RTOL * abs(expected)


def outputs_equal(output: Any, expected: Any, atol: float = 0.0) -> bool:
    """evalplus's check: equal (`==`, as evalplus), else, for float answers, the same type, the
    same length and every element within `atol` + 1e-7 relative (atol 1e-6 when the task gives
    none). A string where a float is expected fails, as it does in evalplus. Never raises."""
    if isinstance(output, Raised) or isinstance(expected, Raised):
        return False
    try:
        if output == expected:
            return True
        if not _is_floats(expected):
            return False
        tolerance = atol or 1e-6
        if type(output) is not type(expected):
            return False
        if isinstance(expected, float):
            return _close(output, expected, tolerance)
        return len(output) == len(expected) and all(
            _close(a, b, tolerance) for a, b in zip(output, expected, strict=True)
        )
    except Exception:  # noqa: BLE001 - a value that cannot be compared is not equal
        return False
