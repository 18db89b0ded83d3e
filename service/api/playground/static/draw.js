// SVG drawings: the network (nodes in columns by layer, an edge per weight, every weight and
// bias a focusable button) and the loss curve. The numbers drawn are the API's, given in
// `values`; nothing is computed here but positions.

const SVG = "http://www.w3.org/2000/svg";
const GAP_X = 260;
const GAP_Y = 140;
const RADIUS = 22;
const MARGIN_X = 64;
const TOP = 58;
const LINE = 14;
const CHAR = 7.25; // the width of a character of 12 px monospace text (0.6 em), and a little
const LABEL_H = 18;
export const POSITIVE = "#1f5fa8";
export const NEGATIVE = "#b2182b";
export const ZERO = "#8a8a8a";

/** A number short enough to draw: five significant digits, no trailing zeros. The exact value
 * is in the element's title and in the tables. */
export function short(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e5) return String(Number(v.toPrecision(5)));
  return v.toExponential(3).replace("e", "e");
}

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function colour(v) {
  return v > 0 ? POSITIVE : v < 0 ? NEGATIVE : ZERO;
}

/**
 * The network drawn. `shape` from network.names(); `values` holds what the API answered:
 * `parameters` (named), and when known `nodes` ({n3: {net, out}}), `deltas` ({n3: d}),
 * `gradients` (named), `inputs`, `targets`; `selected` a parameter's name and `path` the set of
 * "nX>nY" edges on its chain-rule paths.
 */
export function networkSvg(network, shape, values) {
  const { columns, weights, biases } = shape;
  const rows = Math.max(...columns.map((c) => c.length));
  const width = 2 * MARGIN_X + (columns.length - 1) * GAP_X;
  const height = TOP + rows * GAP_Y + 8;
  const svg = el("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    class: "network",
    role: "group",
    "aria-label": "the network: nodes, weights and biases",
  });
  const centre = (column, unit) => {
    const offset = (rows - columns[column].length) / 2;
    return [MARGIN_X + column * GAP_X, TOP + 6 + RADIUS + (offset + unit) * GAP_Y];
  };
  const last = columns.length - 1;
  columns.forEach((_, c) => {
    const heading = c === 0 ? "inputs"
      : `${c === last ? "output" : `hidden ${c}`}: ${network.layers[c - 1].activation}`;
    svg.append(el("text", { x: centre(c, 0)[0], y: 20, class: "heading" }, heading));
  });

  const edges = el("g", { class: "edges" });
  const labels = el("g", { class: "labels" });
  const nodes = el("g", { class: "nodes" });
  svg.append(edges, nodes, labels);
  const taken = [];
  const lines = (column) => (column === 0 ? 1 : 2 + (values.nodes ? 2 : 0) + (values.deltas ? 1 : 0)
    + (column === last && values.targets ? 1 : 0));
  columns.forEach((names, c) => names.forEach((_, u) => {
    const [x, y] = centre(c, u);
    taken.push([x - 54, y - RADIUS - 2, x + 54, y + RADIUS + 9 + LINE * lines(c)]);
  }));

  const biggest = Math.max(...weights.map((w) => Math.abs(values.parameters[w.name])), 1e-12);
  const index = Object.fromEntries(columns.flatMap((names, c) => names.map((n, u) => [n, [c, u]])));
  for (const w of weights) {
    const value = values.parameters[w.name];
    const [x1, y1] = centre(...index[w.from]);
    const [x2, y2] = centre(...index[w.to]);
    const onPath = values.path && values.path.has(`${w.from}>${w.to}`);
    edges.append(el("line", {
      x1: x1 + RADIUS, y1, x2: x2 - RADIUS, y2,
      stroke: colour(value),
      "stroke-width": 0.8 + 5 * Math.abs(value) / biggest,
      class: `edge${onPath ? " on-path" : ""}${values.selected === w.name ? " chosen" : ""}`,
      "data-name": w.name,
    }));
    const units = columns[w.layer + 1].length;
    const text = `${w.name}=${short(value)}`;
    const [cx, cy] = place(text, [x1 + RADIUS, y1], [x2 - RADIUS, y2], w.col, units, taken);
    labels.append(button(w.name, text, cx, cy, value, values, `${w.from} to ${w.to}`));
  }

  for (const [c, names] of columns.entries()) {
    for (const [u, name] of names.entries()) {
      const [x, y] = centre(c, u);
      const kind = c === 0 ? "input" : c === last ? "output" : "hidden";
      const g = el("g", { class: `node ${kind}`, id: `node-${name}`, "data-node": name });
      const title = [name];
      g.append(el("circle", { cx: x, cy: y, r: RADIUS }));
      g.append(el("text", { x, y: y + 5, class: "name" }, name));
      let k = 1;
      // Under a non-input node the bias's button takes the first line, and a little more.
      const below = c === 0 ? 0 : 5;
      const line = (text, cls) => {
        g.append(el("text", { x, y: y + RADIUS + below + LINE * k++, class: cls }, text));
      };
      if (c === 0) {
        const xi = values.inputs ? values.inputs[u] : null;
        if (xi !== null) {
          line(`x${u + 1} = ${short(xi)}`, "value");
          title.push(`out = x${u + 1} = ${xi}`);
        }
      } else {
        k++; // the bias's button goes on the first line
        const t = values.nodes && values.nodes[name];
        if (t) {
          line(`net ${short(t.net)}`, "value");
          line(`out ${short(t.out)}`, "value");
          title.push(`net = ${t.net}`, `out = ${t.out}`);
        }
        if (values.deltas) {
          line(`δ ${short(values.deltas[name])}`, "delta");
          title.push(`δ = ∂E/∂net = ${values.deltas[name]}`);
        }
        if (c === last && values.targets) {
          const target = values.targets[u];
          line(`target ${short(target)}`, "target");
          title.push(`target = ${target}`);
        }
      }
      g.prepend(el("title", {}, title.join("\n")));
      nodes.append(g);
    }
  }
  for (const b of biases) {
    const [x, y] = centre(...index[b.to]);
    const value = values.parameters[b.name];
    const text = `${b.name}=${short(value)}`;
    labels.append(button(b.name, text, x, y + RADIUS + LINE - 4, value, values, `bias of ${b.to}`));
  }
  return svg;
}

/** A weight or a bias as a focusable button at centre (x, y). */
function button(name, text, x, y, value, values, where) {
  const width = CHAR * text.length + 8;
  const chosen = values.selected === name;
  const g = el("g", {
    class: `param${chosen ? " chosen" : ""}`,
    tabindex: 0,
    role: "button",
    "data-name": name,
    "aria-pressed": chosen,
    "aria-label": `${name} = ${value}, ${where}: explain its gradient`,
  });
  const lines = [`${name} = ${value} (${where})`];
  if (values.gradients) lines.push(`∂E/∂${name} = ${values.gradients[name]}`);
  g.append(el("title", {}, lines.join("\n")));
  g.append(el("rect", {
    x: x - width / 2, y: y - LABEL_H / 2, width, height: LABEL_H, rx: 4,
    stroke: colour(value),
  }));
  g.append(el("text", { x, y: y + 4, fill: colour(value) }, text));
  return g;
}

/**
 * Where along its edge a label goes: the first free spot of a fixed sequence (from where the
 * edges into different units part, 0.25..0.75 of the way by the target unit, then outwards
 * along the edge), else, lifted a little off the edge, the first free one, else the spot that
 * overlaps least. A label sits on its edge (its box hides the line under it), so that it is
 * never read as another edge's. Returns the centre; the box is taken.
 */
function place(text, start, end, unit, units, taken) {
  const w = CHAR * text.length + 12;
  const h = LABEL_H + 2;
  const preferred = units === 1 ? 0.5 : 0.25 + (0.5 * unit) / (units - 1);
  const spots = [preferred];
  for (let step = 1; step < 40; step++) spots.push(preferred + 0.02 * step, preferred - 0.02 * step);
  let best = null;
  for (const lift of [0, -0.6 * h, 0.6 * h]) {
    for (const t of spots) {
      if (t < 0.12 || t > 0.88) continue;
      const x = start[0] + t * (end[0] - start[0]);
      const y = start[1] + t * (end[1] - start[1]) + lift;
      const box = [x - w / 2, y - h / 2, x + w / 2, y + h / 2];
      const clash = taken.reduce((sum, other) => sum + overlap(box, other), 0);
      if (best === null || clash < best.clash) best = { clash, box, x, y };
      if (clash === 0) {
        taken.push(box);
        return [x, y];
      }
    }
  }
  taken.push(best.box);
  return [best.x, best.y];
}

function overlap(a, b) {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  return w > 0 && h > 0 ? w * h : 0;
}

/** The loss before each step, as the API answered it, against the step's number. */
export function curveSvg(losses) {
  const width = 560;
  const height = 240;
  const left = 64;
  const right = 16;
  const top = 14;
  const bottom = 36;
  const svg = el("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "curve",
    role: "img",
    "aria-label": losses.length
      ? `loss over ${losses.length} steps, from ${losses[0]} to ${losses[losses.length - 1]}`
      : "no training steps yet",
  });
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  svg.append(el("rect", { x: left, y: top, width: plotW, height: plotH, class: "frame" }));
  if (!losses.length) {
    svg.append(el("text", { x: left + plotW / 2, y: top + plotH / 2, class: "empty" },
      "Step or Train to draw the loss"));
    return svg;
  }
  const hi = Math.max(...losses);
  const lo = Math.min(0, ...losses);
  const span = hi - lo || 1;
  const n = losses.length;
  const px = (i) => left + (n === 1 ? plotW / 2 : (plotW * i) / (n - 1));
  const py = (v) => top + plotH * (1 - (v - lo) / span);
  const points = losses.map((v, i) => `${px(i).toFixed(2)},${py(v).toFixed(2)}`).join(" ");
  svg.append(el("polyline", { points, class: "line" }));
  if (n <= 60) {
    losses.forEach((v, i) => svg.append(el("circle", { cx: px(i), cy: py(v), r: 2.5, class: "dot" })));
  }
  for (const v of [hi, lo]) {
    svg.append(el("text", { x: left - 6, y: py(v) + 4, class: "tick y" }, short(v)));
  }
  svg.append(el("text", { x: left, y: height - 16, class: "tick x" }, "1"));
  svg.append(el("text", { x: left + plotW, y: height - 16, class: "tick x end" }, String(n)));
  svg.append(el("text", { x: left + plotW / 2, y: height - 4, class: "axis" }, "step (loss before it)"));
  const lastX = px(n - 1);
  const lastY = py(losses[n - 1]);
  svg.append(el("text", { x: lastX - 4, y: Math.max(lastY - 8, top + 12), class: "tick last" },
    `E = ${short(losses[n - 1])}`));
  return svg;
}
