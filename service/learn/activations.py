"""Each activation described once, for learners: its formula and its derivative, in plain text
and in LaTeX. The walkthrough writes the forward pass with these formulas and the explanations
write the chain rule's ``dout/dnet`` factors with these derivatives; the values are the core's.
"""

from __future__ import annotations

from service.core import Layer


def latex(layer: Layer, x: str) -> str:
    """``f(x)`` in LaTeX for the layer's activation ``f``, with ``x`` written in (a symbol or a
    number); for softmax, the ``x``-th output over the layer's ``net_m``."""
    match layer.activation:
        case "identity":
            return x
        case "relu":
            return rf"\max(0, {x})"
        case "leaky_relu":
            slope = repr(float(layer.negative_slope))
            return (
                rf"\begin{{cases}} {x} & \text{{if }} {x} > 0 \\ "
                rf"{slope} \cdot {x} & \text{{otherwise}} \end{{cases}}"
            )
        case "sigmoid":
            return rf"\frac{{1}}{{1 + e^{{-{x}}}}}"
        case "tanh":
            return rf"\tanh({x})"
        case "softmax":
            return rf"\frac{{e^{{{x}}}}}{{\sum_m e^{{net_m}}}}"
    raise AssertionError(layer.activation)


def derivative(layer: Layer, net: str, net_latex: str) -> tuple[str, str]:
    """``f'(net)`` of an element-wise activation: its formula as text and in LaTeX, ``net``
    and ``net_latex`` naming the net input (``net_n9``, ``net_{n_{9}}``)."""
    match layer.activation:
        case "identity":
            return "1", "1"
        case "relu":
            # f'(0) = 0, as in the core (and PyTorch).
            return (
                f"1 if {net} > 0 else 0",
                rf"\begin{{cases}} 1 & \text{{if }} {net_latex} > 0 \\ 0 & \text{{otherwise}} "
                r"\end{cases}",
            )
        case "leaky_relu":
            slope = layer.negative_slope
            return (
                f"1 if {net} > 0 else {slope!r}",
                rf"\begin{{cases}} 1 & \text{{if }} {net_latex} > 0 \\ {slope!r} & "
                r"\text{otherwise} \end{cases}",
            )
        case "sigmoid":
            s, s_tex = f"sigmoid({net})", rf"\sigma({net_latex})"
            return f"{s} * (1 - {s})", rf"{s_tex} \left(1 - {s_tex}\right)"
        case "tanh":
            return f"1 - tanh({net})^2", rf"1 - \tanh^2({net_latex})"
        case "softmax":
            pass
    raise AssertionError(f"{layer.activation} has no element-wise derivative")  # fused instead
