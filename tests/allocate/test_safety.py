"""A shared allocate.yaml is data: hostile `extra_terms` are refused and their payload never runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.fl_cli import run_fl

from frontload.allocate.terms import build_term, parse_term
from frontload.errors import ConfigError

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "tiny" / "allocate.yaml"


def _hostile(marker: Path) -> list[str]:
    return [
        # the escape the issue reported: ctypes through numpy, then libc system()
        f"np.ctypeslib.ctypes.CDLL(None).system(b'touch {marker}') + cp.log(1 + x['dshq:sft'])",
        f"cp.log(1 + x['dshq:sft']) + __import__('os').system('touch {marker}')",
        "().__class__.__base__.__subclasses__()",
        "cp.log.__globals__",
        "[c for c in ()]",
        "cp.log(x['dshq:sft'], **{})",
        "lambda: 0",
    ]


def test_hostile_allocate_config_is_refused_and_never_runs(
    corpora_workspace, tmp_path, capsys, monkeypatch
):
    marker = tmp_path / "pwned"
    for term in _hostile(marker):
        data = yaml.safe_load(RECIPE.read_text())
        data["extra_terms"] = [term]
        config = tmp_path / "allocate.yaml"
        config.write_text(yaml.safe_dump(data))
        code, output = run_fl(
            ["allocate", "solve", str(config), "-w", str(corpora_workspace.root)],
            capsys,
            monkeypatch,
        )
        assert code == 1, (term, output)
        assert "extra_terms" in output and "not allowed" in output, output
        assert "Traceback" not in output and "Value error" not in output, output
        assert not marker.exists(), f"payload of {term!r} ran"


def test_refusal_names_the_offending_token():
    with pytest.raises(ConfigError, match=r"call of `np.ctypeslib.ctypes.CDLL\(None\).system`"):
        parse_term("np.ctypeslib.ctypes.CDLL(None).system(b'x') + cp.log(1 + x['a:sft'])")
    with pytest.raises(ConfigError, match=r"call of `cp.__class__`"):
        parse_term("cp.__class__(1)")
    with pytest.raises(ConfigError, match=r"`y`"):
        parse_term("y['a:sft']")
    with pytest.raises(ConfigError, match=r"constant `'a'`"):
        parse_term("'a' * 3")


def test_whitelisted_terms_still_build():
    import cvxpy as cp

    v = {"a:sft": cp.Variable(), "b:sft": cp.Variable()}
    expr = build_term("2 * cp.log(1 + x['a:sft']) - 0.5 * cp.square(x['b:sft'] / 3) ** 1", v)
    assert expr.is_concave()
    assert build_term("cp.minimum(x['a:sft'], x['b:sft'])", v).is_concave()
    with pytest.raises(ConfigError, match="unknown variable 'c:sft'"):
        build_term("cp.log(x['c:sft'])", v)


def test_huge_power_is_refused_before_it_hangs():
    """`9**9**9**9` would hang the config loader computing a number with billions of digits."""
    with pytest.raises(ConfigError, match=r"exponent .* `9\*\*9\*\*9`"):
        parse_term("9**9**9**9 + cp.log(1 + x['a:sft'])")
    with pytest.raises(ConfigError, match=r"exponent"):
        parse_term("x['a:sft'] ** x['b:sft']")
    parse_term("x['a:sft'] ** 0.5 + 2 ** -3")  # small literal exponents stay allowed
