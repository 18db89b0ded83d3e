"""How the explanations write names in LaTeX: nodes ``n_{9}``, variables ``out_{n_{9}}``,
parameters ``w_{16}``, partial derivatives."""

from __future__ import annotations


def tex_node(node: str) -> str:
    """``n9`` -> ``n_{9}``."""
    return f"n_{{{node[1:]}}}"


def tex_var(var: str, node: str) -> str:
    """``out``, ``n9`` -> ``out_{n_{9}}``."""
    return f"{var}_{{{tex_node(node)}}}"


def tex_param(name: str) -> str:
    """``w16`` -> ``w_{16}``."""
    return f"{name[0]}_{{{name[1:]}}}"


def frac(num: str, den: str) -> str:
    """``\\frac{\\partial num}{\\partial den}``."""
    return rf"\frac{{\partial {num}}}{{\partial {den}}}"
