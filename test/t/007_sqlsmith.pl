# Copyright (c) recsys authors
#
# SQLsmith (Debian package sqlsmith) against a database with the extension,
# trained models of every method (also a content model and a hybrid one,
# with their item features, texts and user attributes, so that
# recommend_for_features, explain_features and refresh_item reach them)
# and the fixture tables: random queries
# that call the recsys functions with random arguments, for a bounded number
# of queries.  The server must not crash (no backend terminated by a signal,
# no assertion failure) and must answer afterwards.
#
# SQLsmith only calls functions that return one value, and picks each call
# uniformly among all functions of a matching type, so out of the box it
# would call recsys a few times per thousand queries.  Two things point it at
# the extension:
#   - for each set-returning function f of the extension, a function
#     sqlsmith.f with the same arguments that returns the rows as text;
#   - SQLsmith reads the catalog with unqualified "pg_proc": its connection
#     puts the schema sqlsmith first on the search_path, where a view
#     pg_proc lists the extension's functions, the wrappers and a fixed
#     seventh of the built-in functions (without polymorphic ones, which
#     SQLsmith cannot call, and without the ones that signal backends,
#     sleep, or touch files, WAL and replication).
# A second run with a fifth of the queries sees only the recsys functions
# of content and hybrid models (recommend_for_features, explain_features,
# refresh_item, split_items, evaluate, recommend, similar_items; the view
# pg_proc of schema sqlsmith_features).
# Every query runs in a transaction that SQLsmith rolls back, with
# statement_timeout = 1s.
#
# The query that crashed a backend is written to
# tmp_check/sqlsmith_crashes.sql and printed; keep it as a regression case
# in test/t/008_fuzz_args.pl.  A longer run by hand:
#
#   RECSYS_SQLSMITH_QUERIES=100000 RECSYS_SQLSMITH_SEED=7 make installcheck \
#       REGRESS= PROVE_TESTS=test/t/007_sqlsmith.pl
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $sqlsmith = `command -v sqlsmith 2>/dev/null`;
chomp $sqlsmith;
plan skip_all => 'sqlsmith is not installed (Debian package sqlsmith: apt-get install sqlsmith)'
  unless $sqlsmith && -x $sqlsmith;

# The server inherits this: one BLAS thread per backend.
$ENV{OPENBLAS_NUM_THREADS} = 1;

my $max_queries = $ENV{RECSYS_SQLSMITH_QUERIES} // 5000;
my $seed = $ENV{RECSYS_SQLSMITH_SEED} // 1;

my $node = PostgreSQL::Test::Cluster->new('sqlsmith');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
restart_after_crash = on
maintenance_work_mem = '256MB'
# the whole query in "Failed process was running" when a backend crashes
track_activity_query_size = 65536
log_statement = none
});
$node->start;

$node->safe_psql(
	'postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION recsys;
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
CREATE TABLE items (item_id int PRIMARY KEY, title text, genre text);
INSERT INTO items VALUES
    (1, 'Alpha', 'drama'), (2, 'Bravo', 'drama'), (3, 'Charlie', 'drama'),
    (4, 'Delta', 'action'), (5, 'Echo', 'action'), (6, 'Foxtrot', 'action');
-- Item features and texts, user attributes (item 7 has features only)
CREATE TABLE tags (item_id int, feature text, weight real);
INSERT INTO tags VALUES
    (1, 'drama', 1), (2, 'drama', 1), (2, '90s', 1), (3, 'comedy', 1),
    (4, 'action', 1), (5, 'action', 1), (5, '90s', 0.5), (7, 'action', 2);
CREATE TABLE docs (item_id int, document text);
INSERT INTO docs VALUES (1, 'A sad story of love'), (3, 'Love and loss'), (7, 'Explosions and cars');
CREATE TABLE uattrs (user_id int, feature text);
INSERT INTO uattrs SELECT u, 'age:' || (u % 3) FROM generate_series(1, 9) u;
-- Columns of the argument types, for SQLsmith to draw values from
CREATE TABLE vals (i8 bigint, i4 int, f8 float8, f4 real, t text, b boolean,
                   ai8 bigint[], af4 real[], af8 float8[], ai4 int[], at text[]);
INSERT INTO vals VALUES
    (1, 3, 0.5, 1, 'ex', true, '{1,2,3}', '{1,2}', '{5,1}', '{1,1}', '{drama,90s}'),
    (8, 10, 'NaN', 'Infinity', 'im', false, '{}', '{}', '{}', '{}', '{}'),
    (-1, -1, '-Infinity', 'NaN', 'pop', NULL, '{1,NULL}', '{1,NULL}', '{NaN}', '{0,0}', '{age:1,NULL}'),
    (9223372036854775807, 2147483647, 1e308, 3e38, '', true, '{{1,2},{3,4}}', '{{1,2},{3,4}}', '{{1}}', '{-1,5}',
     '{{drama,90s},{age:1,age:2}}'),
    (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (0, 0, 0, 0, repeat('x', 200), false, '{6,5,4,3,2,1}', '{1,2,3}', '{1,2,3}', '{2147483647,1}',
     ARRAY[repeat('x', 200), '']),
    (7, 2, 1e-300, 1e-45, 'ct', true, '{7,1}', '{1}', '{1e308,-1}', '{1}', '{action,word:love}'),
    (9, 1, 2, 2, 'hy', false, '{9,7}', '{2,3}', '{2,0.5}', '{2}', '{age:0,age:1,age:2}'),
    (2, 5, -0.5, 0, 'cold', NULL, '{2}', '{0}', '{-1}', '{3}', '{drama,drama,drama}');
CALL train('ex', 'ratings', value_col => 'rating', factors => 3, iterations => 5);
CALL train('im', 'ratings', method => 'ials', factors => 2, iterations => 5);
CALL train('pop', 'ratings', method => 'popular');
-- Content and hybrid models
CALL train('ct', 'ratings', method => 'content',
           options => '{"item_features": "tags", "item_text": "docs", "text_config": "english"}');
CALL train('hy', 'ratings', method => 'ials',
           options => '{"factors": 2, "iterations": 3, "item_features": "tags", "user_features": "uattrs"}');
});

# The wrappers of the set-returning functions, and the catalog view
$node->safe_psql(
	'postgres', q{
SET client_min_messages = warning;
CREATE SCHEMA sqlsmith;
DO $$
DECLARE
    f record;
BEGIN
    FOR f IN
        SELECT p.oid, p.proname, p.pronamespace::regnamespace::text AS nspname,
               p.provolatile, p.pronargs, pg_get_function_arguments(p.oid) AS args
        FROM pg_proc p
        JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
        WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'recsys')
          AND p.proretset AND p.prokind = 'f'
          -- (functions with OUT parameters already return a named row type)
          AND NOT 'o' = ANY (coalesce(p.proargmodes, '{}'))
    LOOP
        EXECUTE format(
            'CREATE FUNCTION sqlsmith.%I(%s) RETURNS text LANGUAGE sql %s AS %L',
            f.proname, f.args,
            CASE f.provolatile WHEN 'i' THEN 'IMMUTABLE' WHEN 's' THEN 'STABLE' ELSE 'VOLATILE' END,
            -- (schema-qualified: an unqualified name would call the wrapper
            -- itself, schema sqlsmith being first on SQLsmith's search_path)
            format('SELECT string_agg(t::text, '';'') FROM %s.%I(%s) t', f.nspname, f.proname,
                   (SELECT string_agg('$' || i, ', ') FROM generate_series(1, f.pronargs) i)));
    END LOOP;
END $$;
CREATE VIEW sqlsmith.pg_proc AS
SELECT p.* FROM pg_catalog.pg_proc p
WHERE p.prokind <> 'p'
  AND (p.pronamespace = 'sqlsmith'::regnamespace
       OR p.oid IN (SELECT objid FROM pg_depend
                    WHERE classid = 'pg_proc'::regclass AND deptype = 'e'
                      AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'recsys'))
       OR (p.pronamespace = 'pg_catalog'::regnamespace
           AND (p.oid::int8 % 7 = 0 OR p.proname IN ('set_config', 'array_fill', 'random', 'repeat'))
           -- SQLsmith cannot build arguments of polymorphic types (most of its
           -- errors otherwise)
           AND NOT EXISTS (SELECT FROM unnest(p.proargtypes || p.prorettype) t
                           JOIN pg_type y ON y.oid = t WHERE y.typtype = 'p')
           AND p.proname !~ '^(pg_terminate|pg_cancel|pg_reload|pg_promote|pg_rotate|pg_backup|pg_start_backup|pg_stop_backup|pg_create|pg_drop|pg_replication|pg_logical|pg_switch_wal|pg_log_backend|lo_|pg_file|pg_ls_|pg_read|pg_stat_file|pg_sleep|pg_advisory|pg_try_advisory|pg_stat_reset|pg_wal_replay|pg_import|pg_copy|pg_current_logfile|pg_notify|pg_export|pg_sync|pg_nextoid|binary_upgrade)'));
});

my $counts = $node->safe_psql(
	'postgres', q{
SELECT count(*) FILTER (WHERE pronamespace <> 'pg_catalog'::regnamespace),
       count(*) FILTER (WHERE pronamespace = 'pg_catalog'::regnamespace)
FROM sqlsmith.pg_proc});
my ($n_recsys, $n_core) = split /\|/, $counts;
note "sqlsmith sees $n_recsys recsys functions and wrappers and $n_core built-in functions";
cmp_ok($n_recsys, '>=', 10, 'the catalog view lists the recsys functions');

# Names of the functions SQLsmith may call, to count the queries that call them
my @names = split /\n/, $node->safe_psql('postgres',
	q{SELECT DISTINCT proname FROM sqlsmith.pg_proc WHERE pronamespace <> 'pg_catalog'::regnamespace});
my $name_re = join('|', map { quotemeta } @names);

my $target = $node->connstr('postgres') . ' options=-csearch_path=sqlsmith,public,pg_catalog';
my $log_offset = -s $node->logfile;
my ($out, $err) = ('', '');
my $t0 = time();
IPC::Run::run(
	[
		$sqlsmith, "--target=$target", "--max-queries=$max_queries", "--seed=$seed",
		'--exclude-catalog', '--verbose', '--dump-all-queries'
	],
	'<', \undef, '>', \$out, '2>', \$err,
	IPC::Run::timeout(600));
my $elapsed = time() - $t0;

# --dump-all-queries prints the queries to stdout, each ending with ";"
my @queries = split /;\n/, $out;
my $recsys_queries = grep { /\b(?:public|sqlsmith)\.(?:$name_re)\(/ } @queries;
my @reports = $err =~ /^queries: (\d+)/mg;
my $queries_run = @reports ? $reports[-1] : 0;
my $error_rate = ($err =~ /error rate: ([\d.]+)/g)[-1] // 'unknown';
# the progress dots: "." ok, "e" error, "t" timeout, "S" syntax error,
# "C" lost connection
my $progress = join('', $err =~ /^([.etSC]+)$/mg);
my %outcome;
$outcome{$_}++ for split //, $progress;
note sprintf(
	"sqlsmith: %d queries in %.0f s (seed %d), %d of them call recsys functions; "
	  . "ok %d, error %d, timeout %d, syntax %d, lost connection %d; error rate %s",
	$queries_run, $elapsed, $seed, $recsys_queries, $outcome{'.'} // 0, $outcome{e} // 0,
	$outcome{t} // 0, $outcome{S} // 0, $outcome{C} // 0, $error_rate);
# The most frequent errors (SQLsmith's report)
my ($last_report) = $err =~ /.*^queries: \d+\n(.*)/ms;
my @top = grep { /^\d+\tERROR:/ } split /\n/, $last_report // '';
note "top errors:\n" . join("\n", @top[ 0 .. ($#top < 14 ? $#top : 14) ]) if @top;

# A second, shorter run (a fifth of the queries) on the functions of
# content and hybrid models only (and a few built-in functions): the
# catalog view of schema sqlsmith_features lists no other function.
my @feature_fns = qw(recommend_for_features explain_features refresh_item split_items
  evaluate recommend similar_items);
$node->safe_psql('postgres',
	'CREATE SCHEMA sqlsmith_features; CREATE VIEW sqlsmith_features.pg_proc AS '
	  . q{SELECT * FROM sqlsmith.pg_proc WHERE proname IN ('}
	  . join(q{', '}, @feature_fns, qw(repeat random set_config string_to_array upper chr md5 length abs))
	  . q{')});
my ($fout, $ferr) = ('', '');
my $max_feature_queries = int($max_queries / 5);
$t0 = time();
IPC::Run::run(
	[
		$sqlsmith,
		'--target=' . $node->connstr('postgres')
		  . ' options=-csearch_path=sqlsmith_features,sqlsmith,public,pg_catalog',
		"--max-queries=$max_feature_queries", '--seed=' . ($seed + 1),
		'--exclude-catalog', '--verbose', '--dump-all-queries'
	],
	'<', \undef, '>', \$fout, '2>', \$ferr,
	IPC::Run::timeout(600));
my @feature_queries = split /;\n/, $fout;
my @freports = $ferr =~ /^queries: (\d+)/mg;
my $feature_queries_run = @freports ? $freports[-1] : 0;
my %feature_calls = map {
	my $f = $_;
	$f => scalar(grep { /\b(?:public|sqlsmith)\.$f\(/ } @queries, @feature_queries)
} @feature_fns;
note sprintf('sqlsmith on the feature functions: %d queries in %.0f s (seed %d), error rate %s; '
	  . 'queries of both runs that call %s', $feature_queries_run, time() - $t0, $seed + 1,
	($ferr =~ /error rate: ([\d.]+)/g)[-1] // 'unknown',
	join(', ', map { "$_ $feature_calls{$_}" } @feature_fns));
cmp_ok($feature_queries_run, '>=', $max_feature_queries * 0.9, 'sqlsmith ran its queries on the feature functions');
cmp_ok(scalar(grep { /\b(?:public|sqlsmith)\.(?:recommend_for_features|explain_features|refresh_item)\(/ } @feature_queries),
	'>=', $max_feature_queries / 10, 'at least a tenth of them call recommend_for_features, explain_features or refresh_item');

cmp_ok($queries_run, '>=', $max_queries * 0.9, 'sqlsmith ran its queries');
cmp_ok($recsys_queries, '>=', $max_queries / 10, 'at least a tenth of the queries call recsys');

# Crashes: a backend terminated by a signal, an assertion failure, a PANIC
my $log = slurp_file($node->logfile, $log_offset);
my @crashes;
while ($log =~ /(server process \(PID \d+\) was terminated by signal[^\n]*)\n(?:[^\n]*DETAIL:  Failed process was running: (.*?)\n(?=\d{4}-\d\d-\d\d |\z))?/sg)
{
	push @crashes, { why => $1, query => $2 // '(query not in the log)' };
}
my @other = grep { /PANIC: |TRAP: / } split /\n/, $log;
if (@crashes)
{
	my $file = "$PostgreSQL::Test::Utils::tmp_check/sqlsmith_crashes.sql";
	open(my $fh, '>', $file) or die "$file: $!";
	print $fh "-- $_->{why}\n$_->{query};\n\n" for @crashes;
	close($fh);
	diag "crash: $_->{why}\n$_->{query}" for @crashes;
	diag "the queries are in $file";
}
is(scalar(@crashes), 0, 'no backend crashed');
is(scalar(@other), 0, 'no PANIC or assertion failure in the server log') or diag join("\n", @other);
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');
is($node->safe_psql('postgres',
		q{SELECT string_agg(name || ':' || num_users || ':' || num_items, ',' ORDER BY name) FROM recsys.models}),
	'ct:8:7,ex:8:6,hy:9:7,im:8:6,pop:8:6', 'the models are unchanged (SQLsmith rolls back every query)');

$node->stop;
done_testing();
