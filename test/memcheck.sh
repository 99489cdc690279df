#!/usr/bin/env bash
# recsys memory check: the test suite against a server that runs under
# Valgrind memcheck, or that loads an AddressSanitizer + UBSan build of the
# extension.  Run from anywhere, as root or as a non-root user:
#
#   bash test/memcheck.sh                  # valgrind, the whole pg_regress suite (~4 min)
#   bash test/memcheck.sh --short          # valgrind, setup train recommend aggregate (CI, ~1 min)
#   bash test/memcheck.sh --asan           # AddressSanitizer + UBSan, whole pg_regress suite
#   bash test/memcheck.sh --asan --tap test/t/008_fuzz_args.pl
#                                          # a TAP test (here the fuzzer) against the ASan build
#   bash test/memcheck.sh setup foldin     # chosen pg_regress tests (setup first)
#
# It builds the work tree in a temporary copy (valgrind: the usual -g -O2
# build with assertions; asan: -fsanitize=address,undefined), installs it
# into a private copy of PostgreSQL's bin, lib and share directories (the
# system-wide installation is not touched, so it runs beside other work),
# and replaces the private bin/postgres by a script that starts the real
# server under the tool.  Then it starts a throwaway server as the postgres
# user (root) or the caller and runs the pg_regress tests, or runs the TAP
# tests given with --tap (their servers come from the private bin
# directory, so they run under the tool too), and scans the reports:
#
#   valgrind: valgrind --tool=memcheck --trace-children=yes --track-origins=yes
#             --suppressions=test/valgrind.supp, one log per process (no
#             --error-exitcode: a backend that exits with it looks like a
#             crash to the postmaster, which restarts them all).  It fails on
#             any error ("Invalid read", "Invalid write", "uninitialised",
#             "Invalid free", "Mismatched free", "overlap") with a recsys
#             frame at the top of its stack, or of the stack that allocated
#             the memory or created the uninitialised bytes; errors elsewhere
#             in the server are counted and listed, not failed.  initdb's
#             bootstrap runs without valgrind.
#   asan:     the server runs with LD_PRELOAD of libasan
#             (gcc -print-file-name=libasan.so); any ASan or UBSan report
#             fails (ASan stops the backend at the first error).
#
# Exit status: 0 clean; 1 memory errors in recsys; 2 a test failed (the
# diffs or TAP output are printed); 3 setup problem.  The reports are kept
# in the directory $RECSYS_MEMCHECK_KEEP if set, else deleted.
#
# Limits.  Debian's PostgreSQL is not built with USE_VALGRIND: memcheck does
# not see a chunk of a memory context as an allocation of its own, so an
# overrun that stays inside the context's block (small pallocs share 8 kB
# blocks) goes unnoticed; one that leaves it, or touches a large chunk
# (over 8 kB: its own malloc), freed memory, malloc'd or BLAS memory, or
# uses uninitialised bytes, is found.  The same holds for ASan, which
# instruments the extension's code only.  Data sets with thousands of items
# (the TAP tests) put the per-item arrays in chunks of their own.  With a
# PostgreSQL built with --enable-cassert CFLAGS=-DUSE_VALGRIND, set
# PG_CONFIG to its pg_config to see every palloc chunk.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
TIMEOUT=${RECSYS_MEMCHECK_TIMEOUT:-60m}
SHORT_TESTS="setup train recommend aggregate"

mode=valgrind
tests=()
tap=()
while [ $# -gt 0 ]; do
    case "$1" in
        --valgrind) mode=valgrind ;;
        --asan) mode=asan ;;
        --short) tests=($SHORT_TESTS) ;;
        --tap) shift; tap+=("$1") ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $1 (see --help)" >&2; exit 3 ;;
        *) tests+=("$1") ;;
    esac
    shift
done

# Connection settings of the caller must not leak into the tests.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS PGDATA

# Everything run as the server's user runs in the copy of the tree under
# $WORK (runuser keeps the caller's current directory: initdb, pg_ctl and
# valgrind as postgres fail in a clone postgres cannot enter, such as one
# under /root, mode 0700), and with a TMPDIR of ours (valgrind writes its
# temporary files there, and the caller's may not be writable by postgres).
# Nothing the server's user reads is in the caller's tree either: the
# suppressions, the tests and the generator are those of the copy.
if [ "$(id -u)" -eq 0 ]; then
    as_pg() { (cd "$WORK/src" && runuser -u postgres -- env TMPDIR="$WORK/tmp" "$@"); }
    owner=postgres
else
    as_pg() { (cd "$WORK/src" && env TMPDIR="$WORK/tmp" "$@"); }
    owner=$(id -un)
fi

case "$mode" in
    valgrind)
        command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 3; }
        BUILD_CFLAGS="-g -DUSE_ASSERT_CHECKING"
        ;;
    asan)
        LIBASAN=$(gcc -print-file-name=libasan.so)
        [ -e "$LIBASAN" ] || { echo "libasan not found (gcc -print-file-name=libasan.so: $LIBASAN)" >&2; exit 3; }
        BUILD_CFLAGS="-g -DUSE_ASSERT_CHECKING -fsanitize=address,undefined -fno-omit-frame-pointer"
        ;;
esac

WORK=$(mktemp -d /tmp/recsys-memcheck.XXXXXX)
DATA=$WORK/data
REPORTS=$WORK/reports
PRIV_BIN=

# The cause of a failure, printed before cleanup deletes it: the tail of the
# server log, of the tool's reports, and of the TAP tests' logs.  Once per
# run.  Valgrind writes a log per process: those that do not end with a
# clean "ERROR SUMMARY: 0 errors" (a process that died, or had errors; the
# postmaster's, when the server did not start) come first, newest first;
# the clean ones are only counted.  Sanitizer reports are all errors.
LOG_LINES=60
MAX_TOOL_LOGS=8
logs_shown=
show_logs() {
    local f n=0 clean=0 total more
    [ -z "$logs_shown" ] || return 0
    logs_shown=1
    if [ -f "$WORK/server.log" ]; then
        echo "--- server log (last $LOG_LINES lines) ---"
        tail -n "$LOG_LINES" "$WORK/server.log"
    fi
    total=$(find "$REPORTS" -type f 2>/dev/null | wc -l)
    while IFS= read -r f; do
        if grep -q '== ERROR SUMMARY: 0 errors from 0 contexts' "$f"; then
            clean=$((clean + 1))
            continue
        fi
        n=$((n + 1))
        [ "$n" -le "$MAX_TOOL_LOGS" ] || continue
        echo "--- ${f#"$WORK/"} (last $LOG_LINES lines) ---"
        tail -n "$LOG_LINES" "$f"
    done < <(ls -1t -- "$REPORTS"/* 2>/dev/null)
    if [ "$total" -gt 0 ]; then
        more=
        [ "$n" -le "$MAX_TOOL_LOGS" ] || more=", $((n - MAX_TOOL_LOGS)) older ones with errors"
        echo "--- $total reports; not shown: $clean of processes that ended without errors$more (RECSYS_MEMCHECK_KEEP=dir keeps them all)"
    fi
    for f in "$WORK/src/tmp_check/log"/*; do
        [ -f "$f" ] || continue
        echo "--- ${f#"$WORK/src/"} (last $LOG_LINES lines) ---"
        tail -n "$LOG_LINES" "$f"
    done
    echo "--- end of logs ---"
}

cleanup() {
    local rc=$?
    set +e
    # A failure other than memory errors in recsys (exit 1, printed in
    # full) that has not shown its logs yet: a timeout, a signal.  On
    # stderr: when set -e ends the script at a failing as_pg call whose
    # output is redirected, bash runs this trap with that redirection still
    # in place (as_pg is a function with a subshell).
    if [ "$rc" -ge 2 ]; then
        show_logs >&2
    fi
    if [ -n "$PRIV_BIN" ] && [ -f "$DATA/postmaster.pid" ]; then
        as_pg "$PRIV_BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1
    fi
    # servers of TAP tests that were interrupted
    while IFS= read -r pidfile; do
        as_pg "$PRIV_BIN/pg_ctl" -D "$(dirname "$pidfile")" -m immediate -w stop >/dev/null 2>&1
    done < <(find "$WORK/src/tmp_check" -name postmaster.pid 2>/dev/null)
    if [ -n "${RECSYS_MEMCHECK_KEEP:-}" ]; then
        mkdir -p "$RECSYS_MEMCHECK_KEEP"
        cp -r "$REPORTS" "$WORK/server.log" "$WORK/src/regression.diffs" \
            "$WORK/src/tmp_check/log" "$RECSYS_MEMCHECK_KEEP"/ 2>/dev/null
        echo "==> reports kept in $RECSYS_MEMCHECK_KEEP"
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> $mode: building the extension in $WORK/src (PG_CFLAGS=$BUILD_CFLAGS)"
mkdir -p "$WORK/src" "$REPORTS" "$WORK/sock" "$WORK/tmp"
tar -C "$ROOT" --exclude=./.git --exclude=./tmp_check --exclude=./results \
    --exclude=./regression.diffs --exclude=./regression.out -cf - . | tar -C "$WORK/src" -xf -
make -C "$WORK/src" -s clean PG_CONFIG="$PG_CONFIG"
make -C "$WORK/src" -s PG_CONFIG="$PG_CONFIG" PG_CFLAGS="$BUILD_CFLAGS" >/dev/null

# A private copy of the installation (PostgreSQL finds lib and share
# relative to its bin directory), with this build installed into it
echo "==> installing into a private copy of PostgreSQL under $WORK/pg"
PRIV=$WORK/pg
for d in "$($PG_CONFIG --bindir)" "$($PG_CONFIG --pkglibdir)" "$($PG_CONFIG --sharedir)"; do
    mkdir -p "$PRIV$(dirname "$d")"
    cp -a "$d" "$PRIV$d"
done
make -C "$WORK/src" -s PG_CONFIG="$PG_CONFIG" PG_CFLAGS="$BUILD_CFLAGS" DESTDIR="$PRIV" install >/dev/null
PRIV_BIN=$PRIV$($PG_CONFIG --bindir)

# bin/postgres becomes a script that runs the real server (postgres.bin,
# which finds lib and share from its own path) under the tool.
mv "$PRIV_BIN/postgres" "$PRIV_BIN/postgres.bin"
case "$mode" in
    valgrind)
        cat > "$PRIV_BIN/postgres" <<EOF
#!/bin/sh
# test/memcheck.sh: the server under valgrind (not initdb's bootstrap)
export OPENBLAS_NUM_THREADS=1
case "\$1" in
    -V|--version|--boot|--single|-C|--describe-config) exec "\$0.bin" "\$@" ;;
esac
exec valgrind --tool=memcheck --trace-children=yes --track-origins=yes \\
    --num-callers=40 --error-limit=no --fullpath-after= \\
    --suppressions="$WORK/src/test/valgrind.supp" \\
    --log-file="$REPORTS/valgrind.%p.log" "\$0.bin" "\$@"
EOF
        ;;
    asan)
        # With libasan preloaded, ASan initializes at the first malloc.  In
        # Debian 12 that is in libgpg-error's constructor (a dependency of
        # postgres), inside bindtextdomain() with the gettext lock held; the
        # initialization calls dlsym("swift_demangle") and then dlerror(),
        # which translates the "undefined symbol" message and waits for the
        # same lock: the server hangs before main().  A preloaded
        # swift_demangle (returning NULL: "not a Swift name") avoids it.
        printf '%s\n' '#include <stddef.h>' \
            'char *swift_demangle(const char *m, size_t l, char *o, size_t *ol, unsigned f);' \
            'char *swift_demangle(const char *m, size_t l, char *o, size_t *ol, unsigned f)' \
            '{ (void) m; (void) l; (void) o; (void) ol; (void) f; return NULL; }' > "$WORK/swift_stub.c"
        gcc -shared -fPIC -o "$WORK/swift_stub.so" "$WORK/swift_stub.c"
        cat > "$PRIV_BIN/postgres" <<EOF
#!/bin/sh
# test/memcheck.sh: the server with AddressSanitizer
export OPENBLAS_NUM_THREADS=1
export LD_PRELOAD="$LIBASAN:$WORK/swift_stub.so"
export ASAN_OPTIONS="detect_leaks=0:log_path=$REPORTS/asan:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$REPORTS/ubsan"
exec "\$0.bin" "\$@"
EOF
        ;;
esac
chmod 755 "$PRIV_BIN/postgres"

if [ ${#tests[@]} -eq 0 ] && [ ${#tap[@]} -eq 0 ]; then
    read -r -a tests <<< "$(printf 'print-regress:\n\t@echo $(REGRESS)\n' |
        make -s -C "$WORK/src" -f Makefile -f - print-regress PG_CONFIG="$PG_CONFIG")"
fi
chown -R "$owner" "$WORK"

test_rc=0
start=$(date +%s)
if [ ${#tests[@]} -gt 0 ]; then
    echo "==> pg_regress tests: ${tests[*]}"
    as_pg "$PRIV_BIN/initdb" -D "$DATA" -A trust --no-sync >/dev/null ||
        { echo "initdb failed (above)" >&2; exit 3; }
    cat >> "$DATA/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$WORK/sock'
port = 5432
fsync = off
max_connections = 20
shared_buffers = 32MB
maintenance_work_mem = 256MB
EOF
    echo "==> starting the server under $mode"
    as_pg "$PRIV_BIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 600 start >/dev/null ||
        { echo "==> the server did not start (pg_ctl's messages above, logs below)" >&2; show_logs; exit 3; }
    echo "==> running pg_regress ($(date +%T))"
    as_pg OPENBLAS_NUM_THREADS=1 PGHOST="$WORK/sock" PGPORT=5432 \
        timeout "$TIMEOUT" make -s installcheck PG_CONFIG="$PG_CONFIG" TAP_TESTS= \
        REGRESS="${tests[*]}" || test_rc=$?
    as_pg "$PRIV_BIN/pg_ctl" -D "$DATA" -m fast -w -t 600 stop >/dev/null || true
    # Crashes (a sanitizer abort, a signal) show in the server log
    if grep -E "server process \(PID [0-9]+\) (was terminated by signal|exited with exit code)|TRAP: |PANIC: " "$WORK/server.log"; then
        echo "==> the server log shows a crash (above)"
        [ "$test_rc" -eq 0 ] && test_rc=2
    fi
    if [ "$test_rc" -ne 0 ] && [ -f "$WORK/src/regression.diffs" ]; then
        head -n 200 "$WORK/src/regression.diffs"
    fi
fi
if [ ${#tap[@]} -gt 0 ]; then
    echo "==> TAP tests: ${tap[*]} ($(date +%T))"
    as_pg OPENBLAS_NUM_THREADS=1 \
        timeout "$TIMEOUT" make -s installcheck PG_CONFIG="$PRIV_BIN/pg_config" REGRESS= \
        PROVE_TESTS="${tap[*]}" || test_rc=$?
fi
echo "==> tests finished in $(( $(date +%s) - start ))s (exit $test_rc)"
if [ "$test_rc" -ne 0 ]; then
    show_logs
fi

rc=0
case "$mode" in
    valgrind)
        echo "==> $(find "$REPORTS" -name 'valgrind.*.log' | wc -l) valgrind logs (one per process)"
        # Split each log into error blocks (separated by "==pid== " lines)
        # and keep the errors in recsys: a recsys frame among the first 4
        # of the error's stack, or among the first 8 of the stack that
        # allocated the memory or created the uninitialised value (below
        # malloc, palloc and PostgreSQL's allocator).  A recsys function far
        # up the stack of an error inside PostgreSQL (say, SPI running a
        # DELETE that processes invalidation messages) does not count.
        find "$REPORTS" -name 'valgrind.*.log' -print0 | xargs -0 -r awk -v build="$WORK/src/" '
            function flush() {
                if (block != "" && block ~ /(Invalid (read|write|free)|uninitialised|Mismatched free|overlap|Jump to the invalid address)/) {
                    total++
                    if (hit) {
                        ours++
                        printf "---- %s\n%s", FILENAME, block
                    }
                }
                block = ""; hit = 0; section = 0; nframe = 0
            }
            FNR == 1 { flush() }
            /^==[0-9]+== *$/ { flush(); next }
            /^==[0-9]+== / {
                block = block $0 "\n"
                if ($0 ~ /^==[0-9]+==    (at|by) 0x/) {
                    nframe++
                    if (nframe <= (section == 0 ? 4 : 8) && (index($0, "recsys.so") || index($0, build)))
                        hit = 1
                } else if ($0 ~ /^==[0-9]+==  [^ ]/) {
                    section++; nframe = 0      # "Address ... alloc'\''d", "Uninitialised value was created by"
                }
            }
            END { flush(); printf "==> valgrind: %d error blocks in the server, %d of them in recsys\n", total, ours > "/dev/stderr"; exit(ours > 0) }
        ' > "$WORK/recsys-errors.txt" || rc=1
        if [ "$rc" -ne 0 ]; then
            cat "$WORK/recsys-errors.txt"
            echo "==> memory errors in recsys (above)"
        fi
        # Errors outside recsys, by kind (for information)
        find "$REPORTS" -name 'valgrind.*.log' -print0 | xargs -0 -r cat |
            grep -E "^==[0-9]+== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and dest)" |
            sed -E 's/^==[0-9]+== //; s/ of size [0-9]+//' | sort | uniq -c | sort -rn | head -20 || true
        ;;
    asan)
        if compgen -G "$REPORTS/*san*" >/dev/null; then
            cat "$REPORTS"/*san*
            echo "==> AddressSanitizer/UBSan reports (above)"
            rc=1
        else
            echo "==> no AddressSanitizer or UBSan reports"
        fi
        ;;
esac

if [ "$test_rc" -ne 0 ]; then
    echo "==> tests failed (exit $test_rc)"
    [ "$rc" -eq 0 ] && rc=2
fi
[ "$rc" -eq 0 ] && echo "==> memcheck ($mode, ${tests[*]} ${tap[*]}): clean"
exit "$rc"
