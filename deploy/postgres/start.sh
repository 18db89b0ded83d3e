#!/bin/sh
# PostgreSQL of the compose stack, from Debian's postgresql package: on the first start a
# cluster on the data volume with the user and database `backprop` and the password in
# $POSTGRES_PASSWORD (never stored in the image); then the server in the foreground, as the
# postgres user, as PID 1 (the stack stops it with SIGINT: a fast shutdown that does not wait
# for the replicas' pooled connections to close).
set -eu
bin=$(echo /usr/lib/postgresql/*/bin)
data=${PGDATA:-/var/lib/postgresql/data}
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
mkdir -p "$data"
chown postgres:postgres "$data"
chmod 700 "$data"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
if [ ! -s "$data/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    chown postgres "$pwfile"
    as_postgres "$bin/initdb" --pgdata="$data" --username=backprop --pwfile="$pwfile" \
        --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --no-locale >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"
    echo "CREATE DATABASE backprop OWNER backprop" \
        | as_postgres "$bin/postgres" --single -D "$data" postgres >/dev/null
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups \
    "$bin/postgres" -D "$data" -c listen_addresses='*' -c unix_socket_directories=/tmp
