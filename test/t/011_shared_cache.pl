# Copyright (c) recsys authors
#
# The shared cache (recsys in shared_preload_libraries): one copy of each
# model version's item data in shared memory serves every backend.
#  - Answers are exactly those of a server without it (same data, same
#    seed: the same model), for every serving function.
#  - The first backend publishes a version; the others attach to it (hits)
#    and keep only their scratch; pins follow the backends that use it.
#  - A retrain publishes the new version; the old one stays for the
#    backends (and snapshots) still using it and goes with its last pin.
#  - A model bigger than the cache is served from a private copy; unpinned
#    versions are evicted to make room; databases do not share entries.
#  - pgbench clients on fresh connections during retrains: no error; a
#    killed backend: after the restart the cache is empty and works.
#  - The monitoring functions are for pg_read_all_stats, not PUBLIC.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The servers inherit this: one BLAS thread per backend.
$ENV{OPENBLAS_NUM_THREADS} = 1;

my $generator = 'test/data/generate';
BAIL_OUT("$generator not built (run make)") unless -x $generator;
my $dir = PostgreSQL::Test::Utils::tempdir;

# Two servers: one with the shared cache (8 MB), one without
my $shared = PostgreSQL::Test::Cluster->new('shared');
$shared->init;
$shared->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'recsys'
recsys.shared_cache_size = '8MB'
max_parallel_maintenance_workers = 1
restart_after_crash = on
});
$shared->start;
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->append_conf('postgresql.conf', 'max_parallel_maintenance_workers = 1');
$plain->start;

# Data: m (2,000 items: a 0.8 MB blob at k = 64) and big (40,000 items:
# 15 MB, more than the cache)
sub generate
{
	my ($name, @args) = @_;
	my $csv = "$dir/$name.csv";
	system("$generator --kind implicit @args > $csv 2>/dev/null") == 0
	  or BAIL_OUT("generator failed");
	return $csv;
}
my $small = generate('small', '--users 3000 --items 2000 --rows 60000 --rank 5 --beta 20 --seed 1');
my $large = generate('large', '--users 4000 --items 40000 --rows 200000 --rank 5 --beta 20 --seed 2');
my $setup = qq{
	CREATE EXTENSION recsys;
	CREATE TABLE events (user_id int, item_id int, count int);
	COPY events FROM '$small' CSV HEADER;
	CREATE TABLE wide (user_id int, item_id int, count int);
	COPY wide FROM '$large' CSV HEADER;
	SET client_min_messages = warning;
	CALL train('m', 'events', method => 'ials', factors => 64, iterations => 3, seed => 1);
	CALL train('big', 'wide', method => 'ials', factors => 64, iterations => 2, seed => 1);
};
$_->safe_psql('postgres', $setup) for ($shared, $plain);

# Every serving function's answer, at full precision
my $answers = q{
	SELECT string_agg(item_id || ':' || score::float8, ',' ORDER BY score DESC, item_id)
	FROM generate_series(1, 40) u, recommend(u, 10, '%1$s')
	UNION ALL
	SELECT string_agg(item_id || ':' || score::float8, ',' ORDER BY score DESC, item_id)
	FROM generate_series(1, 20) i, similar_items(i, 5, '%1$s')
	UNION ALL
	SELECT string_agg(predict(u, u + 1, '%1$s')::float8::text, ',' ORDER BY u)
	FROM generate_series(1, 40) u
	UNION ALL
	SELECT string_agg(item_id || ':' || score::float8, ',' ORDER BY score DESC, item_id)
	FROM recommend_for_items(ARRAY[1, 2, 3, 5, 8]::bigint[], 10, '%1$s')
	UNION ALL
	SELECT string_agg(item_id || ':' || contribution::float8, ',' ORDER BY item_id NULLS LAST)
	FROM explain(1, 7, 3, '%1$s')};
my %reference = map { $_ => $plain->safe_psql('postgres', sprintf($answers, $_)) } qw(m big);

my $entries = q{SELECT string_agg(m.name || ' ' || c.state || ' pins=' || c.pins
	                         || CASE WHEN c.stale THEN ' stale' ELSE '' END, ', ' ORDER BY c.version)
	            FROM recsys.shared_cache() c JOIN recsys.models m USING (model_id)
	            WHERE c.database = (SELECT oid FROM pg_database WHERE datname = current_database())};
my $versions = q{SELECT string_agg(c.version::text, ',' ORDER BY c.version) FROM recsys.shared_cache() c};

#
# 1. Publish, attach, pins, memory
#
my $a = $shared->background_psql('postgres');
my $b = $shared->background_psql('postgres');
is($a->query_safe(sprintf($answers, 'm')), $reference{m},
	'first backend: answers equal those of a server without the shared cache');
is($shared->safe_psql('postgres', $entries), 'm ready pins=1', 'm is published, pinned by one backend');
is($b->query_safe(sprintf($answers, 'm')), $reference{m},
	'second backend: answers equal, served from the shared blob');
is($shared->safe_psql('postgres', $entries), 'm ready pins=2', 'both backends pin the blob');
my ($hits, $publishes) = split /\|/, $shared->safe_psql('postgres',
	'SELECT hits, publishes FROM recsys.shared_cache_stats()');
is("$hits $publishes", '1 1', 'one publish, one hit');

# The second backend keeps only scratch: 16 bytes per item (scores and
# top-n rows, and the bounds of compact scoring) and the fold-in
# workspace, far below the 0.8 MB of item data it would otherwise load.
my ($blob, $private) = split /\|/, $b->query_safe(q{
	SELECT (SELECT bytes FROM recsys.shared_cache()),
	       (SELECT sum(total_bytes) FROM pg_backend_memory_contexts
	        WHERE name = 'recsys model cache entry')});
note "blob $blob bytes; the second backend's cache entry $private bytes";
cmp_ok($private, '<', $blob / 2, 'an attached backend holds less than half the blob privately');

#
# 2. A retrain: the new version is published, the old one lives while used
#
my $snap = $shared->background_psql('postgres');
$snap->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
my $before_retrain = $snap->query_safe(sprintf($answers, 'm'));
$shared->safe_psql('postgres', q{SET client_min_messages = warning;
	CALL train('m', 'events', method => 'ials', factors => 64, iterations => 4, seed => 1)});
$plain->safe_psql('postgres', q{SET client_min_messages = warning;
	CALL train('m', 'events', method => 'ials', factors => 64, iterations => 4, seed => 1)});
$reference{m} = $plain->safe_psql('postgres', sprintf($answers, 'm'));
isnt($reference{m}, $before_retrain, 'the retrain changed the answers');

is($a->query_safe(sprintf($answers, 'm')), $reference{m}, 'after the retrain: the new version serves');
is($shared->safe_psql('postgres', $entries), 'm ready pins=2 stale, m ready pins=1',
	'new version published; the old one is stale, still pinned by two sessions');
is($snap->query_safe(sprintf($answers, 'm')), $before_retrain,
	'a repeatable-read snapshot still gets the old version');
$b->query_safe(sprintf($answers, 'm'));
$snap->query_safe('COMMIT');
$snap->query_safe(sprintf($answers, 'm'));
is($shared->safe_psql('postgres', $entries), 'm ready pins=3',
	'the old version went with its last pin');

#
# 3. Too big for the cache: a private copy, the same answers
#
is($a->query_safe(sprintf($answers, 'big')), $reference{big},
	'a model bigger than the cache is served right');
is($shared->safe_psql('postgres', 'SELECT no_room FROM recsys.shared_cache_stats()'), '1',
	'it was not published (no room)');
is($shared->safe_psql('postgres', $entries), 'm ready pins=3', 'the cache holds m only');

#
# 4. Eviction: unpinned versions make room; pinned ones stay
#
$shared->safe_psql('postgres', q{
	SET client_min_messages = warning;
	CREATE TABLE e2 AS SELECT user_id, item_id % 8000 AS item_id, count FROM wide;
	CALL train('p1', 'e2', method => 'ials', factors => 64, iterations => 1);
	CALL train('p2', 'e2', method => 'ials', factors => 64, iterations => 1);
	CALL train('p3', 'e2', method => 'ials', factors => 64, iterations => 1);
});
# Each ~3.1 MB (8,000 items, compact codes included): p1 and p2 fit
# beside m; p3 needs an unpinned one evicted.
# Each is used from a session that ends, so it is left unpinned.
for my $p (qw(p1 p2 p3))
{
	is($shared->safe_psql('postgres', "SELECT count(*) FROM recommend(1, 10, '$p')"), '10',
		"$p serves");
}
is($shared->safe_psql('postgres', $entries), 'm ready pins=3, p2 ready pins=0, p3 ready pins=0',
	'p1, the least recently used unpinned entry, was evicted for p3; m (pinned) stayed');
cmp_ok($shared->safe_psql('postgres', 'SELECT evictions FROM recsys.shared_cache_stats()'),
	'>=', 1, 'an eviction was counted');

# A dropped model's versions leave the cache (the join above would hide
# them: look by id)
my $p2 = $shared->safe_psql('postgres', q{SELECT model_id FROM recsys.models WHERE name = 'p2'});
$shared->safe_psql('postgres', q{SELECT drop_model('p2')});
is($shared->safe_psql('postgres', "SELECT count(*) FROM recsys.shared_cache() WHERE model_id = $p2"),
	'0', 'drop_model frees the model\'s unpinned versions at once');

#
# 5. Databases do not share entries
#
$shared->safe_psql('postgres', 'CREATE DATABASE other');
$shared->safe_psql('other', qq{
	CREATE EXTENSION recsys;
	CREATE TABLE events (user_id int, item_id int, count int);
	COPY events FROM '$small' CSV HEADER;
	SET client_min_messages = warning;
	CALL train('m', 'events', method => 'ials', factors => 64, iterations => 2, seed => 9);
});
my $other = $shared->safe_psql('other', sprintf($answers, 'm'));
isnt($other, $reference{m}, 'model m of another database answers its own way');
is($shared->safe_psql('postgres',
		'SELECT count(DISTINCT database) FROM recsys.shared_cache()'), '2',
	'each database has its own entries');
is($a->query_safe(sprintf($answers, 'm')), $reference{m}, 'and m here is unchanged');

#
# 6. pgbench on fresh connections (attach and release on every call) while
#    m retrains: every call returns 10 rows, none fails
#
my $script = "$dir/recommend.sql";
PostgreSQL::Test::Utils::append_to_file($script, <<'EOF');
\set uid random(1, 3200)
SELECT 1 / (count(*) = 10)::int FROM recommend(:uid, 10, 'm');
EOF
my ($out, $err) = ('', '');
my $bench = IPC::Run::start(
	[
		'pgbench', '--no-vacuum', '--client=4', '--jobs=2', '--time=6', '--connect',
		'--file', $script, '-h', $shared->host, '-p', $shared->port, 'postgres'
	],
	'>', \$out, '2>', \$err);
for my $seed (11 .. 13)
{
	$shared->safe_psql('postgres', qq{SET client_min_messages = warning;
		CALL train('m', 'events', method => 'ials', factors => 64, iterations => 2, seed => $seed)});
}
$bench->finish;
my ($processed) = $out =~ /number of transactions actually processed: (\d+)/;
my ($failed) = $out =~ /number of failed transactions: (\d+)/;
note "pgbench --connect during 3 retrains: $processed calls";
ok($? == 0 && $processed && defined $failed && $failed == 0 && $err !~ /\S/,
	'pgbench on fresh connections during retrains: no call failed')
  or diag "$out\n$err";
$a->quit;
$b->quit;
$snap->quit;
# Backends release their pins as they exit, just after their clients go
ok($shared->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM recsys.shared_cache() WHERE pins > 0 OR state <> 'ready'}),
	'after every session ended, nothing is pinned or half-written');
is($shared->safe_psql('postgres', q{
	SELECT string_agg((c.version = m.version)::text, ',')
	FROM recsys.shared_cache() c JOIN recsys.models m USING (model_id)
	WHERE m.name = 'm' AND c.database = (SELECT oid FROM pg_database WHERE datname = 'postgres')}),
	'true', 'only the current version of m is left: the old ones went with their pins');

#
# 7. A backend killed while it pins a blob: the restart empties the cache
#
my $victim = $shared->background_psql('postgres', on_error_stop => 0);
$victim->query_safe("SELECT count(*) FROM recommend(1, 10, 'm')");
my $pid = $victim->query_safe('SELECT pg_backend_pid()');
my $log_offset = -s $shared->logfile;
kill 'KILL', $pid;
$victim->quit;
$shared->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
$shared->poll_query_until('postgres', 'SELECT true') or die 'no restart';
is($shared->safe_psql('postgres', 'SELECT count(*) FROM recsys.shared_cache()'), '0',
	'after the crash restart the cache is empty');
is($shared->safe_psql('postgres', "SELECT count(*) FROM recommend(1, 10, 'm')"), '10',
	'and serves again');

#
# 8. Monitoring is for pg_read_all_stats
#
$shared->safe_psql('postgres', 'CREATE ROLE nobody LOGIN; CREATE ROLE watcher LOGIN IN ROLE pg_read_all_stats');
my ($rc, $stdout, $stderr) = $shared->psql('postgres', 'SELECT * FROM recsys.shared_cache()',
	extra_params => [ '-U', 'nobody' ]);
like($stderr, qr/permission denied for function shared_cache/, 'PUBLIC may not read the shared cache');
is($shared->safe_psql('postgres', 'SELECT count(*) >= 1 FROM recsys.shared_cache()',
		extra_params => [ '-U', 'watcher' ]), 't', 'pg_read_all_stats may');

$shared->stop;
$plain->stop;
done_testing();
