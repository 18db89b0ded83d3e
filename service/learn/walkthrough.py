"""The seed blog's worked example, for any small network: a Markdown document that follows the
blog's sequence with this network's numbers.

1. the initial values: inputs, target, every weight and bias by name;
2. the forward pass: each node's net and out, formula and numbers filled in;
3. the total error;
4. backpropagation: every delta, then every gradient by the chain rule (from the output layer
   back, as the blog does), each path's factors with their values;
5. the update of every parameter, ``w_new = w_old - lr * dE/dw``;
6. the forward pass and the error after the step.

Every number is printed with ``repr``: the exact float64 the service computed.
"""

from __future__ import annotations

from collections.abc import Sequence

from numpy.typing import ArrayLike

from service.core import (
    SGD,
    GradientResult,
    Layer,
    Location,
    Network,
    Params,
    gradient,
    locations,
    node_names,
    step,
)
from service.core.parameters import check_batch, check_targets
from service.learn import activations
from service.learn.chainrule import d_loss, display, gradient_lines, num, term
from service.learn.explained import Explanation, explain_each
from service.learn.limits import WALKTHROUGH_MAX_PATHS, check_walkable
from service.learn.notation import tex_param, tex_var

LOSS_TEX = {
    "half_squared_error": r"E = \frac{1}{2} \sum_k (y_k - out_k)^2",
    "mean_squared_error": r"E = \frac{1}{K} \sum_k (y_k - out_k)^2",
    "binary_cross_entropy": r"E = -\frac{1}{K} \sum_k \left(y_k \log out_k + (1 - y_k) "
    r"\log(1 - out_k)\right)",
    "cross_entropy": r"E = -\sum_k y_k \log out_k",
}


def walkthrough(
    network: Network,
    params: Params,
    X: ArrayLike,
    T: ArrayLike,
    learning_rate: float,
    *,
    model: str,
    version: int,
) -> str:
    """The Markdown walkthrough of one forward pass, backpropagation and one plain SGD step
    (``p_new = p - learning_rate * dE/dp``) of ``network`` on the one sample ``(X, T)``.

    Raises :class:`TooLarge` for a network too large to walk through, and what
    :func:`service.core.explain` and :func:`service.core.step` raise.
    """
    check_walkable(network)
    explanations = explain_each(network, params, X, T, max_paths=WALKTHROUGH_MAX_PATHS)
    deltas = {
        e.node: e for e in explain_each(network, params, X, T, form="delta") if e.kind == "bias"
    }
    before = gradient(network, params, X, T)
    new_params, _ = step(SGD(learning_rate=learning_rate), params, before.gradients)
    after = gradient(network, new_params, X, T)
    w = _Writer(network, X, T)
    w.title(model, version, learning_rate)
    w.initial_values(params, learning_rate)
    w.forward(
        params,
        before,
        "2. Forward pass",
        "Each node adds up the outputs of the layer before, each times the weight of its edge, "
        "and its bias: that is its net input, net. Its activation function turns net into its "
        "output, out, which the next layer takes in.",
    )
    w.error(before, "3. Total error", "E")
    w.backpropagation(explanations, deltas)
    w.updates(explanations, new_params, learning_rate)
    w.forward(
        new_params,
        after,
        "6. After the step",
        "The same forward pass with the new parameters:",
    )
    w.error(after, None, r"E_{\text{after}}")
    w.conclusion(before.loss, after.loss)
    return w.text()


class _Writer:
    """Paragraphs of the document, in order."""

    def __init__(self, network: Network, X: ArrayLike, T: ArrayLike) -> None:
        self.network = network
        self.nodes = node_names(network)
        # Both were checked by explain_each already; this brings them in as floats.
        self.x: list[float] = check_batch(network, X)[0].tolist()
        self.t: list[float] = check_targets(network, T, 1)[0].tolist()
        self.loc = locations(network)
        self.weight_of = {
            (loc.layer, loc.row, loc.col): name for name, loc in self.loc.items() if loc.kind == "W"
        }
        self.bias_of = {
            (loc.layer, loc.col): name for name, loc in self.loc.items() if loc.kind == "b"
        }
        self.parts: list[str] = []

    def text(self) -> str:
        return "\n\n".join(self.parts) + "\n"

    def add(self, *parts: str) -> None:
        self.parts.extend(parts)

    # -- names -----------------------------------------------------------------------------

    def value_tex(self, column: int, unit: int) -> str:
        """``x_{1}`` for an input, ``out_{n_{3}}`` for any other node."""
        if column == 0:
            return f"x_{{{unit + 1}}}"
        return tex_var("out", self.nodes[column][unit])

    def target_tex(self, k: int) -> str:
        return "y" if self.network.outputs == 1 else f"y_{{{k + 1}}}"

    # -- sections --------------------------------------------------------------------------

    def title(self, model: str, version: int, learning_rate: float) -> None:
        net = self.network
        sizes = "-".join(str(n) for n in [net.inputs, *(layer.units for layer in net.layers)])
        layers = "; ".join(
            f"{'output' if l == len(net.layers) - 1 else f'hidden layer {l + 1}'}: "
            f"{_units(layer)} ({', '.join(self.nodes[l + 1])})"
            for l, layer in enumerate(net.layers)
        )
        self.add(
            f"# Walkthrough: model `{model}`, version {version}",
            f"One forward pass, the error, backpropagation and one step of plain gradient descent "
            f"with learning rate η = {num(learning_rate)}, for one sample, in the order of the "
            f"worked example this service was born from. The network is {sizes}: inputs "
            f"{', '.join(self.nodes[0])}; {layers}; loss {net.loss}. Weights w1, w2, ... are "
            "numbered row by row, layer after layer (w1 joins the first input to the first node "
            "of the first layer, w2 the first input to the second node); biases b1, b2, ... node "
            "after node.",
            "Every number is printed in full: the shortest decimal that reads back as the "
            "same float64, so 0.1 + 0.2 shows as 0.30000000000000004. Nothing is stored: the "
            "model keeps its version.",
        )

    def initial_values(self, params: Params, learning_rate: float) -> None:
        inputs = ", ".join(
            f"${self.value_tex(0, i)} = {num(v)}$ ({self.nodes[0][i]})"
            for i, v in enumerate(self.x)
        )
        targets = ", ".join(f"${self.target_tex(k)} = {num(v)}$" for k, v in enumerate(self.t))
        weights = ["| weight | from | to | value |", "| --- | --- | --- | --- |"]
        biases = ["| bias | node | value |", "| --- | --- | --- |"]
        for name, loc in self.loc.items():
            if loc.kind == "W":
                value = float(params[loc.layer].W[loc.row, loc.col])
                frm, to = self.nodes[loc.layer][loc.row], self.nodes[loc.layer + 1][loc.col]
                weights.append(f"| {name} | {frm} | {to} | {num(value)} |")
            else:
                value = float(params[loc.layer].b[loc.col])
                biases.append(f"| {name} | {self.nodes[loc.layer + 1][loc.col]} | {num(value)} |")
        self.add(
            "## 1. Initial values",
            f"Inputs: {inputs}. Target{'s' if len(self.t) > 1 else ''}: {targets}. "
            f"Learning rate: $\\eta = {num(learning_rate)}$.",
            "\n".join(weights),
            "\n".join(biases),
        )

    def forward(self, params: Params, result: GradientResult, heading: str, intro: str) -> None:
        self.add(f"## {heading}", intro)
        outs = [self.x, *(t.out[0].tolist() for t in result.trace)]
        for l, (layer, trace) in enumerate(zip(self.network.layers, result.trace, strict=True)):
            last = l == len(self.network.layers) - 1
            self.add(
                f"### {'Output layer' if last else f'Hidden layer {l + 1}'}: {layer.activation}"
            )
            nets: list[float] = trace.net[0].tolist()
            layer_outs: list[float] = trace.out[0].tolist()
            for j, node in enumerate(self.nodes[l + 1]):
                symbols = [
                    f"{tex_param(self.weight_of[(l, i, j)])} \\cdot {self.value_tex(l, i)}"
                    for i in range(len(outs[l]))
                ]
                numbers = [
                    f"{term(float(params[l].W[i, j]))} \\cdot {term(outs[l][i])}"
                    for i in range(len(outs[l]))
                ]
                b = tex_param(self.bias_of[(l, j)])
                b_value = term(float(params[l].b[j]))
                self.add(
                    display(
                        f"{tex_var('net', node)} = {' + '.join(symbols)} + {b} = "
                        f"{' + '.join(numbers)} + {b_value} = {num(nets[j])}"
                    ),
                    display(_activation_line(layer, node, j, nets, layer_outs)),
                )

    def error(self, result: GradientResult, heading: str | None, symbol: str) -> None:
        out: list[float] = result.trace[-1].out[0].tolist()
        filled = _loss_filled(self.network, out, self.t)
        if heading is not None:
            self.add(
                f"## {heading}",
                f"The loss {self.network.loss} compares the outputs with the targets:",
                display(LOSS_TEX[self.network.loss]),
            )
        self.add(display(f"{symbol} = {filled} = {num(result.loss)}"))

    def backpropagation(
        self, explanations: Sequence[Explanation], deltas: dict[str, Explanation]
    ) -> None:
        by_bias = {e.node: e for e in explanations if e.kind == "bias"}
        self.add(
            "## 4. Backpropagation",
            "How much does the error change when one parameter changes a little? The chain rule "
            "answers with a product of local derivatives along each path from the parameter to "
            "the error, summed over the paths. Products that several paths share are the deltas, "
            "δ = ∂E/∂net of each node, computed from the output back to the first layer.",
            "### The deltas",
        )
        for l in range(len(self.network.layers) - 1, -1, -1):
            for node in self.nodes[l + 1]:
                d = deltas[node].delta
                assert d is not None  # asked for in the delta form
                parts = [f"{d.delta.symbol_latex} = {d.delta.formula_latex}"]
                if d.derivative is not None:
                    total = " + ".join(
                        f"{term(t.weight_value)} \\cdot {term(t.delta)}" for t in d.terms
                    )
                    parts.append(f"{term(d.derivative.value)} \\cdot \\left({total}\\right)")
                elif len(factors := by_bias[node].paths[0].factors[:-1]) > 1:
                    # At the output: the loss's and the activation's factors, multiplied out.
                    parts.append(r" \cdot ".join(term(f.value) for f in factors))
                parts.append(num(d.delta.value))
                self.add(display(" = ".join(parts)))
        # A note every explanation carries (a fused output factor) is said once, here.
        common = set.intersection(*(set(e.notes) for e in explanations))
        self.add(*(f"> {note}" for note in explanations[0].notes if note in common))
        self.add("### The gradients, from the output layer back")
        for e in _blog_order(explanations, self.loc):
            self.add(f"#### ∂E/∂{e.parameter}")
            self.add(*gradient_lines(e))
            self.add(*(f"> {note}" for note in e.notes if note not in common))

    def updates(
        self, explanations: Sequence[Explanation], new_params: Params, learning_rate: float
    ) -> None:
        self.add(
            "## 5. The update",
            "Each parameter takes a step against its gradient, as large as the learning rate "
            "times the gradient:",
            display(r"p^{\text{new}} = p^{\text{old}} - \eta \cdot \frac{\partial E}{\partial p}"),
        )
        for e in _blog_order(explanations, self.loc):
            loc = self.loc[e.parameter]
            new = float(
                new_params[loc.layer].W[loc.row, loc.col]
                if loc.kind == "W"
                else new_params[loc.layer].b[loc.col]
            )
            p = tex_param(e.parameter)
            self.add(
                display(
                    f"{p}^{{\\text{{new}}}} = {p} - \\eta \\cdot {d_loss(e.parameter)} = "
                    f"{term(e.value)} - {term(learning_rate)} \\cdot {term(e.gradient)} = "
                    f"{num(new)}"
                )
            )

    def conclusion(self, before: float, after: float) -> None:
        change = after - before
        verdict = "went down" if change < 0 else "went up" if change > 0 else "did not change"
        self.add(
            f"The error {verdict}: from {num(before)} to {num(after)}, a change of "
            f"{num(change)}. Repeating the step (training) brings the outputs closer to the "
            "targets."
        )


def _blog_order(
    explanations: Sequence[Explanation], where: dict[str, Location]
) -> list[Explanation]:
    """The output layer's weights and biases first, then the layer before, as the blog goes."""
    return sorted(explanations, key=lambda e: -where[e.parameter].layer)


def _units(layer: Layer) -> str:
    return f"{layer.units} {layer.activation} unit{'s' if layer.units != 1 else ''}"


def _activation_line(layer: Layer, node: str, j: int, nets: list[float], outs: list[float]) -> str:
    out, net = tex_var("out", node), tex_var("net", node)
    v, o = nets[j], num(outs[j])
    rule = activations.latex(layer, net)
    match layer.activation:
        case "identity":
            return f"{out} = {rule} = {o}"
        case "relu" | "tanh":
            return f"{out} = {rule} = {activations.latex(layer, num(v))} = {o}"
        case "leaky_relu":
            filled = num(v) if v > 0 else f"{num(layer.negative_slope)} \\cdot {term(v)}"
            return f"{out} = {rule} = {filled} = {o}"
        case "sigmoid":
            return rf"{out} = \sigma({net}) = {rule} = {activations.latex(layer, term(v))} = {o}"
        case "softmax":
            total = " + ".join(f"e^{{{num(n)}}}" for n in nets)
            return rf"{out} = {rule} = \frac{{e^{{{num(v)}}}}}{{{total}}} = {o}"
    raise AssertionError(layer.activation)


def _loss_filled(network: Network, out: list[float], t: list[float]) -> str:
    """The loss formula with this sample's numbers in it."""
    K = len(out)
    match network.loss:
        case "half_squared_error" | "mean_squared_error":
            terms = " + ".join(f"({num(y)} - {term(o)})^2" for o, y in zip(out, t, strict=True))
            scale = (
                r"\frac{1}{2}" if network.loss == "half_squared_error" else rf"\frac{{1}}{{{K}}}"
            )
            return rf"{scale} \left({terms}\right)"
        case "binary_cross_entropy":
            terms = " + ".join(
                rf"\left({num(y)} \log {num(o)} + (1 - {term(y)}) \log(1 - {num(o)})\right)"
                for o, y in zip(out, t, strict=True)
            )
            return rf"-\frac{{1}}{{{K}}} \left({terms}\right)"
        case "cross_entropy":
            terms = " + ".join(rf"{num(y)} \log {num(o)}" for o, y in zip(out, t, strict=True))
            return rf"-\left({terms}\right)"
    raise AssertionError(network.loss)
