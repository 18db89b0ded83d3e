#!/usr/bin/env bash
# podman-compose on deploy/compose.yaml, with the podman setup of scripts/containers.sh: first
# the images it needs, made from Debian packages when missing (the service's, HAProxy's and
# PostgreSQL's), then `podman-compose ARGS...`. For example:
#
#   POSTGRES_PASSWORD=... BACKPROP_API_KEYS_FILE=keys bash scripts/compose.sh up -d
#   bash scripts/compose.sh down --volumes
#
# COMPOSE_PROJECT names the stack (default backprop); BACKPROP_IMAGE picks the service's image
# (default localhost/backprop-service:latest, built from this checkout when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/containers.sh
containers_init podman-compose >&2

export BACKPROP_IMAGE=${BACKPROP_IMAGE:-localhost/backprop-service:latest}
if ! podman image exists "$BACKPROP_IMAGE"; then
    service_image "$BACKPROP_IMAGE" >&2
fi
debian_image localhost/backprop-postgres:bookworm postgresql >&2
debian_image localhost/backprop-haproxy:bookworm haproxy >&2
exec podman-compose --project-name "${COMPOSE_PROJECT:-backprop}" --file deploy/compose.yaml "$@"
