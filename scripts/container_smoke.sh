#!/usr/bin/env bash
# Build the container image with podman and smoke-test it: it starts, answers /healthz, passes
# its HEALTHCHECK, computes the worked example, does not run as root, and keeps a model on its
# /data volume across a restart. Runs as root on a machine with no Docker engine and no
# container registry: the base image is made with mmdebstrap from this machine's Debian mirror.
#
#   bash scripts/container_smoke.sh        (CONTAINER_WORK=folder to keep podman's state elsewhere)
#
# The work folder keeps the base image and the build cache, so later runs take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=localhost/backprop-service:smoke
NAME=backprop-smoke-$$
VOLUME=backprop-smoke-data-$$
START=$SECONDS
# podman's setup, the Debian base image and the build, shared with scripts/compose_smoke.sh.
source scripts/containers.sh
containers_init

cleanup() {
    podman rm --force --time 5 "$NAME" >/dev/null 2>&1 || true
    podman volume rm --force "$VOLUME" >/dev/null 2>&1 || true
}
trap cleanup EXIT

service_image "$IMAGE"

port=$(free_port)
url="http://127.0.0.1:$port"

wait_healthy() {
    for _ in $(seq 120); do
        if python3 -c "import urllib.request as r; r.urlopen('$url/healthz', timeout=2)" 2>/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    podman logs "$NAME" | tail -n 40
    echo "container: $url/healthz did not answer" >&2
    return 1
}

step "running it on $url with the volume $VOLUME at /data"
podman volume create "$VOLUME" >/dev/null
# Without systemd podman cannot schedule the healthcheck timer and says so; the check itself is
# run by hand below.
if ! podman run --detach --name "$NAME" --publish "127.0.0.1:$port:8000" \
    --volume "$VOLUME:/data" "$IMAGE" >/dev/null 2>"$WORK/run.err"; then
    cat "$WORK/run.err" >&2
    exit 1
fi
wait_healthy

step "HEALTHCHECK"
check=$(podman image inspect --format '{{.HealthCheck.Test}}' "$IMAGE")
echo "$check" | grep -q /healthz  # kept by --format docker
podman healthcheck run "$NAME"    # exit status 0: healthy
echo "healthy"

step "not root"
uid=$(podman exec "$NAME" python3 -c 'import os; print(os.getuid())')
user=$(podman inspect --format '{{.Config.User}}' "$IMAGE")
echo "uid $uid, USER $user"
test "$uid" != 0
[[ "$user" =~ ^[0-9]+(:[0-9]+)?$ ]]

step "the worked example"
python3 - "$url" <<'PY'
import json
import sys
import urllib.request

url = sys.argv[1]


def call(method: str, path: str, body: object = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data, {"Content-Type": "application/json"}, method=method
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


layers = [{"units": 3, "activation": "relu"}, {"units": 3, "activation": "relu"},
          {"units": 1, "activation": "sigmoid"}]
weights = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] * 2
biases = [0.1, -0.4, 0.3, -0.5, 0.5, 0.6, -0.7]
parameters = {f"w{i + 1}": w for i, w in enumerate(weights)}
parameters.update({f"b{i + 1}": b for i, b in enumerate(biases)})
created = call("POST", "/v1/models", {
    "name": "seed",
    "network": {"inputs": 2, "layers": layers, "loss": "half_squared_error"},
    "parameters": parameters,
})
assert created["version"] == 1, created
sample = {"inputs": [[0.23, 0.55]], "targets": [[0.01]]}
out = call("POST", "/v1/models/seed/forward", {"inputs": sample["inputs"]})["outputs"]
assert out == [[0.8034818811389179]], out
loss = call("POST", "/v1/models/seed/gradient", sample)["loss"]
assert loss == 0.31480674784787793, loss
step = call("POST", "/v1/models/seed/train-step", {**sample, "learning_rate": 0.01})
assert step["version"] == 2, step
print(f"forward {out[0][0]}, loss {loss}, version {step['version']} after one SGD step")
PY

step "restarting (SIGTERM, then a new start on the same volume)"
if ! podman restart --time 30 "$NAME" >/dev/null 2>"$WORK/run.err"; then
    cat "$WORK/run.err" >&2
    exit 1
fi
logs=$(podman logs "$NAME" 2>&1)
grep -q "Finished server process" <<<"$logs"  # the first run shut down cleanly on SIGTERM
wait_healthy
python3 - "$url" <<'PY'
import json
import sys
import urllib.request

with urllib.request.urlopen(sys.argv[1] + "/v1/models/seed", timeout=30) as response:
    model = json.loads(response.read())
assert model["version"] == 2, model
print("the model survived the restart at version", model["version"])
PY

step "removing it"
cleanup
trap - EXIT
step "passed"
