"""Math-Verify worker process: reads `[prediction, reference]` JSON lines, writes 1 or 0 per line.

Runs as `python -m frontload.grading.mv_worker`; the parent (`grade.VerifyWorker`) enforces the
deadline by killing this process, so Math-Verify's own signal timeouts are switched off here.
"""

from __future__ import annotations

import json
import logging
import sys


def _parse(text: str) -> list:
    from math_verify import parse

    for candidate in (f"\\boxed{{{text}}}", f"${text}$", text):
        parsed = parse(candidate, parsing_timeout=None)
        if parsed:
            return parsed
    return []


def equivalent(prediction: str, reference: str) -> bool:
    """Math-Verify equivalence of two bare answers (no surrounding text)."""
    from math_verify import verify

    gold, pred = _parse(reference), _parse(prediction)
    if not gold or not pred:
        return False
    return bool(verify(gold, pred, timeout_seconds=None))


MEMORY_LIMIT = 4 * 1024**3  # a runaway sympy expression fails here instead of swapping the machine


def main() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    logging.disable(logging.WARNING)
    import math_verify  # noqa: F401  (import before "ready" so the first deadline is fair)

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        try:
            prediction, reference = json.loads(line)
            answer = equivalent(str(prediction), str(reference))
        except Exception:
            answer = False
        sys.stdout.write("1\n" if answer else "0\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
