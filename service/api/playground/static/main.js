// The playground: a scratch copy of a model, stored in the service, that the learner runs,
// steps, trains and edits through the public API; the stored model it was copied from is never
// changed. Every number shown is from an API answer.

import { Api, ApiError } from "./api.js";
import { curveSvg, networkSvg, short } from "./draw.js";
import { LIMITS, names, parseLayers, small } from "./network.js";

// The blog's 2-3-3-1 network and its values: the body the README creates "seed" with.
const BLOG = {
  network: {
    inputs: 2,
    layers: [
      { units: 3, activation: "relu" },
      { units: 3, activation: "relu" },
      { units: 1, activation: "sigmoid" },
    ],
    loss: "half_squared_error",
  },
  parameters: {
    w1: 0.1, w2: 0.2, w3: 0.3, w4: 0.4, w5: 0.5, w6: 0.6, w7: 0.7, w8: 0.8, w9: 0.9,
    w10: 0.1, w11: 0.2, w12: 0.3, w13: 0.4, w14: 0.5, w15: 0.6, w16: 0.7, w17: 0.8, w18: 0.9,
    b1: 0.1, b2: -0.4, b3: 0.3, b4: -0.5, b5: 0.5, b6: 0.6, b7: -0.7,
  },
  inputs: [0.23, 0.55],
  targets: [0.01],
};
const MAX_CALLS_LISTED = 60;

const $ = (id) => document.getElementById(id);
const api = new Api(new URL(".", document.baseURI), listCall);
const state = {
  source: "", // "" for the blog's network, else a stored model's name
  origin: null, // the parameters the scratch model started from, for Reset
  scratch: null,
  version: null,
  network: null,
  shape: null,
  parameters: null, // named, from the API
  inputs: [],
  targets: [],
  forward: null, // { answer, parameters, inputs }
  gradient: null, // the gradient answer, with its trace and deltas
  update: null, // { before, after, learningRate, loss, gradients }
  losses: [],
  selected: null,
  explanation: null,
};

// ---- actions: one at a time; a problem is reported in the status line

// Buttons stay enabled (a disabled button would lose the keyboard's focus); a press while an
// action runs is ignored.
let actions = 0;
let busy = false;
async function act(what, fn) {
  if (busy) return;
  busy = true;
  document.body.dataset.busy = "1";
  document.querySelector("main").setAttribute("aria-busy", "true");
  say("");
  try {
    await fn();
  } catch (error) {
    const detail = error instanceof ApiError
      ? `${what}: ${error.message} (HTTP ${error.status})`
      : `${what}: ${error.message}`;
    say(detail, true);
    if (!(error instanceof ApiError)) console.error(error);
  } finally {
    busy = false;
    document.querySelector("main").removeAttribute("aria-busy");
    document.body.dataset.actions = String(++actions);
    document.body.dataset.busy = "0";
  }
}

function say(text, error = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", error);
}

async function open(source) {
  const origin = source === ""
    ? { network: BLOG.network, parameters: BLOG.parameters, inputs: BLOG.inputs, targets: BLOG.targets }
    : await stored(source);
  const old = state.scratch;
  const scratch = `playground-${randomHex(8)}`;
  const created = await api.create({
    name: scratch,
    network: origin.network,
    parameters: origin.parameters,
    optimizer: { kind: "sgd", learning_rate: learningRate() },
    description: `A scratch copy of ${source || "the blog's network"} made by /playground; `
      + "safe to delete.",
    tags: ["playground"],
  });
  if (old) await api.remove(old);
  Object.assign(state, {
    source, origin: origin.parameters, scratch, version: created.version,
    network: created.network, shape: names(created.network),
    inputs: origin.inputs, targets: origin.targets,
    forward: null, gradient: null, update: null, losses: [], selected: null, explanation: null,
  });
  await refreshParameters();
  $("scratch-note").textContent = `Playing on the scratch model "${scratch}", a copy of `
    + `${source ? `"${source}"` : "the blog's network"}: the original is not changed.`;
  buildSample();
  buildTables();
  render();
  say("Press Forward to compute every node's net and out, or Step for a whole step.");
}

/** A stored model's network and current parameters, with a sample of its input width. */
async function stored(name) {
  const model = await api.model(name);
  if (!small(model.network)) {
    throw new Error(`"${name}" is too large to draw here (at most ${LIMITS.units} units a `
      + `layer and ${LIMITS.parameters} parameters)`);
  }
  const { parameters } = await api.parameters(name);
  const outputs = model.network.layers[model.network.layers.length - 1].units;
  const seedShape = name === "seed" || sameShape(model.network, BLOG.network);
  return {
    network: model.network,
    parameters,
    inputs: seedShape ? BLOG.inputs : Array(model.network.inputs).fill(0.5),
    targets: seedShape ? BLOG.targets : Array(outputs).fill(outputs > 1 ? 1 / outputs : 0.5),
  };
}

function sameShape(a, b) {
  return a.inputs === b.inputs && a.layers.length === b.layers.length
    && a.layers.every((l, i) => l.units === b.layers[i].units);
}

async function refreshParameters() {
  const answer = await api.parameters(state.scratch);
  state.parameters = answer.parameters;
  state.version = answer.version;
}

async function forward() {
  const parameters = state.parameters;
  const answer = await api.forward(state.scratch, [state.inputs]);
  state.forward = { answer, parameters, inputs: state.inputs };
}

async function backward() {
  state.gradient = await api.gradient(state.scratch, [state.inputs], [state.targets]);
}

async function update() {
  const before = state.parameters;
  const gradients = state.gradient && state.gradient.version === state.version
    ? state.gradient.gradients : null;
  const lr = learningRate();
  const answer = await api.trainStep(state.scratch, [state.inputs], [state.targets], lr);
  state.losses.push(answer.loss);
  await refreshParameters();
  state.update = { before, after: state.parameters, learningRate: lr, loss: answer.loss, gradients };
}

async function explainSelected() {
  if (!state.selected) return;
  state.explanation = await api.explain(
    state.scratch, [state.inputs], [state.targets], state.selected,
  );
}

async function train(steps) {
  const lr = learningRate();
  for (let i = 1; i <= steps; i++) {
    const answer = await api.trainStep(state.scratch, [state.inputs], [state.targets], lr);
    state.losses.push(answer.loss);
    if (i % 10 === 0 || i === steps) {
      say(`Training: step ${i} of ${steps}, loss before it ${short(answer.loss)}`);
      $("curve").replaceChildren(curveSvg(state.losses));
    }
  }
  state.update = null;
  await refreshParameters();
  await forward();
  await backward();
  await explainSelected();
}

function learningRate() {
  const lr = Number($("learning-rate").value);
  if (!Number.isFinite(lr) || lr <= 0) throw new Error("the learning rate must be a number > 0");
  return lr;
}

function randomHex(n) {
  const bytes = new Uint8Array(n / 2);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- the sample's fields and the tables, built once per network, filled by render()

function buildSample() {
  const field = (kind, i, value, label) => {
    const wrap = document.createElement("label");
    wrap.textContent = label;
    const input = document.createElement("input");
    Object.assign(input, { type: "number", step: "any", value: String(value), id: `${kind}-${i}` });
    input.addEventListener("change", () => act(`${label}`, async () => {
      const v = Number(input.value);
      if (input.value.trim() === "" || !Number.isFinite(v)) {
        input.value = String(state[kind][i]);
        throw new Error(`${label} must be a number`);
      }
      state[kind] = state[kind].map((old, k) => (k === i ? v : old));
      state.gradient = null;
      state.update = null;
      await forward();
      await explainSelected();
      render();
    }));
    wrap.append(input);
    return wrap;
  };
  $("inputs").replaceChildren(...state.inputs.map((v, i) => field("inputs", i, v, `x${i + 1}`)));
  $("targets").replaceChildren(...state.targets.map((v, i) => field("targets", i, v, `t${i + 1}`)));
}

function buildTables() {
  const { columns, weights, biases, activation } = state.shape;
  const nodes = $("nodes");
  nodes.replaceChildren(caption("nodes-caption"), head(["node", "f", "net", "out", "δ = ∂E/∂net"]));
  const body = document.createElement("tbody");
  for (const name of columns.slice(1).flat()) {
    const row = body.insertRow();
    row.id = `row-${name}`;
    cell(row, "th", name).scope = "row";
    cell(row, "td", activation[name]);
    for (const what of ["net", "out", "delta"]) cell(row, "td", "").dataset.field = what;
  }
  nodes.append(body);

  const table = $("parameters");
  table.replaceChildren(caption("parameters-caption"), head(["", "joins", "value", "∂E/∂p"]));
  const rows = document.createElement("tbody");
  for (const p of [...weights, ...biases]) {
    const row = rows.insertRow();
    row.id = `row-${p.name}`;
    const th = cell(row, "th", "");
    th.scope = "row";
    const pick = document.createElement("button");
    Object.assign(pick, { type: "button", textContent: p.name, className: "pick" });
    pick.dataset.name = p.name;
    pick.setAttribute("aria-label", `explain the gradient of ${p.name}`);
    th.append(pick);
    cell(row, "td", p.from ? `${p.from} → ${p.to}` : `bias of ${p.to}`);
    const td = cell(row, "td", "");
    const input = document.createElement("input");
    Object.assign(input, { type: "text", inputMode: "decimal", id: `value-${p.name}` });
    input.setAttribute("aria-label", `value of ${p.name}`);
    input.addEventListener("change", () => editParameter(p.name, input));
    td.append(input);
    cell(row, "td", "").dataset.field = "gradient";
  }
  table.append(rows);
}

function caption(id) {
  const c = document.createElement("caption");
  c.id = id;
  return c;
}

function head(titles) {
  const thead = document.createElement("thead");
  const row = thead.insertRow();
  for (const t of titles) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = t;
    row.append(th);
  }
  return thead;
}

function cell(row, tag, text) {
  const c = document.createElement(tag);
  c.textContent = text;
  row.append(c);
  return c;
}

function editParameter(name, input) {
  act(`editing ${name}`, async () => {
    const value = Number(input.value);
    if (input.value.trim() === "" || !Number.isFinite(value)) {
      input.value = String(state.parameters[name]);
      throw new Error(`${name} must be a finite number`);
    }
    const answer = await api.putParameters(
      state.scratch, { ...state.parameters, [name]: value }, state.version,
    );
    state.parameters = answer.parameters;
    state.version = answer.version;
    state.gradient = null;
    state.update = null;
    await forward();
    await explainSelected();
    render();
    say(`${name} is now ${state.parameters[name]} (version ${state.version}); forward ran again.`);
  });
}

// ---- rendering

function render() {
  const values = {
    parameters: state.parameters,
    inputs: state.inputs,
    targets: state.targets,
    nodes: state.forward ? state.forward.answer.trace.nodes && flatNodes(state.forward.answer) : null,
    deltas: state.gradient ? flatDeltas(state.gradient) : null,
    gradients: state.gradient ? state.gradient.gradients : null,
    selected: state.selected,
    path: pathEdges(state.explanation),
  };
  $("diagram").replaceChildren(networkSvg(state.network, state.shape, values));
  renderNodes(values);
  renderParameters(values);
  renderFormulas();
  renderExplain();
  $("curve").replaceChildren(curveSvg(state.losses));
  const loss = state.update ? state.update.loss : state.gradient ? state.gradient.loss : null;
  $("loss").textContent = loss === null ? "" : `E = ${loss}`;
  $("loss").title = loss === null ? "" : "the loss of the sample, before the last update";
  for (const b of document.querySelectorAll("#parameters button.pick")) {
    b.setAttribute("aria-pressed", String(b.dataset.name === state.selected));
  }
}

function flatNodes(answer) {
  const nodes = {};
  for (const [name, t] of Object.entries(answer.trace.nodes)) nodes[name] = { net: t.net[0], out: t.out[0] };
  return nodes;
}

function flatDeltas(answer) {
  const deltas = {};
  for (const [name, d] of Object.entries(answer.deltas.nodes)) deltas[name] = d[0];
  return deltas;
}

function pathEdges(explanation) {
  if (!explanation) return null;
  const edges = new Set();
  if (explanation.source) edges.add(`${explanation.source}>${explanation.node}`);
  for (const path of explanation.paths) {
    for (let i = 1; i < path.nodes.length; i++) edges.add(`${path.nodes[i - 1]}>${path.nodes[i]}`);
  }
  return edges;
}

function renderNodes(values) {
  const version = state.forward ? state.forward.answer.version : null;
  $("nodes-caption").textContent = version === null
    ? "Press Forward to fill in net and out."
    : `Forward pass of version ${version}${version !== state.version ? " (before the update)" : ""}`
      + (values.deltas ? `; δ of version ${state.gradient.version}` : "");
  for (const name of state.shape.columns.slice(1).flat()) {
    const row = $(`row-${name}`);
    const t = values.nodes ? values.nodes[name] : null;
    setNumber(row.querySelector("[data-field=net]"), t ? t.net : null);
    setNumber(row.querySelector("[data-field=out]"), t ? t.out : null);
    setNumber(row.querySelector("[data-field=delta]"), values.deltas ? values.deltas[name] : null);
  }
}

function setNumber(element, value) {
  element.textContent = value === null || value === undefined ? "" : String(value);
  if (value === null || value === undefined) delete element.dataset.value;
  else element.dataset.value = String(value);
}

function renderParameters(values) {
  $("parameters-caption").textContent = `Version ${state.version} of "${state.scratch}"`
    + (state.gradient ? `; gradients of version ${state.gradient.version}` : "");
  for (const name of Object.keys(state.parameters)) {
    const input = $(`value-${name}`);
    if (document.activeElement !== input) input.value = String(state.parameters[name]);
    setNumber($(`row-${name}`).querySelector("[data-field=gradient]"),
      values.gradients ? values.gradients[name] : null);
  }
}

const LOSSES = {
  half_squared_error: "E = ½ Σ (t − out)²",
  mean_squared_error: "E = (1/k) Σ (t − out)²",
  binary_cross_entropy: "E = −(1/k) Σ (t log out + (1 − t) log(1 − out))",
  cross_entropy: "E = −Σ t log out",
};

function renderFormulas() {
  const parts = [];
  if (state.forward) parts.push(forwardFormulas());
  if (state.gradient) parts.push(backwardFormulas());
  if (state.update) parts.push(updateFormulas());
  if (!parts.length) {
    const p = document.createElement("p");
    p.className = "note";
    p.textContent = "Forward, Backward, Update or Step show here how each number was made.";
    parts.push(p);
  }
  $("formulas").replaceChildren(...parts);
}

function section(title, lines, id) {
  const div = document.createElement("div");
  div.className = "formula-block";
  div.id = id;
  const h = document.createElement("h3");
  h.textContent = title;
  const list = document.createElement("ul");
  for (const line of lines) {
    const li = document.createElement("li");
    li.textContent = line;
    list.append(li);
  }
  div.append(h, list);
  return div;
}

function outOf(node, forward) {
  const i = state.shape.columns[0].indexOf(node);
  if (i >= 0) return { symbol: `x${i + 1}`, value: forward.inputs[i] };
  return { symbol: `out_${node}`, value: flatNodes(forward.answer)[node].out };
}

function forwardFormulas() {
  const f = state.forward;
  const nodes = flatNodes(f.answer);
  const lines = [];
  for (const b of state.shape.biases) {
    const into = state.shape.weights.filter((w) => w.to === b.to);
    const symbols = into.map((w) => `${w.name}·${outOf(w.from, f).symbol}`);
    const numbers = into.map((w) => `${short(f.parameters[w.name])}·${short(outOf(w.from, f).value)}`);
    const t = nodes[b.to];
    lines.push(`net_${b.to} = ${symbols.join(" + ")} + ${b.name} = ${numbers.join(" + ")} + `
      + `${short(f.parameters[b.name])} = ${short(t.net)}`);
    lines.push(`out_${b.to} = ${state.shape.activation[b.to]}(net_${b.to}) = ${short(t.out)}`);
  }
  return section(`Forward (version ${f.answer.version}): net = Σ w·out + b, out = f(net)`, lines,
    "formulas-forward");
}

function backwardFormulas() {
  const g = state.gradient;
  const deltas = flatDeltas(g);
  const nodes = flatNodes(g);
  const params = state.forward && state.forward.answer.version === g.version
    ? state.forward.parameters : state.parameters;
  const lines = [`${LOSSES[state.network.loss] || `E = ${state.network.loss}`} = ${g.loss}`];
  const { columns, weights } = state.shape;
  for (let c = columns.length - 1; c >= 1; c--) {
    for (const node of columns[c]) {
      const f = state.shape.activation[node];
      if (c === columns.length - 1) {
        lines.push(`δ_${node} = ∂E/∂out_${node} · ${f}′(net_${node}) = ${short(deltas[node])}`);
      } else {
        const out = weights.filter((w) => w.from === node);
        const sum = out.map((w) => `${w.name}·δ_${w.to}`).join(" + ");
        const values = out.map((w) => `${short(params[w.name])}·${short(deltas[w.to])}`).join(" + ");
        lines.push(`δ_${node} = ${f}′(net_${node}) · (${sum}) = ${f}′(${short(nodes[node].net)}) · `
          + `(${values}) = ${short(deltas[node])}`);
      }
    }
  }
  for (const w of weights) {
    const x = w.layer === 0 ? `x${columns[0].indexOf(w.from) + 1}` : `out_${w.from}`;
    const xv = w.layer === 0 ? state.inputs[columns[0].indexOf(w.from)] : nodes[w.from].out;
    lines.push(`∂E/∂${w.name} = ${x} · δ_${w.to} = ${short(xv)} · ${short(deltas[w.to])} = `
      + `${short(g.gradients[w.name])}`);
  }
  for (const b of state.shape.biases) {
    lines.push(`∂E/∂${b.name} = δ_${b.to} = ${short(g.gradients[b.name])}`);
  }
  return section(`Backward (version ${g.version}): δ = ∂E/∂net, from the output back`, lines,
    "formulas-backward");
}

function updateFormulas() {
  const u = state.update;
  const lines = Object.keys(u.after).map((name) => {
    const g = u.gradients ? short(u.gradients[name]) : `∂E/∂${name}`;
    return `${name}: ${short(u.before[name])} − ${u.learningRate} · ${g} = ${short(u.after[name])}`;
  });
  return section(`Update (SGD, η = ${u.learningRate}, to version ${state.version}): `
    + "p ← p − η · ∂E/∂p", lines, "formulas-update");
}

function renderExplain() {
  const e = state.explanation;
  const box = $("explain");
  if (!e) {
    const note = document.createElement("p");
    note.className = "note";
    note.textContent = "Pick a weight or a bias in the drawing or the table.";
    box.replaceChildren(note);
    return;
  }
  const parts = [];
  const p = (text, cls) => {
    const el = document.createElement("p");
    el.textContent = text;
    if (cls) el.className = cls;
    parts.push(el);
    return el;
  };
  const h = document.createElement("h3");
  h.id = "explain-title";
  h.textContent = `∂E/∂${e.parameter} = ${e.gradient}`;
  parts.push(h);
  p(`${e.parameter} = ${e.value} is a ${e.kind} ${e.source ? `from ${e.source} ` : ""}into `
    + `${e.node} (version ${e.version}); the sample's loss E = ${e.loss}.`, "note");
  if (e.form === "paths") {
    p(`${e.path_count} path${e.path_count === 1 ? "" : "s"} from ${e.node} to the output; `
      + "each path's factors multiply, and the products add up to the gradient.", "note");
    e.paths.forEach((path, i) => {
      const div = document.createElement("div");
      div.className = "path";
      div.dataset.path = String(i);
      const title = document.createElement("h4");
      title.textContent = `Path ${i + 1}: ${path.nodes.join(" → ")}`;
      const list = document.createElement("ol");
      list.className = "factors";
      for (const f of path.factors) {
        const li = document.createElement("li");
        const sym = document.createElement("span");
        sym.className = "symbol";
        sym.textContent = f.symbol;
        sym.title = f.formula;
        const formula = document.createElement("span");
        formula.className = "formula";
        formula.textContent = ` = ${f.formula} = `;
        const value = document.createElement("span");
        value.className = "value";
        value.textContent = String(f.value);
        li.append(sym, formula, value);
        list.append(li);
      }
      const product = document.createElement("p");
      product.className = "product";
      product.append("product = ");
      const v = document.createElement("span");
      v.className = "value";
      v.textContent = String(path.product);
      product.append(v);
      div.append(title, list, product);
      parts.push(div);
    });
    const sum = p("", "sum");
    sum.append("sum of the products = ");
    const v = document.createElement("span");
    v.className = "value";
    v.textContent = String(e.sum);
    sum.append(v);
  } else if (e.delta) {
    p(e.note || "", "note");
    p(e.delta.recursion, "formula");
    p(`= ${e.delta.delta.symbol} · ${e.delta.input.symbol} = ${e.delta.delta.value} · `
      + `${e.delta.input.value} = ${e.delta.product}`, "formula");
  }
  box.replaceChildren(...parts);
}

/** A check's answer as a table: a caption, column titles, rows of a name and numbers. */
function showCheck(title, titles, rows, id) {
  const table = document.createElement("table");
  table.id = id;
  const c = document.createElement("caption");
  c.textContent = title;
  table.append(c, head(titles));
  const body = document.createElement("tbody");
  for (const [name, ...numbers] of rows) {
    const row = body.insertRow();
    cell(row, "th", name).scope = "row";
    for (const v of numbers) setNumber(cell(row, "td", ""), v);
  }
  table.append(body);
  const scroll = document.createElement("div");
  scroll.className = "scroll";
  scroll.append(table);
  $("checks").replaceChildren(scroll);
  say(title);
}

// ---- the model picker, the call list, the key

async function listModels() {
  const select = $("source");
  const options = [new Option("The blog's 2-3-3-1 network (its values)", "")];
  try {
    const page = await api.models(100);
    for (const m of page.items) {
      if ((m.tags || []).includes("playground")) continue;
      const option = new Option(
        `${m.name} (version ${m.version}, ${m.parameter_count} parameters)`, m.name,
      );
      option.disabled = !small(m.network);
      options.push(option);
    }
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    say(`Listing the stored models: ${error.message}`, true);
  }
  select.replaceChildren(...options);
  select.value = state.source;
}

function listCall({ method, path, status }) {
  const li = document.createElement("li");
  li.textContent = `${method} /${path} → ${status}`;
  const list = $("calls");
  list.prepend(li);
  while (list.children.length > MAX_CALLS_LISTED) list.lastElementChild.remove();
}

function pick(name) {
  act(`explaining ${name}`, async () => {
    state.selected = name;
    await explainSelected();
    render();
    const focus = document.querySelector(`#diagram .param[data-name="${name}"]`);
    if (focus && document.activeElement && document.activeElement.closest("#diagram")) focus.focus();
  });
}

function wire() {
  const key = sessionStorage.getItem("backprop-api-key") || "";
  api.key = key;
  $("api-key").value = key;
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    api.key = $("api-key").value.trim();
    sessionStorage.setItem("backprop-api-key", api.key);
    act("listing the models", listModels);
  });
  $("open").addEventListener("click", () => act("opening the model", async () => {
    await open($("source").value);
  }));
  $("forward").addEventListener("click", () => act("forward", async () => {
    await forward();
    await explainSelected();
    render();
    say(`Forward pass of version ${state.forward.answer.version}: out = `
      + `${state.forward.answer.outputs[0].join(", ")}`);
  }));
  $("backward").addEventListener("click", () => act("backward", async () => {
    if (!state.forward || state.forward.answer.version !== state.version) await forward();
    await backward();
    await explainSelected();
    render();
    say(`Backpropagation of version ${state.gradient.version}: E = ${state.gradient.loss}`);
  }));
  $("update").addEventListener("click", () => act("update", async () => {
    await update();
    await explainSelected();
    render();
    say(`One SGD step: version ${state.version}; the loss before it was ${state.update.loss}`);
  }));
  $("step").addEventListener("click", () => act("step", async () => {
    await forward();
    await backward();
    await update();
    await explainSelected();
    render();
    say(`Forward, backward and one SGD step: version ${state.version}; the loss before it `
      + `was ${state.update.loss}`);
  }));
  $("reset").addEventListener("click", () => act("reset", async () => {
    const answer = await api.putParameters(state.scratch, state.origin, state.version);
    state.parameters = answer.parameters;
    state.version = answer.version;
    Object.assign(state, { forward: null, gradient: null, update: null, losses: [] });
    await explainSelected();
    render();
    say(`Back to the starting parameters (version ${state.version}).`);
  }));
  $("train").addEventListener("click", () => act("training", async () => {
    const steps = Number($("steps").value);
    if (!Number.isInteger(steps) || steps < 1 || steps > 2000) {
      throw new Error("steps must be a whole number from 1 to 2000");
    }
    await train(steps);
    render();
    say(`Trained ${steps} steps: version ${state.version}, E = ${state.gradient.loss}`);
  }));
  $("create-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("creating the model", async () => {
      const layers = parseLayers($("create-layers").value);
      if (!layers) throw new Error('layers are written "3 relu, 1 sigmoid"');
      const network = { inputs: Number($("create-inputs").value), layers, loss: $("create-loss").value };
      if (!small(network)) {
        throw new Error(`at most ${LIMITS.units} units a layer and ${LIMITS.parameters} parameters`);
      }
      const name = $("create-name").value.trim();
      await api.create({ name, network, init: { scheme: $("create-init").value } });
      await open(name);
      await listModels();
      $("create").open = false;
    });
  });
  const onParam = (event) => {
    const target = event.target.closest("[data-name]");
    if (target && (target.classList.contains("param") || target.classList.contains("pick")
      || target.classList.contains("edge"))) pick(target.dataset.name);
  };
  $("diagram").addEventListener("click", onParam);
  $("parameters").addEventListener("click", onParam);
  $("diagram").addEventListener("keydown", (event) => {
    if ((event.key === "Enter" || event.key === " ") && event.target.classList.contains("param")) {
      event.preventDefault();
      pick(event.target.dataset.name);
    }
  });
  $("input-gradient").addEventListener("click", () => act("input gradient", async () => {
    const answer = await api.inputGradient(state.scratch, [state.inputs], [state.targets]);
    const rows = answer.input_gradients[0].map((g, i) => [`∂E/∂x${i + 1}`, g]);
    showCheck(`Input gradient (version ${answer.version}, E = ${answer.loss})`, ["", "value"],
      rows, "input-gradients");
  }));
  $("gradient-check").addEventListener("click", () => act("gradient check", async () => {
    const answer = await api.gradientCheck(state.scratch, [state.inputs], [state.targets]);
    const rows = answer.parameters.map((p) => [p.name, p.backprop, p.numeric, p.relative_error]);
    showCheck(`Gradient check (version ${answer.version}, ε = ${answer.epsilon}): largest `
      + `relative error ${answer.max_relative_error}`,
      ["", "backpropagation", "central differences", "relative error"], rows, "gradient-check-table");
  }));
  addEventListener("pagehide", () => {
    if (state.scratch) api.remove(state.scratch, true);
  });
}

wire();
act("opening the blog's network", async () => {
  await listModels();
  await open("");
});
