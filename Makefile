# recsys: matrix-factorization recommender inside PostgreSQL (PGXS build)

EXTENSION    = recsys
EXTVERSION   = 1.3

MODULE_big   = recsys
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script of the current version is assembled from
# sql/parts/*.sql, one part per area (storage, training, serving, ...), in
# file name order.  Released versions' scripts are frozen beside it, with
# the upgrade scripts from each to the next (ALTER EXTENSION recsys UPDATE);
# test/t/010_upgrade.pl checks that an upgraded database equals a fresh one.
DATA_built   = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA         = sql/$(EXTENSION)--1.0.sql sql/$(EXTENSION)--1.1.sql sql/$(EXTENSION)--1.2.sql $(wildcard sql/$(EXTENSION)--*--*.sql)
SQL_PARTS    = $(sort $(wildcard $(srcdir)/sql/parts/*.sql))

# Regression tests live in sql/ beside the install script (PG15's pg_regress
# has no --expecteddir, and expected/ is at the top level).
# Tests of later areas join in when their files exist.
LATER_TESTS  = $(basename $(notdir $(wildcard sql/evaluate.sql sql/tuning.sql sql/experiments.sql sql/coldstart.sql)))
REGRESS      = setup train recommend aggregate implicit foldin $(LATER_TESTS) methods features preprocess textids textids_eval errors security attacks
REGRESS_OPTS = --inputdir=. --outputdir=.

TAP_TESTS    = 1
PROVE_TESTS  = test/t/*.pl

# PostgreSQL's headers as system headers: -Wextra then reports only our code.
PG_CPPFLAGS  = -I$(srcdir)/src -isystem $(includedir_server) -isystem $(includedir_internal) \
               -isystem $(includedir)
# Debian's alternatives pick OpenBLAS (pthread build) when it is installed,
# the reference implementations otherwise.
SHLIB_LINK  += -llapack -lblas -lm

# The seeded data generator used by the tests, the demo and the benchmark.
GENERATOR    = test/data/generate
EXTRA_CLEAN  = $(GENERATOR) results/ regression.diffs regression.out tmp_check/

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Distributed training talks to the shards with libpq, as postgres_fdw does
SHLIB_LINK_INTERNAL += $(libpq)

all: $(GENERATOR)

sql/$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PARTS)
	awk 'FNR == 1 && NR != 1 { print "" } { print }' $(SQL_PARTS) > $@

$(GENERATOR): test/data/generate.c
	$(CC) -std=c99 -O2 -Wall -Wextra -o $@ $< -lm

installcheck: $(GENERATOR)

# Rebuild every object when a header changes (PGXS tracks no dependencies)
$(OBJS): $(wildcard src/*.h)
