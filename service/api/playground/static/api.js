// The service's public API, as this page calls it: JSON in and out, RFC 9457 problems as errors.
// Every call is reported to `onCall`, so that the page can list what it asked.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export class Api {
  /** `base`: the URL the API's paths are relative to (the page's folder). */
  constructor(base, onCall = () => {}) {
    this.base = base;
    this.onCall = onCall;
    this.key = "";
  }

  async call(method, path, body, headers = {}) {
    const init = { method, headers: { Accept: "application/json", ...headers } };
    if (this.key) init.headers.Authorization = `Bearer ${this.key}`;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(new URL(path, this.base), init);
    this.onCall({ method, path, status: response.status, body });
    const text = await response.text();
    const answer = text ? JSON.parse(text) : null;
    if (!response.ok) throw new ApiError(response.status, answer);
    return { answer, etag: response.headers.get("ETag") };
  }

  async get(path) {
    return (await this.call("GET", path)).answer;
  }

  async post(path, body) {
    return (await this.call("POST", path, body)).answer;
  }

  models(limit = 100) {
    return this.get(`v1/models?limit=${limit}`);
  }

  model(name) {
    return this.get(`v1/models/${encodeURIComponent(name)}`);
  }

  parameters(name) {
    return this.get(`v1/models/${encodeURIComponent(name)}/parameters?notation=named`);
  }

  create(body) {
    return this.post("v1/models", body);
  }

  async putParameters(name, parameters, version) {
    const path = `v1/models/${encodeURIComponent(name)}/parameters?notation=named`;
    const headers = version ? { "If-Match": `"${version}"` } : {};
    return (await this.call("PUT", path, { parameters }, headers)).answer;
  }

  remove(name, keepalive = false) {
    const init = { method: "DELETE", keepalive, headers: {} };
    if (this.key) init.headers.Authorization = `Bearer ${this.key}`;
    return fetch(new URL(`v1/models/${encodeURIComponent(name)}`, this.base), init);
  }

  forward(name, inputs) {
    return this.post(`v1/models/${encodeURIComponent(name)}/forward?notation=named`, {
      inputs,
      trace: true,
    });
  }

  gradient(name, inputs, targets) {
    return this.post(`v1/models/${encodeURIComponent(name)}/gradient?notation=named`, {
      inputs,
      targets,
      deltas: true,
      trace: true,
    });
  }

  trainStep(name, inputs, targets, learningRate) {
    return this.post(`v1/models/${encodeURIComponent(name)}/train-step`, {
      inputs,
      targets,
      learning_rate: learningRate,
    });
  }

  inputGradient(name, inputs, targets) {
    return this.post(`v1/models/${encodeURIComponent(name)}/input-gradient`, { inputs, targets });
  }

  gradientCheck(name, inputs, targets) {
    return this.post(`v1/models/${encodeURIComponent(name)}/gradient-check`, { inputs, targets });
  }

  explain(name, inputs, targets, parameter) {
    return this.post(`v1/models/${encodeURIComponent(name)}/explain`, {
      inputs,
      targets,
      parameter,
    });
  }
}
