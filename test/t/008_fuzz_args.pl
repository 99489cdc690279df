# Copyright (c) recsys authors
#
# Every SQL-callable function, aggregate and procedure of the extension,
# called with random and extreme arguments: NULLs, empty and huge arrays,
# NaN and infinities, negative and maximal integers, wrong-length and 2-D
# arrays, arrays with NULLs, unknown models and relations, empty and very
# long names.  Each call must either succeed or fail with a clean ERROR: any
# SQLSTATE except XX000 internal_error (elog(ERROR), e.g. "invalid memory
# alloc request size"), and never crash the server.  (XX001 data_corrupted
# is the right answer when a call has just overwritten the stored factors
# with garbage, which the sequences below do.)
#
# The functions are listed from the catalog (pg_depend on the extension), so
# new functions are fuzzed without editing this file.  Arguments come from a
# table of candidate values per type and, for each argument, a valid
# "sensible" value chosen by argument name, so that one extreme argument at a
# time reaches deep into the function.  The passes, all seeded:
#
#   0. regression cases: calls that crashed or failed with XX000 before;
#   1. one argument at a time: every candidate value of every argument of
#      every function, the other arguments sensible;
#   2. random combinations (half sensible, half extreme), called in the FROM
#      clause, in the target list, with LIMIT 1, or in a forced parallel
#      worker (force_parallel_mode), some with recsys.default_model set;
#   3. aggregates over several rows of random values, also as parallel
#      partial aggregates (combine, serialize, deserialize);
#   4. sequences of calls in one transaction that train, drop, forget,
#      refresh and serve, some after changing the source table or the
#      stored model rows (the backend's model cache must cope).
#
# Every call runs in a subtransaction that is rolled back (so drop_model,
# forget_user, train ... leave the fixture as it was) with a statement
# timeout.  A crash is detected by the server log and a lost connection; the
# call that crashed is reported with its SQL, the calls before it in the
# session, and whether it crashes alone; the run continues after it.
#
#   RECSYS_FUZZ_SEED=7 RECSYS_FUZZ_RANDOM=20000 make installcheck REGRESS= \
#       PROVE_TESTS=test/t/008_fuzz_args.pl      # a longer run by hand
#   bash test/memcheck.sh --asan --tap test/t/008_fuzz_args.pl
#                                    # against an AddressSanitizer build, which
#                                    # also sees overruns that do not crash
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;
use Time::HiRes qw(time);

# The server inherits this: one BLAS thread per backend.
$ENV{OPENBLAS_NUM_THREADS} = 1;

my $seed = $ENV{RECSYS_FUZZ_SEED} // 1;
my $n_random = $ENV{RECSYS_FUZZ_RANDOM} // 1500;
my $n_agg = $ENV{RECSYS_FUZZ_AGG} // 300;
# Per call: long enough for the largest legal training on the fixture.
my $call_timeout = $ENV{RECSYS_FUZZ_TIMEOUT} // '2s';

my $node = PostgreSQL::Test::Cluster->new('fuzz');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
restart_after_crash = on
maintenance_work_mem = '256MB'
max_worker_processes = 8
max_parallel_workers = 4
# log_statement = all (the default of the test cluster) logs each call
});
$node->start;

#
# The fixture: the 8 x 6 ratings of the regression tests, tables that break
# the training rules, and one model per method plus one on extreme ids.
#
$node->safe_psql(
	'postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION recsys;
CREATE ROLE app;
CREATE TABLE ratings (user_id int, item_id int, rating real, ts timestamptz);
INSERT INTO ratings
SELECT u, i, r, timestamptz '2024-01-01' + (u * 10 + i) * interval '1 hour'
FROM (VALUES
    (1, 1, 5), (1, 2, 5), (1, 4, 1), (1, 5, 1),
    (2, 1, 5), (2, 3, 4), (2, 4, 2), (2, 6, 1),
    (3, 2, 4), (3, 3, 5), (3, 5, 1), (3, 6, 2),
    (4, 1, 4), (4, 2, 5), (4, 3, 5), (4, 4, 1),
    (5, 4, 5), (5, 5, 5), (5, 1, 1), (5, 2, 1),
    (6, 4, 4), (6, 6, 5), (6, 1, 2), (6, 3, 1),
    (7, 5, 4), (7, 6, 5), (7, 2, 1), (7, 3, 2),
    (8, 4, 5), (8, 5, 4), (8, 6, 5), (8, 1, 1)) v(u, i, r);
CREATE INDEX ratings_idx ON ratings (user_id);
CREATE VIEW ratings_v AS SELECT * FROM ratings;
CREATE MATERIALIZED VIEW ratings_mv AS SELECT * FROM ratings;
CREATE SEQUENCE ratings_seq;
CREATE TYPE ratings_type AS (user_id int, item_id int);
CREATE TABLE ratings_part (user_id bigint, item_id bigint, rating float8, ts timestamptz)
    PARTITION BY RANGE (user_id);
CREATE TABLE ratings_part_1 PARTITION OF ratings_part FOR VALUES FROM (MINVALUE) TO (5);
CREATE TABLE ratings_part_2 PARTITION OF ratings_part FOR VALUES FROM (5) TO (MAXVALUE);
INSERT INTO ratings_part SELECT * FROM ratings;
CREATE TABLE empty_r (user_id int, item_id int, rating real, ts timestamptz);
CREATE TABLE null_r (user_id int, item_id int, rating real, ts timestamptz);
INSERT INTO null_r VALUES (1, 1, NULL, now()), (NULL, 2, 3, now()), (2, NULL, 1, now());
CREATE TABLE bad_r (user_id int, item_id int, rating float8, ts timestamptz);
INSERT INTO bad_r VALUES (1, 1, 'NaN', now()), (1, 2, 'Infinity', now()), (2, 1, -1e300, now());
CREATE TABLE text_r (user_id text, item_id text, rating text, ts text);
INSERT INTO text_r VALUES ('1', '1', '5', 'now');
-- Extreme ids: int8 minimum and maximum
CREATE TABLE ext_r (user_id bigint, item_id bigint, rating float8, ts timestamptz);
INSERT INTO ext_r VALUES
    (-9223372036854775808, -9223372036854775808, 5, now()),
    (-9223372036854775808, 9223372036854775807, 1, now()),
    (9223372036854775807, -9223372036854775808, 1e-38, now()),
    (9223372036854775807, 9223372036854775807, 0, now()),
    (0, 0, 1, now()), (0, 9223372036854775807, 2, now());
-- Values at the ends of the range of real
CREATE TABLE huge_r (user_id bigint, item_id bigint, rating float8, ts timestamptz);
INSERT INTO huge_r SELECT user_id, item_id, rating * 6e37, ts FROM ratings;
CREATE TABLE tiny_r (user_id bigint, item_id bigint, rating float8, ts timestamptz);
INSERT INTO tiny_r SELECT user_id, item_id, rating * 1e-38, ts FROM ratings;
CALL train('ex', 'ratings', value_col => 'rating', factors => 3, iterations => 5);
CALL train('im', 'ratings', method => 'ials', factors => 2, iterations => 5);
CALL train('imc', 'ratings', method => 'ials', solver => 'cholesky', factors => 4,
           iterations => 3, value_col => 'rating', scaling => 'log');
CALL train('pop', 'ratings', method => 'popular');
CALL train('knn', 'ratings', method => 'item_knn', value_col => 'rating', options => '{"neighbors": 3}');
CALL train('ease', 'ratings', method => 'ease', options => '{"regularization": 5, "neighbors": 0}');
CALL train('ext', 'ext_r', value_col => 'rating', factors => 2, iterations => 3);
CREATE TABLE fz_big (k text PRIMARY KEY, i8 bigint[], f4 real[], f8 float8[], i4 int[]);
INSERT INTO fz_big
SELECT 'big', array_agg(g), array_agg(g::real / 1000), array_agg(g::float8), array_agg(g::int)
FROM generate_series(1, 100000) g;
INSERT INTO fz_big
SELECT 'big_nan', array_agg(g), array_agg(CASE WHEN g = 99999 THEN 'NaN'::real ELSE 1 END),
       array_agg(CASE WHEN g = 99999 THEN 'NaN'::float8 ELSE 1 END), array_agg(1)
FROM generate_series(1, 100000) g;
INSERT INTO fz_big
SELECT 'k1025', array_agg(g), array_agg(g::real), array_agg(g::float8), array_agg(g::int)
FROM generate_series(1, 1025) g;
});

# An experiment to call the experiment functions on (they are optional:
# skipped if this build has no create_experiment).
$node->psql('postgres', q{SET client_min_messages = warning;
SELECT create_experiment('exp1', '[{"name": "a", "model": "ex"}, {"name": "b", "model": "im"}]')});

#
# The functions, from the catalog.  Functions with an argument of a
# pseudo-type (internal: the aggregates' support functions) cannot be called
# from SQL; the aggregates are called instead.
#
my @funcs;
for my $line (
	split /\n/,
	$node->safe_psql(
		'postgres', q{
SELECT p.oid, p.prokind, p.proretset,
       quote_ident(n.nspname) || '.' || quote_ident(p.proname),
       array_to_string(array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) t), ','),
       coalesce(array_to_string(array(
           SELECT a FROM unnest(p.proargnames, p.proargmodes) WITH ORDINALITY x(a, m, o)
           WHERE coalesce(m, 'i') IN ('i', 'b', 'v') ORDER BY o), ','), ''),
       p.pronargdefaults,
       EXISTS (SELECT FROM unnest(p.proargtypes) t JOIN pg_type y ON y.oid = t WHERE y.typtype = 'p')
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'recsys')
ORDER BY 4, 1}))
{
	my ($oid, $kind, $retset, $qname, $types, $names, $ndefaults, $pseudo) =
	  split /\|/, $line;
	next if $pseudo eq 't';
	my @types = split /,/, $types;
	my @names = split /,/, $names;
	# proargnames is NULL when no argument has a name (e.g. the guards)
	@names = map { "arg$_" } (1 .. @types) unless @names == @types;
	push @funcs,
	  {
		name => $qname,
		kind => $kind,
		retset => $retset eq 't',
		types => \@types,
		args => \@names,
		required => @types - $ndefaults,
	  };
}
note scalar(@funcs) . ' functions to fuzz: ' . join(' ', map { $_->{name} } @funcs);
cmp_ok(scalar(@funcs), '>=', 15, 'the extension has functions to fuzz');
my $model_id =
  $node->safe_psql('postgres', q{SELECT model_id FROM recsys.models WHERE name = 'ex'});

#
# Candidate values per type: SQL expressions, cast so that overloading and
# the unknown type play no part.  The large arrays come from fz_big.
#
my %extreme = (
	'bigint' => [
		'NULL::bigint', '0::bigint', '1::bigint', '-1::bigint', '7::bigint',
		'2147483647::bigint', '-2147483648::bigint', '2147483648::bigint',
		'9223372036854775807::bigint', '(-9223372036854775807 - 1)::bigint',
		'1000000::bigint', "$model_id\::bigint",
	],
	'integer' => [
		'NULL::int', '0', '1', '-1', '3', '2147483647', '(-2147483647 - 1)',
		'1024', '1025', '10000', '10001', '100', '101',
	],
	'double precision' => [
		'NULL::float8', '0::float8', '1::float8', '0.5::float8', '-1::float8',
		q{'NaN'::float8}, q{'Infinity'::float8}, q{'-Infinity'::float8},
		'1e308::float8', '-1e308::float8', '5e-324::float8', '1e-300::float8',
		'2::float8', '1.0000001::float8',
	],
	'real[]' => [
		'NULL::real[]', q{'{}'::real[]}, q{'{1}'::real[]}, q{'{1,2}'::real[]},
		q{'{1,2,3}'::real[]}, q{'{0.1,0.2,0.3,0.4}'::real[]}, q{'{0,0,0}'::real[]},
		q{'{NaN,1,2}'::real[]}, q{'{Infinity,1,2}'::real[]}, q{'{1,-Infinity,2}'::real[]},
		q{'{1,NULL,2}'::real[]}, q{'{NULL}'::real[]}, q{'{{1,2},{3,4}}'::real[]},
		q{'{{{1}}}'::real[]}, q{'[5:7]={1,2,3}'::real[]}, q{'{3e38,-3e38,1e-45}'::real[]},
		q{(SELECT f4 FROM fz_big WHERE k = 'big')}, q{(SELECT f4 FROM fz_big WHERE k = 'big_nan')},
		q{(SELECT f4 FROM fz_big WHERE k = 'k1025')}, q{array_fill(1::real, ARRAY[1024])},
	],
	'bigint[]' => [
		'NULL::bigint[]', q{'{}'::bigint[]}, q{'{1}'::bigint[]}, q{'{1,2,3}'::bigint[]},
		q{'{1,2,3,4,5,6}'::bigint[]}, q{'{1,1,1,2}'::bigint[]}, q{'{6,5,4,3,2,1,99}'::bigint[]},
		q{'{1,NULL,3}'::bigint[]}, q{'{NULL}'::bigint[]}, q{'{{1,2},{3,4}}'::bigint[]},
		q{'[0:2]={1,2,3}'::bigint[]}, q{'{-9223372036854775808,9223372036854775807,0}'::bigint[]},
		q{'{-1,-2}'::bigint[]}, q{'{10,20,30}'::bigint[]},
		q{(SELECT i8 FROM fz_big WHERE k = 'big')}, q{(SELECT i8 FROM fz_big WHERE k = 'k1025')},
		q{array_fill(1::bigint, ARRAY[100000])},
	],
	'double precision[]' => [
		'NULL::float8[]', q{'{}'::float8[]}, q{'{1}'::float8[]}, q{'{5,1}'::float8[]},
		q{'{1,2,3}'::float8[]}, q{'{NaN,1}'::float8[]}, q{'{Infinity,1}'::float8[]},
		q{'{-Infinity,-1}'::float8[]}, q{'{1,NULL}'::float8[]}, q{'{{1,2},{3,4}}'::float8[]},
		q{'{-1,-5}'::float8[]}, q{'{0,0}'::float8[]}, q{'{1e308,1e308}'::float8[]},
		q{'[3:4]={5,1}'::float8[]}, q{(SELECT f8 FROM fz_big WHERE k = 'big')},
		q{(SELECT f8 FROM fz_big WHERE k = 'big_nan')},
	],
	'integer[]' => [
		'NULL::int[]', q{'{}'::int[]}, q{'{1}'::int[]}, q{'{1,1}'::int[]}, q{'{0,0}'::int[]},
		q{'{-1,5}'::int[]}, q{'{2147483647,2147483647}'::int[]}, q{'{1,NULL}'::int[]},
		q{'{{1,2},{3,4}}'::int[]}, q{'[2:3]={1,1}'::int[]}, q{(SELECT i4 FROM fz_big WHERE k = 'big')},
	],
	'text' => [
		'NULL::text', q{''::text}, q{'ex'::text}, q{'im'::text}, q{'imc'::text}, q{'pop'::text},
		q{'ext'::text}, q{'knn'::text}, q{'ease'::text}, q{'item_knn'::text},
		q{'nosuch'::text}, q{repeat('x', 10000)}, q{repeat('x', 128)},
		q{repeat('x', 129)}, q{'als'::text}, q{'ials'::text}, q{'popular'::text},
		q{'cholesky'::text}, q{'cg'::text}, q{'log'::text}, q{'ratings'::text},
		q{E'a\nb"c''d\\\\e'::text}, q{'%s%n%d'::text}, q{'public.ratings'::text},
		q{'exp1'::text}, q{'serve'::text}, q{'train'::text}, q{'ndcg'::text},
		q{'rmse'::text}, q{'click'::text}, q{chr(1000) || chr(65533)},
	],
	'name' => [
		'NULL::name', q{''::name}, q{'user_id'::name}, q{'item_id'::name}, q{'rating'::name},
		q{'ts'::name}, q{'nosuch'::name}, q{'ctid'::name}, q{'xmin'::name}, q{'tableoid'::name},
		q{repeat('y', 100)::name}, q{'"user_id"'::name}, q{'public'::name}, q{'recsys'::name},
		q{'pg_catalog'::name}, q{'user_id; DROP TABLE ratings'::name},
	],
	'boolean' => [ 'NULL::boolean', 'true', 'false' ],
	'regclass' => [
		'NULL::regclass', q{'ratings'::regclass}, q{'ratings_v'::regclass},
		q{'ratings_mv'::regclass}, q{'ratings_part'::regclass}, q{'ratings_part_1'::regclass},
		q{'ratings_seq'::regclass}, q{'ratings_idx'::regclass}, q{'ratings_type'::regclass},
		q{'empty_r'::regclass}, q{'null_r'::regclass}, q{'bad_r'::regclass},
		q{'text_r'::regclass}, q{'ext_r'::regclass}, q{'huge_r'::regclass}, q{'tiny_r'::regclass}, q{'pg_class'::regclass},
		q{'recsys.models'::regclass}, q{'recsys.user_factors'::regclass},
		q{0::oid::regclass}, q{4294967295::oid::regclass}, q{1259::oid::regclass},
	],
	'regrole' => [
		'NULL::regrole', q{'app'::regrole}, q{'postgres'::regrole}, q{'pg_monitor'::regrole},
		q{0::oid::regrole}, q{4294967295::oid::regrole},
	],
	'jsonb' => [
		'NULL::jsonb', q{'{}'::jsonb}, q{'[]'::jsonb}, q{'null'::jsonb}, q{'1'::jsonb},
		q{'"x"'::jsonb}, q{'{"factors": 2, "iterations": 2}'::jsonb},
		q{'{"factors": -1}'::jsonb}, q{'{"factors": 1e10}'::jsonb},
		q{'{"factors": "x"}'::jsonb}, q{'{"factors": null}'::jsonb},
		q{'{"factors": [2, 3], "iterations": [1, 2]}'::jsonb},
		q{'{"method": "ials", "alpha": [1e308, -1]}'::jsonb},
		q{'{"method": "popular"}'::jsonb}, q{'{"nosuch": 1}'::jsonb},
		q{'{"regularization": "NaN"}'::jsonb}, q{'{"factors": []}'::jsonb},
		q{'{"neighbors": 0}'::jsonb}, q{'{"neighbors": 2147483648}'::jsonb},
		q{'{"neighbors": 1e308, "shrink": -1e308}'::jsonb}, q{'{"k1": -1, "b": 2}'::jsonb},
		q{'{"weighting": "bm25", "similarity": "jaccard", "binary": true}'::jsonb},
		q{'{"weighting": 1, "similarity": null, "binary": "yes"}'::jsonb},
		q{'{"regularization": 1e-300, "neighbors": 0}'::jsonb}, q{'{"regularization": 1e300}'::jsonb},
		q{'{"method": "item_knn", "neighbors": [1, 100]}'::jsonb},
		q{'{"method": "ease", "regularization": [1, 1e6]}'::jsonb}, q{'{"method": 7}'::jsonb},
		q{'[{"name": "a", "model": "ex"}, {"name": "b", "model": "im"}]'::jsonb},
		q{'[{"name": "a", "model": "ex", "weight": 0}, {"name": "a", "model": "nosuch", "weight": -1}]'::jsonb},
		q{'[{"name": "a", "model": "ex", "weight": 1e300}, {"name": "b", "model": "ex", "options": {"exclude_seen": "x"}}]'::jsonb},
		q{repeat('[', 1000)::text || repeat(']', 1000)},
	],
	'text[]' => [
		'NULL::text[]', q{'{}'::text[]}, q{'{ratings}'::text[]}, q{'{NULL}'::text[]},
		q{'{"",""}'::text[]}, q{'{{a,b},{c,d}}'::text[]}, q{'{nosuch,ratings}'::text[]},
	],
	'jsonb[]' => [
		'NULL::jsonb[]', q{'{}'::jsonb[]}, q{ARRAY['{}'::jsonb]}, q{ARRAY[NULL::jsonb]},
		q{ARRAY['{"factors": 2, "iterations": 1}'::jsonb, '[]'::jsonb]},
	],
	'bytea' => [ 'NULL::bytea', q{'\x'::bytea}, q{'\x00'::bytea}, q{'\xffffffffffffffff'::bytea} ],
);
# jsonb built from text needs its cast
$_ = "($_)::jsonb" for grep { /^repeat/ } @{ $extreme{'jsonb'} };

# Valid values by argument name (the first one that matches), else by type.
my @sensible_by_name = (
	[ qr/^(model|winner|control)$/ => [ q{'ex'}, q{'im'}, q{'imc'}, q{'pop'}, q{'ext'}, q{'knn'}, q{'ease'} ] ],
	[ qr/^(experiment|name)$/ => [q{'exp1'}] ],
	[ qr/^user_id$/ => [ '1::bigint', '2::bigint', '8::bigint' ] ],
	[ qr/^item_id$/ => [ '1::bigint', '3::bigint', '6::bigint' ] ],
	[ qr/^model_id$/ => ["$model_id\::bigint"] ],
	[ qr/^(n|k)$/ => [ '3', '10' ] ],
	[ qr/^(items|recommended|ranked)$/ => [ q{'{1,2,3}'::bigint[]}, q{'{4,5}'::bigint[]} ] ],
	[ qr/^relevant$/ => [q{'{2,5}'::bigint[]}] ],
	[ qr/^values$/ => [q{'{5,1,4}'::float8[]}] ],
	[ qr/^candidates$/ => [q{'{1,2,3,4,5,6}'::bigint[]}] ],
	[ qr/^(exclude|observed)$/ => [q{'{1}'::bigint[]}] ],
	[ qr/^(source|test|rel|train_table|test_table)$/ =>
		  [ q{'ratings'::regclass}, q{'ratings_v'::regclass} ] ],
	[ qr/^user_col$/ => [q{'user_id'}] ],
	[ qr/^item_col$/ => [q{'item_id'}] ],
	[ qr/^(value_col|col)$/ => [q{'rating'}] ],
	[ qr/^time_col$/ => [q{'ts'}] ],
	[ qr/^method$/ => [ q{'als'}, q{'ials'}, q{'item_knn'}, q{'ease'}, q{'popular'} ] ],
	[ qr/^options$/ => [ q{'{}'::jsonb} ] ],
	[ qr/^factors$/ => [ '2', '3' ] ],
	[ qr/^(iterations|folds|trials|patience|iterations_step|test_count|min_history)$/ => ['2'] ],
	[ qr/^regularization$/ => ['0.1::float8'] ],
	[ qr/^(seed|cg_steps)$/ => ['3'] ],
	[ qr/^(alpha|epsilon|value)$/ => ['1::float8'] ],
	[ qr/^solver$/ => [ 'NULL::text', q{'cholesky'} ] ],
	[ qr/^scaling$/ => [q{'linear'}] ],
	[ qr/^(params|grid|space)$/ =>
		  [ q{'{"factors": 2, "iterations": 2}'::jsonb}, q{'{"factors": [2, 3]}'::jsonb} ] ],
	[ qr/^variants$/ => [q{'[{"name": "a", "model": "ex"}, {"name": "b", "model": "im"}]'::jsonb}] ],
	[ qr/^test_fraction$/ => ['0.25::float8'] ],
	[ qr/^confidence$/ => ['0.95::float8'] ],
	[ qr/^(successes|control_successes)$/ => ['5::bigint'] ],
	[ qr/^(trials|control_trials)$/ => ['10::bigint'] ],
	[ qr/^weights$/ => [ q{'{1,1}'::int[]}, q{'{0.5,0.5}'::float8[]} ] ],
	[ qr/^salt$/ => [q{'salt'}] ],
	[ qr/^(results_table|target|prefix)$/ => [q{'fz_results'}] ],
	[ qr/^metric$/ => [q{'ndcg'}] ],
	[ qr/^(kind|outcome)$/ => [q{'click'}] ],
	[ qr/^privilege$/ => [ q{'serve'}, q{'train'} ] ],
	[ qr/^grantee$/ => [q{'app'::regrole}] ],
	[ qr/^target_schema$/ => [q{'public'}] ],
	[ qr/^role$/ => [q{'user'}] ],
	[ qr/^(predicted|actual)$/ => [ '3::float8', '4::float8' ] ],
);
my %sensible_by_type = (
	'bigint' => ['1::bigint'],
	'integer' => ['2'],
	'double precision' => ['0.5::float8'],
	'real[]' => [q{'{1,2}'::real[]}],
	'bigint[]' => [q{'{1,2}'::bigint[]}],
	'double precision[]' => [q{'{1,2}'::float8[]}],
	'integer[]' => [q{'{1,1}'::int[]}],
	'text' => [q{'ex'}],
	'name' => [q{'user_id'}],
	'boolean' => [ 'true', 'false' ],
	'regclass' => [q{'ratings'::regclass}],
	'regrole' => [q{'app'::regrole}],
	'jsonb' => [q{'{}'::jsonb}],
	'text[]' => [q{'{ratings}'::text[]}],
	'jsonb[]' => [q{ARRAY['{"factors": 2, "iterations": 1}'::jsonb]}],
	'bytea' => [q{'\x'::bytea}],
);

# Quote a string as an SQL literal
sub lit { my ($s) = @_; $s =~ s/'/''/g; return "'$s'"; }

# A small deterministic generator (the same sequence on every platform)
my $rng_state = $seed;
sub rnd
{
	my ($n) = @_;
	$rng_state = ($rng_state * 1103515245 + 12345) % 2147483648;
	return int(($rng_state / 2147483648) * $n);
}
sub pick { my ($list) = @_; return $list->[ rnd(scalar @$list) ]; }

# A valid value for argument $i of $f
sub sensible
{
	my ($f, $i) = @_;
	my ($name, $type) = ($f->{args}[$i], $f->{types}[$i]);
	# split_*() create these tables
	return "'fz_$name'" if $name =~ /^(train|test)_table$/ && $type eq 'text';
	for my $rule (@sensible_by_name)
	{
		return '(' . pick($rule->[1]) . ")::$type" if $name =~ $rule->[0];
	}
	return pick($sensible_by_type{$type} // ["NULL::$type"]);
}

sub extreme
{
	my ($type) = @_;
	return pick($extreme{$type} // ["NULL::$type"]);
}

# The SQL text of one call of $f with argument expressions @args, in the
# given style: from (default), tlist, limit (LIMIT 1 of a set-returning
# function) or parallel (the call runs in a parallel worker).
sub call_sql
{
	my ($f, $args, $style) = @_;
	my $call = "$f->{name}(" . join(', ', @$args) . ')';
	return "CALL $call" if $f->{kind} eq 'p';
	if ($f->{kind} eq 'a')
	{
		return "SELECT $call\::text";
	}
	$style //= 'from';
	return "SELECT $call\::text" if $style eq 'tlist' && !$f->{retset};
	return "SELECT count(*) FROM (SELECT $call) s" if $style eq 'tlist';
	return "SELECT t::text FROM $call t LIMIT 1" if $style eq 'limit';
	return "SELECT count(*), sum(length(t::text)) FROM $call t";
}

my @calls;    # [ id, function name, SQL, prefix (e.g. SET LOCAL) ]
sub add_call { my ($fname, $sql, $prefix) = @_; push @calls, [ scalar(@calls) + 1, $fname, $sql, $prefix // '' ]; }

# 0. Regression cases: calls that crashed the server or failed with XX000
#    (found by this test; they run first, each in its own subtransaction)
my @regressions = (
	# recommend() kept one slot per known candidate id in a buffer of one
	# slot per item: repeated ids overran it (SIGSEGV, or heap corruption
	# that crashed a later call)
	q{SELECT count(*) FROM public.recommend(8, 10, 'im', false, array_fill(1::bigint, ARRAY[100000]))},
	q{SELECT count(*) FROM public.recommend(1, 10, 'ex', false, '{1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1}')},
	q{SELECT count(*) FROM public.recommend(99, 10, 'pop', true, array_fill(6::bigint, ARRAY[1000]))},
	q{SELECT count(*) FROM public.recommend_experiment('exp1', 8, 3, array_fill(1::bigint, ARRAY[100000]))},
	# "training diverged at iteration 1, please report a bug" (XX000) for
	# values near the ends of the range of real, and for a huge alpha
	q{CALL public.train('x', 'huge_r', value_col => 'rating', factors => 2, iterations => 2)},
	q{CALL public.train('x', 'huge_r', value_col => 'rating', method => 'ials', solver => 'cholesky', factors => 2, iterations => 2)},
	q{CALL public.train('x', 'ratings', method => 'ials', alpha => 1e308, solver => 'cholesky', factors => 2, iterations => 2)},
	q{CALL public.train('x', 'ratings', value_col => 'rating', method => 'ials', alpha => 1e300, factors => 2, iterations => 2)},
);
add_call('regression', $_) for @regressions;

# 1. One argument at a time
for my $f (@funcs)
{
	for my $i (0 .. $#{ $f->{types} })
	{
		my $cands = $extreme{ $f->{types}[$i] } // ["NULL::$f->{types}[$i]"];
		for my $c (@$cands)
		{
			my @args = map { sensible($f, $_) } (0 .. $#{ $f->{types} });
			$args[$i] = $c;
			add_call($f->{name}, call_sql($f, \@args));
		}
	}
	# and with the required arguments only
	add_call($f->{name},
		call_sql($f, [ map { sensible($f, $_) } (0 .. $f->{required} - 1) ]));
}
my $n_single = scalar(@calls) - @regressions;

# 2. Random combinations
my @styles = qw(from from tlist limit parallel);
for (1 .. $n_random)
{
	my $f = pick(\@funcs);
	my $nargs = scalar @{ $f->{types} };
	# sometimes leave out defaulted trailing arguments
	$nargs = $f->{required} + rnd($nargs - $f->{required} + 1) if rnd(3) == 0;
	my @args = map { rnd(2) ? extreme($f->{types}[$_]) : sensible($f, $_) } (0 .. $nargs - 1);
	my $style = pick(\@styles);
	my $prefix = '';
	if ($style eq 'parallel')
	{
		$prefix = 'SET LOCAL force_parallel_mode = on;';
		$style = 'from';
	}
	$prefix .= 'SELECT set_config(' . lit('recsys.default_model') . ', '
	  . pick([ q{'ex'}, q{'pop'}, q{''}, q{'nosuch'}, q{repeat('x', 10000)} ]) . ', true);'
	  if rnd(5) == 0;
	add_call($f->{name}, call_sql($f, \@args, $style), $prefix);
}
my $n_rand = scalar(@calls) - @regressions - $n_single;

# 3. Aggregates over several rows, serially and as parallel partial
#    aggregates over a table (combine, serialize, deserialize)
my @aggs = grep { $_->{kind} eq 'a' } @funcs;
my $parallel_agg =
  'SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0; '
  . 'SET LOCAL min_parallel_table_scan_size = 0; SET LOCAL max_parallel_workers_per_gather = 2; '
  . 'SET LOCAL parallel_leader_participation = off;';
for my $j (1 .. ($n_agg && @aggs ? $n_agg : 0))
{
	my $f = pick(\@aggs);
	my $nrows = 1 + rnd(6);
	my @rows;
	# one consistent "sensible" shape per call, some rows extreme
	my @base = map { sensible($f, $_) } (0 .. $#{ $f->{types} });
	my $in_table = rnd(2);
	for (1 .. $nrows)
	{
		push @rows, '(' . join(', ', map {
			my $v = rnd(3) ? $base[$_] : extreme($f->{types}[$_]);
			# no 100,000-element arrays in the 1,000-row tables
			$v = $base[$_] if $in_table && $v =~ /fz_big|array_fill/;
			$v } (0 .. $#{ $f->{types} })) . ')';
	}
	my @cols = map { "a$_" } (1 .. @{ $f->{types} });
	my $agg = "$f->{name}(" . join(', ', @cols) . ')';
	if (!$in_table)
	{
		add_call($f->{name},
			"SELECT g % 2, $agg\::text FROM (VALUES "
			  . join(', ', map { "($_, " . substr($rows[$_ % @rows], 1) } (0 .. $#rows))
			  . ') v(g, ' . join(', ', @cols) . ') GROUP BY 1');
	}
	else
	{
		# the rows repeated over a table, grouped so that groups span workers
		my $tab = "fz_agg_$j";
		add_call($f->{name},
			"CREATE TEMP TABLE $tab AS SELECT x.* FROM (VALUES " . join(', ', @rows)
			  . ') x(' . join(', ', @cols) . '), generate_series(1, 1000) g; '
			  . "ANALYZE $tab; "
			  . "SELECT count(*) FROM (SELECT $agg\::text FROM $tab) s",
			$parallel_agg);
	}
}
my $n_aggcalls = scalar(@calls) - @regressions - $n_single - $n_rand;

# 4. Sequences of calls that change and read models in one transaction
#    (training, dropping, forgetting and refreshing, then serving from the
#    backend's cache; some after a change of the source table), mostly with
#    valid arguments
my %stateful = map { $_ => 1 } qw(train drop_model forget_user refresh_user recommend
  similar_items similar_users predict recommend_for_items explain recommend_all
  grant_model revoke_model evaluate);
my @stateful = grep { $_->{name} =~ /\.(\w+)$/ && $stateful{$1} } @funcs;
my @mutations = (
	q{DELETE FROM ratings WHERE user_id = 1},
	q{DELETE FROM ratings WHERE item_id = 3},
	q{DELETE FROM ratings},
	q{INSERT INTO ratings VALUES (1, 99, 5, now()), (99, 1, 4, now())},
	q{UPDATE ratings SET rating = 'NaN' WHERE user_id = 2},
	q{UPDATE ratings SET user_id = NULL WHERE user_id = 3},
	q{UPDATE ratings SET rating = 3e38},
	q{TRUNCATE ratings},
	q{ALTER TABLE ratings RENAME COLUMN rating TO r},
	q{ALTER TABLE ratings DROP COLUMN item_id},
	q{DELETE FROM recsys.user_factors WHERE user_id = 2},
	q{UPDATE recsys.item_factors SET factors = '{1}'},
	q{UPDATE recsys.item_factors SET factors = NULL WHERE item_id = 1},
	q{UPDATE recsys.user_factors SET seen = '{}'},
	q{UPDATE recsys.models SET factors = 1000},
	q{UPDATE recsys.models SET num_items = 0},
);
for (1 .. ($n_random ? int($n_random / 5) : 0))
{
	my @stmts;
	for (0 .. 1 + rnd(4))
	{
		if (rnd(5) == 0)
		{
			push @stmts, pick(\@mutations);
			next;
		}
		my $f = pick(\@stateful);
		my @args = map { rnd(6) ? sensible($f, $_) : extreme($f->{types}[$_]) }
		  (0 .. $#{ $f->{types} });
		push @stmts, call_sql($f, \@args);
	}
	add_call('sequence', join('; ', @stmts));
}
my $n_seq = scalar(@calls) - @regressions - $n_single - $n_rand - $n_aggcalls;
note "calls: " . scalar(@regressions) . " regression cases, $n_single one argument at a time, $n_rand random combinations, "
  . "$n_aggcalls aggregate calls over rows, $n_seq sequences";

#
# The harness: fuzz_call() runs the prefix (SET LOCAL ...) and the
# statements of a call in a subtransaction that it always rolls back, and
# returns the SQLSTATE ('ok' on success) and the time taken.
#
$node->safe_psql(
	'postgres', q{
CREATE FUNCTION fuzz_call(id int, prefix text, q text,
                          OUT id_out int, OUT state text, OUT ms numeric, OUT msg text)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    part text;
BEGIN
    id_out := id;
    BEGIN
        IF prefix <> '' THEN
            FOREACH part IN ARRAY string_to_array(rtrim(prefix, ';'), ';') LOOP
                EXECUTE part;
            END LOOP;
        END IF;
        EXECUTE q;
        RAISE EXCEPTION USING ERRCODE = 'FZ000';
    EXCEPTION WHEN OTHERS THEN
        state := SQLSTATE;
        msg := left(regexp_replace(SQLERRM, '[\n|]', ' ', 'g'), 300);
    END;
    IF state = 'FZ000' THEN
        state := 'ok';
        msg := NULL;
    END IF;
    ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
END $$;
});

my %states;            # SQLSTATE => count
my %state_example;     # SQLSTATE => an example
my @internal;          # calls that failed with XX000
my @crashes;           # calls that crashed the server
my @slowest;           # [ ms, id ]
my %by_func_ok;        # function => number of successful calls
my $log_offset = -s $node->logfile;
my $t_start = time();

# Run the calls from index $from on in one psql session: returns the number
# of calls done (as an index into @calls; psql stops at a lost connection)
# and psql's stderr.
my $script_file = PostgreSQL::Test::Utils::tempdir() . '/calls.sql';
sub run_calls
{
	my ($from, $to, $quiet) = @_;
	open(my $fh, '>', $script_file) or die "$script_file: $!";
	print $fh "SET client_min_messages = error;\nSET statement_timeout = '$call_timeout';\n";
	for my $c (@calls[ $from .. $to ])
	{
		print $fh 'SELECT * FROM fuzz_call(' . $c->[0] . ', ' . lit($c->[3]) . ', '
		  . lit($c->[2]) . ");\n";
	}
	close($fh);
	my ($stdout, $stderr) = ('', '');
	IPC::Run::run([ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-f', $script_file ],
		'<', \undef, '>', \$stdout, '2>', \$stderr);
	my $done = $from;
	# Errors that PL/pgSQL cannot catch (statement timeout, cancel) reach
	# psql: the script line gives the call
	for my $line (split /\n/, $stderr)
	{
		next unless $line =~ /^psql:[^:]*:(\d+): ERROR:  (.*)/;
		my ($lineno, $msg) = ($1, $2);
		my $c = $calls[ $from + $lineno - 3 ];
		my $state = $msg =~ /statement timeout/ ? '57014' : 'psql';
		next if $quiet;
		$states{$state}++;
		$state_example{$state} //= "$c->[2] -> $msg";
	}
	for my $line (split /\n/, $stdout)
	{
		my ($id, $state, $ms, $msg) = split /\|/, $line, 4;
		next unless defined $ms && $id =~ /^\d+$/;
		$done = $id;
		next if $quiet;
		my $c = $calls[ $id - 1 ];
		$states{$state}++;
		$state_example{$state} //= "$c->[2] -> $msg" if $state ne 'ok';
		$by_func_ok{ $c->[1] }++ if $state eq 'ok';
		push @internal, "call $id: $c->[3] $c->[2]\n    -> $state: $msg" if $state eq 'XX000';
		push @slowest, [ $ms, $id ];
	}
	return ($done, $stderr);
}

my $next = 0;    # index into @calls of the next call to run
while ($next < @calls)
{
	my ($done, $stderr) = run_calls($next, $#calls);
	last if $done >= @calls;

	# psql stopped early: the server crashed (or the connection broke) while
	# running call $done + 1.  Memory corruption can crash a later call of
	# the same session, so show the calls before it too, and whether the
	# call crashes on its own in a new session.
	my $c = $calls[$done];
	# (once the server accepts connections again, the postmaster has logged
	# why the backend died)
	$node->poll_query_until('postgres', 'SELECT true')
	  or BAIL_OUT('the server did not come back after a crash');
	my $log = slurp_file($node->logfile, $log_offset);
	my ($why) = $log =~ /(server process .* (?:was terminated by signal|exited with exit code)[^\n]*)/;
	my ($trap) = $log =~ /(TRAP: [^\n]*)/;
	$why = join(' ', grep { defined } $trap, $why) || "psql: " . substr($stderr, -300);
	$log_offset = -s $node->logfile;
	my ($alone) = run_calls($done, $done, 1);
	$node->poll_query_until('postgres', 'SELECT true')
	  or BAIL_OUT('the server did not come back after a crash');
	my $report = "call $c->[0] ($c->[1]): $c->[3] $c->[2]\n    -> $why\n    "
	  . ($alone > $done ? 'does NOT crash alone in a new session; the calls before it in the session were:'
		: 'crashes alone in a new session; the calls before it were:');
	$report .= "\n      $_->[0]: $_->[3] $_->[2]" for @calls[ ($done >= 3 ? $done - 3 : 0) .. $done - 1 ];
	push @crashes, $report;
	diag "CRASH at $report";
	$log_offset = -s $node->logfile;
	$next = $done + 1;
}
my $elapsed = time() - $t_start;

#
# Results
#
my $total = 0;
$total += $_ for values %states;
note sprintf("%d calls in %.1f s (%d functions); SQLSTATEs: %s", $total, $elapsed,
	scalar(@funcs),
	join(', ', map { "$_ $states{$_}" } sort { $states{$b} <=> $states{$a} } keys %states));
note "an example of each SQLSTATE:";
note "  $_: " . substr($state_example{$_}, 0, 400) for sort keys %state_example;
@slowest = sort { $b->[0] <=> $a->[0] } @slowest;
note sprintf("slowest: %.0f ms: %s", $_->[0], substr($calls[ $_->[1] - 1 ][2], 0, 200))
  for @slowest[ 0 .. 4 ];
my @never_ok = grep { !$by_func_ok{ $_->{name} } } @funcs;
note 'functions that never succeeded (their sensible values may need work): '
  . join(' ', map { $_->{name} } @never_ok)
  if @never_ok;

is($total + scalar(@crashes), scalar(@calls), 'every call ran');
is(scalar(@crashes), 0, 'no call crashed the server')
  or diag join("\n", @crashes);
is(scalar(@internal), 0, 'no call failed with an internal error (SQLSTATE XX000)')
  or diag join("\n", @internal);
cmp_ok($states{ok} // 0, '>', $total / 10, 'many calls succeeded (the fuzzing reached the functions)');

my @bad_log = grep { /was terminated by signal|TRAP: |PANIC: / } split /\n/, slurp_file($node->logfile);
is(scalar(@bad_log), 0, 'the server log shows no crash or assertion failure')
  or diag join("\n", @bad_log);
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');
# Repeated candidate ids count once
is($node->safe_psql('postgres',
		q{SELECT count(*) || '|' || count(DISTINCT item_id) FROM recommend(1, 10, 'ex', false, '{1,1,1,2,2,99}')}),
	'2|2', 'repeated candidate ids give each item once');
# refresh_user() of a model whose catalog row was changed after the backend
# cached its item factors: found under AddressSanitizer (test/memcheck.sh
# --asan --tap test/t/008_fuzz_args.pl), where it read 1000 factors from the
# cached 4-factor buffer (heap-buffer-overflow in ArrayFromFixed, from
# CatalogStoreUser, from recsys_refresh_user) and stored them.  It must
# fail as a corrupt model does everywhere else.
my ($ret, $out, $err) = $node->psql(
	'postgres', q{
SELECT count(*) FROM recommend(1, 3, 'imc');
BEGIN;
UPDATE recsys.models SET factors = 1000 WHERE name = 'imc';
SELECT refresh_user('imc', 1);
SELECT max(cardinality(u.factors)) FROM recsys.user_factors u JOIN recsys.models m USING (model_id)
WHERE m.name = 'imc';
ROLLBACK;
},
	on_error_stop => 0);
like($err, qr/ERROR:  .*(invalid|corrupt|factors)/,
	'refresh_user after the catalog row changed under the cached model: a clean error')
  or note "refresh_user stored: $out";
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up after the refresh');
# The rolled-back calls left the fixture as it was
is($node->safe_psql('postgres',
		q{SELECT string_agg(name || ':' || num_users || ':' || num_items, ',' ORDER BY name) FROM recsys.models}),
	'ease:8:6,ex:8:6,ext:3:3,im:8:6,imc:8:6,knn:8:6,pop:8:6', 'the models are unchanged');

$node->stop;
done_testing();
