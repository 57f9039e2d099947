"""`extra_terms` of an allocate config: a small expression language read as data, never run as code.

Configs are shared between people, so a term is parsed with `ast` and walked against a whitelist:
numbers, `+ - * / **`, unary minus, `x['corpus:phase']` lookups and calls of a fixed set of cvxpy
atoms (`cp.log(...)`). Anything else -- attribute chains, names, strings outside `x[...]`, keyword
arguments, comprehensions -- is refused with the offending token named. The walk builds the cvxpy
expression itself; there is no `eval`.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from frontload.errors import ConfigError

# cvxpy atoms a concave objective term can reasonably use; each takes positional arguments only.
ATOMS: frozenset[str] = frozenset(
    {
        "log",
        "log1p",
        "exp",
        "sqrt",
        "square",
        "power",
        "entr",
        "inv_pos",
        "abs",
        "pos",
        "neg",
        "minimum",
        "maximum",
        "min",
        "max",
        "sum",
        "geo_mean",
        "harmonic_mean",
        "huber",
        "logistic",
        "hstack",
        "multiply",
    }
)
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_MAX_EXPONENT = 100
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_HINT = (
    "use numbers, + - * / **, x['corpus:phase'] and cvxpy atoms such as cp.log(...); allowed "
    "atoms: " + ", ".join(sorted(ATOMS))
)


def _refuse(text: str, node: ast.AST, what: str) -> ConfigError:
    token = ast.get_source_segment(text, node) or type(node).__name__
    return ConfigError(f"extra_terms: '{text}': {what} `{token}` is not allowed", _HINT)


def parse_term(text: str) -> ast.Expression:
    """Parse and check one term; raises ConfigError naming the first token outside the whitelist."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise ConfigError(
            f"extra_terms: '{text}' is not an expression: {error.msg}", _HINT
        ) from None
    _check(text, tree.body)
    return tree


def _check(text: str, node: ast.AST) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise _refuse(text, node, "constant")
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise _refuse(text, node, "operator in")
        if isinstance(node.op, ast.Pow) and not _small_exponent(node.right):
            raise _refuse(text, node.right, "exponent (a number within +-100 only)")
        _check(text, node.left)
        _check(text, node.right)
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise _refuse(text, node, "operator in")
        _check(text, node.operand)
    elif isinstance(node, ast.Subscript):
        _variable_name(text, node)
    elif isinstance(node, ast.Call):
        _atom_name(text, node)
        if node.keywords:
            raise _refuse(text, node.keywords[0], "keyword argument")
        for arg in node.args:
            _check(text, arg)
    elif isinstance(node, ast.List | ast.Tuple):
        for element in node.elts:
            _check(text, element)
    else:
        raise _refuse(text, node, "expression")


def _small_exponent(node: ast.AST) -> bool:
    """A literal exponent of modest size: `9**9**9**9` would hang the loader, not the solver."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
        and abs(node.value) <= _MAX_EXPONENT
    )


def _variable_name(text: str, node: ast.Subscript) -> str:
    if not (isinstance(node.value, ast.Name) and node.value.id == "x"):
        raise _refuse(text, node.value, "subscript of")
    key = node.slice
    if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
        raise _refuse(text, key, "index")
    return key.value


def _atom_name(text: str, node: ast.Call) -> str:
    func = node.func
    if not (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "cp"
        and func.attr in ATOMS
    ):
        raise _refuse(text, func, "call of")
    return func.attr


def build_term(text: str, variables: Mapping[str, Any]):
    """The cvxpy expression of one term over `variables` (name -> cvxpy variable)."""
    import cvxpy as cp

    tree = parse_term(text)

    def walk(node: ast.AST):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](walk(node.operand))
        if isinstance(node, ast.Subscript):
            name = _variable_name(text, node)
            if name not in variables:
                known = ", ".join(sorted(n for n in variables if ":" in n))
                raise ConfigError(
                    f"extra_terms: '{text}' names unknown variable '{name}'", f"variables: {known}"
                )
            return variables[name]
        if isinstance(node, ast.Call):
            return getattr(cp, _atom_name(text, node))(*(walk(a) for a in node.args))
        if isinstance(node, ast.List | ast.Tuple):
            return [walk(e) for e in node.elts]
        raise _refuse(text, node, "expression")  # unreachable after parse_term; kept for safety

    try:
        return walk(tree.body)
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(f"extra_terms: cannot evaluate '{text}': {error}") from None
