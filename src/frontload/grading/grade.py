"""Math answer equivalence: a numeric/string fast path, then Math-Verify in worker processes.

Math-Verify's own timeout uses `signal.alarm`, which fails off the main thread and cannot stop a
parse stuck in C code. We run it in separate worker processes instead (`mv_worker.py`) and kill a
worker that misses our deadline, so one pathological expression costs `timeout` seconds, never the run.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from fractions import Fraction

WORKER_START_TIMEOUT = 120.0
_TEXT = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox)\s*\{([^{}]*)\}")
_FRAC = re.compile(r"^(-?)\\[dt]?frac\s*(?:\{\s*(-?\d+)\s*\}|(\d))\s*(?:\{\s*(-?\d+)\s*\}|(\d))$")
_LEADING_VAR = re.compile(r"^[a-zA-Z]\s*=\s*")
_NUMBER = re.compile(
    r"^(-?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:/\d+)?)(?:\s*([a-zA-Z][a-zA-Z ]*?)(?:\^\{?[23]\}?)?)?$"
)
# Unit words the fast path may drop. Single letters (m, s, g, k, x, i, e) are never units here:
# `5x`, `2i`, `5e` are expressions, and Math-Verify decides them.
UNIT_WORDS = frozenset(
    [
        "cm",
        "mm",
        "km",
        "nm",
        "kg",
        "mg",
        "ml",
        "kl",
        "mph",
        "kph",
        "kmh",
        "sec",
        "secs",
        "second",
        "seconds",
        "min",
        "mins",
        "minute",
        "minutes",
        "hr",
        "hrs",
        "hour",
        "hours",
        "day",
        "days",
        "week",
        "weeks",
        "month",
        "months",
        "year",
        "years",
        "meter",
        "meters",
        "metre",
        "metres",
        "centimeter",
        "centimeters",
        "millimeter",
        "millimeters",
        "kilometer",
        "kilometers",
        "inch",
        "inches",
        "foot",
        "feet",
        "ft",
        "yard",
        "yards",
        "yd",
        "mile",
        "miles",
        "gram",
        "grams",
        "kilogram",
        "kilograms",
        "pound",
        "pounds",
        "lb",
        "lbs",
        "ounce",
        "ounces",
        "oz",
        "liter",
        "liters",
        "litre",
        "litres",
        "gallon",
        "gallons",
        "cup",
        "cups",
        "dollar",
        "dollars",
        "cent",
        "cents",
        "euro",
        "euros",
        "degree",
        "degrees",
        "deg",
        "unit",
        "units",
        "square",
        "sq",
        "cubic",
        "cu",
        "people",
        "person",
    ]
)
# Math-Verify accepts a decimal rounded to about six places (0.3333333 for 1/3): the fast path
# leaves near misses to it rather than deciding them False.
NEAR = Fraction(1, 1000)


def _strip_decorations(text: str) -> str:
    text = text.strip().strip("$").strip()
    text = _TEXT.sub(r"\1", text)
    for token in (
        "\\$",
        "\\!",
        "\\,",
        "\\;",
        "\\ ",
        "~",
        "^\\circ",
        "^{\\circ}",
        "\\circ",
        "\\left",
        "\\right",
    ):
        text = text.replace(token, " " if token in ("\\ ", "~") else "")
    text = text.replace("$", "").replace("€", "").replace("£", "")
    text = _LEADING_VAR.sub("", text.strip())
    return text.strip().rstrip(".").strip()


def parse_number(text: str) -> tuple[Fraction, bool] | None:
    """(exact value, had a percent sign) for a plain numeric answer, else None.

    Plain means digits with thousands commas, a decimal point, `a/b`, `\\frac{a}{b}`, an optional
    `$`/degree sign and an optional known unit word. Anything else (`5x`, `2i`, `4\\pi`,
    `2 thousand`) is an expression for Math-Verify, never a number with a "unit".
    """
    cleaned = _strip_decorations(text)
    percent = cleaned.endswith("%")
    cleaned = cleaned.removesuffix("\\%").removesuffix("%").strip()
    if not cleaned:
        return None
    frac = _FRAC.match(cleaned)
    if frac:
        sign, num_braced, num_digit, den_braced, den_digit = frac.groups()
        num, den = int(num_braced or num_digit), int(den_braced or den_digit)
        if den == 0:
            return None
        value = Fraction(num, den)
        return (-value if sign else value), percent
    match = _NUMBER.match(cleaned)
    if not match:
        return None
    number, unit = match.groups()
    if unit is not None and not all(word.lower() in UNIT_WORDS for word in unit.split()):
        return None
    if "," in number and not re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d*)?", number):
        return None  # "1,2" is a tuple, not one thousand-separated number
    try:
        return Fraction(number.replace(",", "").rstrip(".")), percent
    except (ValueError, ZeroDivisionError):
        return None


def fast_equal(prediction: str, reference: str) -> bool | None:
    """True/False when it can be decided exactly, else None (Math-Verify decides).

    Decided: identical strings after removing decorations; two plain numbers that are equal, or
    that differ by more than any rounding or percent reading Math-Verify would accept.
    """
    pred, ref = prediction.strip(), reference.strip()
    if not pred:
        return False
    if pred == ref or _strip_decorations(pred) == _strip_decorations(ref):
        return True
    left, right = parse_number(pred), parse_number(ref)
    if left is None or right is None:
        return None
    (a, a_percent), (b, b_percent) = left, right
    if a == b:
        return True
    if a_percent or b_percent:
        return None  # 10% against 0.1 or 10: Math-Verify's reading of percent
    if abs(a - b) <= NEAR * max(1, abs(b)):
        return None  # a rounded decimal: Math-Verify's tolerance
    return False


class VerifyWorker:
    """One Math-Verify process answering (prediction, reference) lines; killed on a missed deadline."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.lock = threading.Lock()

    def _start(self) -> None:
        self._lines = queue.Queue()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "frontload.grading.mv_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        reader = threading.Thread(
            target=self._read, args=(self._process.stdout, self._lines), daemon=True
        )
        reader.start()
        if self._lines.get(timeout=WORKER_START_TIMEOUT) != "ready":
            self.close()
            raise RuntimeError("the Math-Verify worker did not start")

    @staticmethod
    def _read(stream, lines: queue.Queue) -> None:
        for line in stream:
            lines.put(line.strip())
        lines.put(None)

    def verify(self, prediction: str, reference: str, timeout: float) -> bool | None:
        """True/False from Math-Verify; None when it missed the deadline (the worker is killed)."""
        if self._process is None or self._process.poll() is not None:
            self._start()
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps([prediction, reference]) + "\n")
            self._process.stdin.flush()
            line = self._lines.get(timeout=timeout)
        except (queue.Empty, BrokenPipeError, OSError):
            self.close()
            return None
        if line is None:
            self.close()
            return None
        return line == "1"

    def close(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            for stream in (self._process.stdin, self._process.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            self._process = None


_pool: list[VerifyWorker] = []
_pool_lock = threading.Lock()


def _workers(count: int) -> list[VerifyWorker]:
    """The first `count` workers of a process-wide pool, kept warm between calls (startup ~2 s)."""
    with _pool_lock:
        if not _pool:
            atexit.register(_close_pool)
        while len(_pool) < count:
            _pool.append(VerifyWorker())
        return _pool[:count]


def _close_pool() -> None:
    for worker in _pool:
        worker.close()


def math_equal(prediction: str | None, reference: str, timeout: float = 5.0) -> bool:
    """Is `prediction` the same mathematical answer as `reference`? Fast path, then Math-Verify."""
    if prediction is None:
        return False
    decided = fast_equal(prediction, reference)
    if decided is not None:
        return decided
    worker = _workers(1)[0]
    with worker.lock:
        return bool(worker.verify(prediction, reference, timeout))


def grade_math_batch(
    pairs: Sequence[tuple[str | None, str]], workers: int = 2, timeout: float = 5.0
) -> list[bool]:
    """Grade (prediction, reference) pairs with `workers` Math-Verify processes in parallel."""
    results: list[bool] = [False] * len(pairs)
    pending: queue.Queue[int] = queue.Queue()
    for index, (prediction, reference) in enumerate(pairs):
        if prediction is None:
            continue
        decided = fast_equal(prediction, reference)
        if decided is None:
            pending.put(index)
        else:
            results[index] = decided
    if pending.empty():
        return results
    pool = _workers(max(1, min(workers, pending.qsize())))

    def drain(worker: VerifyWorker) -> None:
        with worker.lock:
            while True:
                try:
                    index = pending.get_nowait()
                except queue.Empty:
                    return
                prediction, reference = pairs[index]
                results[index] = bool(worker.verify(prediction or "", reference, timeout))

    threads = [threading.Thread(target=drain, args=(worker,), daemon=True) for worker in pool]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
