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
#      stored model rows (the backend's model cache must cope);
#   5. feature relations: every relation of a list of good and malformed
#      ones (missing columns, wrong types, NULL ids, negative, NaN, huge
#      and overflowing weights, empty relations, views, views that fail,
#      or call recommend(), refresh_item() or drop_model() themselves,
#      non-relations, bad names) as item_features, item_text and
#      user_features of content, ials and als models, each malformed one
#      with the SQLSTATE it must fail with, then each model served with
#      every function (recommend_for_features, explain_features,
#      refresh_item, ...); text_config and the content and hybrid options
#      at their extremes; and content and hybrid models whose feature
#      relations, source or stored feature rows change (dropped, retyped,
#      emptied, corrupted) between the training and refresh_item() and
#      the serving calls.
#
#      Also models with text ids and their text-keyed feature relations.
#
# The serving calls after a training of pass 5 run through fz_try(), which
# lets any error but XX000 pass, so that one failing call does not hide the
# next; after a training from legal relations the scores must be finite
# (fz_finite).  After the passes, direct checks of what the fuzzing found
# beyond crashes: the smallest bigint id is an ordinary id; weights that
# recommend_for_features and refresh_item accept but whose sums overflow
# give an error or finite scores; recommend_for_features does not return
# a text-keyed model's internal numbers as ids.
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

# Feature relations (pass 5 and the candidate values): good ones, and
# malformed ones with both an item_id and a user_id column (the same
# value), so that each serves as item_features and as user_features; and
# content and hybrid models trained from the good ones.  Items 7 and 9 have
# features and no interactions; item 6 has neither features nor a text.
$node->safe_psql(
	'postgres', q{
SET client_min_messages = warning;
CREATE TABLE tags (item_id int, feature text, weight real);
INSERT INTO tags VALUES
    (1, 'drama', 1), (2, 'drama', 1), (2, '90s', 1), (3, 'comedy', 1),
    (4, 'action', 1), (5, 'action', 1), (5, '90s', 0.5), (7, 'action', 2), (9, 'comedy', 1);
CREATE VIEW tags_v AS SELECT * FROM tags;
CREATE MATERIALIZED VIEW tags_mv AS SELECT * FROM tags;
CREATE TABLE tags_part (item_id bigint, feature text, weight float8) PARTITION BY RANGE (item_id);
CREATE TABLE tags_part_1 PARTITION OF tags_part FOR VALUES FROM (MINVALUE) TO (4);
CREATE TABLE tags_part_2 PARTITION OF tags_part FOR VALUES FROM (4) TO (MAXVALUE);
INSERT INTO tags_part SELECT * FROM tags;
CREATE TABLE docs (item_id int, document text);
INSERT INTO docs VALUES (1, 'A sad story of love'), (3, 'Love and loss and laughter'),
    (7, 'Explosions and cars'), (4, ''), (5, NULL);
CREATE TABLE docs_tsv (item_id bigint, document tsvector);
INSERT INTO docs_tsv SELECT item_id, to_tsvector('english', document) FROM docs;
INSERT INTO docs_tsv VALUES (2, 'a:1,2,3 b c:1A'), (9, strip(to_tsvector('simple', 'x y z')));
CREATE TABLE uattrs (user_id int, feature text);
INSERT INTO uattrs SELECT u, 'age:' || (u % 3) FROM generate_series(1, 9) u;
INSERT INTO uattrs SELECT u, 'region:' || (u % 2) FROM generate_series(1, 9) u;
CREATE TEXT SEARCH CONFIGURATION fz_cfg (COPY = pg_catalog.english);
-- Malformed or extreme: (item_id, user_id, feature, weight) unless noted
CREATE TABLE ft_empty (item_id int, user_id int, feature text, weight real);
CREATE TABLE ft_noid (id int, feature text, weight real);
INSERT INTO ft_noid VALUES (1, 'drama', 1);
CREATE TABLE ft_nofeature (item_id int, user_id int, tag text);
INSERT INTO ft_nofeature VALUES (1, 1, 'drama');
CREATE TABLE ft_textid (item_id text, user_id text, feature text);
INSERT INTO ft_textid VALUES ('1', '1', 'drama');
CREATE TABLE ft_numid (item_id numeric, user_id float8, feature text);
INSERT INTO ft_numid VALUES (1, 1, 'drama');
CREATE TABLE ft_textweight (item_id int, user_id int, feature text, weight text);
INSERT INTO ft_textweight VALUES (1, 1, 'drama', '1');
CREATE TABLE ft_nullid (item_id int, user_id int, feature text, weight float8);
INSERT INTO ft_nullid VALUES (1, 1, 'drama', 1), (NULL, NULL, 'drama', 1);
CREATE TABLE ft_negw (item_id int, user_id int, feature text, weight float8);
INSERT INTO ft_negw VALUES (1, 1, 'drama', 1), (2, 2, 'drama', -1);
CREATE TABLE ft_nanw (item_id int, user_id int, feature text, weight float8);
INSERT INTO ft_nanw VALUES (1, 1, 'drama', 1), (2, 2, 'drama', 'NaN');
CREATE TABLE ft_infw (item_id int, user_id int, feature text, weight float8);
INSERT INTO ft_infw VALUES (1, 1, 'drama', 'Infinity');
CREATE TABLE ft_hugew (item_id int, user_id int, feature text, weight float8);
INSERT INTO ft_hugew VALUES (1, 1, 'drama', 1e300);
CREATE TABLE ft_numw (item_id int, user_id int, feature text, weight numeric);
INSERT INTO ft_numw VALUES (1, 1, 'drama', 1e400);
CREATE TABLE ft_numnan (item_id int, user_id int, feature text, weight numeric);
INSERT INTO ft_numnan VALUES (1, 1, 'drama', 'NaN');
-- Legal weights at the top of the range of real: their sums and squares
-- overflow (duplicates are summed; norms square the weights)
CREATE TABLE ft_maxw (item_id int, user_id int, feature text, weight real);
INSERT INTO ft_maxw SELECT i, i, f, 3.4e38 FROM generate_series(1, 9) i,
    unnest(ARRAY['drama', 'drama', 'action', 'age:1']) f;
CREATE TABLE ft_tinyw (item_id int, user_id int, feature text, weight real);
INSERT INTO ft_tinyw SELECT i, i, f, 1e-45 FROM generate_series(1, 9) i, unnest(ARRAY['drama', 'action']) f;
CREATE TABLE ft_zerow (item_id int, user_id int, feature text, weight int);
INSERT INTO ft_zerow SELECT i, i, 'drama', 0 FROM generate_series(1, 9) i;
CREATE TABLE ft_mixw (item_id smallint, user_id smallint, feature text, weight smallint);
INSERT INTO ft_mixw SELECT i, i, 'f' || (i % 2), 32767 FROM generate_series(1, 9) i;
CREATE TABLE ft_nullfeat (item_id int, user_id int, feature text, weight real);
INSERT INTO ft_nullfeat SELECT i, i, NULL, 1 FROM generate_series(1, 9) i;
INSERT INTO ft_nullfeat SELECT i, i, 'drama', NULL FROM generate_series(1, 9) i;
-- ids the source does not have, at the ends of bigint
CREATE TABLE ft_extid (item_id bigint, user_id bigint, feature text, weight float8);
INSERT INTO ft_extid VALUES (-9223372036854775808, -9223372036854775808, 'drama', 1),
    (9223372036854775807, 9223372036854775807, 'drama', 1), (0, 0, 'action', 1), (1, 1, 'drama', 1);
-- Many features, long, empty and odd names
CREATE TABLE ft_many (item_id int, user_id int, feature text, weight real);
INSERT INTO ft_many SELECT 1 + g % 9, 1 + g % 9, 'f' || g, 1 FROM generate_series(1, 20000) g;
INSERT INTO ft_many VALUES (1, 1, repeat('x', 100000), 1), (2, 2, '', 1), (3, 3, E'a\nb"c''d\\e', 1),
    (4, 4, chr(1000) || chr(65533), 1), (5, 5, '%s%n%d', 1), (6, 6, 'word:love', 1);
CREATE TABLE ft_arrfeat (item_id int, user_id int, feature int[], weight float4);
INSERT INTO ft_arrfeat VALUES (1, 1, '{1,2}', 1), (2, 2, '{1,2}', 1), (3, 3, NULL, 1);
CREATE TABLE ft_jsonfeat (item_id int, user_id int, feature jsonb);
INSERT INTO ft_jsonfeat VALUES (1, 1, '{"a": 1}'), (2, 2, 'null'), (3, 3, NULL);
CREATE DOMAIN fz_id AS bigint CHECK (VALUE > 0);
CREATE DOMAIN fz_w AS numeric(10, 3);
CREATE DOMAIN fz_txt AS text;
CREATE TABLE ft_domain (item_id fz_id, user_id fz_id, feature fz_txt, weight fz_w);
INSERT INTO ft_domain VALUES (1, 1, 'drama', 1.5), (7, 7, 'action', 0.001);
-- Views that fail, or call recsys themselves
CREATE VIEW ft_err_v AS SELECT item_id, item_id AS user_id, feature, 1 / (item_id - item_id) AS weight FROM tags;
CREATE VIEW ft_rec_v AS
    SELECT r.item_id, r.item_id AS user_id, 'r' || r.item_id AS feature, r.score AS weight
    FROM recommend(1, 5, 'hy') r;
CREATE VIEW ft_refresh_v AS
    SELECT item_id, item_id AS user_id, feature FROM tags WHERE refresh_item('hy', 7) IS NOT NULL;
CREATE VIEW ft_drop_v AS
    SELECT item_id, item_id AS user_id, feature FROM tags WHERE drop_model('hy', true) IS NOT NULL;
CREATE VIEW ft_cast_v AS
    SELECT item_id, item_id AS user_id, feature, feature::float8 AS weight FROM tags;
-- Texts: (item_id, user_id, document)
CREATE TABLE ft_doc_int (item_id int, user_id int, document int);
INSERT INTO ft_doc_int VALUES (1, 1, 7);
CREATE TABLE ft_doc_nullid (item_id int, user_id int, document text);
INSERT INTO ft_doc_nullid VALUES (1, 1, 'x'), (NULL, NULL, 'y');
CREATE TABLE ft_doc_odd (item_id int, user_id int, document varchar);
INSERT INTO ft_doc_odd VALUES (1, 1, ''), (2, 2, '   '), (3, 3, repeat('love ', 20000)),
    (4, 4, '\\x00 ' || chr(233) || 't' || chr(233) || ' %s'), (5, 5, NULL), (6, 6, 'the a of and');
-- A document whose tsvector would exceed 1 MB
CREATE TABLE ft_doc_huge (item_id int, user_id int, document text);
INSERT INTO ft_doc_huge SELECT 1, 1, string_agg(md5(g::text), ' ') FROM generate_series(1, 40000) g;
-- The models
CALL train('ct', 'ratings', method => 'content',
           options => '{"item_features": "tags", "item_text": "docs", "text_config": "fz_cfg"}');
CALL train('ctb', 'ratings', method => 'content',
           options => '{"item_text": "docs_tsv", "weighting": "bm25", "binary": true}');
CALL train('hy', 'ratings', method => 'ials',
           options => '{"factors": 2, "iterations": 3, "item_features": "tags", "user_features": "uattrs"}');
CALL train('hya', 'ratings', value_col => 'rating', method => 'als',
           options => '{"factors": 3, "iterations": 3, "item_features": "tags_v", "item_text": "docs",
                        "user_features": "uattrs", "feature_regularization": 0.01}');
-- Text ids: interactions, item features and user attributes keyed by text
-- (item i9 has features only), and models of them
CREATE TABLE tev (user_id text, item_id text);
INSERT INTO tev SELECT 'u' || user_id, 'i' || item_id FROM ratings;
CREATE TABLE ttags (item_id text, feature text, weight real);
INSERT INTO ttags SELECT 'i' || item_id, feature, weight FROM tags;
INSERT INTO ttags VALUES ('', 'drama', 1), (repeat('i', 1000), 'action', 1), (chr(233), '90s', 1);
CREATE TABLE tua (user_id varchar, feature text);
INSERT INTO tua SELECT 'u' || user_id, feature FROM uattrs;
CALL train('tct', 'tev', method => 'content', options => '{"item_features": "ttags"}');
CALL train('thy', 'tev', method => 'ials',
           options => '{"factors": 2, "iterations": 3, "item_features": "ttags", "user_features": "tua"}');
-- A long list of feature names
CREATE TABLE fz_feat_big AS
SELECT array_agg('f' || g) AS names, array_agg(g::float8) AS weights FROM generate_series(1, 100000) g;
-- fz_try(sql): run one statement; any error but XX000 (and FZ001 below)
-- is its result
CREATE FUNCTION fz_try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    IF SQLSTATE IN ('XX000', 'FZ001') THEN
        RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM || ' [in fz_try: ' || left(q, 300) || ']';
    END IF;
    RETURN SQLSTATE;
END $$;
-- fz_finite(sql): the number of rows of a query of one column of scores;
-- error FZ001 if a score is NaN or infinite
CREATE FUNCTION fz_finite(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    bad bigint;
BEGIN
    EXECUTE 'SELECT count(*), count(*) FILTER (WHERE NOT (s::float8 > ''-Infinity'' AND s::float8 < ''Infinity'')) '
         || 'FROM (' || q || ') t(s)' INTO n, bad;
    IF bad > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'FZ001', MESSAGE = bad || ' of ' || n || ' scores are not finite: ' || q;
    END IF;
    RETURN n;
END $$;
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
		q{'ct'::text}, q{'ctb'::text}, q{'hy'::text}, q{'hya'::text}, q{'content'::text},
		q{'cold'::text}, q{'test'::text}, q{'tags'::text},
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
		q{'{"method": "content", "item_features": "tags", "item_text": "docs"}'::jsonb},
		q{'{"item_features": "tags", "user_features": "uattrs", "factors": 2, "iterations": 2}'::jsonb},
		q{'{"item_features": "ft_nanw", "user_features": "ft_maxw"}'::jsonb},
		q{'{"item_features": "no_such", "item_text": 7, "user_features": ""}'::jsonb},
		q{'{"item_text": "docs", "text_config": "klingon"}'::jsonb},
		q{'{"item_features": "tags", "feature_regularization": -1}'::jsonb},
		q{'{"item_features": "ft_many", "feature_regularization": 1e308}'::jsonb},
		q{'{"method": "content", "item_text": "ft_doc_odd", "weighting": "bm25", "k1": 1e308, "b": -0.5}'::jsonb},
		q{'{"item_features": ["tags", "docs"], "item_text": {"a": 1}, "user_features": null}'::jsonb},
		q{'{"method": "content", "item_features": "tags", "weighting": "nosuch", "binary": 1}'::jsonb},
	],
	'text[]' => [
		'NULL::text[]', q{'{}'::text[]}, q{'{ratings}'::text[]}, q{'{NULL}'::text[]},
		q{'{"",""}'::text[]}, q{'{{a,b},{c,d}}'::text[]}, q{'{nosuch,ratings}'::text[]},
		q{'{drama,90s}'::text[]}, q{'{drama,drama,drama}'::text[]}, q{'{age:1,region:0}'::text[]},
		q{'{age:1,drama,word:love,NULL}'::text[]}, q{'[0:1]={action,comedy}'::text[]},
		q{'{{drama,90s},{age:1,age:2}}'::text[]}, q{ARRAY[repeat('x', 100000)]},
		q{(SELECT names FROM fz_feat_big)}, q{array_fill('drama'::text, ARRAY[100000])},
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
	[ qr/^(model|winner|control)$/ =>
		  [ q{'ex'}, q{'im'}, q{'imc'}, q{'pop'}, q{'ext'}, q{'knn'}, q{'ease'}, q{'ct'}, q{'hy'}, q{'hya'} ] ],
	[ qr/^features$/ => [ q{'{drama,90s}'::text[]}, q{'{age:1,region:0}'::text[]}, q{'{action,word:love}'::text[]} ] ],
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
	# evaluate's candidate set (elsewhere candidates is an array of ids)
	return pick([ q{'all'}, q{'test'}, q{'cold'} ]) if $name eq 'candidates' && $type eq 'text';
	# the feature functions: mostly the models they serve
	if ($name eq 'model' && $f->{name} =~ /\.(\w+_features|refresh_item)$/)
	{
		my %models = (
			explain_features => [ q{'ct'}, q{'ctb'}, q{'ct'}, q{'hy'}, q{'tct'} ],
			recommend_for_features => [ q{'ct'}, q{'ctb'}, q{'hy'}, q{'hya'}, q{'pop'}, q{'thy'} ],
			refresh_item => [ q{'ct'}, q{'ctb'}, q{'hy'}, q{'hya'}, q{'im'}, q{'ex'}, q{'tct'}, q{'thy'} ],
		);
		return pick($models{$1}) . '::text' if $models{$1};
	}
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

my @calls;    # [ id, function name, SQL, prefix (e.g. SET LOCAL), expected SQLSTATE ]
sub add_call { my ($fname, $sql, $prefix, $expect) = @_; push @calls, [ scalar(@calls) + 1, $fname, $sql, $prefix // '', $expect ]; }

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
	# (pass 5) a content model whose stored features have no idf (NULL in
	# recsys.model_features, or a factor model relabelled content):
	# refresh_item() dereferenced the NULL idf array (Profile(), SIGSEGV)
	q{CALL public.train('x', 'ratings', method => 'content', options => '{"item_features": "tags"}'); }
	  . q{UPDATE recsys.model_features SET idf = NULL WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = 'x'); }
	  . q{SELECT public.refresh_item('x', 1)},
	q{CALL public.train('x', 'ratings', method => 'ials', factors => 2, iterations => 2, options => '{"item_features": "tags"}'); }
	  . q{UPDATE recsys.models SET method = 'content', params = params || '{"method": "content"}' WHERE name = 'x'; }
	  . q{SELECT public.refresh_item('x', 7)},
	# (pass 5) a content model whose params lost item_features: recommend()
	# read the feature rows the cache had not loaded (UserProfile(), SIGSEGV)
	q{CALL public.train('x', 'ratings', method => 'content', options => '{"item_features": "tags"}'); }
	  . q{UPDATE recsys.models SET params = params - 'item_features' WHERE name = 'x'; }
	  . q{SELECT count(*) FROM public.recommend(1, 5, 'x')},
	# (pass 5, after ids of any type) refresh_item() of the bigint item id
	# -9223372036854775808, which is IDS_UNKNOWN, the "text id the model does
	# not know" marker: CatalogInternalId() got a NULL text (SIGSEGV); the
	# model ext has that item, a feature relation may name it
	q{SELECT public.refresh_item('ext', (-9223372036854775807 - 1)::bigint)},
	q{CALL public.train('x', 'ratings', method => 'content', options => '{"item_features": "ft_extid"}'); }
	  . q{SELECT public.refresh_item('x', (-9223372036854775807 - 1)::bigint)},
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
  grant_model revoke_model evaluate refresh_item recommend_for_features explain_features
  split_items);
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
	q{DROP TABLE tags CASCADE},
	q{ALTER TABLE tags ALTER COLUMN item_id TYPE text},
	q{UPDATE tags SET weight = 'NaN'},
	q{INSERT INTO tags SELECT 6, 'new' || g, 1 FROM generate_series(1, 100) g},
	q{TRUNCATE uattrs},
	q{ALTER TABLE docs RENAME COLUMN document TO d},
	q{UPDATE recsys.model_features SET factors = '{1}'},
	q{UPDATE recsys.entity_features SET features = '{99999}', weights = '{1}'},
	q{DELETE FROM recsys.model_features WHERE feature_id = 0},
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

# 5. Feature relations.  Each training of a model fz_f (on ratings, the
#    8 x 6 fixture) from one relation, with the SQLSTATE it must end with
#    ('ok': it must succeed; undef: anything but XX000), then the same
#    training followed by every serving function, each through fz_try.
my $n_before_features = scalar(@calls);
my $long_name = 'x' x 10000;
# as item_features or user_features: relation => [ item side, user side ]
my %feature_rels = (
	'tags' => [ 'ok', '42703' ],
	'tags_v' => [ 'ok', '42703' ],
	'tags_mv' => [ 'ok', '42703' ],
	'tags_part' => [ 'ok', '42703' ],
	'public.TAGS' => [ 'ok', '42703' ],
	'uattrs' => [ '42703', 'ok' ],
	'ft_empty' => [ 'ok', 'ok' ],
	'ft_noid' => [ '42703', '42703' ],
	'ft_nofeature' => [ '42703', '42703' ],
	'ft_textid' => [ '42804', '42804' ],
	'ft_numid' => [ '42804', '42804' ],
	'ft_textweight' => [ '42804', '42804' ],
	'ft_nullid' => [ '22004', '22004' ],
	'ft_negw' => [ '22000', '22000' ],
	'ft_nanw' => [ '22000', '22000' ],
	'ft_infw' => [ '22000', '22000' ],
	'ft_hugew' => [ '22000', '22000' ],
	'ft_numw' => [ '22003', '22003' ],
	'ft_numnan' => [ '22000', '22000' ],
	# (hybrid models: "training diverged at iteration 1: the loss is not finite")
	'ft_maxw' => [ 'ok|22003', 'ok|22003' ],
	'ft_tinyw' => [ 'ok', 'ok' ],
	'ft_zerow' => [ 'ok', 'ok' ],
	'ft_mixw' => [ 'ok', 'ok' ],
	'ft_nullfeat' => [ 'ok', 'ok' ],
	'ft_extid' => [ 'ok', 'ok' ],
	'ft_many' => [ 'ok', 'ok' ],
	'ft_arrfeat' => [ 'ok', 'ok' ],
	'ft_jsonfeat' => [ 'ok', 'ok' ],
	'ft_domain' => [ 'ok', 'ok' ],
	'ft_err_v' => [ '22012', '22012' ],
	'ft_cast_v' => [ '22P02', '22P02' ],
	# (recommend's scores are negative weights)
	'ft_rec_v' => [ '22000', '22000' ],
	'ft_refresh_v' => [ 'ok', 'ok' ],
	'ft_drop_v' => [ 'ok', 'ok' ],
	'docs' => [ '42703', '42703' ],
	'ratings' => [ '42703', '42703' ],
	'ratings_seq' => [ '42809', '42809' ],
	'ratings_idx' => [ '42809', '42809' ],
	'ratings_type' => [ '42809', '42809' ],
	'pg_class' => [ '42703', '42703' ],
	'recsys.models' => [ '42703', '42703' ],
	'recsys.entity_features' => [ '42703', '42703' ],
	'no_such' => [ '42P01', '42P01' ],
	'no_such_schema.tags' => [ '3F000|42P01', '3F000|42P01' ],
	'"TAGS"' => [ '42P01', '42P01' ],
	'postgres.public.tags' => [ 'ok', '42703' ],
	'other_db.public.tags' => [ '0A000', '0A000' ],
	'a.b.c.d' => [ '42601', '42601' ],
	'' => [ '22023', '22023' ],
	'"' => [ '42602', '42602' ],
	'tags; DROP TABLE ratings' => [ '42602', '42602' ],
	$long_name => [ '42P01', '42P01' ],
);
# as item_text: relation => SQLSTATE
my %text_rels = (
	'docs' => 'ok',
	'docs_tsv' => 'ok',
	'ft_doc_odd' => 'ok',
	'ft_doc_int' => '42804',
	'ft_doc_nullid' => '22004',
	'ft_doc_huge' => '54000',
	'ft_empty' => '42703',
	'tags' => '42703',
	'ft_rec_v' => '42703',
	'ratings_seq' => '42809',
	'no_such' => '42P01',
	'' => '22023',
);
# JSON values that are not relation names
my @not_names = ('7', 'true', '[]', '{}', '["tags"]', '{"tags": 1}');
# The serving calls after a training of model $m; with $strict (a model
# trained from legal relations, its rows as trained) the scores must be
# finite (fz_finite)
sub serve_calls
{
	my ($m, $strict) = @_;
	my $fin = sub {
		my ($q) = @_;
		return $strict ? 'SELECT fz_finite(' . lit($q) . ')' : "SELECT count(*) FROM ($q) s";
	};
	my @q = (
		$fin->("SELECT score FROM recommend(1, 5, $m)"),
		$fin->("SELECT score FROM recommend(99, 5, $m)"),
		$fin->("SELECT score FROM recommend(1, 100, $m, false, '{1,7,9,99,-1}')"),
		$fin->("SELECT score FROM similar_items(7, 5, $m)"),
		$fin->("SELECT score FROM similar_items(1, 5, $m)"),
		"SELECT count(*) FROM similar_users(1, 5, $m)",
		$fin->("SELECT predict(1, 7, $m)"),
		"SELECT count(*) FROM explain(1, 7, 5, $m)",
		$fin->("SELECT contribution FROM explain_features(1, 7, 5, $m)"),
		$fin->("SELECT contribution FROM explain_features(2, 2, 100, $m)"),
		$fin->("SELECT score FROM recommend_for_features('{drama,90s,age:1,f1,word:love,r1}', 5, $m)"),
		"SELECT count(*) FROM recommend_for_features('{age:1,region:0}', 5, $m, '{1e308,1e308}')",
		"SELECT count(*) FROM recommend_for_features('{drama,age:1}', 5, $m, '{-1,NaN}')",
		"SELECT count(*) FROM recommend_for_features((SELECT names FROM fz_feat_big), 5, $m, (SELECT weights FROM fz_feat_big))",
		$fin->("SELECT score FROM recommend_for_items('{1,7,9}'::bigint[], 5, $m)"),
		"SELECT refresh_item($m, 7)",
		"SELECT refresh_item($m, 1)",
		"SELECT refresh_item($m, 6)",
		"SELECT refresh_item($m, 99)",
		"SELECT refresh_item($m, (-9223372036854775807 - 1)::bigint)",
		"SELECT refresh_user($m, 1)",
		"SELECT forget_user($m, 2)",
		$fin->("SELECT score FROM recommend(1, 5, $m)"),
		$fin->("SELECT score FROM recommend_for_features('{drama,age:1}', 5, $m)"),
		$fin->("SELECT score FROM recommend_all(3, $m)"),
	);
	push @q, "SELECT count(*) FROM evaluate($m, 'ratings', 3, candidates => 'cold')" if $strict;
	return join('; ', map { 'SELECT fz_try(' . lit($_) . ')' } @q);
}
my %method_args = (
	content => q{method => 'content'},
	ials => q{method => 'ials', factors => 2, iterations => 2},
	als => q{method => 'als', value_col => 'rating', factors => 2, iterations => 2},
);
sub json_str { my ($v) = @_; $v =~ s/(["\\])/\\$1/g; return qq{"$v"}; }
sub feature_train
{
	my ($model, $method, $opts) = @_;
	return "CALL public.train('$model', 'ratings', $method_args{$method}, options => "
	  . lit("{$opts}") . ')';
}
for my $method (qw(content ials als))
{
	for my $opt (qw(item_features user_features item_text))
	{
		my @rels;
		if ($opt eq 'item_text')
		{
			@rels = map { [ json_str($_), $text_rels{$_} ] } sort keys %text_rels;
		}
		elsif ($method eq 'content' && $opt eq 'user_features')
		{
			# content uses no user features
			@rels = ([ json_str('uattrs'), '22023' ]);
		}
		else
		{
			my $side = $opt eq 'item_features' ? 0 : 1;
			@rels = map { [ json_str($_), $feature_rels{$_}[$side] ] } sort keys %feature_rels;
		}
		push @rels, map { [ $_, '22023' ] } @not_names;
		for my $r (@rels)
		{
			my ($rel, $expect) = @$r;
			my $train = feature_train('fz_f', $method, qq{"$opt": $rel});
			add_call('features', $train, '', $expect);
			add_call('features', "$train; " . serve_calls(q{'fz_f'}, 1))
			  if !defined $expect || $expect =~ /^ok/;
		}
	}
}
# All three at once, and the options of content and hybrid models at their
# extremes (with the relations of the fixture models)
my %option_values = (
	content => {
		text_config => [ '"english"', '"simple"', '"fz_cfg"', '"pg_catalog.english"', '"ENGLISH"',
			'"klingon"', '""', '"english; DROP TABLE ratings"', '"a.b.c"', '7', 'null',
			json_str($long_name) ],
		weighting => [ '"none"', '"tfidf"', '"bm25"', '"BM25"', '"x"', '1', 'null', '["bm25"]' ],
		k1 => [ '0', '-1', '1e-308', '1e308', '"NaN"', '"x"', 'null', '2147483648' ],
		b => [ '0', '1', '-0.1', '1.1', '1e-308', '"Infinity"', 'null' ],
		binary => [ 'true', 'false', '"yes"', '1', 'null' ],
		factors => [ '2', '-1' ],
		user_features => [ '"uattrs"' ],
	},
	ials => {
		feature_regularization => [ '0', '-1', '1e-300', '1e300', '1e308', '"NaN"', '"Infinity"',
			'"x"', 'null', '[1]', '5e-324' ],
		text_config => [ '"english"', '"klingon"', '7' ],
		factors => [ '1', '64' ],
		alpha => [ '1e30', '0' ],
	},
	als => {
		feature_regularization => [ '0', '-1', '1e-300', '1e300', '"NaN"', 'null' ],
		regularization => [ '0', '1e30' ],
	},
);
for my $method (sort keys %option_values)
{
	my $base = $method eq 'content'
	  ? q{"item_features": "tags", "item_text": "docs"}
	  : q{"item_features": "tags", "item_text": "docs", "user_features": "uattrs"};
	add_call('features', feature_train('fz_f', $method, $base), '', 'ok');
	add_call('features', feature_train('fz_f', $method, $base) . '; ' . serve_calls(q{'fz_f'}, 1));
	for my $o (sort keys %{ $option_values{$method} })
	{
		for my $v (@{ $option_values{$method}{$o} })
		{
			my $train = feature_train('fz_f', $method, qq{$base, "$o": $v});
			# (the options that reach the extremes of the arithmetic: any
			# score once they are accepted)
			add_call('features', "$train; " . serve_calls(q{'fz_f'}, $o =~ /^(text_config|weighting|binary|factors)$/));
		}
	}
}
# Feature options for methods that take none
for my $method (qw(popular item_knn ease))
{
	add_call('features', "CALL public.train('fz_f', 'ratings', method => '$method', options => "
		  . q{'{"item_features": "tags"}')}, '', '22023');
}

# Content and hybrid models whose relations, source or stored feature rows
# change between the training (and a first, caching call) and the serving
# calls and refresh_item(); then a retrain.  __M__ is the model.
my @feature_changes = (
	q{DROP TABLE tags CASCADE},
	q{DROP TABLE tags CASCADE; CREATE TABLE tags (item_id text, feature int)},
	q{DROP TABLE tags CASCADE; CREATE VIEW tags AS SELECT 7 AS item_id, NULL::text AS feature, 'NaN'::float8 AS weight},
	q{DROP TABLE tags CASCADE; CREATE TABLE tags AS SELECT * FROM ft_many},
	q{DROP TABLE tags CASCADE; CREATE VIEW tags AS SELECT * FROM ft_rec_v},
	q{DROP TABLE tags CASCADE; CREATE VIEW tags AS SELECT * FROM ft_refresh_v},
	q{DROP TABLE tags CASCADE; CREATE VIEW tags AS SELECT * FROM ft_drop_v},
	q{DROP TABLE tags CASCADE; CREATE SEQUENCE tags},
	q{ALTER TABLE tags RENAME COLUMN feature TO f},
	q{ALTER TABLE tags RENAME COLUMN item_id TO id},
	q{ALTER TABLE tags RENAME TO tags_old},
	q{ALTER TABLE tags DROP COLUMN weight},
	q{ALTER TABLE tags ALTER COLUMN item_id TYPE text},
	q{ALTER TABLE tags ALTER COLUMN item_id TYPE bigint},
	q{ALTER TABLE tags ALTER COLUMN weight TYPE text},
	q{ALTER TABLE tags ALTER COLUMN feature TYPE int USING length(feature)},
	q{UPDATE tags SET weight = 'NaN'},
	q{UPDATE tags SET weight = -1 WHERE item_id = 7},
	q{UPDATE tags SET weight = 3.4e38},
	q{UPDATE tags SET weight = 0},
	q{UPDATE tags SET item_id = NULL WHERE item_id = 7},
	q{UPDATE tags SET feature = NULL},
	q{UPDATE tags SET feature = repeat('n', 100000) WHERE item_id = 7},
	q{INSERT INTO tags SELECT 7, 'new' || g, 1 FROM generate_series(1, 5000) g},
	q{INSERT INTO tags SELECT 7, 'drama', 3.4e38 FROM generate_series(1, 3)},
	q{INSERT INTO tags VALUES (6, 'drama', 1), (-1, 'action', 1), (2147483647, 'drama', 1)},
	q{TRUNCATE tags},
	q{DELETE FROM tags WHERE item_id = 7},
	q{DROP TABLE docs CASCADE},
	q{UPDATE docs SET document = NULL},
	q{UPDATE docs SET document = 'and the of'},
	q{ALTER TABLE docs ALTER COLUMN document TYPE tsvector USING to_tsvector(coalesce(document, ''))},
	q{ALTER TABLE docs ALTER COLUMN document TYPE int USING 1},
	q{UPDATE docs SET document = (SELECT document FROM ft_doc_huge) WHERE item_id = 7},
	q{DROP TEXT SEARCH CONFIGURATION fz_cfg},
	q{DROP TABLE uattrs CASCADE},
	q{ALTER TABLE uattrs ADD COLUMN weight float8 DEFAULT 'NaN'},
	q{INSERT INTO uattrs SELECT 1, 'a' || g FROM generate_series(1, 5000) g},
	q{DELETE FROM ratings WHERE item_id = 1},
	q{DELETE FROM ratings},
	q{INSERT INTO ratings VALUES (1, 9, 5, now()), (9, 7, 4, now())},
	q{UPDATE recsys.model_features SET factors = '{1}' WHERE model_id = __MID__},
	q{UPDATE recsys.model_features SET factors = NULL, idf = NULL WHERE model_id = __MID__},
	q{UPDATE recsys.model_features SET idf = 'NaN', factors = array_fill('NaN'::real, ARRAY[cardinality(factors)]) WHERE model_id = __MID__},
	q{UPDATE recsys.model_features SET idf = -3e38, factors = array_fill(3e38::real, ARRAY[cardinality(factors)]) WHERE model_id = __MID__},
	q{UPDATE recsys.model_features SET name = 'drama' WHERE model_id = __MID__},
	q{UPDATE recsys.model_features SET feature_id = feature_id + 1000 WHERE model_id = __MID__},
	q{UPDATE recsys.model_features SET feature_id = -feature_id - 1 WHERE model_id = __MID__},
	q{DELETE FROM recsys.model_features WHERE model_id = __MID__ AND feature_id = 0},
	q{DELETE FROM recsys.model_features WHERE model_id = __MID__},
	q{UPDATE recsys.entity_features SET features = '{99999}', weights = '{1}' WHERE model_id = __MID__},
	q{UPDATE recsys.entity_features SET features = '{-1}', weights = '{1}' WHERE model_id = __MID__},
	q{UPDATE recsys.entity_features SET weights = '{}' WHERE model_id = __MID__},
	q{UPDATE recsys.entity_features SET features = '{}', weights = '{}' WHERE model_id = __MID__},
	q{UPDATE recsys.entity_features SET features = features || features, weights = weights || weights WHERE model_id = __MID__},
	q{UPDATE recsys.entity_features SET features = array_fill(0, ARRAY[100000]), weights = array_fill(1::real, ARRAY[100000]) WHERE model_id = __MID__},
	q{UPDATE recsys.entity_features SET weights = array_fill('NaN'::real, ARRAY[cardinality(weights)]) WHERE model_id = __MID__},
	q{UPDATE recsys.entity_features SET features = '{{0,0},{0,0}}', weights = '{{1,1},{1,1}}' WHERE model_id = __MID__},
	q{UPDATE recsys.entity_features SET features = '{0,NULL}', weights = '{1,NULL}' WHERE model_id = __MID__},
	q{UPDATE recsys.entity_features SET features = '[5:5]={0}', weights = '[7:7]={1}' WHERE model_id = __MID__},
	q{UPDATE recsys.entity_features SET entity_id = entity_id + 100 WHERE model_id = __MID__},
	q{DELETE FROM recsys.entity_features WHERE model_id = __MID__},
	q{UPDATE recsys.models SET params = params - 'item_features' - 'item_text' - 'user_features' WHERE model_id = __MID__},
	q{UPDATE recsys.models SET params = params || '{"item_features": "no_such", "item_text": "ratings_seq"}' WHERE model_id = __MID__},
	q{UPDATE recsys.models SET params = params || '{"item_features": 7, "user_features": [1]}' WHERE model_id = __MID__},
	q{UPDATE recsys.models SET params = params || '{"item_features": "ft_nanw", "user_features": "ft_textid"}' WHERE model_id = __MID__},
	q{UPDATE recsys.models SET params = params || '{"text_config": "klingon", "item_text": "docs"}' WHERE model_id = __MID__},
	q{UPDATE recsys.models SET params = params || '{"weighting": "nosuch", "k1": "x", "binary": 7}' WHERE model_id = __MID__},
	q{UPDATE recsys.models SET params = params || '{"feature_regularization": -1}' WHERE model_id = __MID__},
	q{UPDATE recsys.models SET method = 'content', params = params || '{"method": "content"}' WHERE model_id = __MID__},
	q{UPDATE recsys.models SET method = 'ials', params = params || '{"method": "ials"}' WHERE model_id = __MID__},
	q{UPDATE recsys.models SET factors = 1000 WHERE model_id = __MID__},
);
my @change_models = (
	[ 'content', q{"item_features": "tags", "item_text": "docs", "text_config": "fz_cfg"} ],
	[ 'ials', q{"item_features": "tags", "item_text": "docs", "user_features": "uattrs", "text_config": "fz_cfg"} ],
	[ 'als', q{"item_features": "tags", "user_features": "uattrs"} ],
);
# (the trainings of the fixture models, as above)
my %fixture_train = (
	ct => q{CALL train('ct', 'ratings', method => 'content', options => '{"item_features": "tags", "item_text": "docs", "text_config": "fz_cfg"}')},
	ctb => q{CALL train('ctb', 'ratings', method => 'content', options => '{"item_text": "docs_tsv", "weighting": "bm25", "binary": true}')},
	hy => q{CALL train('hy', 'ratings', method => 'ials', options => '{"factors": 2, "iterations": 3, "item_features": "tags", "user_features": "uattrs"}')},
	hya => q{CALL train('hya', 'ratings', value_col => 'rating', method => 'als', options => '{"factors": 3, "iterations": 3, "item_features": "tags_v", "item_text": "docs", "user_features": "uattrs", "feature_regularization": 0.01}')},
);
my $mid = q{(SELECT model_id FROM recsys.models WHERE name = 'fz_m')};
my $kind = 0;
for my $change (@feature_changes)
{
	# models trained in the call (their rows are new): of each kind for the
	# changes of the stored rows, of one kind in turn for the changes of
	# relations, which also go to one of the fixture models (cached already)
	my @kinds = $change =~ /__MID__/ ? @change_models : ($change_models[ $kind++ % @change_models ]);
	for my $cm (@kinds)
	{
		my $train = feature_train('fz_m', @$cm);
		(my $sql = $change) =~ s/__MID__/$mid/g;
		add_call('feature change',
			"$train; SELECT fz_try('SELECT count(*) FROM recommend(1, 5, ''fz_m'')'); $sql; "
			  . serve_calls(q{'fz_m'}) . '; SELECT fz_try(' . lit($train) . ')');
	}
	next if $change =~ /__MID__/;
	# (one of them, to keep the time down)
	for my $fixture (pick([ sort keys %fixture_train ]))
	{
		add_call('feature change',
			"SELECT fz_try('SELECT count(*) FROM recommend(1, 5, ''$fixture'')'); $change; "
			  . serve_calls("'$fixture'") . '; SELECT fz_try(' . lit($fixture_train{$fixture}) . ')');
	}
}
# Models with text ids: trained from text-keyed relations (and from
# relations whose id types do not match), served by text id, refreshed
# after their relations change
sub serve_text_calls
{
	my ($m) = @_;
	my @q = (
		"SELECT count(*) FROM recommend('u1', 5, $m)",
		"SELECT count(*) FROM recommend('nosuch', 5, $m)",
		"SELECT count(*) FROM similar_items('i9', 5, $m)",
		"SELECT count(*) FROM similar_items('', 5, $m)",
		"SELECT count(*) FROM explain_features('u1', 'i9', 5, $m)",
		"SELECT count(*) FROM explain_features('u1', repeat('i', 1000), 5, $m)",
		"SELECT count(*) FROM recommend_for_features('{drama,age:1}', 5, $m)",
		"SELECT count(*) FROM recommend_for_items(ARRAY['i1', 'i9', 'nosuch', ''], 5, $m)",
		"SELECT refresh_item($m, 'i9')",
		"SELECT refresh_item($m, 'i7')",
		"SELECT refresh_item($m, 'inew')",
		"SELECT refresh_item($m, '')",
		"SELECT refresh_item($m, repeat('x', 100000))",
		"SELECT refresh_item($m, NULL::text)",
		"SELECT refresh_item($m, 7)",
		"SELECT refresh_user($m, 'u1')",
		"SELECT refresh_user($m, 'unew')",
		"SELECT forget_user($m, 'u2')",
		"SELECT count(*) FROM recommend('u1', 5, $m)",
		"SELECT count(*) FROM recommend('unew', 5, $m)",
	);
	return join('; ', map { 'SELECT fz_try(' . lit($_) . ')' } @q);
}
my @text_trainings = (
	[ q{CALL public.train('fz_t', 'tev', method => 'content', options => '{"item_features": "ttags"}')}, 'ok' ],
	[ q{CALL public.train('fz_t', 'tev', method => 'ials', factors => 2, iterations => 2, options => '{"item_features": "ttags", "user_features": "tua"}')}, 'ok' ],
	[ q{CALL public.train('fz_t', 'tev', method => 'content', options => '{"item_features": "tags"}')}, '42804' ],
	[ q{CALL public.train('fz_t', 'tev', method => 'ials', factors => 2, iterations => 2, options => '{"user_features": "uattrs"}')}, '42804' ],
	[ q{CALL public.train('fz_t', 'ratings', method => 'content', options => '{"item_features": "ttags"}')}, '42804' ],
	[ q{CALL public.train('fz_t', 'tev', method => 'content', options => '{"item_features": "ft_textid"}')}, 'ok' ],
);
for my $t (@text_trainings)
{
	add_call('features', $t->[0], '', $t->[1]);
	add_call('features', "$t->[0]; " . serve_text_calls(q{'fz_t'})) if $t->[1] eq 'ok';
}
for my $change (
	q{DROP TABLE ttags},
	q{ALTER TABLE ttags ALTER COLUMN item_id TYPE int USING length(item_id)},
	q{UPDATE ttags SET item_id = NULL WHERE item_id = 'i9'},
	q{UPDATE ttags SET weight = 'NaN' WHERE item_id = 'i9'},
	q{INSERT INTO ttags VALUES ('inew', 'drama', 1), ('inew', 'brand new', 1)},
	q{UPDATE ttags SET item_id = upper(item_id)},
	q{DELETE FROM recsys.id_map WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = '__M__')},
	q{UPDATE recsys.id_map SET external = external || 'x' WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = '__M__')},
	q{DELETE FROM tev WHERE item_id = 'i1'})
{
	for my $m (qw(tct thy))
	{
		(my $sql = $change) =~ s/__M__/$m/g;
		add_call('feature change',
			"SELECT fz_try('SELECT count(*) FROM recommend(''u1'', 5, ''$m'')'); $sql; "
			  . serve_text_calls("'$m'"));
	}
}
my $n_features = scalar(@calls) - $n_before_features;

note "calls: " . scalar(@regressions) . " regression cases, $n_single one argument at a time, $n_rand random combinations, "
  . "$n_aggcalls aggregate calls over rows, $n_seq sequences, $n_features with feature relations";

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
my @unexpected;        # calls that did not end with the SQLSTATE they must
my @slowest;           # [ ms, id ]
my %by_func_ok;        # function => number of successful calls
my %ms_by_func;        # function => milliseconds in its calls
my @ms_of_call;        # call index => milliseconds
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
		push @unexpected, "call $c->[0]: $c->[2]\n    -> $state, expected $c->[4]: $msg" if defined $c->[4];
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
		push @unexpected, "call $id: $c->[2]\n    -> $state: $msg" if $state eq 'FZ001';
		push @unexpected, "call $id: $c->[2]\n    -> $state, expected $c->[4]" . ($msg ? ": $msg" : '')
		  if defined $c->[4] && $state !~ /^(?:$c->[4])$/;
		push @slowest, [ $ms, $id ];
		$ms_by_func{ $c->[1] } += $ms;
		$ms_of_call[ $id - 1 ] = $ms;
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
{
	my @passes = (
		[ 'regression cases', scalar(@regressions) ], [ 'one at a time', $n_single ],
		[ 'random', $n_rand ], [ 'aggregates', $n_aggcalls ], [ 'sequences', $n_seq ],
		[ 'feature relations', $n_features ]);
	my ($from, @took) = (0);
	for my $p (@passes)
	{
		my $sum = 0;
		$sum += $_ // 0 for @ms_of_call[ $from .. $from + $p->[1] - 1 ];
		push @took, sprintf('%s %.1f s', $p->[0], $sum / 1000);
		$from += $p->[1];
	}
	note 'time in the calls by pass: ' . join(', ', @took);
	my @top = (sort { $ms_by_func{$b} <=> $ms_by_func{$a} } keys %ms_by_func)[ 0 .. 7 ];
	note 'time in the calls by function: ' . join(', ', map { sprintf('%s %.1f s', $_, $ms_by_func{$_} / 1000) } @top);
}
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
is(scalar(@unexpected), 0,
	'each training from a feature relation succeeded or failed as it must (SQLSTATE), with finite scores')
  or diag join("\n", @unexpected);

my @bad_log = grep { /was terminated by signal|TRAP: |PANIC: / } split /\n/, slurp_file($node->logfile);
is(scalar(@bad_log), 0, 'the server log shows no crash or assertion failure')
  or diag join("\n", @bad_log);
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');
# The ids at the ends of bigint are ordinary ids (the model ext knows the
# items -9223372036854775808, 0 and 9223372036854775807)
is($node->safe_psql('postgres',
		q{SELECT (SELECT count(*) FROM similar_items((-9223372036854775807 - 1)::bigint, 3, 'ext')) || '|' ||
		         (SELECT count(*) FROM similar_items(9223372036854775807, 3, 'ext')) || '|' ||
		         (SELECT count(*) FROM similar_users((-9223372036854775807 - 1)::bigint, 3, 'ext'))}),
	'2|2|2', 'similar_items and similar_users find the items and users with the smallest and largest bigint ids');
# recommend_for_features with weights it accepts (finite reals >= 0) whose
# sum or products overflow real: an error, or finite scores (not NaN or
# Infinity, which also break the ranking)
for my $m (qw(ct hy hya))
{
	my ($ret, $out, $err) = $node->psql('postgres',
		qq{\\set VERBOSITY verbose\n}
		  . q{SELECT count(*) FILTER (WHERE NOT (score > '-Infinity' AND score < 'Infinity')) || ' of ' || count(*) }
		  . qq{FROM recommend_for_features('{drama,drama,age:1,age:1}', 5, '$m', '{3e38,3e38,3e38,3e38}')});
	ok(($ret != 0 && $err =~ /ERROR:/ && $err !~ /XX000/) || $out =~ /^0 of/,
		"recommend_for_features($m) with weights that overflow: an error or finite scores")
	  or diag "got: $out $err";
}
# refresh_item() of an item whose features have weights training accepts
# (3.4e38 fits in real): an error, or a row the model can serve; not a
# non-finite row, after which every recommend() of the model fails
for my $m (qw(ct hy hya))
{
	my ($ret, $out, $err) = $node->psql('postgres', qq{
\\set VERBOSITY verbose
BEGIN;
UPDATE tags SET weight = 3.4e38 WHERE item_id = 7;
SELECT 'refresh', refresh_item('$m', 7);
SELECT 'scores', count(*) FILTER (WHERE NOT (score > '-Infinity' AND score < 'Infinity')) || ' of ' || count(*)
FROM recommend(1, 8, '$m');
ROLLBACK;});
	ok(($out !~ /^refresh\|/m && $err =~ /ERROR:/ && $err !~ /XX000/) || $out =~ /^scores\|0 of [1-9]/m,
		"refresh_item($m) of an item whose feature weights overflow: an error, or a row recommend() can serve")
	  or diag "got: $out $err";
}
# recommend_for_features() of a model with text item ids: its result
# column is bigint, which cannot hold them; the model's internal numbers
# are not ids (bigint results of a text-keyed model are refused)
# (TODO: not yet)
{
	local $TODO = 'recommend_for_features of a text-keyed model returns its internal numbers as bigint ids';
	my ($ret, $out, $err) = $node->psql('postgres', q{
\set VERBOSITY verbose
SET client_min_messages = warning;
BEGIN;
CREATE TABLE fz_tev (user_id text, item_id text);
INSERT INTO fz_tev VALUES ('u1', 'i1'), ('u1', 'i2'), ('u2', 'i2'), ('u2', 'i3'), ('u3', 'i1');
CREATE TABLE fz_ttags (item_id text, feature text);
INSERT INTO fz_ttags VALUES ('i1', 'drama'), ('i2', 'drama'), ('i3', 'comedy'), ('i9', 'drama');
CALL train('fz_tc', 'fz_tev', method => 'content', options => '{"item_features": "fz_ttags"}');
SELECT 'trained';
SELECT 'ids', string_agg(item_id::text, ',' ORDER BY item_id) FROM recommend_for_features('{drama}', 5, 'fz_tc');
ROLLBACK;});
	ok($out =~ /^trained/m && $ret != 0 && $err =~ /ERROR:/ && $err !~ /XX000/,
		'recommend_for_features of a model with text item ids: an error, not its internal numbers')
	  or diag "got: $out $err";
}
# Repeated candidate ids count once
is($node->safe_psql('postgres',
		q{SELECT count(*) || '|' || count(DISTINCT item_id) FROM recommend(1, 10, 'ex', false, '{1,1,1,2,2,99}')}),
	'2|2', 'repeated candidate ids give each item once');
# refresh_user() of a model whose catalog row was changed after the backend
# cached its item factors: found under AddressSanitizer (test/memcheck.sh
# --asan --tap test/t/008_fuzz_args.pl), where it read 1000 factors from the
# cached 4-factor buffer (heap-buffer-overflow in ArrayFromFixed, from
# CatalogStoreUser, from recsys_refresh_user) and stored them.  It must
# fail as a corrupt model does everywhere else, or, since the backend keeps
# its parsed copy of the model row while the row's version and token are
# unchanged (which every change recsys makes draws anew, and this UPDATE
# behind its back does not), work on the cached model consistently: the
# stored row then has the model's real 4 factors, never 1000.
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
ok($err =~ /ERROR:  .*(invalid|corrupt|factors)/ || ($err eq '' && $out =~ /\n4\z/),
	'refresh_user after the catalog row changed under the cached model: a clean error, or a row of the cached model')
  or note "refresh_user stored: $out; $err";
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up after the refresh');
# The rolled-back calls left the fixture as it was
is($node->safe_psql('postgres',
		q{SELECT string_agg(name || ':' || num_users || ':' || num_items, ',' ORDER BY name) FROM recsys.models}),
	'ct:8:8,ctb:8:8,ease:8:6,ex:8:6,ext:3:3,hy:9:8,hya:9:8,im:8:6,imc:8:6,knn:8:6,pop:8:6,tct:8:11,thy:9:11',
	'the models are unchanged');

$node->stop;
done_testing();
