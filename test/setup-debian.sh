#!/usr/bin/env bash
# Install what recsys needs to build, demo and test on Debian 12 (bookworm).
#
# Run as root; non-interactive; idempotent. When everything is already
# installed it only asks dpkg and returns (no apt-get at all).
#
# Installing postgresql-15 normally creates and starts a default "main"
# cluster. We don't want one (our scripts start throwaway clusters as the
# postgres user), so before installing we tell postgresql-common not to
# create it. A "main" cluster that already exists is left alone: it may be
# somebody else's, and our scripts never use it.
set -euo pipefail

PACKAGES=(
    postgresql-15              # server: initdb, pg_ctl, postgres (and postgres_fdw)
    postgresql-client-15       # psql
    postgresql-server-dev-15   # pg_config, PGXS, pg_regress, TAP test modules
    postgresql-common          # pg_virtualenv, pg_createcluster
    libopenblas0-pthread       # BLAS/LAPACK used at run time (via alternatives)
    libopenblas-pthread-dev
    liblapack-dev              # -llapack
    libblas-dev                # -lblas
    libpq-dev                  # libpq: distributed training talks to the shards
    libipc-run-perl            # needed by PostgreSQL::Test::Cluster (TAP tests)
    sqlsmith                   # random-query fuzzing in the TAP suite
    valgrind                   # test/memcheck.sh
    perl                       # prove, Test::More
    python3-psycopg            # psycopg 3: examples/shop.py, run by test/t/017_client.pl
    make
    gcc
    libc6-dev
)

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-debian.sh: must run as root (it installs packages)" >&2
    exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    case "$status" in
        ii*) ;;
        *) missing+=("$pkg") ;;
    esac
done

# Socket directory of Debian's clusters (pg_virtualenv's included). The
# package creates it via tmpfiles.d, which does not run on machines without
# systemd after /run was emptied by a reboot.
ensure_run_dir() {
    if [ ! -d /run/postgresql ] && getent passwd postgres >/dev/null; then
        install -d -m 2775 -o postgres -g postgres /run/postgresql
    fi
}

if [ "${#missing[@]}" -eq 0 ]; then
    ensure_run_dir
    echo "==> packages: all present"
    exit 0
fi

echo "==> packages: installing ${missing[*]}"

# Stop Debian from creating (and starting) a default "main" cluster when the
# server package is installed. postgresql-common's createcluster.conf
# includes this directory (include_dir), and its postinst reads
# create_main_cluster from it.
mkdir -p /etc/postgresql-common/createcluster.d
conf=/etc/postgresql-common/createcluster.d/recsys.conf
if [ ! -f "$conf" ] || ! grep -q '^create_main_cluster = false' "$conf"; then
    cat > "$conf" <<'EOF'
# Written by recsys test/setup-debian.sh: don't create a default "main"
# cluster when a postgresql-NN package is installed. The recsys demo and
# tests run their own throwaway clusters.
create_main_cluster = false
EOF
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600
          -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
apt-get "${apt_opts[@]}" update < /dev/null
apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" < /dev/null

ensure_run_dir
echo "==> packages: done"
