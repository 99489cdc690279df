# Copyright (c) recsys authors
#
# statement_timeout and cancel during the serving-time and evaluation
# functions, not only during training (002 covers training): each one ends
# with a clean error, leaves every model as it was, leaves no temporary
# model or table behind, and the backend serves normally afterwards.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

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

# Each statement runs for seconds; a 100 ms timeout stops it midway.
my @cases = (
	[ 'evaluate', q{SELECT * FROM evaluate('m', 'events_test', k => 10)} ],
	[ 'recommend_all', q{SELECT count(*) FROM generate_series(1, 100) g,
	                     LATERAL recommend_all(10 + g % 2, 'm')} ],
	[ 'LATERAL recommend', q{SELECT count(*) FROM generate_series(1, 3000) u,
	                         recommend(u, 10, 'm'), generate_series(1, 5) g} ],
	[ 'fold-in', q{SELECT count(*) FROM generate_series(1, 3000) u,
	               recommend_for_items(ARRAY(SELECT item_id::bigint FROM events_train
	                                         WHERE user_id = u), 10, 'm')} ],
	[ 'cross_validate', q{SELECT * FROM cross_validate('events',
	               '{"method": "ials", "factors": 16, "iterations": 5}', folds => 3)} ],
	[ 'grid_search', q{SELECT * FROM grid_search('events',
	               '{"method": "ials", "factors": [8, 16], "iterations": [3, 5]}',
	               'tuning_trials')} ]);

foreach my $case (@cases)
{
	my ($name, $sql) = @$case;
	my ($ret, $stdout, $stderr) = $node->psql('postgres',
		"SET statement_timeout = '100ms'; $sql");
	like($stderr, qr/canceling statement due to statement timeout/,
		"$name: stopped by statement_timeout");
	is($node->safe_psql('postgres', $state_sql), $before,
		"$name: models, rows and answers unchanged, nothing left behind");
}

# A cancel from another session works the same way.
my $bg = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
$bg->{stdin} .= "SELECT * FROM cross_validate('events', "
  . "'{\"method\": \"ials\", \"factors\": 16, \"iterations\": 5}', folds => 3);\n";
$bg->{run}->pump_nb;
$node->poll_query_until('postgres',
	"SELECT query LIKE '%cross_validate%' FROM pg_stat_activity WHERE pid = $pid")
  or die "cross_validate did not start";
sleep 1;
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
$bg->{stdin} .= "SELECT 'after cancel';\n";
$node->poll_query_until('postgres',
	"SELECT state = 'idle' FROM pg_stat_activity WHERE pid = $pid")
  or die "the cancel did not end the call";
$bg->quit;
like($bg->{stderr}, qr/canceling statement due to user request/,
	'cross_validate: stopped by pg_cancel_backend');
is($node->safe_psql('postgres', $state_sql), $before,
	'cross_validate: models, rows and answers unchanged after a cancel');

# And the server serves normally afterwards.
is($node->safe_psql('postgres', "SELECT count(*) FROM recommend(1, 10, 'm')"),
	'10', 'recommend works after all interruptions');

$node->stop;
done_testing();
