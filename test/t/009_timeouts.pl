# Copyright (c) recsys authors
#
# statement_timeout and cancel during the serving-time and evaluation
# functions, not only during training (002 covers training): each one ends
# with a clean error, leaves every model as it was, leaves no temporary
# model or table behind, and the backend serves normally afterwards.
# Nothing is left behind either: after every interruption no temporary
# file, advisory lock, temporary relation or thread remains, and in one
# session interrupted again and again the backend's memory does not grow.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RecsysLeftovers;

# The server inherits this: one BLAS thread per backend.
$ENV{OPENBLAS_NUM_THREADS} = 1;

my $generator = 'test/data/generate';
BAIL_OUT("$generator not built (run make)") unless -x $generator;

my $node = PostgreSQL::Test::Cluster->new('timeouts');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '512MB'");
$node->start;

my $csv = "$PostgreSQL::Test::Utils::tmp_check/timeouts.csv";
system("$generator --kind implicit --users 3000 --items 2000 --rows 400000 "
	  . "--rank 5 --beta 20 --seed 11 > $csv 2>/dev/null") == 0
  or BAIL_OUT("generator failed");

$node->safe_psql('postgres', qq{
	CREATE EXTENSION recsys;
	CREATE TABLE events (user_id int, item_id int, count int);
	COPY events FROM '$csv' CSV HEADER;
	SELECT * FROM split_per_user('events', 'events_train', 'events_test');
	SET client_min_messages = warning;
	CALL train('m', 'events_train', method => 'ials', factors => 32, iterations => 5,
	           regularization => 30, alpha => 3);
});

# The state every interrupted call must leave untouched
my $state_sql = q{
	SELECT (SELECT string_agg(name || ':' || version, ',' ORDER BY name) FROM recsys.models),
	       (SELECT count(*) FROM recsys.user_factors),
	       (SELECT count(*) FROM recsys.item_factors),
	       (SELECT count(*) FROM pg_class WHERE relname LIKE 'tuning%'),
	       (SELECT string_agg(item_id::text, ',' ORDER BY score DESC, item_id)
	        FROM recommend(1, 10, 'm'))};
my $before = $node->safe_psql('postgres', $state_sql);

my $nothing_left = nothing_left(1);

# One session runs every interrupted statement, so that what an
# interruption leaves in the backend accumulates where it can be seen.
# work_mem is small, so that the statements' sorts and hashes spill to
# temporary files; temp_buffers is at its minimum, so that the buffers of
# the temporary tables tuning creates (kept by the backend once allocated,
# not a leak) cannot grow by more than 800 kB.
my $session = $node->background_psql('postgres', on_error_stop => 0);
$session->set_query_timer_restart();

# Run SQL in the session; its output and the error output it caused
sub session_query
{
	my ($sql) = @_;
	$session->{stderr} = '';
	my $out = $session->query($sql);
	return ($out, $session->{stderr});
}
my ($pid) = session_query('SELECT pg_backend_pid()');
session_query("SET work_mem = '64kB'; SET temp_buffers = '800kB'");
is(leftovers($node, $pid), $nothing_left, 'nothing left before the interruptions');

# Growth allowed after the warm-up: 1 MB.  Once the first interruptions
# have filled the backend's caches (catalog and plan caches, recsys's model
# cache entry of m, the temporary tables' buffers), what remains is small:
# a few catalog cache entries for the tables each tuning call names anew;
# the totals measured while writing this test grew by at most 45 kB over
# five interruptions.  Any leak of 200 kB or more per interruption exceeds
# the bound, and what these statements hold is larger: the model cache
# entry alone is 0.5 MB, the training data of a tuning fold 7 MB (26 bytes
# for each of its 267,000 interactions).
my $memory_bound = 1024 * 1024;

# Each statement runs for seconds; statement_timeout stops it midway: at
# 300 ms twice (warm-up: they reach further than the later ones, so their
# caches cover them), then at 20, 40, 60, 80 and 100 ms, at several points
# of the statement.
my @cases = (
	[ 'evaluate', q{SELECT * FROM evaluate('m', 'events_test', k => 10)} ],
	[ 'recommend_all', q{SELECT count(*) FROM generate_series(1, 100) g,
	                     LATERAL recommend_all(10 + g % 2, 'm')} ],
	[ 'LATERAL recommend', q{SELECT count(*) FROM generate_series(1, 20) g,
	                         generate_series(1, 3000) u, recommend(u, 10 + g % 2, 'm')} ],
	[ 'fold-in', q{SELECT count(*) FROM generate_series(1, 3000) u,
	               recommend_for_items(ARRAY(SELECT item_id::bigint FROM events_train
	                                         WHERE user_id = u), 10, 'm')} ],
	[ 'cross_validate', q{SELECT * FROM cross_validate('events',
	               '{"method": "ials", "factors": 16, "iterations": 5}', folds => 3)} ],
	[ 'grid_search', q{SELECT * FROM grid_search('events',
	               '{"method": "ials", "factors": [8, 16], "iterations": [3, 5]}',
	               'tuning_trials')} ]);
my @timeouts = (300, 300, 20, 40, 60, 80, 100);

foreach my $case (@cases)
{
	my ($name, $sql) = @$case;
	my @memory;
	foreach my $ms (@timeouts)
	{
		my (undef, $err) = session_query(
			"SET statement_timeout = '${ms}ms';\n$sql;\nRESET statement_timeout;");
		like($err, qr/canceling statement due to statement timeout/,
			"$name: stopped by statement_timeout after $ms ms");
		is(leftovers($node, $pid), $nothing_left,
			"$name: nothing left behind after $ms ms");
		push @memory, backend_memory($session);
	}
	is($node->safe_psql('postgres', $state_sql), $before,
		"$name: models, rows and answers unchanged, nothing left behind");

	check_memory_growth($name, $memory_bound, 2, @memory);
}

# A cancel from another session works the same way.  Start a statement in
# the session, cancel it once the $ready query answers true; the session's
# answer to the next query.
sub cancel_session_when
{
	my ($sql, $ready) = @_;
	$session->{stderr} = '';
	$session->{stdin} .= "$sql;\n";
	$session->{run}->pump_nb;
	$node->poll_query_until('postgres', $ready)
	  or die "the statement did not reach the point to cancel it";
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	# The session answers this only once the cancelled statement has ended
	# (and its error is then in $session->{stderr})
	return $session->query("SELECT 'after cancel'");
}
is( cancel_session_when(
		"SELECT * FROM cross_validate('events', "
		  . "'{\"method\": \"ials\", \"factors\": 16, \"iterations\": 5}', folds => 3)",
		"SELECT query LIKE '%cross_validate%' AND clock_timestamp() > query_start + interval '1 s'
		 FROM pg_stat_activity WHERE pid = $pid"),
	'after cancel', 'cross_validate: the session works after the cancel');
like($session->{stderr}, qr/canceling statement due to user request/,
	'cross_validate: stopped by pg_cancel_backend');
is($node->safe_psql('postgres', $state_sql), $before,
	'cross_validate: models, rows and answers unchanged after a cancel');
is(leftovers($node, $pid), $nothing_left, 'cross_validate: nothing left behind after a cancel');

# A cancel while temporary files are open: recommendations for users in
# an order that a sort, spilled to disk, delivers.  The cancel comes once
# the files exist, and they must be gone after it.
is( cancel_session_when(
		"SELECT count(*) FROM (SELECT user_id FROM events ORDER BY random()) s, "
		  . "recommend(s.user_id, 10, 'm')",
		"SELECT count(*) > 0 FROM pg_ls_tmpdir()"),
	'after cancel', 'spilled sort: the session works after the cancel');
like($session->{stderr}, qr/canceling statement due to user request/,
	'spilled sort: stopped by pg_cancel_backend');
is(leftovers($node, $pid), $nothing_left,
	'spilled sort: the temporary files are removed by the cancel');

# And the server serves normally afterwards, in the interrupted session too.
is((session_query("SELECT count(*) FROM recommend(1, 10, 'm')"))[0],
	'10', 'recommend works in the interrupted session');
$session->quit;
is($node->safe_psql('postgres', "SELECT count(*) FROM recommend(1, 10, 'm')"),
	'10', 'recommend works after all interruptions');

$node->stop;
done_testing();
