# Shared by the container smokes (scripts/container_smoke.sh, scripts/compose_smoke.sh): podman
# set up for a machine with no Docker engine, no systemd and no container registry, and images
# made from this machine's Debian mirror. Source it from bash:
#
#   source scripts/containers.sh
#   containers_init podman-compose     # the tools (and any extra Debian packages), podman's config
#   service_image localhost/backprop-service:smoke
#   debian_image localhost/backprop-haproxy:bookworm haproxy
#
# CONTAINER_WORK=folder keeps podman's state elsewhere than /var/tmp/backprop-containers; it
# holds the images and the build cache, so later runs take seconds.

WORK=${CONTAINER_WORK:-/var/tmp/backprop-containers}
BASE_IMAGE=localhost/backprop-base:bookworm
START=${START:-$SECONDS}

step() { echo "== container: $* ($((SECONDS - START)) s)"; }

# Install podman, mmdebstrap, runc and the Debian packages named as arguments when missing,
# and point podman at a configuration of its own in $WORK.
containers_init() {
    local missing=() tool
    for tool in podman mmdebstrap runc "$@"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        step "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi

    mkdir -p "$WORK"
    local nofile
    nofile=$(ulimit -Hn)
    cat >"$WORK/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
    cat >"$WORK/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$WORK/storage"
runroot = "$WORK/run"
CONF
    export CONTAINERS_CONF="$WORK/containers.conf" CONTAINERS_STORAGE_CONF="$WORK/storage.conf"
}

# debian_image IMAGE PACKAGE...: a Debian bookworm minbase image with these packages, made by
# mmdebstrap from this machine's mirror (no registry needed), unless it exists already.
debian_image() {
    local image=$1 packages
    shift
    podman image exists "$image" && return 0
    packages=$(
        IFS=,
        echo "$*"
    )
    local mirror
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    mirror=${mirror:-$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)}
    step "making $image (Debian bookworm minbase with $packages, from $mirror)"
    local tar="$WORK/image-$$.tar"
    mmdebstrap --quiet --variant=minbase --include="$packages" bookworm "$tar" "$mirror"
    podman import --quiet "$tar" "$image" >/dev/null
    rm -f "$tar"
}

# service_image IMAGE: the service's image (the Dockerfile) on the Debian base with Python.
service_image() {
    debian_image "$BASE_IMAGE" python3 python3-venv python3-pip ca-certificates
    step "building $1"
    podman build --quiet --format docker --build-arg "BASE=$BASE_IMAGE" \
        --volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
        --tag "$1" . >/dev/null
}

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
