#!/usr/bin/env bash
# recsys full check: from a fresh Debian 12, as root,
#
#   bash test/check.sh
#
# installs the packages (test/setup-debian.sh), builds the extension with
# warnings as errors, installs it, then runs `make installcheck` (pg_regress
# tests, then the TAP tests in test/t/) as the postgres user against a
# throwaway cluster from pg_virtualenv, in a copy of the work tree owned by
# postgres. Every server involved runs with OPENBLAS_NUM_THREADS=1.
# Temporary files are removed and no server is left running, also on failure.
#
# Run as a non-root user (e.g. postgres) it skips the package setup and runs
# the tests as that user; make install must then be able to write to
# PostgreSQL's directories.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PG_MAJOR=15
PG_BINDIR=/usr/lib/postgresql/$PG_MAJOR/bin
export PG_CONFIG="$PG_BINDIR/pg_config"
WARN_CFLAGS="-Wall -Wextra -Werror -DUSE_ASSERT_CHECKING"
# Upper bound for the test run, below CI's 90 minutes, so that a hang still
# ends with logs printed and everything cleaned up.
TEST_TIMEOUT=${RECSYS_TEST_TIMEOUT:-75m}

# Connection settings of the caller must not leak into the tests.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGSYSCONFDIR \
      PGPASSWORD PGPASSFILE PGDATA PGOPTIONS PG_CLUSTER_CONF_ROOT

# PostgreSQL refuses to run as root: servers and tests run as postgres, in
# the copy of the tree under /tmp ($WORK/src), never in this one: runuser
# keeps the current directory, and postgres cannot enter a clone under
# /root (mode 0700) nor read its files.  The same holds in test/memcheck.sh
# and test/demo.sh; .ci/run runs them from such a directory.
if [ "$(id -u)" -eq 0 ]; then
    PGOSUSER=postgres
    as_pg() { (cd "$WORK/src" && runuser -u postgres -- env "$@"); }
else
    PGOSUSER=$(id -un)
    as_pg() { (cd "$WORK/src" && env "$@"); }
fi

START=$(date +%s)
phase_start=$START
phase() {
    local now
    now=$(date +%s)
    if [ -n "${PHASE:-}" ]; then
        echo "    ($PHASE: $((now - phase_start))s)"
    fi
    PHASE=$1
    phase_start=$now
    echo "==> $1"
}

WORK=
cleanup() {
    local rc=$?
    set +e
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        # Any server still running from our temp dir (pg_virtualenv's or a
        # TAP test's, e.g. after a timeout) is stopped, by its own pid file.
        local pidfile
        while IFS= read -r pidfile; do
            echo "==> stopping leftover server in $(dirname "$pidfile")"
            as_pg "$PG_BINDIR/pg_ctl" -D "$(dirname "$pidfile")" -m immediate -w stop
        done < <(find "$WORK" -name postmaster.pid 2>/dev/null)
        rm -rf "$WORK"
    fi
    if [ "$rc" -eq 0 ]; then
        echo "==> check OK ($(( $(date +%s) - START ))s)"
    else
        echo "==> check FAILED (exit $rc) after $(( $(date +%s) - START ))s" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$(id -u)" -eq 0 ]; then
    phase "checking packages"
    bash "$ROOT/test/setup-debian.sh"
else
    phase "not root: skipping package setup (test/setup-debian.sh)"
fi

phase "building (warnings are errors)"
make -s clean PG_CONFIG="$PG_CONFIG"
make PG_CONFIG="$PG_CONFIG" PG_CFLAGS="$WARN_CFLAGS"

phase "installing the extension"
make PG_CONFIG="$PG_CONFIG" PG_CFLAGS="$WARN_CFLAGS" install

phase "copying the work tree for the $PGOSUSER user"
# Under /tmp (not $TMPDIR): postgres must be able to reach it.
WORK=$(mktemp -d /tmp/recsys-check.XXXXXX)
mkdir "$WORK/src" "$WORK/tmp"
tar -C "$ROOT" \
    --exclude=./.git --exclude=./tmp_check --exclude=./results \
    --exclude=./regression.diffs --exclude=./regression.out --exclude=./log \
    -cf - . | tar -C "$WORK/src" -xf -

# pg_ctlcluster starts the pg_virtualenv server with an environment made only
# of the cluster's "environment" file (plus LANG): it does not inherit ours.
cat > "$WORK/pg-environment" <<'EOF'
# environment of the pg_virtualenv test server (see test/check.sh)
OPENBLAS_NUM_THREADS = 1
EOF

# Run inside pg_virtualenv: make sure the server really has
# OPENBLAS_NUM_THREADS=1, then run the tests. TAP test servers are started by
# PostgreSQL::Test::Cluster with pg_ctl and inherit the environment of make.
cat > "$WORK/run-installcheck.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
datadir=$(pg_conftool -s "$PGVERSION" regress show data_directory)
pid=$(head -n 1 "$datadir/postmaster.pid")
if ! tr '\0' '\n' < "/proc/$pid/environ" | grep -qx 'OPENBLAS_NUM_THREADS=1'; then
    echo "pg_virtualenv server (pid $pid) lacks OPENBLAS_NUM_THREADS=1 in its environment" >&2
    exit 1
fi
echo "==> pg_virtualenv server pid $pid on port $PGPORT has OPENBLAS_NUM_THREADS=1"
exec make installcheck PG_CONFIG="$PG_CONFIG"
EOF
chmod 755 "$WORK/run-installcheck.sh"
if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres:postgres "$WORK"
fi

phase "running make installcheck (pg_regress + TAP) as $PGOSUSER under pg_virtualenv"
rc=0
# TMPDIR inside $WORK: pg_virtualenv's cluster and the TAP tests' sockets
# live there, so cleanup can find any server left behind.
as_pg OPENBLAS_NUM_THREADS=1 LC_ALL=C.UTF-8 LANG=C.UTF-8 TMPDIR="$WORK/tmp" \
    PG_CONFIG="$PG_CONFIG" \
    timeout --kill-after=60s "$TEST_TIMEOUT" \
    pg_virtualenv -v "$PG_MAJOR" -c "--environment=$WORK/pg-environment" \
    "$WORK/run-installcheck.sh" || rc=$?

if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 124 ] && echo "==> tests timed out after $TEST_TIMEOUT" >&2
    if [ -f "$WORK/src/regression.diffs" ]; then
        echo "--- regression.diffs (first 400 lines) ---"
        head -n 400 "$WORK/src/regression.diffs"
    fi
    if [ -d "$WORK/src/tmp_check/log" ]; then
        for f in "$WORK/src/tmp_check/log"/*; do
            [ -f "$f" ] || continue
            echo "--- ${f#"$WORK/src/"} (last 60 lines) ---"
            tail -n 60 "$f"
        done
    fi
    # Keep the evidence in the (git-ignored) usual places of the work tree;
    # the next run's make clean removes them.
    for f in regression.diffs regression.out results tmp_check/log; do
        if [ -e "$WORK/src/$f" ]; then
            mkdir -p "$(dirname "$ROOT/$f")"
            cp -r "$WORK/src/$f" "$(dirname "$ROOT/$f")/" 2>/dev/null || true
        fi
    done
    echo "==> test output copied to $ROOT: regression.diffs, results/, tmp_check/log/"
    exit "$rc"
fi

# A short memory check: the core regression tests against a server under
# valgrind memcheck (the whole suite: bash test/memcheck.sh; AddressSanitizer:
# bash test/memcheck.sh --asan).
phase "memory check (valgrind, short)"
bash "$ROOT/test/memcheck.sh" --short
phase "done"
