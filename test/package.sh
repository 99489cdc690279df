#!/usr/bin/env bash
# recsys as a Debian package: from a fresh Debian 12, as root,
#
#   bash test/package.sh
#
# 1. installs what is missing: the packages of test/setup-debian.sh, then the
#    Build-Depends of debian/control (debhelper, postgresql-server-dev-all,
#    ...), with apt-get; they stay installed, like test/setup-debian.sh's;
# 2. checks that the version numbers agree: EXTVERSION of the Makefile,
#    default_version of recsys.control, debian/changelog and META.json (whose
#    install script must be one the package installs);
# 3. builds postgresql-15-recsys with Debian's PostgreSQL extension tooling
#    (debian/: pg_buildext, dh --with pgxs_loop) from a copy of this tree in
#    a temporary directory: dpkg-buildpackage -us -uc -b, in a clean
#    environment (no CFLAGS, PG_CFLAGS, ... of the caller: Debian's build
#    flags only);
# 4. installs the .deb with dpkg -i and uses it in a throwaway cluster,
#    started as the postgres user in the temporary directory (Unix socket
#    there, no TCP): CREATE EXTENSION recsys, a small interactions table,
#    CALL train(...), SELECT * FROM recommend(...), which must return rows.
#
# The system is left as found, as far as the extension goes: installing the
# package writes the files that `make install` writes
# (/usr/lib/postgresql/15/lib/recsys.so and bitcode/,
# /usr/share/postgresql/15/extension/recsys*).  When postgresql-15-recsys was
# not installed before, it is removed again at the end (dpkg -r), and the
# files of an earlier `make install` that it replaced are put back as they
# were.  When it was installed before, it stays installed, in the version
# just built.  A build installed under another prefix (make install
# DESTDIR=/tmp/mypg ...) is not touched.
#
# Nothing is written to this tree, which may be anywhere (also in a 0700
# directory under /root: the postgres user reads nothing of it).  The
# temporary directory is removed and no server is left running, also on
# failure; on failure the tail of the build log or of the server log says why.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

PG_MAJOR=15
PG_BINDIR=/usr/lib/postgresql/$PG_MAJOR/bin
PACKAGE=postgresql-$PG_MAJOR-recsys
# Only names the socket file: the server listens on no TCP port, and the
# socket is in our own directory, so no other server can clash with it.
PORT=${RECSYS_PACKAGE_PORT:-54331}
PGENV=(OPENBLAS_NUM_THREADS=1 LC_ALL=C.UTF-8 LANG=C.UTF-8)

# Connection settings of the caller must not leak into the check.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGSYSCONFDIR \
      PGPASSWORD PGPASSFILE PGDATA PGOPTIONS PG_CLUSTER_CONF_ROOT

if [ "$(id -u)" -ne 0 ]; then
    echo "package.sh: must run as root (it installs packages, and the .deb)" >&2
    exit 1
fi

START=$(date +%s)
phase_start=$START
PHASE=
phase() {
    local now
    now=$(date +%s)
    if [ -n "$PHASE" ]; then
        echo "    ($PHASE: $((now - phase_start))s)"
    fi
    PHASE=$1
    phase_start=$now
    echo "==> $1"
}

# PostgreSQL refuses to run as root: the server and psql run as postgres,
# from the temporary directory (runuser keeps the current directory).
as_pg() { (cd "$WORK/pg" && runuser -u postgres -- env "${PGENV[@]}" "$@"); }

WORK=
INSTALLED_BY_US=0
cleanup() {
    local rc=$?
    set +e
    if [ -n "$WORK" ] && [ -f "$WORK/pg/data/postmaster.pid" ]; then
        echo "==> stopping the server"
        as_pg "$PG_BINDIR/pg_ctl" -D "$WORK/pg/data" -m fast -w stop >/dev/null \
            || as_pg "$PG_BINDIR/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop
    fi
    # On stderr: when set -e ends the script at a failing command whose
    # output is redirected, bash runs this trap with that redirection.
    if [ "$rc" -ne 0 ] && [ -n "$WORK" ] && [ -s "$WORK/pg/server.log" ]; then
        echo "--- server log (last 60 lines) ---" >&2
        tail -n 60 "$WORK/pg/server.log" >&2
    fi
    if [ "$INSTALLED_BY_US" -eq 1 ]; then
        echo "==> removing $PACKAGE (it was not installed before)"
        if ! dpkg -r "$PACKAGE"; then
            echo "==> dpkg -r $PACKAGE failed" >&2
            [ "$rc" -eq 0 ] && rc=1
        fi
        if [ -s "$WORK/preexisting.tar" ]; then
            echo "==> restoring the files of an earlier make install that the package replaced"
            if ! tar -C / -xpf "$WORK/preexisting.tar"; then
                echo "==> restoring them failed" >&2
                [ "$rc" -eq 0 ] && rc=1
            fi
        fi
    fi
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        rm -rf "$WORK"
    fi
    if [ "$rc" -eq 0 ]; then
        echo "==> package OK ($(( $(date +%s) - START ))s)"
    else
        echo "==> package FAILED (exit $rc) after $(( $(date +%s) - START ))s${PHASE:+, in: $PHASE}" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600
          -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

phase "checking packages"
bash "$ROOT/test/setup-debian.sh"
if ! dpkg-query -W -f='${db:Status-Abbrev}' dpkg-dev 2>/dev/null | grep -q '^ii'; then
    echo "==> packages: installing dpkg-dev"
    apt-get "${apt_opts[@]}" update < /dev/null
    apt-get "${apt_opts[@]}" install --no-install-recommends dpkg-dev < /dev/null
fi

phase "copying the tree"
# Under /tmp, readable by postgres (the cluster's directory is in it); the
# build directory itself stays root's.
WORK=$(mktemp -d /tmp/recsys-package.XXXXXX)
chmod 755 "$WORK"
mkdir -m 700 "$WORK/build"
mkdir "$WORK/pg"
SRC="$WORK/build/recsys"
mkdir "$SRC"
# The files git lists (tracked, or new and not ignored): no build products.
# Without git (e.g. .ci/run's copy, which has no .git), everything but .git
# and the usual build products; the package build starts with `make clean`
# (debian/rules clean) in any case.
if command -v git >/dev/null && git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "    the files git lists in $ROOT"
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
        tar -C "$ROOT" --null --no-recursion --ignore-failed-read -cf - -T - |
        tar -C "$SRC" -xf -
else
    echo "    $ROOT without .git and build products"
    tar -C "$ROOT" --exclude=./.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
        --exclude=./tmp_check --exclude=./results --exclude=./log \
        --exclude=./regression.diffs --exclude=./regression.out \
        -cf - . | tar -C "$SRC" -xf -
fi
for f in Makefile recsys.control META.json debian/control debian/changelog debian/rules; do
    [ -f "$SRC/$f" ] || { echo "==> $f is missing from $ROOT" >&2; exit 1; }
done

phase "checking build dependencies (debian/control)"
if ! (cd "$SRC" && dpkg-checkbuilddeps) 2>/dev/null; then
    echo "    installing the missing ones: apt-get build-dep"
    apt-get "${apt_opts[@]}" update < /dev/null
    apt-get "${apt_opts[@]}" build-dep --no-install-recommends "$SRC" < /dev/null
fi
(cd "$SRC" && dpkg-checkbuilddeps)

phase "checking version numbers"
EXTVERSION=$(sed -n 's/^EXTVERSION[[:space:]]*=[[:space:]]*//p' "$SRC/Makefile")
CONTROL_VERSION=$(sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\(.*\)'.*/\1/p" "$SRC/recsys.control")
DEB_VERSION=$(cd "$SRC" && dpkg-parsechangelog -S Version)
DEB_UPSTREAM=${DEB_VERSION%-*}
read -r META_VERSION META_PROVIDES_VERSION META_FILE META_LICENSE < <(perl -MJSON::PP -e '
    local $/; my $m = decode_json(<STDIN>);
    my $p = $m->{provides}{recsys} or die "META.json: no provides.recsys\n";
    print join(" ", map { defined && length ? $_ : "-" }
        $m->{version}, $p->{version}, $p->{file}, $m->{license}), "\n";' < "$SRC/META.json")
# 1.2 -> 1.2.0 (PGXN and the Debian version use three components)
SEMVER=$EXTVERSION
case $SEMVER in *.*.*) ;; *) SEMVER=$SEMVER.0 ;; esac
echo "    Makefile EXTVERSION $EXTVERSION, recsys.control $CONTROL_VERSION, debian/changelog $DEB_VERSION,"
echo "    META.json $META_VERSION (provides recsys $META_PROVIDES_VERSION, file $META_FILE, license $META_LICENSE)"
bad=0
[ "$CONTROL_VERSION" = "$EXTVERSION" ] || { echo "==> recsys.control's default_version is not the Makefile's EXTVERSION" >&2; bad=1; }
[ "$DEB_UPSTREAM" = "$SEMVER" ] || { echo "==> debian/changelog: version $DEB_VERSION, expected $SEMVER (the Makefile's EXTVERSION: add an entry at the top, e.g. dch -v $SEMVER from devscripts)" >&2; bad=1; }
[ "$META_VERSION" = "$SEMVER" ] || { echo "==> META.json: version $META_VERSION, expected $SEMVER" >&2; bad=1; }
[ "$META_PROVIDES_VERSION" = "$SEMVER" ] || { echo "==> META.json: provides.recsys.version $META_PROVIDES_VERSION, expected $SEMVER" >&2; bad=1; }
if [ "$META_LICENSE" != postgresql ] || [ ! -f "$SRC/LICENSE" ]; then
    echo "==> META.json's license is not postgresql, or LICENSE is missing" >&2; bad=1
fi
[ "$bad" -eq 0 ] || exit 1

phase "building the package (dpkg-buildpackage -us -uc -b, log: build.log)"
# A clean environment: Debian's build flags (dpkg-buildflags, passed to PGXS
# as COPT by pg_buildext), nothing of the caller's.
if ! (cd "$SRC" && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="${HOME:-/root}" \
        LANG=C.UTF-8 LC_ALL=C.UTF-8 \
        dpkg-buildpackage -us -uc -b -j"$(nproc)") > "$WORK/build.log" 2>&1 < /dev/null; then
    echo "--- build log (last 80 lines) ---" >&2
    tail -n 80 "$WORK/build.log" >&2
    echo "==> dpkg-buildpackage failed" >&2
    exit 1
fi
DEB="$WORK/build/${PACKAGE}_${DEB_VERSION}_$(dpkg --print-architecture).deb"
[ -f "$DEB" ] || { echo "==> no $(basename "$DEB") was built:" >&2; ls -l "$WORK/build" >&2; exit 1; }
ls -l "$WORK/build"/*.deb | sed 's/^/    /'

phase "checking the package's contents"
dpkg-deb -f "$DEB" Package Version Depends | sed 's/^/    /'
dpkg-deb --fsys-tarfile "$DEB" | tar -tf - > "$WORK/contents"
EXT_DIR=usr/share/postgresql/$PG_MAJOR/extension
for f in "usr/lib/postgresql/$PG_MAJOR/lib/recsys.so" "$EXT_DIR/recsys.control" \
         "$EXT_DIR/recsys--$EXTVERSION.sql" "$EXT_DIR/$(basename "$META_FILE")"; do
    grep -qx "\./$f" "$WORK/contents" || { echo "==> the package lacks /$f" >&2; exit 1; }
done
grep "^\./$EXT_DIR/" "$WORK/contents" | sed "s|^\./|    /|"
# META.json's file: in the tree, or the install script the build generates.
if [ ! -f "$SRC/$META_FILE" ] && [ "$META_FILE" != "sql/recsys--$EXTVERSION.sql" ]; then
    echo "==> META.json's provides.recsys.file $META_FILE is neither in the tree nor the generated install script" >&2
    exit 1
fi

phase "installing the package (dpkg -i)"
status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$PACKAGE" 2>/dev/null || true)
if [ "${status:0:2}" = ii ]; then
    echo "    $PACKAGE $(dpkg-query -W -f='${Version}' "$PACKAGE") was installed before: it stays installed, as $DEB_VERSION"
else
    # Files that the package would overwrite, from an earlier make install:
    # saved, to be put back after dpkg -r.
    : > "$WORK/preexisting"
    while IFS= read -r f; do
        case $f in */) continue ;; esac
        f=${f#./}
        if [ -e "/$f" ] || [ -L "/$f" ]; then
            echo "$f" >> "$WORK/preexisting"
        fi
    done < "$WORK/contents"
    if [ -s "$WORK/preexisting" ]; then
        echo "    saving $(wc -l < "$WORK/preexisting") files of an earlier make install, to restore at the end"
        tar -C / -cpf "$WORK/preexisting.tar" -T "$WORK/preexisting"
    fi
    INSTALLED_BY_US=1
fi
dpkg -i "$DEB" < /dev/null
owner=$(dpkg -S "/usr/lib/postgresql/$PG_MAJOR/lib/recsys.so" 2>/dev/null | cut -d: -f1)
[ "$owner" = "$PACKAGE" ] || { echo "==> recsys.so belongs to '${owner:-no package}', not $PACKAGE" >&2; exit 1; }
echo "    $(dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}' "$PACKAGE")"

phase "starting a throwaway PostgreSQL $PG_MAJOR server in $WORK/pg (as postgres)"
sed "s/@EXTVERSION@/$EXTVERSION/g" > "$WORK/pg/smoke.sql" <<'EOF'
\echo '==> CREATE EXTENSION recsys'
CREATE EXTENSION recsys;
SELECT extname, extversion FROM pg_extension WHERE extname = 'recsys';
SELECT string_agg(version, ', ' ORDER BY version) AS available_versions
FROM pg_available_extension_versions WHERE name = 'recsys';
DO $$
BEGIN
    IF (SELECT extversion FROM pg_extension WHERE extname = 'recsys') <> '@EXTVERSION@' THEN
        RAISE EXCEPTION 'recsys % was created, expected @EXTVERSION@',
            (SELECT extversion FROM pg_extension WHERE extname = 'recsys');
    END IF;
END $$;

\echo '==> a small interactions table'
CREATE TABLE interactions (user_id int, item_id int, rating real);
INSERT INTO interactions
SELECT u, i, 1 + (u * 7 + i * 11) % 5
FROM generate_series(1, 60) u, generate_series(1, 40) i
WHERE (u * 3 + i * 5) % 4 = 0;
SELECT count(*) AS interactions, count(DISTINCT user_id) AS users,
       count(DISTINCT item_id) AS items
FROM interactions;

\echo '==> CALL train(...)'
CALL train('package_smoke', 'interactions', value_col => 'rating',
           factors => 8, iterations => 5, seed => 1);

\echo '==> SELECT * FROM recommend(1, 5, ''package_smoke'')'
SELECT * FROM recommend(1, 5, 'package_smoke');
DO $$
BEGIN
    IF (SELECT count(*) FROM recommend(1, 5, 'package_smoke')) = 0 THEN
        RAISE EXCEPTION 'recommend() returned no rows';
    END IF;
END $$;
EOF
chown -R postgres:postgres "$WORK/pg"
as_pg "$PG_BINDIR/initdb" -D "$WORK/pg/data" -U postgres -A trust \
    -E UTF8 --locale=C.UTF-8 --no-sync > "$WORK/pg/initdb.log" 2>&1 \
    || { echo "==> initdb failed:" >&2; cat "$WORK/pg/initdb.log" >&2; exit 1; }
as_pg "$PG_BINDIR/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/server.log" -w -t 120 \
    -o "-c listen_addresses='' -c unix_socket_directories='$WORK/pg' -p $PORT -c fsync=off" \
    start > /dev/null || { echo "==> the server did not start" >&2; exit 1; }

phase "CREATE EXTENSION, train, recommend (psql)"
as_pg PGHOST="$WORK/pg" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres \
    "$PG_BINDIR/psql" -X -v ON_ERROR_STOP=1 -P pager=off -f "$WORK/pg/smoke.sql" < /dev/null

phase "stopping the server"
as_pg "$PG_BINDIR/pg_ctl" -D "$WORK/pg/data" -m fast -w stop > /dev/null
phase "cleaning up"
