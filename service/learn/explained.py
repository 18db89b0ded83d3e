"""An explanation of one derivative in words and symbols: every factor of
:func:`service.core.explain` with its symbol (``dout_n9/dnet_n9``) and formula
(``sigmoid(net_n9) * (1 - sigmoid(net_n9))``), both also in LaTeX, and the notes that say why
the explanation takes the shape it does. The values are the core's, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from numpy.typing import ArrayLike

from service.core import Network, Params, node_names
from service.core import explain as values
from service.core import explain_each as each_values
from service.core.explain import MAX_PATHS, DeltaTerm, FormChoice, Values, fused_output
from service.core.explain import ChainPath as PathOf
from service.core.explain import DeltaForm as DeltaValues
from service.core.explain import Explanation as ExplanationOf
from service.core.explain import Factor as FactorValue
from service.learn import activations
from service.learn.notation import frac, tex_node, tex_param, tex_var

# The delta form writes the recursion's terms out in full up to this many, then summarises.
MAX_WRITTEN_TERMS = 8


@dataclass(frozen=True)
class Factor:
    """One local derivative: ``symbol`` (``dout_n9/dnet_n9``), its ``formula``
    (``sigmoid(net_n9) * (1 - sigmoid(net_n9))``), both also in LaTeX, and its ``value``."""

    symbol: str
    formula: str
    value: float
    symbol_latex: str
    formula_latex: str


#: A path with its factors in words.
ChainPath = PathOf[Factor]


@dataclass(frozen=True)
class DeltaForm:
    """``dE/dp = delta_j * dnet_j/dp``: ``delta`` is ``dE/dnet_j`` (backpropagated), ``input``
    is ``dnet_j/dp`` (``out_i``, ``x_i`` or 1); for a hidden node ``derivative`` is
    ``f'(net_j)`` and ``terms`` the ``w_jk delta_k`` of the next layer."""

    node: str
    delta: Factor
    input: Factor
    derivative: Factor | None
    terms: tuple[DeltaTerm, ...]
    product: float
    recursion: str
    recursion_latex: str


@dataclass(frozen=True)
class Explanation(ExplanationOf[Factor, DeltaForm]):
    """:class:`service.core.explain.Explanation` in words: its paths' factors and its delta
    form written out, and ``notes`` on the fused output factor and the form chosen."""

    notes: tuple[str, ...]


def explain(
    network: Network,
    params: Params,
    X: ArrayLike,
    T: ArrayLike,
    parameter: str,
    *,
    form: FormChoice = "auto",
    max_paths: int = MAX_PATHS,
) -> Explanation:
    """:func:`service.core.explain` in words (what it raises, too)."""
    found = values(network, params, X, T, parameter, form=form, max_paths=max_paths)
    return Words(network).explanation(found)


def explain_each(
    network: Network,
    params: Params,
    X: ArrayLike,
    T: ArrayLike,
    *,
    form: FormChoice = "auto",
    max_paths: int = MAX_PATHS,
) -> tuple[Explanation, ...]:
    """:func:`service.core.explain_each` in words."""
    words = Words(network)
    found = each_values(network, params, X, T, form=form, max_paths=max_paths)
    return tuple(words.explanation(e) for e in found)


class Words:
    """The symbols, formulas and notes of the explanations of one network."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.inputs = node_names(network)[0]
        self.K = network.layers[-1].units

    def explanation(self, e: Values) -> Explanation:
        notes: list[str] = []
        if fused_output(self.network):
            notes.append(self._fused_note())
        if e.form == "delta" and e.requested == "auto":
            node, p = e.node, e.parameter
            notes.append(
                f"{e.path_count} paths lead from {node} to the outputs, more than the "
                f"{e.max_paths} listed at most, so the gradient is given in the delta form: "
                f"dE/d{p} = delta_{node} * dnet_{node}/d{p}, with "
                "delta_j = f'(net_j) * sum_k w_jk * delta_k computed layer by layer from the "
                "output (backpropagation): the same sum over paths, factored."
            )
        worded: dict[str, Any] = {f.name: getattr(e, f.name) for f in fields(e)}
        worded["paths"] = tuple(
            ChainPath(p.nodes, tuple(self.factor(f) for f in p.factors), p.product) for p in e.paths
        )
        worded["delta"] = None if e.delta is None else self._delta_form(e.delta)
        return Explanation(**worded, notes=tuple(notes))

    def factor(self, f: FactorValue) -> Factor:
        """``f`` with its symbol and formula."""
        node = f.node
        match f.kind:
            case "loss":
                return self._loss_derivative(node, f.value)
            case "activation":
                layer = self.network.layers[f.layer]
                formula, latex = activations.derivative(layer, f"net_{node}", tex_var("net", node))
                symbol = f"dout_{node}/dnet_{node}"
                return Factor(
                    symbol,
                    formula,
                    f.value,
                    frac(tex_var("out", node), tex_var("net", node)),
                    latex,
                )
            case "fused":
                return self._fused(node, f.value)
            case "weight":
                assert f.source is not None and f.name is not None
                return Factor(
                    f"dnet_{node}/dout_{f.source}",
                    f.name,
                    f.value,
                    frac(tex_var("net", node), tex_var("out", f.source)),
                    tex_param(f.name),
                )
            case "parameter":
                assert f.name is not None
                symbol = f"dnet_{node}/d{f.name}"
                symbol_latex = frac(tex_var("net", node), tex_param(f.name))
                if f.source is None:
                    return Factor(symbol, "1", f.value, symbol_latex, "1")
                if f.layer == 0:
                    x = self.inputs.index(f.source) + 1
                    return Factor(symbol, f"x{x}", f.value, symbol_latex, f"x_{{{x}}}")
                return Factor(
                    symbol, f"out_{f.source}", f.value, symbol_latex, tex_var("out", f.source)
                )
        raise AssertionError(f.kind)

    def _loss_derivative(self, node: str, value: float) -> Factor:
        """``dE/dout_k`` of the squared-error losses (one sample)."""
        K = self.K
        symbol, symbol_latex = f"dE/dout_{node}", frac("E", tex_var("out", node))
        diff = f"out_{node} - {_target(node, K)}"
        diff_latex = f"{tex_var('out', node)} - {_tex_target(node, K)}"
        if self.network.loss == "mean_squared_error":
            if K == 1:
                return Factor(
                    symbol, f"2 * ({diff})", value, symbol_latex, rf"2 \left({diff_latex}\right)"
                )
            return Factor(
                symbol,
                f"2 * ({diff}) / {K}",
                value,
                symbol_latex,
                rf"\frac{{2 ({diff_latex})}}{{{K}}}",
            )
        return Factor(symbol, diff, value, symbol_latex, diff_latex)

    def _fused(self, node: str, value: float) -> Factor:
        """``dE/dnet_k`` of an output whose loss and activation are differentiated together."""
        K, loss = self.K, self.network.loss
        symbol, symbol_latex = f"dE/dnet_{node}", frac("E", tex_var("net", node))
        o, y = f"out_{node}", _target(node, K)
        o_tex, y_tex = tex_var("out", node), _tex_target(node, K)
        if loss == "binary_cross_entropy":
            formula, latex = f"{o} - {y}", f"{o_tex} - {y_tex}"
            if K > 1:
                formula, latex = f"({formula}) / {K}", rf"\frac{{{latex}}}{{{K}}}"
        elif loss == "cross_entropy":
            formula, latex = f"{o} - {y}", f"{o_tex} - {y_tex}"
        else:
            g = self._loss_derivative(node, 0.0).formula
            formula = f"{o} * (g_{node} - sum_m g_m * out_m) with g_m = dE/dout_m; g_{node} = {g}"
            latex = (
                rf"{o_tex} \left(g_{{{tex_node(node)}}} - \sum_m g_m \, out_m\right), \;"
                rf" g_m = \frac{{\partial E}}{{\partial out_m}}"
            )
        return Factor(symbol, formula, value, symbol_latex, latex)

    def _fused_note(self) -> str:
        if self.network.loss == "binary_cross_entropy":
            return (
                "The loss and the sigmoid at the output are differentiated together: "
                "dE/dnet_k = (out_k - target_k) / K is dE/dout_k * dout_k/dnet_k simplified; "
                "the two factors apart would divide by out_k * (1 - out_k), which is 0 once the "
                "sigmoid saturates."
            )
        if self.network.loss == "cross_entropy":
            return (
                "Softmax and cross_entropy are differentiated together: every out_k depends on "
                "every net_m, and dE/dnet_k = sum_m dE/dout_m * dout_m/dnet_k simplifies to "
                "out_k - target_k (the targets sum to 1), one fused factor at the output."
            )
        return (
            "Every softmax output depends on every net input of its layer, so the output "
            "factor is the fused dE/dnet_k = sum_m dE/dout_m * dout_m/dnet_k = out_k * "
            "(g_k - sum_m g_m * out_m) with g = dE/dout; the paths end at net_k."
        )

    def _delta_form(self, d: DeltaValues) -> DeltaForm:
        node = d.node
        symbol, symbol_latex = f"delta_{node}", rf"\delta_{{{tex_node(node)}}}"
        ending = self.factor(d.input)
        if d.derivative is None:
            factors = [self.factor(f) for f in d.output]
            delta = Factor(
                symbol,
                " * ".join(f"({f.formula})" for f in factors),
                d.delta,
                symbol_latex,
                r" \cdot ".join(rf"\left({f.formula_latex}\right)" for f in factors),
            )
            return DeltaForm(
                node,
                delta,
                ending,
                None,
                (),
                d.product,
                "at the output, delta_k = dE/dnet_k",
                r"\delta_k = \frac{\partial E}{\partial net_k}",
            )
        derivative = self.factor(d.derivative)
        terms = d.terms
        if len(terms) <= MAX_WRITTEN_TERMS:
            total = " + ".join(f"{t.weight} * delta_{t.node}" for t in terms)
            total_latex = " + ".join(
                rf"{tex_param(t.weight)} \, \delta_{{{tex_node(t.node)}}}" for t in terms
            )
        else:
            first, end = terms[0].node, terms[-1].node
            total = f"sum over k in {first}..{end} of w_({node},k) * delta_k"
            total_latex = rf"\sum_{{k={tex_node(first)}}}^{{{tex_node(end)}}} w_{{jk}} \delta_k"
        delta = Factor(
            symbol,
            f"({derivative.formula}) * ({total})",
            d.delta,
            symbol_latex,
            rf"\left({derivative.formula_latex}\right) \cdot \left({total_latex}\right)",
        )
        return DeltaForm(
            node,
            delta,
            ending,
            derivative,
            terms,
            d.product,
            "delta_j = f'(net_j) * sum_k w_jk * delta_k, from delta_k = dE/dnet_k at the output",
            r"\delta_j = f'(net_j) \sum_k w_{jk} \, \delta_k",
        )


def _target(node: str, K: int) -> str:
    return "target" if K == 1 else f"target_{node}"


def _tex_target(node: str, K: int) -> str:
    return "y" if K == 1 else f"y_{{{tex_node(node)}}}"
