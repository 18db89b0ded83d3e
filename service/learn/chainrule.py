"""An explanation of one derivative (:func:`service.learn.explained.explain`) in Markdown with
LaTeX.

Each path is written three times, as the blog does: the chain of partial derivatives, their
formulas, and their values multiplied out. Numbers are printed with ``repr``, the shortest decimal
that reads back as the same float64, so every figure is exact and can be checked by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.learn.explained import MAX_WRITTEN_TERMS, ChainPath, DeltaForm, Explanation, Factor
from service.learn.notation import tex_param

# Above this many paths the sum is written as a sum sign, not term by term.
MAX_WRITTEN_PATHS = 8


def num(value: float) -> str:
    """``repr`` of the float: ``0.31480674784787793``."""
    return repr(float(value))


def term(value: float) -> str:
    """A number as a factor or addend: in parentheses when negative, ``0.7 \\cdot (-0.5)``."""
    text = num(value)
    return f"({text})" if text.startswith("-") else text


def d_loss(parameter: str) -> str:
    """``\\frac{\\partial E}{\\partial w_{16}}``."""
    return rf"\frac{{\partial E}}{{\partial {tex_param(parameter)}}}"


def display(latex: str) -> str:
    """A display equation on its own paragraph."""
    return f"$${latex}$$"


def gradient_lines(explanation: Explanation, *, tables: bool = False) -> list[str]:
    """The Markdown paragraphs deriving ``dE/dp``: each path's chain, formulas and values, and
    their sum (or the delta form); with ``tables`` also a table of each path's factors."""
    e = explanation
    lines: list[str] = []
    if e.form == "delta" and e.delta is not None:
        lines += _delta_lines(e, e.delta)
    else:
        single = len(e.paths) == 1
        for k, path in enumerate(e.paths, start=1):
            if not single:
                lines.append(f"Path {k}: {' → '.join(path.nodes)}")
            lines += _path_lines(e.parameter, path, single)
            if tables:
                lines.append(_factor_table(path.factors))
        if not single:
            lines.append(display(f"{d_loss(e.parameter)} = {_sum_of(e.paths)} = {num(e.sum)}"))
    if e.sum != e.gradient:
        lines.append(
            f"Backpropagation, which adds the same terms in another order, gives "
            f"{num(e.gradient)}: the two differ by rounding only."
        )
    return lines


def explanation_markdown(explanation: Explanation, model: str, version: int) -> str:
    """The Markdown document answering ``POST /v1/models/{name}/explain`` with
    ``Accept: text/markdown``."""
    e = explanation
    if e.kind == "weight":
        what = f"the weight {e.parameter} = {num(e.value)} from {e.source} to {e.node}"
    else:
        what = f"the bias {e.parameter} = {num(e.value)} of {e.node}"
    count = f"{e.path_count} path{'s' if e.path_count != 1 else ''}"
    lines = [
        f"# ∂E/∂{e.parameter} on `{model}`, version {version}",
        f"How the error E = {num(e.loss)} of this sample changes with {what}. By the chain rule "
        f"it is the sum, over every path from {e.node} to an output node ({count}), of the "
        "product of the local derivatives along the path.",
    ]
    lines += gradient_lines(e, tables=True)
    lines.append(f"**∂E/∂{e.parameter} = {num(e.gradient)}**")
    lines += [f"> {note}" for note in e.notes]
    return "\n\n".join(lines) + "\n"


def _path_lines(parameter: str, path: ChainPath, single: bool) -> list[str]:
    head = f"{d_loss(parameter)} = " if single else ""
    symbols = r" \cdot ".join(f.symbol_latex for f in path.factors)
    formulas = r" \cdot ".join(_wrapped(f) for f in path.factors)
    values = r" \cdot ".join(term(f.value) for f in path.factors)
    return [
        display(f"{head}{symbols}"),
        display(f"= {formulas}"),
        display(f"= {values} = {num(path.product)}"),
    ]


def _wrapped(factor: Factor) -> str:
    """A formula as a factor: in parentheses unless it is one symbol or number."""
    plain = factor.formula_latex
    simple = all(c not in plain for c in " +-") or plain.startswith(r"\frac")
    return plain if simple else rf"\left({plain}\right)"


def _sum_of(paths: Sequence[ChainPath]) -> str:
    if len(paths) > MAX_WRITTEN_PATHS:
        return rf"\sum_{{p=1}}^{{{len(paths)}}} (\text{{product along path }} p)"
    return " + ".join(term(p.product) for p in paths)


def _delta_lines(e: Explanation, d: DeltaForm) -> list[str]:
    delta, ending = d.delta, d.input
    lines = [
        display(f"{d_loss(e.parameter)} = {delta.symbol_latex} \\cdot {ending.symbol_latex}"),
        f"where ${delta.symbol_latex}$ is ∂E/∂net of {d.node}, by the recursion "
        f"${d.recursion_latex}$.",
        display(f"{delta.symbol_latex} = {delta.formula_latex}"),
    ]
    if d.derivative is not None and len(d.terms) <= MAX_WRITTEN_TERMS:
        total = " + ".join(f"{term(t.weight_value)} \\cdot {term(t.delta)}" for t in d.terms)
        lines.append(
            display(
                f"= {term(d.derivative.value)} \\cdot \\left({total}\\right) = {num(delta.value)}"
            )
        )
    else:
        lines.append(display(f"= {num(delta.value)}"))
    lines.append(
        display(
            f"{d_loss(e.parameter)} = {delta.symbol_latex} \\cdot {_wrapped(ending)} = "
            f"{term(delta.value)} \\cdot {term(ending.value)} = {num(d.product)}"
        )
    )
    return lines


def _factor_table(factors: Sequence[Factor]) -> str:
    rows = ["| factor | formula | value |", "| --- | --- | --- |"]
    rows += [f"| `{f.symbol}` | `{f.formula}` | {num(f.value)} |" for f in factors]
    return "\n".join(rows)
