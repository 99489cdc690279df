#!/usr/bin/env bash
# recsys quick start: from a fresh Debian 12, as root,
#
#   bash test/demo.sh
#
# installs the packages (test/setup-debian.sh), builds and installs the
# extension, starts a throwaway PostgreSQL 15 server as the postgres user in a
# temporary directory, loads generated sample ratings, trains a model and
# prints recommendations (test/demo.sql). The server is stopped and the
# temporary directory removed at the end, also on failure.
#
# Run as a non-root user it skips the package setup, and runs the server as
# that user (make install must then be able to write to PostgreSQL's dirs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PG_BINDIR=/usr/lib/postgresql/15/bin
export PG_CONFIG="$PG_BINDIR/pg_config"
PORT=${RECSYS_DEMO_PORT:-54329}
GEN_ARGS=(--users 2000 --items 1000 --rows 100000 --rank 5 --beta 20 --seed 42)

# PostgreSQL refuses to run as root: run servers and clients as postgres.
# The caller's environment is not trusted to pass through runuser, so
# everything a server needs is set explicitly with env.
if [ "$(id -u)" -eq 0 ]; then
    PGOSUSER=postgres
    as_pg() { (cd "$WORK" && runuser -u postgres -- env "$@"); }
else
    PGOSUSER=$(id -un)
    as_pg() { (cd "$WORK" && env "$@"); }
fi
# OpenBLAS must never start threads inside a backend.
PGENV=(OPENBLAS_NUM_THREADS=1 LC_ALL=C.UTF-8 LANG=C.UTF-8)

WORK=
cleanup() {
    local rc=$?
    set +e
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ -f "$WORK/data/postmaster.pid" ]; then
            echo "==> stopping the demo server"
            as_pg "${PGENV[@]}" "$PG_BINDIR/pg_ctl" -D "$WORK/data" -m fast -w stop >/dev/null \
                || as_pg "${PGENV[@]}" "$PG_BINDIR/pg_ctl" -D "$WORK/data" -m immediate -w stop
        fi
        # On stderr: when set -e ends the script at a failing as_pg call
        # whose output is redirected, bash runs this trap with that
        # redirection still in place (as_pg is a function with a subshell).
        if [ "$rc" -ne 0 ] && [ -f "$WORK/server.log" ]; then
            echo "--- server log (last 50 lines) ---" >&2
            tail -n 50 "$WORK/server.log" >&2
        fi
        rm -rf "$WORK"
    fi
    if [ "$rc" -ne 0 ]; then
        echo "==> demo FAILED (exit $rc)" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$(id -u)" -eq 0 ]; then
    echo "==> checking packages"
    bash "$ROOT/test/setup-debian.sh"
else
    echo "==> not root: skipping package setup (test/setup-debian.sh)"
fi

echo "==> building"
make -s PG_CONFIG="$PG_CONFIG"

echo "==> installing the extension"
make -s PG_CONFIG="$PG_CONFIG" install

# Under /tmp (not $TMPDIR): postgres must be able to reach it.
WORK=$(mktemp -d /tmp/recsys-demo.XXXXXX)
chmod 755 "$WORK"
# The repo may be unreadable by postgres: give it its own copies.
cp "$ROOT/test/demo.sql" "$WORK/demo.sql"
if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres:postgres "$WORK"
fi

echo "==> starting a throwaway PostgreSQL 15 server in $WORK (as $PGOSUSER)"
as_pg "${PGENV[@]}" "$PG_BINDIR/initdb" -D "$WORK/data" -U postgres -A trust \
    -E UTF8 --locale=C.UTF-8 --no-sync >"$WORK/initdb.log" 2>&1 \
    || { echo "==> initdb failed:" >&2; cat "$WORK/initdb.log" >&2; exit 1; }
# Unix socket in our own directory only: no TCP, so the port cannot clash
# with other servers on this machine. The explicit exit (not set -e) leaves
# the >/dev/null behind, so that cleanup's server log tail is seen.
as_pg "${PGENV[@]}" "$PG_BINDIR/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w -t 120 \
    -o "-c listen_addresses='' -c unix_socket_directories='$WORK' -p $PORT -c fsync=off" \
    start >/dev/null || { echo "==> the server did not start" >&2; exit 1; }

echo "==> running test/demo.sql"
"$ROOT/test/data/generate" "${GEN_ARGS[@]}" \
    | as_pg "${PGENV[@]}" PGHOST="$WORK" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres \
        "$PG_BINDIR/psql" -X -v ON_ERROR_STOP=1 -P pager=off -f "$WORK/demo.sql"

echo "==> demo OK"
