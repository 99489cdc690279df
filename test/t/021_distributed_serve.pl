# Copyright (c) recsys authors
#
# Shard-local evaluate() over postgres_fdw shards (doc/scale-out.md,
# Serving): a coordinator and three shard clusters on this machine.  The
# models are trained on the coordinator from local tables; the test tables
# exist twice, as a local table and as a table partitioned BY HASH
# (user_id) with one postgres_fdw foreign partition per shard.
#
#  1. evaluate() on the partitioned test table runs on the shards (their
#     recsys.shard_eval_score is called; the default setting) and returns
#     the rows the coordinator path gives (recsys.shard_local_serving =
#     off, and the local copy): the same metrics, at_k and evaluated counts, the values
#     within 1e-12 relative (the same sums in another order).  For ials with
#     AUC, als with rating error and a relevance threshold, a test table
#     holding unknown users and items, duplicate pairs and a NULL value.
#  2. What shard-local does not handle falls back to the coordinator path
#     (candidates => 'test'; an item_knn model): no shard call, the same
#     rows.
#  3. recommend_all of models trained from the shards (ials, als; n and
#     exclude_seen varied), with recsys.shard_local_serving = on, runs on
#     the shards (shard_recommend called) and returns the coordinator
#     path's rows with the same scores to the bit; by default (evaluate)
#     and for a model trained here it stays on the coordinator.
#  4. A shard that does not answer (a lock held there) and a statement
#     timeout, then a cancel, on the coordinator, then the evaluation's
#     session on that shard terminated: a clean error (naming the shard for
#     the last), no session left on any shard, nothing written.
#  5. Privileges on a shard (the mapped role's): no SELECT there is
#     42501 naming the shard; rows hidden by row-level security there are
#     not evaluated, as on the coordinator path.
#  6. A shard stopped: a clean error naming it (evaluate, recommend_all),
#     recommend_all with the setting off still serving, no session left on
#     the other shards, nothing written on any shard; after its restart
#     the evaluation works again.
use strict;
use warnings;

use FindBin;
use IPC::Run;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The servers inherit this: one BLAS thread per backend.
$ENV{OPENBLAS_NUM_THREADS} = 1;

my $generator = 'test/data/generate';
BAIL_OUT("$generator not built (run make)") unless -x $generator;
my $dir = PostgreSQL::Test::Utils::tempdir;
my $app = 'recsys distributed training';

my $coord = PostgreSQL::Test::Cluster->new('coordinator');
$coord->init;
$coord->start;
my @shards;
for my $i (1 .. 3)
{
	my $shard = PostgreSQL::Test::Cluster->new("shard$i");
	$shard->init;
	$shard->append_conf('postgresql.conf', "autovacuum = off\ntrack_functions = 'all'");
	$shard->start;
	push @shards, $shard;
}
my $super = $coord->safe_psql('postgres', 'SELECT current_user');

# Small data: explicit ratings and implicit counts, as CSV
sub generate
{
	my ($name, @args) = @_;
	my $csv = "$dir/$name.csv";
	my $err = '';
	IPC::Run::run([ $generator, @args ], '>', $csv, '2>', \$err)
	  or BAIL_OUT("$generator failed: $err");
	return $csv;
}
my $ratings_csv = generate('ratings', '--kind', 'explicit', '--users', 400,
	'--items', 200, '--rows', 8000, '--seed', 5);
my $events_csv = generate('events', '--kind', 'implicit', '--users', 400,
	'--items', 200, '--rows', 8000, '--seed', 6);

for my $shard (@shards)
{
	$shard->safe_psql('postgres', q{
		CREATE EXTENSION recsys;
		CREATE TABLE ratings_test (user_id bigint, item_id bigint, rating real);
		CREATE TABLE events_test (user_id bigint, item_id bigint, count real);
		CREATE TABLE events_train (user_id bigint, item_id bigint, count real);
	});
}

# Train on 80% of the rows (by a hash of the pair), test on the rest; the
# test tables get unknown users and items, duplicate pairs and a NULL value
my $setup = q{
	CREATE EXTENSION recsys;
	CREATE EXTENSION postgres_fdw;
	CREATE TABLE ratings (user_id bigint, item_id bigint, rating real);
	CREATE TABLE events (user_id bigint, item_id bigint, count real);
	CREATE TABLE dist_ratings_test (user_id bigint, item_id bigint, rating real)
	    PARTITION BY HASH (user_id);
	CREATE TABLE dist_events_test (user_id bigint, item_id bigint, count real)
	    PARTITION BY HASH (user_id);
	CREATE TABLE dist_events (user_id bigint, item_id bigint, count real)
	    PARTITION BY HASH (user_id);
};
for my $i (1 .. 3)
{
	my ($host, $port) = ($shards[ $i - 1 ]->host, $shards[ $i - 1 ]->port);
	my $r = $i - 1;
	$setup .= qq{
	CREATE SERVER shard$i FOREIGN DATA WRAPPER postgres_fdw
	    OPTIONS (host '$host', port '$port', dbname 'postgres');
	CREATE USER MAPPING FOR CURRENT_USER SERVER shard$i OPTIONS (user '$super');
	CREATE FOREIGN TABLE dist_ratings_test_$i PARTITION OF dist_ratings_test
	    FOR VALUES WITH (MODULUS 3, REMAINDER $r)
	    SERVER shard$i OPTIONS (schema_name 'public', table_name 'ratings_test');
	CREATE FOREIGN TABLE dist_events_test_$i PARTITION OF dist_events_test
	    FOR VALUES WITH (MODULUS 3, REMAINDER $r)
	    SERVER shard$i OPTIONS (schema_name 'public', table_name 'events_test');
	CREATE FOREIGN TABLE dist_events_$i PARTITION OF dist_events
	    FOR VALUES WITH (MODULUS 3, REMAINDER $r)
	    SERVER shard$i OPTIONS (schema_name 'public', table_name 'events_train');
};
}
$setup .= qq{
	COPY ratings FROM '$ratings_csv' WITH (FORMAT csv, HEADER true);
	COPY events FROM '$events_csv' WITH (FORMAT csv, HEADER true);
	CREATE TABLE ratings_test AS SELECT * FROM ratings WHERE hashint8(user_id * 1000 + item_id) % 5 = 0;
	DELETE FROM ratings WHERE hashint8(user_id * 1000 + item_id) % 5 = 0;
	CREATE TABLE events_test AS SELECT * FROM events WHERE hashint8(user_id * 1000 + item_id) % 5 = 0;
	DELETE FROM events WHERE hashint8(user_id * 1000 + item_id) % 5 = 0;
	INSERT INTO ratings_test VALUES (900001, 1, 5), (900001, 2, 4), (1, 900002, 5), (2, 900003, NULL);
	INSERT INTO ratings_test SELECT * FROM ratings_test WHERE user_id BETWEEN 3 AND 6;
	INSERT INTO events_test VALUES (900001, 1, 3), (900001, 2, 1), (1, 900002, 2), (2, 900003, NULL);
	INSERT INTO events_test SELECT * FROM events_test WHERE user_id BETWEEN 3 AND 6;
	INSERT INTO dist_ratings_test SELECT * FROM ratings_test;
	INSERT INTO dist_events_test SELECT * FROM events_test;
	CALL train('m_als', 'ratings', value_col => 'rating', method => 'als', factors => 8, iterations => 5);
	CALL train('m_ials', 'events', value_col => 'count', method => 'ials', factors => 8, iterations => 5);
	CALL train('m_knn', 'events', value_col => 'count', method => 'item_knn');
	INSERT INTO dist_events SELECT * FROM events;
	CALL train('d_ials', 'dist_events', value_col => 'count', method => 'ials', factors => 8, iterations => 5);
	CALL train('d_als', 'dist_events', value_col => 'count', method => 'als', factors => 8, iterations => 5);
};
$coord->safe_psql('postgres', $setup);
my @per_shard = map {
	$_->safe_psql('postgres',
		'SELECT (SELECT count(*) FROM ratings_test) || \'/\' || (SELECT count(*) FROM events_test)')
} @shards;
note 'test rows per shard (ratings/events): ' . join(', ', @per_shard);
ok(!(grep { $_ =~ m{^0/|/0$} } @per_shard), 'setup: every shard holds test rows of both tables');

# Calls of the shard-side scoring function, over all shards
sub shard_calls
{
	my ($func) = @_;
	$func //= 'shard_eval_score';
	my $n = 0;
	for my $shard (@shards)
	{
		$n += $shard->safe_psql('postgres', qq{
			SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions
			WHERE schemaname = 'recsys' AND funcname = '$func'});
	}
	return $n;
}

# What shards have written: relations, and tuples in any table
sub all_shard_writes
{
	my @which = @_ ? @_ : @shards;
	return join('; ', map {
		$_->safe_psql('postgres', q{
			SELECT (SELECT count(*) || ' relations, max oid ' || max(oid::int8) FROM pg_class)
			       || ', ' || (SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_all_tables)})
	} @which);
}

# evaluate()'s rows as [metric, at_k, model, baseline, evaluated]
sub evaluate_rows
{
	my ($call, $setting) = @_;
	my $out = $coord->safe_psql('postgres',
		"SET recsys.shard_local_serving = $setting;\n"
		  . "SELECT metric, coalesce(at_k::text, '-'), coalesce(model_value::text, 'null'),\n"
		  . "       coalesce(baseline_value::text, 'null'), evaluated FROM $call");
	return [ map { [ split /\|/ ] } split /\n/, $out ];
}

# Rows equal: the same metrics, at_k and counts, values within 1e-12 relative
sub same_rows
{
	my ($a, $b) = @_;
	return "row counts " . scalar(@$a) . ' and ' . scalar(@$b) if @$a != @$b;
	for my $i (0 .. $#$a)
	{
		my ($x, $y) = ($a->[$i], $b->[$i]);
		for my $c (0, 1, 4)
		{
			return "row $i column $c: $x->[$c] vs $y->[$c]" if $x->[$c] ne $y->[$c];
		}
		for my $c (2, 3)
		{
			my ($u, $v) = ($x->[$c], $y->[$c]);
			next if $u eq $v;
			return "row $i ($x->[0]) column $c: $u vs $v"
			  if $u eq 'null' || $v eq 'null'
			  || abs($u - $v) > 1e-12 * (abs($v) > 1 ? abs($v) : 1);
		}
	}
	return 'equal';
}

#
# 1. Shard-local equals the coordinator path
#
my $writes_before = all_shard_writes();
my @cases = (
	[ 'ials, AUC', "evaluate('m_ials', 'dist_events_test', 10)", "evaluate('m_ials', 'events_test', 10)" ],
	[ 'ials, k 3, no AUC, threshold', "evaluate('m_ials', 'dist_events_test', 3, compute_auc => false, relevance_threshold => 2)",
	  "evaluate('m_ials', 'events_test', 3, compute_auc => false, relevance_threshold => 2)" ],
	[ 'als, threshold 4', "evaluate('m_als', 'dist_ratings_test', 5, relevance_threshold => 4)",
	  "evaluate('m_als', 'ratings_test', 5, relevance_threshold => 4)" ],
	[ 'als, all relevant', "evaluate('m_als', 'dist_ratings_test', 10)", "evaluate('m_als', 'ratings_test', 10)" ],
);
for my $case (@cases)
{
	my ($what, $dist, $local) = @$case;
	my $calls = shard_calls();
	my $shard_local = evaluate_rows($dist, 'evaluate');
	is(shard_calls(), $calls + 3, "$what: evaluated on the three shards");
	my $coordinator = evaluate_rows($dist, 'off');
	is(shard_calls(), $calls + 3, "$what: shard_local_serving = off evaluates on the coordinator");
	is(same_rows($shard_local, $coordinator), 'equal', "$what: shard-local rows equal the coordinator path's");
	is(same_rows($shard_local, evaluate_rows($local, 'evaluate')), 'equal', "$what: and the local test table's");
	ok((grep { $_->[0] eq 'precision' && $_->[4] > 100 } @$shard_local), "$what: over 100 users evaluated");
}
is(all_shard_writes(), $writes_before, 'shard-local evaluation wrote nothing on any shard');
ok($_->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = '$app'"),
	'no session left on ' . $_->name) for @shards;

#
# 2. Fallbacks: the coordinator path, the same rows
#
for my $case (
	[ "candidates 'test'", "evaluate('m_ials', 'dist_events_test', 10, candidates => 'test')",
	  "evaluate('m_ials', 'events_test', 10, candidates => 'test')" ],
	[ 'item_knn', "evaluate('m_knn', 'dist_events_test', 10)", "evaluate('m_knn', 'events_test', 10)" ])
{
	my ($what, $dist, $local) = @$case;
	my $calls = shard_calls();
	is(same_rows(evaluate_rows($dist, 'evaluate'), evaluate_rows($local, 'evaluate')), 'equal',
		"$what: the coordinator path's rows");
	is(shard_calls(), $calls, "$what: no shard-local call");
}

#
# 3. recommend_all of models trained from the shards: scored on them, the
# same rows (scores to the bit) as on the coordinator
#
$writes_before = all_shard_writes();
for my $case ([ 'd_ials', 10, 'true' ], [ 'd_ials', 7, 'false' ], [ 'd_als', 5, 'true' ])
{
	my ($model, $n, $exclude) = @$case;
	my $what = "recommend_all($n, '$model', $exclude)";
	my $calls = shard_calls('shard_recommend');
	my $sql = "SELECT user_id, item_id, score::float8 FROM recommend_all($n, '$model', $exclude) ORDER BY 1, 2";
	my $on = $coord->safe_psql('postgres', "SET recsys.shard_local_serving = on;\n$sql");
	cmp_ok(shard_calls('shard_recommend'), '>=', $calls + 3, "$what: scored on the three shards");
	my $off = $coord->safe_psql('postgres', "SET recsys.shard_local_serving = off;\n$sql");
	$calls = shard_calls('shard_recommend');
	is($coord->safe_psql('postgres', $sql), $off, "$what: by default (evaluate) on the coordinator");
	is(shard_calls('shard_recommend'), $calls, "$what: by default no shard call");
	my $users = $coord->safe_psql('postgres', "SELECT num_users FROM recsys.models WHERE name = '$model'");
	cmp_ok($users, '>', 350, "$what: the model has most of the 400 users");
	cmp_ok(scalar(split /\n/, $on), '==', $users * $n, "$what: $n rows for each user");
	ok($on eq $off, "$what: the coordinator path's rows and scores");
}
is(all_shard_writes(), $writes_before, 'shard-local recommend_all wrote nothing on any shard');
{
	my $calls = shard_calls('shard_recommend');
	$coord->safe_psql('postgres', "SET recsys.shard_local_serving = on; SELECT count(*) FROM recommend_all(10, 'm_ials')");
	is(shard_calls('shard_recommend'), $calls, 'recommend_all of a model trained here: on the coordinator');
}

#
# 4. A shard that does not answer (its test table locked there) and a
# statement_timeout, then pg_cancel_backend, on the coordinator: a clean
# error, no session left on any shard, nothing written
#
$writes_before = all_shard_writes();
my $locker = $shards[0]->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE events_test IN ACCESS EXCLUSIVE MODE;');
{
	my ($ret, $stdout, $stderr) = $coord->psql('postgres',
		"SET statement_timeout = '2s'; SELECT * FROM evaluate('m_ials', 'dist_events_test', 10)",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($stderr, qr/ERROR:  57014: canceling statement due to statement timeout/,
		'statement timeout: evaluate fails with a clean error');
	ok($_->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = '$app'"),
		'statement timeout: no session left on ' . $_->name) for @shards;
}
{
	my $waiter = $coord->background_psql('postgres', on_error_stop => 0);
	my $pid = $waiter->query_safe('SELECT pg_backend_pid()');
	my $timeout = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
	$waiter->{stdout} = '';
	$waiter->{stderr} = '';
	$waiter->{stdin} .= "SELECT count(*) FROM evaluate('m_ials', 'dist_events_test', 10);\n";
	$waiter->{timeout}->start($PostgreSQL::Test::Utils::timeout_default);
	$waiter->{run}->pump_nb();
	ok($shards[0]->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = '$app' AND wait_event_type = 'Lock'"),
		'cancel: the evaluation waits on shard1');
	$coord->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	$timeout->start($PostgreSQL::Test::Utils::timeout_default);
	ok(pump_until($waiter->{run}, $timeout, \$waiter->{stderr}, qr/canceling statement due to user request/),
		'cancel: a clean error') or diag "stderr: $waiter->{stderr}";
	is($waiter->query('SELECT 1'), '1', 'cancel: the session is usable again');
	$waiter->quit;
	ok($_->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = '$app'"),
		'cancel: no session left on ' . $_->name) for @shards;
}
{
	# The evaluation's session on shard1 terminated while it waits there
	my $waiter = $coord->background_psql('postgres', on_error_stop => 0);
	my $timeout = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
	$waiter->query_safe('SET recsys.shard_local_serving = evaluate');
	$waiter->{stdout} = '';
	$waiter->{stderr} = '';
	$waiter->{stdin} .= "\\set VERBOSITY verbose\nSELECT count(*) FROM evaluate('m_ials', 'dist_events_test', 10);\n";
	$waiter->{timeout}->start($PostgreSQL::Test::Utils::timeout_default);
	$waiter->{run}->pump_nb();
	ok($shards[0]->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = '$app' AND wait_event_type = 'Lock'"),
		'shard session terminated: the evaluation waits on shard1');
	is($shards[0]->safe_psql('postgres',
			"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '$app'"),
		'1', 'shard session terminated: one session of the evaluation on shard1');
	$timeout->start($PostgreSQL::Test::Utils::timeout_default);
	ok(pump_until($waiter->{run}, $timeout, \$waiter->{stderr}, qr/ERROR:  \w{5}: shard shard1 failed during shard_eval_open/),
		'shard session terminated: an error naming the shard') or diag "stderr: $waiter->{stderr}";
	is($waiter->query('SELECT 1'), '1', 'shard session terminated: the session is usable again');
	$waiter->quit;
	ok($_->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = '$app'"),
		'shard session terminated: no session left on ' . $_->name) for @shards;
}
$locker->query_safe('COMMIT');
$locker->quit;
is(all_shard_writes(), $writes_before, 'interrupted evaluations wrote nothing on any shard');

#
# 5. Privileges on a shard: the shard reads its test rows as the mapped
# role.  shard1's mapping is switched to role "limited": without SELECT on
# the table, 42501 naming the shard; with SELECT and a row-level security
# policy hiding half its users, shard-local equals the coordinator path
# (postgres_fdw reads as the same role), with fewer users evaluated.
#
my $all_users = evaluate_rows($cases[0][1], 'evaluate')->[0][4];
$shards[0]->safe_psql('postgres', 'CREATE ROLE limited LOGIN');
$coord->safe_psql('postgres',
	"ALTER USER MAPPING FOR CURRENT_USER SERVER shard1 OPTIONS (SET user 'limited')");
{
	my ($ret, $stdout, $stderr) = $coord->psql('postgres',
		"SELECT * FROM evaluate('m_ials', 'dist_events_test', 10)",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($stderr, qr/ERROR:  42501: shard shard1 failed during shard_eval_open .*permission denied for table events_test/,
		'no SELECT on the shard: 42501 naming the shard');
}
$shards[0]->safe_psql('postgres', q{
	GRANT SELECT ON events_test TO limited;
	ALTER TABLE events_test ENABLE ROW LEVEL SECURITY;
	CREATE POLICY even_users ON events_test TO limited USING (user_id % 2 = 0);
});
{
	my $calls = shard_calls();
	my $shard_local = evaluate_rows($cases[0][1], 'evaluate');
	is(shard_calls(), $calls + 3, 'row-level security: evaluated on the three shards');
	is(same_rows($shard_local, evaluate_rows($cases[0][1], 'off')), 'equal',
		"row-level security: the coordinator path's rows (read as the same role)");
	cmp_ok($shard_local->[0][4], '<', $all_users - 20, 'row-level security: fewer users evaluated');
}
$shards[0]->safe_psql('postgres', q{
	DROP POLICY even_users ON events_test;
	ALTER TABLE events_test DISABLE ROW LEVEL SECURITY;
	REVOKE SELECT ON events_test FROM limited;
});
$coord->safe_psql('postgres',
	"ALTER USER MAPPING FOR CURRENT_USER SERVER shard1 OPTIONS (SET user '$super')");

#
# 6. A stopped shard
#
$writes_before = all_shard_writes($shards[0], $shards[2]);
$shards[1]->stop('immediate');
my ($ret, $stdout, $stderr) = $coord->psql('postgres',
	"SELECT * FROM evaluate('m_ials', 'dist_events_test', 10)",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
isnt($ret, 0, 'stopped shard: evaluate fails');
like($stderr, qr/ERROR:  \w{5}: (could not connect to shard shard2|shard shard2 failed)/,
	'stopped shard: the error names the shard');
note "stopped shard: $1" if $stderr =~ /(ERROR:.*)/;
for my $shard ($shards[0], $shards[2])
{
	ok($shard->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = '$app'"),
		'stopped shard: no session left on ' . $shard->name);
}
($ret, $stdout, $stderr) = $coord->psql('postgres',
	"SET recsys.shard_local_serving = on; SELECT count(*) FROM recommend_all(10, 'd_ials')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
isnt($ret, 0, 'stopped shard: recommend_all fails');
like($stderr, qr/ERROR:  \w{5}: (could not connect to shard shard2|shard shard2 failed)/,
	'stopped shard: the recommend_all error names the shard');
is($coord->safe_psql('postgres',
		"SET recsys.shard_local_serving = off; SELECT count(*) FROM recommend_all(10, 'd_ials')"),
	$coord->safe_psql('postgres', "SELECT num_users * 10 FROM recsys.models WHERE name = 'd_ials'"),
	'stopped shard: recommend_all on the coordinator still serves');
$shards[1]->start;
is(all_shard_writes($shards[0], $shards[2]), $writes_before,
	'stopped shard: nothing written on the other shards');
is(same_rows(evaluate_rows($cases[0][1], 'evaluate'), evaluate_rows($cases[0][2], 'evaluate')), 'equal',
	'stopped shard: after its restart shard-local evaluation works again');

done_testing();
