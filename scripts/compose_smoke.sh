#!/usr/bin/env bash
# Smoke-test the compose stack (deploy/compose.yaml): three replicas of the service's image on
# one PostgreSQL behind HAProxy, all built from Debian packages and run with podman-compose on
# ports of 127.0.0.1 only. scripts/compose_smoke.py drives it: the worked example through the
# load balancer, train-steps while a replica is killed and started again, a training job
# across replicas, PostgreSQL stopped and started. Its containers, volume and network are
# removed at the end, also when it fails.
#
#   bash scripts/compose_smoke.sh     (after scripts/container_smoke.sh, whose image it reuses)
set -euo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
source scripts/containers.sh
containers_init podman-compose

export COMPOSE_PROJECT=backprop-compose-smoke-$$
export BACKPROP_IMAGE=localhost/backprop-service:smoke
export BACKPROP_LB_PORT BACKPROP_REPLICA_1_PORT BACKPROP_REPLICA_2_PORT BACKPROP_REPLICA_3_PORT
BACKPROP_LB_PORT=$(free_port)
BACKPROP_REPLICA_1_PORT=$(free_port)
BACKPROP_REPLICA_2_PORT=$(free_port)
BACKPROP_REPLICA_3_PORT=$(free_port)
# A killed replica's job is marked interrupted by the others after 5 s without a heartbeat.
export BACKPROP_JOB_HEARTBEAT_SECONDS=1 BACKPROP_JOB_STALE_SECONDS=5
secrets=$(mktemp -d)
POSTGRES_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
export POSTGRES_PASSWORD BACKPROP_API_KEYS_FILE="$secrets/api_keys"
key=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
echo "$key" >"$secrets/admin_key"
echo "$key:admin" >"$BACKPROP_API_KEYS_FILE"
chmod 644 "$BACKPROP_API_KEYS_FILE"  # read by the replicas' uid 10001

compose() { bash scripts/compose.sh "$@"; }
cleanup() {
    status=$?
    if ((status)); then
        for service in postgres backprop-1 backprop-2 backprop-3 lb; do
            echo "-- logs of $service (last lines)"
            podman logs --tail 15 "${COMPOSE_PROJECT}_${service}_1" 2>&1 || true
        done
    fi
    # The containers with any anonymous volumes, then the stack's network and named volume.
    podman ps --all --quiet --filter "label=io.podman.compose.project=$COMPOSE_PROJECT" \
        | xargs --no-run-if-empty podman rm --force --volumes --time 5 >/dev/null 2>&1 || true
    compose down --volumes >/dev/null 2>&1 || true
    podman network rm --force "${COMPOSE_PROJECT}_default" >/dev/null 2>&1 || true
    rm -rf "$secrets"
    step "removed the stack"
}
trap cleanup EXIT

service_image "$BACKPROP_IMAGE"
step "starting $COMPOSE_PROJECT: load balancer on 127.0.0.1:$BACKPROP_LB_PORT"
compose up --detach >"$WORK/compose-up.log" 2>&1 || {
    cat "$WORK/compose-up.log" >&2
    exit 1
}
replica_urls=()
for port in "$BACKPROP_REPLICA_1_PORT" "$BACKPROP_REPLICA_2_PORT" "$BACKPROP_REPLICA_3_PORT"; do
    replica_urls+=(--replica "http://127.0.0.1:$port")
done
step "driving it"
timeout 300 .venv/bin/python -m scripts.compose_smoke --lb "http://127.0.0.1:$BACKPROP_LB_PORT" \
    "${replica_urls[@]}" --key-file "$secrets/admin_key" --project "$COMPOSE_PROJECT"
step "passed"
