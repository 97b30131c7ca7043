#!/usr/bin/env bash
# A scratch PostgreSQL on 127.0.0.1 for the tests of the scale-out setup.
#   scripts/postgres.sh up     install (if missing), init and start; prints the database URL
#   scripts/postgres.sh down   stop it
#   scripts/postgres.sh url    print the URL
set -euo pipefail

DIR=${PST_POSTGRES_DIR:-/tmp/pst-postgres}
PORT=${PST_POSTGRES_PORT:-15432}
URL="postgresql+psycopg://postgres@127.0.0.1:${PORT}/pst"

pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

install() {
    if [ -z "$(pgbin)" ]; then
        echo "postgres: installing the Debian package" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    fi
}

as_postgres() { su postgres -s /bin/sh -c "$1"; }

up() {
    install
    local bin; bin=$(pgbin)
    mkdir -p "$DIR"
    chown postgres:postgres "$DIR"
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
        as_postgres "$bin/initdb -D $DIR/data -A trust -U postgres -E UTF8 --locale=C.UTF-8" >/dev/null
    fi
    if ! as_postgres "$bin/pg_ctl -D $DIR/data status" >/dev/null 2>&1; then
        as_postgres "$bin/pg_ctl -D $DIR/data -l $DIR/log -w -o '-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off' start" >/dev/null
    fi
    if ! psql -h 127.0.0.1 -p "$PORT" -U postgres -tAc "select 1 from pg_database where datname='pst'" | grep -q 1; then
        psql -h 127.0.0.1 -p "$PORT" -U postgres -qc "create database pst" >/dev/null
    fi
    echo "$URL"
}

down() {
    local bin; bin=$(pgbin)
    [ -n "$bin" ] && [ -f "$DIR/data/PG_VERSION" ] && as_postgres "$bin/pg_ctl -D $DIR/data -m fast stop" >/dev/null 2>&1 || true
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    url) echo "$URL" ;;
    *) echo "usage: $0 up|down|url" >&2; exit 2 ;;
esac
