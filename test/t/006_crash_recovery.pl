# Copyright (c) recsys authors
#
# Faults that take the server down: a backend killed with SIGKILL in the
# middle of a retrain (the postmaster then restarts every backend: crash
# recovery), an immediate shutdown during a retrain, and a SIGKILL while the
# new version is being written.  After recovery the catalog is consistent
# (one row per model, factor row counts equal the model's counts, no rows of
# unknown models, the indexes pass amcheck) and the previous model serves
# the same answers.
#
# Then resource limits with defined answers: a training over the memory
# budget fails before allocating, n = 2147483647, factors = 1024 on tiny
# data, a catalog of one item, one user, items that only one user has.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

# The server inherits this: one BLAS thread per backend.
$ENV{OPENBLAS_NUM_THREADS} = 1;

my $generator = 'test/data/generate';
BAIL_OUT("$generator not built (run make)") unless -x $generator;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
# The test cluster defaults to restart_after_crash = off
$node->append_conf(
	'postgresql.conf', qq{
restart_after_crash = on
maintenance_work_mem = '1GB'
});
$node->start;

my $dir = PostgreSQL::Test::Utils::tempdir;

# Write generator output to a file and COPY it into a new table
sub load_table
{
	my ($table, @args) = @_;
	my $csv = "$dir/$table.csv";
	my $err = '';
	IPC::Run::run([ $generator, @args ], '>', $csv, '2>', \$err)
	  or BAIL_OUT("$generator failed: $err");
	note "$table: $err";
	$node->safe_psql(
		'postgres', qq{
CREATE TABLE $table (user_id bigint, item_id bigint, rating float8);
COPY $table FROM '$csv' WITH (FORMAT csv, HEADER true);
ANALYZE $table;
});
	return;
}

$node->safe_psql('postgres', 'CREATE EXTENSION recsys; CREATE EXTENSION amcheck;');

# A: small, the model that must keep serving.  B: 1M rows, for a retrain
# that runs for a while (factors 64: about a second per iteration).
load_table('a', '--users', 200, '--items', 100, '--rows', 5000, '--seed', 1);
load_table('b', '--users', 20000, '--items', 5000, '--rows', 1000000, '--seed', 2);

$node->safe_psql('postgres',
	q{CALL train('m', 'a', value_col => 'rating', factors => 8, iterations => 10)});

# Everything a client can observe of model m (answers for a known and an
# unknown user, a prediction, similar items and users), its catalog row, its
# row counts, and the total row counts of the storage tables.
my $state_query = q{
SELECT (SELECT array_agg(item_id || ':' || score ORDER BY score DESC, item_id) FROM recommend(1, 10, 'm')),
       (SELECT array_agg(item_id || ':' || score ORDER BY score DESC, item_id) FROM recommend(7, 5, 'm')),
       (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recommend(999999, 5, 'm')),
       predict(1, 1, 'm'),
       (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM similar_items(1, 5, 'm')),
       (SELECT array_agg(user_id ORDER BY score DESC, user_id) FROM similar_users(1, 5, 'm')),
       m.model_id, m.version, m.num_users, m.num_items, m.num_interactions, m.trained_at,
       (SELECT count(*) FROM recsys.user_factors u WHERE u.model_id = m.model_id),
       (SELECT count(*) FROM recsys.item_factors i WHERE i.model_id = m.model_id),
       (SELECT count(*) FROM recsys.training_log l WHERE l.model_id = m.model_id),
       (SELECT count(*) FROM recsys.models),
       (SELECT count(*) FROM recsys.user_factors),
       (SELECT count(*) FROM recsys.item_factors),
       (SELECT count(*) FROM recsys.training_log)
FROM recsys.models m WHERE m.name = 'm'
};

# The catalog is consistent: one row per model name, each model's counts
# match its factor rows, no rows belong to an unknown model, the training
# log holds the iterations of the current version, and every index of the
# recsys tables (and the tables) pass amcheck.
my $consistency_query = q{
SELECT (SELECT count(*) FROM recsys.models WHERE name = 'm') = 1,
       (SELECT count(*) = count(DISTINCT name) FROM recsys.models),
       (SELECT bool_and(num_users = (SELECT count(*) FROM recsys.user_factors u WHERE u.model_id = m.model_id)
                    AND num_items = (SELECT count(*) FROM recsys.item_factors i WHERE i.model_id = m.model_id))
        FROM recsys.models m),
       NOT EXISTS (SELECT FROM recsys.user_factors u WHERE u.model_id NOT IN (SELECT model_id FROM recsys.models))
   AND NOT EXISTS (SELECT FROM recsys.item_factors i WHERE i.model_id NOT IN (SELECT model_id FROM recsys.models))
   AND NOT EXISTS (SELECT FROM recsys.training_log l WHERE l.model_id NOT IN (SELECT model_id FROM recsys.models)),
       NOT EXISTS (SELECT FROM recsys.training_log l JOIN recsys.models m USING (model_id)
                   WHERE l.version <> m.version),
       (SELECT count(*) FROM (SELECT bt_index_parent_check(c.oid, true)
            FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_am a ON a.oid = c.relam
            WHERE c.relnamespace = 'recsys'::regnamespace AND a.amname = 'btree') s),
       (SELECT count(*) FROM pg_class c, verify_heapam(c.oid)
            WHERE c.relnamespace = 'recsys'::regnamespace AND c.relkind = 'r')
};
my $consistent = 't|t|t|t|t|'
  . $node->safe_psql('postgres',
	q{SELECT count(*) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_am a ON a.oid = c.relam
      WHERE c.relnamespace = 'recsys'::regnamespace AND a.amname = 'btree'})
  . '|0';

my $old_state = $node->safe_psql('postgres', $state_query);
my $old_version = $node->safe_psql('postgres', q{SELECT version FROM recsys.models WHERE name = 'm'});
note "model m on data A: version $old_version";
like($old_state, qr/^\{\d+:[^,]+(,\d+:[^,]+){9}\}\|/, 'model m recommends 10 items');
is($node->safe_psql('postgres', $consistency_query), $consistent, 'the catalog is consistent to start with');

# Check that after a fault the catalog is consistent and model m is what it was
sub check_old_model_serves
{
	my ($when) = @_;
	is($node->safe_psql('postgres', $consistency_query), $consistent,
		"$when: the catalog is consistent");
	is($node->safe_psql('postgres', $state_query), $old_state,
		"$when: model m serves the same answers, same version and row counts");
	is($node->safe_psql('postgres', q{SELECT version FROM recsys.models WHERE name = 'm'}),
		$old_version, "$when: version unchanged");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM recsys.models WHERE name = 'n'}),
		'0', "$when: no model n");
	return;
}

my $timeout = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);
my $faults = 0;

# A session that trains in the background: returns the session and the pid
# of its backend
sub start_trainer
{
	my ($sql) = @_;
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	$s->{stdout} = '';
	$s->{stderr} = '';
	$s->{stdin} .= "$sql\n";
	$s->{run}->pump_nb();
	return ($s, $pid);
}

# Wait until the session's stderr matches $re
sub wait_stderr
{
	my ($s, $re, $what) = @_;
	$timeout->start($PostgreSQL::Test::Utils::timeout_default);
	ok(pump_until($s->{run}, $timeout, \$s->{stderr}, $re), $what);
	return;
}

# SIGKILL the backend $pid and wait until the postmaster has restarted
sub kill9_and_wait_for_recovery
{
	my ($pid, $what) = @_;
	my $offset = -s $node->logfile;
	is(kill('KILL', $pid), 1, "$what: SIGKILL sent to backend $pid");
	$faults++;
	$node->wait_for_log(qr/server process \(PID $pid\) was terminated by signal 9/, $offset);
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	$node->wait_for_log(qr/database system is ready to accept connections/, $offset);
	pass("$what: the server went through crash recovery");
	return;
}

# The backend $pid is running a CALL train
sub training_is_running
{
	my ($pid) = @_;
	return $node->safe_psql('postgres',
		"SELECT state = 'active' AND query LIKE 'CALL train%' FROM pg_stat_activity WHERE pid = $pid"
	) eq 't';
}

my $big_train = q{CALL train('m', 'b', value_col => 'rating', factors => 64, iterations => 50);};

#
# 1. kill -9 of the training backend during the ALS iterations
#
{
	my ($trainer, $pid) = start_trainer($big_train);
	wait_stderr($trainer, qr/NOTICE:  iteration 2 of 50/,
		'kill -9 in the sweeps: the retrain reached the ALS iterations');
	ok(training_is_running($pid), 'kill -9 in the sweeps: the backend is running the CALL');
	kill9_and_wait_for_recovery($pid, 'kill -9 in the sweeps');
	wait_stderr($trainer, qr/server closed the connection unexpectedly|connection to server was lost/,
		'kill -9 in the sweeps: the trainer lost its connection');
	$trainer->{run}->finish;
	check_old_model_serves('after kill -9 in the sweeps');
}

#
# 2. kill -9 while the new version is being written: another session holds
#    recsys.training_log in SHARE mode, so the trainer stores the model row
#    and the factor rows, then waits for the lock (training_log is written
#    last).  A retrain of m, and the first training of a model n.
#
for my $case (
	[ 'm', q{CALL train('m', 'a', value_col => 'rating', factors => 8, iterations => 3, seed => 7);} ],
	[ 'n', q{CALL train('n', 'a', value_col => 'rating', factors => 8, iterations => 3);} ])
{
	my ($model, $sql) = @$case;
	my $locker = $node->background_psql('postgres', on_error_stop => 0);
	$locker->query_safe('BEGIN; LOCK TABLE recsys.training_log IN SHARE MODE;');
	my ($trainer, $pid) = start_trainer($sql);
	ok( $node->poll_query_until(
			'postgres',
			"SELECT wait_event_type = 'Lock' AND wait_event = 'relation' FROM pg_stat_activity WHERE pid = $pid"),
		"kill -9 while writing $model: the trainer waits for the lock while storing the model");
	kill9_and_wait_for_recovery($pid, "kill -9 while writing $model");
	wait_stderr($trainer, qr/server closed the connection unexpectedly|connection to server was lost/,
		"kill -9 while writing $model: the trainer lost its connection");
	$trainer->{run}->finish;
	$locker->{run}->finish;
	check_old_model_serves("after kill -9 while writing $model");
}

#
# 3. Immediate shutdown (no checkpoint, WAL replay at the next start) during
#    the sweeps of a retrain, and while writing
#
{
	my ($trainer, $pid) = start_trainer($big_train);
	wait_stderr($trainer, qr/NOTICE:  iteration 2 of 50/,
		'immediate shutdown: the retrain reached the ALS iterations');
	$node->stop('immediate');
	$faults++;
	$trainer->{run}->finish;
	$node->start;
	check_old_model_serves('after an immediate shutdown during the sweeps');

	my $locker = $node->background_psql('postgres', on_error_stop => 0);
	$locker->query_safe('BEGIN; LOCK TABLE recsys.training_log IN SHARE MODE;');
	($trainer, $pid) = start_trainer(
		q{CALL train('m', 'a', value_col => 'rating', factors => 8, iterations => 3, seed => 9);});
	ok( $node->poll_query_until(
			'postgres',
			"SELECT wait_event_type = 'Lock' AND wait_event = 'relation' FROM pg_stat_activity WHERE pid = $pid"),
		'immediate shutdown while writing: the trainer waits for the lock');
	$node->stop('immediate');
	$faults++;
	$trainer->{run}->finish;
	$locker->{run}->finish;
	$node->start;
	check_old_model_serves('after an immediate shutdown while writing');
}

#
# 4. kill -9 during forget_user (which deletes the user, then re-solves the
#    items) and refresh_user (which rewrites the user's row), which change a
#    model in place: blocked by a lock on the table they write last
#
for my $case ([ q{SELECT forget_user('m', 1);}, 'item_factors' ],
	[ q{SELECT refresh_user('m', 1);}, 'user_factors' ])
{
	my ($sql, $table) = @$case;
	my $locker = $node->background_psql('postgres', on_error_stop => 0);
	$locker->query_safe("BEGIN; LOCK TABLE recsys.$table IN SHARE MODE;");
	my ($s, $pid) = start_trainer($sql);
	ok( $node->poll_query_until(
			'postgres',
			"SELECT wait_event_type = 'Lock' AND wait_event = 'relation' FROM pg_stat_activity WHERE pid = $pid"),
		"kill -9 during $sql: it waits for the lock");
	note "kill -9 during $sql: the backend holds "
	  . $node->safe_psql('postgres',
		"SELECT string_agg(coalesce(relation::regclass::text, locktype) || ' ' || mode, ', ' ORDER BY 1)
         FROM pg_locks WHERE pid = $pid AND granted AND mode <> 'AccessShareLock'");
	kill9_and_wait_for_recovery($pid, "kill -9 during $sql");
	$s->{run}->finish;
	$locker->{run}->finish;
	check_old_model_serves("after kill -9 during $sql");
}

#
# 5. A retrain that completes after all this replaces the model
#
$node->safe_psql('postgres',
	q{CALL train('m', 'a', value_col => 'rating', factors => 8, iterations => 10, seed => 5)});
isnt($node->safe_psql('postgres', $state_query), $old_state, 'a completed retrain changes the model');
cmp_ok($node->safe_psql('postgres', q{SELECT version FROM recsys.models WHERE name = 'm'}),
	'>', $old_version, 'a completed retrain has a newer version');
is($node->safe_psql('postgres', $consistency_query), $consistent,
	'the catalog is consistent after the completed retrain');
note "faults injected: $faults (SIGKILL of a backend or immediate shutdown)";

#
# Resource limits
#

# The backend's peak memory (VmHWM, kB) as seen from the session itself
my $hwm_query =
  q{SELECT substring(pg_read_file('/proc/self/status') FROM 'VmHWM:\s*(\d+) kB')::bigint};

# A training over the memory budget fails before the large allocations:
# when reading 1M rows (about 34 bytes each), and when training (factors
# 1024 on small data).
for my $case (
	[ 'reading 1M rows', q{CALL train('lim', 'b', value_col => 'rating')} ],
	[ 'factors 1024', q{CALL train('lim', 'a', value_col => 'rating', factors => 1024)} ])
{
	my ($what, $call) = @$case;
	my ($ret, $out, $err) = $node->psql(
		'postgres', qq{
SET maintenance_work_mem = '1MB';
SELECT count(*) FROM recommend(1, 10, 'm');  -- load the library and the model
$hwm_query;
$call;
$hwm_query;
},
		on_error_stop => 0);
	like($err, qr/ERROR:  training needs about \d+ MB of memory, but maintenance_work_mem is 1 MB/,
		"over the budget, $what: the training fails with the memory error");
	like($err, qr/HINT:  Increase maintenance_work_mem/, "over the budget, $what: with a hint");
	my ($count, $before, $after) = split /\n/, $out;
	note "over the budget, $what: VmHWM $before kB before, $after kB after";
	cmp_ok($after - $before, '<', 8 * 1024,
		"over the budget, $what: the backend's peak memory grew by less than 8 MB");
}
is($node->safe_psql('postgres', q{SELECT count(*) FROM recsys.models WHERE name = 'lim'}),
	'0', 'over the budget: no model was created');

# n = 2147483647 (the maximum) returns all eligible rows, without an
# allocation in proportion to n
my ($num_items, $num_users, $nseen1, $sum_eligible) = split /\|/,
  $node->safe_psql('postgres', q{
SELECT m.num_items, m.num_users,
       (SELECT cardinality(seen) FROM recsys.user_factors u WHERE u.model_id = m.model_id AND u.user_id = 1),
       (SELECT sum(m.num_items - cardinality(seen)) FROM recsys.user_factors u WHERE u.model_id = m.model_id)
FROM recsys.models m WHERE m.name = 'm'});
my $max = 2147483647;
my ($ret, $out, $err) = $node->psql(
	'postgres', qq{
SELECT count(*) FROM recommend(1, 1, 'm');
$hwm_query;
SELECT count(*) FROM recommend(1, $max, 'm');
SELECT count(*) FROM recommend(1, $max, 'm', exclude_seen => false);
SELECT count(*) FROM recommend(999999, $max, 'm');
SELECT count(*) FROM recommend(1, $max, 'm', candidates => ARRAY[1, 2, 3, 2, 1, -5]);
SELECT count(*) FROM similar_items(1, $max, 'm');
SELECT count(*) FROM similar_users(1, $max, 'm');
SELECT count(*) FROM recommend_all($max, 'm');
SELECT count(*) FROM recommend_for_items(ARRAY[1, 2], $max, 'm', "values" => ARRAY[5, 1]);
SELECT count(*) FROM explain(1, 2, $max, 'm');
$hwm_query;
},
	on_error_stop => 0);
is($err, '', 'n = 2147483647: no errors');
my @counts = split /\n/, $out;
my $hwm_before = $counts[1];
my $hwm_after = $counts[-1];
my $candidates_seen = $node->safe_psql('postgres', q{
SELECT count(*) FROM unnest(ARRAY[1, 2, 3]::bigint[]) c
WHERE c IN (SELECT item_id FROM recsys.item_factors i JOIN recsys.models m USING (model_id) WHERE m.name = 'm')
  AND c <> ALL ((SELECT seen FROM recsys.user_factors u JOIN recsys.models m USING (model_id) WHERE m.name = 'm' AND u.user_id = 1)::bigint[])});
is_deeply(
	[ @counts[ 2 .. 9 ] ],
	[
		$num_items - $nseen1, $num_items, $num_items, $candidates_seen,
		$num_items - 1, $num_users - 1, $sum_eligible, $num_items - 2
	],
	'n = 2147483647: all eligible items, users and pairs come back');
cmp_ok($counts[10], '>=', 2, 'n = 2147483647: explain returns the history and the rest');
cmp_ok($hwm_after - $hwm_before, '<', 8 * 1024,
	"n = 2147483647: the backend's peak memory grew by less than 8 MB ($hwm_before -> $hwm_after kB)");

# Tiny catalogs.  The 8 x 6 ratings of the regression tests; one item rated
# by ten users; one user who rated ten items; and a catalog where user 9
# alone has items 100 and 101.
$node->safe_psql(
	'postgres', q{
CREATE TABLE tiny (user_id int, item_id int, rating real);
INSERT INTO tiny VALUES
    (1, 1, 5), (1, 2, 5), (1, 4, 1), (1, 5, 1), (2, 1, 5), (2, 3, 4), (2, 4, 2), (2, 6, 1),
    (3, 2, 4), (3, 3, 5), (3, 5, 1), (3, 6, 2), (4, 1, 4), (4, 2, 5), (4, 3, 5), (4, 4, 1),
    (5, 4, 5), (5, 5, 5), (5, 1, 1), (5, 2, 1), (6, 4, 4), (6, 6, 5), (6, 1, 2), (6, 3, 1),
    (7, 5, 4), (7, 6, 5), (7, 2, 1), (7, 3, 2), (8, 4, 5), (8, 5, 4), (8, 6, 5), (8, 1, 1);
CREATE TABLE one_item AS SELECT u AS user_id, 1 AS item_id, (u % 5 + 1)::real AS rating
    FROM generate_series(1, 10) u;
CREATE TABLE one_user AS SELECT 7 AS user_id, i AS item_id, (i % 5 + 1)::real AS rating
    FROM generate_series(1, 10) i;
CREATE TABLE lonely AS SELECT * FROM tiny
    UNION ALL VALUES (9, 100, 5::real), (9, 101, 4), (9, 1, 5);
});

my %train = (
	als => q{value_col => 'rating'},
	ials => q{method => 'ials'},
	cholesky => q{method => 'ials', solver => 'cholesky', value_col => 'rating'},
	popular => q{method => 'popular'},
	item_knn => q{method => 'item_knn', value_col => 'rating'},
	ease => q{method => 'ease', regularization => 10},
);
# Factor methods also get these
my $small_factors = q{, factors => 4, iterations => 3};

# factors 1024 (the maximum) on 8 users and 6 items
for my $method (qw(als ials cholesky))
{
	my $t0 = time();
	$node->safe_psql('postgres',
		"SET client_min_messages = warning; CALL train('k1024_$method', 'tiny', $train{$method}, factors => 1024, iterations => 2)");
	note sprintf("factors 1024, %s, 8 x 6: %.2f s", $method, time() - $t0);
	is( $node->safe_psql(
			'postgres', qq{
SELECT m.factors, (SELECT min(array_length(factors, 1)) FROM recsys.item_factors i WHERE i.model_id = m.model_id),
       (SELECT count(*) FROM recommend(1, 10, 'k1024_$method')),
       (SELECT bool_and(score = score AND abs(score) < 1e30) FROM recommend(1, 10, 'k1024_$method')),
       (SELECT count(*) FROM similar_items(1, 10, 'k1024_$method')),
       (SELECT count(*) FROM recommend_for_items(ARRAY[1, 2], 10, 'k1024_$method', ARRAY[5, 5]))
FROM recsys.models m WHERE m.name = 'k1024_$method'}),
		'1024|1024|2|t|5|4',
		"factors 1024 on 8 x 6 ($method): trains and serves");
}

# One item, one user, lonely items, for each method
for my $method (qw(als ials cholesky popular item_knn ease))
{
	my $has_factors = $method =~ /^(als|ials|cholesky)$/;
	my $neighbors = $method =~ /^(item_knn|ease)$/;
	my $extra = $has_factors ? $small_factors : '';
	$node->safe_psql('postgres', qq{
SET client_min_messages = warning;
CALL train('one_item_$method', 'one_item', $train{$method}$extra);
CALL train('one_user_$method', 'one_user', $train{$method}$extra);
CALL train('lonely_$method', 'lonely', $train{$method}$extra);
});
	# similar_items and recommend_for_items: factor and neighbour models;
	# similar_users: factor models
	my $factors = $method eq 'popular' ? 'false' : 'true';
	my $users = $has_factors ? 'true' : 'false';
	is( $node->safe_psql(
			'postgres', qq{
SELECT (SELECT num_users || 'x' || num_items FROM recsys.models WHERE name = 'one_item_$method'),
       (SELECT count(*) FROM recommend(1, 10, 'one_item_$method')),
       (SELECT string_agg(item_id::text, ',') FROM recommend(1, 10, 'one_item_$method', exclude_seen => false)),
       (SELECT string_agg(item_id::text, ',') FROM recommend(99, 10, 'one_item_$method')),
       (SELECT count(*) FROM recommend_all(10, 'one_item_$method')),
       CASE WHEN $factors THEN (SELECT count(*) FROM similar_items(1, 10, 'one_item_$method')) END,
       CASE WHEN $users THEN (SELECT count(*) FROM similar_users(1, 10, 'one_item_$method')) END,
       CASE WHEN $factors THEN (SELECT count(*) FROM recommend_for_items(ARRAY[1], 10, 'one_item_$method', ARRAY[3])) END,
       predict(1, 1, 'one_item_$method') BETWEEN -1e30 AND 1e30}),
		($method eq 'popular' ? '10x1|0|1|1|0||||t' : $neighbors ? '10x1|0|1|1|0|0||0|t' : '10x1|0|1|1|0|0|9|0|t'),
		"one item ($method): defined answers");
	is( $node->safe_psql(
			'postgres', qq{
SELECT (SELECT num_users || 'x' || num_items FROM recsys.models WHERE name = 'one_user_$method'),
       (SELECT count(*) FROM recommend(7, 10, 'one_user_$method')),
       (SELECT count(*) FROM recommend(7, 10, 'one_user_$method', exclude_seen => false)),
       (SELECT count(*) FROM recommend(8, 3, 'one_user_$method')),
       (SELECT count(*) FROM recommend_all(10, 'one_user_$method')),
       CASE WHEN $users THEN (SELECT count(*) FROM similar_users(7, 10, 'one_user_$method')) END,
       CASE WHEN $factors THEN (SELECT count(*) FROM similar_items(1, 10, 'one_user_$method')) END}),
		($method eq 'popular' ? '1x10|0|10|3|0||' : $neighbors ? '1x10|0|10|3|0||9' : '1x10|0|10|3|0|0|9'),
		"one user ($method): defined answers");
	# Items 100 and 101 only user 9 has: others can get them, user 9 not
	is( $node->safe_psql(
			'postgres', qq{
SELECT (SELECT num_users || 'x' || num_items FROM recsys.models WHERE name = 'lonely_$method'),
       (SELECT count(*) FROM recommend(1, 100, 'lonely_$method') WHERE item_id IN (100, 101)),
       (SELECT count(*) FROM recommend(9, 100, 'lonely_$method')),
       (SELECT count(*) FROM recommend(9, 100, 'lonely_$method') WHERE item_id IN (100, 101)),
       (SELECT count(*) FROM recommend(1, 100, 'lonely_$method', candidates => ARRAY[100, 101, 102])),
       (SELECT count(*) FROM recommend(1, 100, 'lonely_$method', candidates => ARRAY[102, 103]))}),
		'9x8|2|5|0|2|0',
		"items only one user has ($method): defined answers");
}

is($node->safe_psql('postgres', $consistency_query), $consistent, 'the catalog is consistent at the end');
my @crashes = grep { /was terminated by signal (?!9)|TRAP: |PANIC: / } split /\n/, slurp_file($node->logfile);
is(scalar(@crashes), 0, 'no crash in the server log other than the injected ones')
  or diag join("\n", @crashes);

$node->stop;
done_testing();
