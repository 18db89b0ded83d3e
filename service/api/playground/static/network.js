// The seed's named notation, from a network's shape alone: nodes n1..nK with the inputs first,
// weights w1..wN row-major layer after layer (weights[i][j] joins input i of a layer to its
// unit j), biases b1..bM unit after unit. No numbers here: they all come from the API.

export function names(network) {
  const sizes = [network.inputs, ...network.layers.map((layer) => layer.units)];
  const columns = [];
  let k = 1;
  for (const size of sizes) {
    columns.push(Array.from({ length: size }, () => `n${k++}`));
  }
  const weights = [];
  const biases = [];
  for (let l = 0; l < network.layers.length; l++) {
    for (let i = 0; i < sizes[l]; i++) {
      for (let j = 0; j < sizes[l + 1]; j++) {
        weights.push({
          name: `w${weights.length + 1}`, layer: l, row: i, col: j,
          from: columns[l][i], to: columns[l + 1][j],
        });
      }
    }
  }
  for (let l = 0; l < network.layers.length; l++) {
    for (let j = 0; j < sizes[l + 1]; j++) {
      biases.push({ name: `b${biases.length + 1}`, layer: l, col: j, to: columns[l + 1][j] });
    }
  }
  const activation = {};
  network.layers.forEach((layer, l) => {
    for (const node of columns[l + 1]) activation[node] = layer.activation;
  });
  return { columns, weights, biases, activation, sizes };
}

export const LIMITS = { units: 8, parameters: 160 };

/** Whether the page draws and explains a network of this size (a larger one is a smear). */
export function small(network) {
  const sizes = [network.inputs, ...network.layers.map((layer) => layer.units)];
  let parameters = 0;
  for (let l = 1; l < sizes.length; l++) parameters += sizes[l - 1] * sizes[l] + sizes[l];
  return Math.max(...sizes) <= LIMITS.units && parameters <= LIMITS.parameters;
}

/** "3 relu, 1 sigmoid" as layers; null when it cannot be read. */
export function parseLayers(text) {
  const layers = [];
  for (const part of text.split(",")) {
    const match = part.trim().match(/^(\d+)\s+([a-z_]+)$/);
    if (!match) return null;
    layers.push({ units: Number(match[1]), activation: match[2] });
  }
  return layers.length ? layers : null;
}
