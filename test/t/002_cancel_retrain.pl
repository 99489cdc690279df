# Copyright (c) recsys authors
#
# A retrain that is cancelled, times out or loses its backend leaves the
# previous model serving, unchanged and without leftover rows; while the
# retrain runs, other sessions keep seeing the previous model.  Nothing
# else is left behind: after every interruption no temporary file,
# advisory lock, temporary relation or training thread remains, and the
# memory of the backend that was interrupted again and again does not grow.
use strict;
use warnings;

use FindBin;
use IPC::Run;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RecsysLeftovers;
use Time::HiRes qw(time);

# The server inherits this: one BLAS thread per backend.
$ENV{OPENBLAS_NUM_THREADS} = 1;

my $generator = 'test/data/generate';
BAIL_OUT("$generator not built (run make)") unless -x $generator;

my $node = PostgreSQL::Test::Cluster->new('cancel');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '1GB'");
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

$node->safe_psql('postgres', 'CREATE EXTENSION recsys');

# A: small, the model that must keep serving.  B: 1M rows, for a retrain
# that runs for a while (factors 64: about a second per iteration).
load_table('a', '--users', 200, '--items', 100, '--rows', 5000, '--seed', 1);
load_table('b', '--users', 20000, '--items', 5000, '--rows', 1000000,
	'--seed', 2);
# B in an order that only a sort gives: the sort spills to temporary files
# that stay open while training reads its output.
$node->safe_psql('postgres', 'CREATE VIEW b_shuffled AS SELECT * FROM b ORDER BY random()');

$node->safe_psql('postgres',
	q{CALL train('m', 'a', value_col => 'rating', factors => 8, iterations => 10)});

# Everything a client can observe of model m, plus the total row counts of
# the storage tables (so rows leaked under another model id are caught too).
my $state_query = q{
SELECT (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recommend(1, 10, 'm')),
       (SELECT array_agg(score ORDER BY score DESC, item_id) FROM recommend(1, 10, 'm')),
       predict(1, 1, 'm'),
       (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM similar_items(1, 5, 'm')),
       m.model_id, m.version, m.num_users, m.num_items, m.num_interactions,
       m.trained_at,
       (SELECT count(*) FROM recsys.user_factors u WHERE u.model_id = m.model_id),
       (SELECT count(*) FROM recsys.item_factors i WHERE i.model_id = m.model_id),
       (SELECT count(*) FROM recsys.training_log l WHERE l.model_id = m.model_id),
       (SELECT count(*) FROM recsys.models),
       (SELECT count(*) FROM recsys.user_factors),
       (SELECT count(*) FROM recsys.item_factors),
       (SELECT count(*) FROM recsys.training_log)
FROM recsys.models m WHERE m.name = 'm'
};
my $old_state = $node->safe_psql('postgres', $state_query);
my $old_recs = $node->safe_psql('postgres',
	q{SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recommend(1, 10, 'm')});
my $old_version = $node->safe_psql('postgres',
	q{SELECT version FROM recsys.models WHERE name = 'm'});
note "model m on data A: version $old_version, recommend(1) = $old_recs";
like($old_recs, qr/^\{\d+(,\d+){9}\}$/, 'model on data A recommends 10 items');

# A session that has served the model before the retrain (its backend caches
# the item factors), to check that it keeps serving the previous version too.
my $reader = $node->background_psql('postgres', on_error_stop => 0);
is($reader->query_safe($state_query), $old_state, 'reader session sees the model');

# The session that retrains.  It must survive its own errors.
my $trainer = $node->background_psql('postgres', on_error_stop => 0);
my $trainer_pid = $trainer->query_safe('SELECT pg_backend_pid()');
$trainer->set_query_timer_restart();
my $timeout = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);

my $big_train = q{CALL train('m', 'b', value_col => 'rating', factors => 64, iterations => 50);};

# Send a statement to the trainer without waiting for it to finish
sub trainer_start
{
	my ($sql) = @_;
	$trainer->{stdout} = '';
	$trainer->{stderr} = '';
	$trainer->{stdin} .= "$sql\n";
	$trainer->{run}->pump_nb();
	return;
}

# Wait until the trainer's stderr matches $re
sub trainer_wait_stderr
{
	my ($re, $what) = @_;
	$timeout->start($PostgreSQL::Test::Utils::timeout_default);
	ok(pump_until($trainer->{run}, $timeout, \$trainer->{stderr}, $re), $what);
	return;
}

# Check that the previous model is what everybody sees
sub check_old_model_serves
{
	my ($when) = @_;
	is($node->safe_psql('postgres', $state_query), $old_state,
		"$when: a new session sees the previous model, unchanged");
	is($node->safe_psql('postgres',
			q{SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recommend(1, 10, 'm')}),
		$old_recs, "$when: recommend(1, 10, 'm') gives the same items");
	is($node->safe_psql('postgres', q{SELECT version FROM recsys.models WHERE name = 'm'}),
		$old_version, "$when: version unchanged");
	is($reader->query_safe($state_query), $old_state,
		"$when: the session with the cached model sees the previous model");
	return;
}

# What an interruption may leave behind, seen from another session (as
# superuser), from the file system and, for a backend that is still there,
# from /proc: nothing, when all is zero and the backend has one thread.
sub check_nothing_left
{
	my ($when, $pid) = @_;
	is(leftovers($node, $pid), nothing_left(defined $pid), "$when: nothing left behind");
	return;
}

# The trainer's backend is still running the CALL
sub training_is_running
{
	return $node->safe_psql('postgres',
		"SELECT state = 'active' AND query LIKE 'CALL train%' FROM pg_stat_activity WHERE pid = $trainer_pid"
	) eq 't';
}

#
# 1. pg_cancel_backend() in the middle of the ALS iterations
#
trainer_start($big_train);
trainer_wait_stderr(qr/NOTICE:  iteration 2 of 50/,
	'cancel: retrain on data B reached the ALS iterations');
ok(training_is_running(), 'cancel: the retrain is running');
# While it trains, the retrain holds its model's advisory lock (so the
# checks for locks left behind below look at the right place).
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $trainer_pid AND granted"),
	'1', 'cancel: the retrain holds an advisory lock');
check_old_model_serves('during the retrain');
ok(training_is_running(), 'cancel: the retrain was still running during the checks');

my $t0 = time();
is($node->safe_psql('postgres', "SELECT pg_cancel_backend($trainer_pid)"),
	't', 'cancel: pg_cancel_backend() signals the trainer');
trainer_wait_stderr(qr/ERROR:  canceling statement due to user request/,
	'cancel: the CALL fails with the cancel error');
my $latency = time() - $t0;
note sprintf("cancel latency (pg_cancel_backend to the error): %.3f s", $latency);
cmp_ok($latency, '<', 5, 'cancel: the cancel takes effect promptly');
unlike($trainer->{stderr}, qr/iteration 50 of 50/, 'cancel: the training did not complete');
is($trainer->query('SELECT 1'), '1', 'cancel: the trainer session is usable again');
check_old_model_serves('after the cancel');
check_nothing_left('cancel', $trainer_pid);

#
# 2. statement_timeout during the retrain
#
trainer_start("SET statement_timeout = '2s';\n$big_train\nRESET statement_timeout;");
$t0 = time();
trainer_wait_stderr(qr/ERROR:  canceling statement due to statement timeout/,
	'timeout: the CALL fails with the statement timeout error');
note sprintf("statement_timeout 2s: the CALL failed after %.3f s", time() - $t0);
unlike($trainer->{stderr}, qr/iteration 50 of 50/, 'timeout: the training did not complete');
is($trainer->query('SELECT 1'), '1', 'timeout: the trainer session is usable again');
check_old_model_serves('after the statement timeout');
check_nothing_left('timeout', $trainer_pid);

#
# 3. Cancel of a retrain inside an explicit transaction, then ROLLBACK
#
trainer_start("BEGIN;\n$big_train");
trainer_wait_stderr(qr/NOTICE:  iteration 1 of 50/,
	'transaction: retrain reached the ALS iterations');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($trainer_pid)");
trainer_wait_stderr(qr/ERROR:  canceling statement due to user request/,
	'transaction: the CALL fails with the cancel error');
# The failed transaction is not over yet, but it holds nothing any more.
check_nothing_left('transaction, before the ROLLBACK', $trainer_pid);
$trainer->query('ROLLBACK');
check_old_model_serves('after the cancel and rollback');
check_nothing_left('transaction, after the ROLLBACK', $trainer_pid);

#
# 4. Cancel while the new version is being written.  Another session holds
#    recsys.training_log in SHARE mode, so the trainer finishes training,
#    updates the model row, deletes the previous factor rows, then waits for
#    that lock (training_log is written last).  Both for a retrain of m and
#    for the first training of a new model n.
#
my $locker = $node->background_psql('postgres', on_error_stop => 0);
$locker->query_safe('BEGIN; LOCK TABLE recsys.training_log IN SHARE MODE;');
for my $case (
	[ 'm', q{CALL train('m', 'a', value_col => 'rating', factors => 8, iterations => 3, seed => 7);} ],
	[ 'n', q{CALL train('n', 'a', value_col => 'rating', factors => 8, iterations => 3);} ])
{
	my ($model, $sql) = @$case;
	trainer_start($sql);
	ok( $node->poll_query_until(
			'postgres',
			"SELECT wait_event_type = 'Lock' AND wait_event = 'relation' FROM pg_stat_activity WHERE pid = $trainer_pid"),
		"writing $model: the trainer waits for the lock while storing the model");
	check_old_model_serves("while $model is being stored");
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($trainer_pid)");
	trainer_wait_stderr(qr/ERROR:  canceling statement due to user request/,
		"writing $model: the CALL fails with the cancel error");
	check_old_model_serves("after the cancel while storing $model");
	check_nothing_left("writing $model", $trainer_pid);
	is($node->safe_psql('postgres', "SELECT count(*) FROM recsys.models WHERE name = 'n'"),
		'0', "writing $model: no model n was created");
}
$locker->query_safe('COMMIT');
$locker->quit;

#
# 5. Cancel while the training reads its source through a sort that spilled
#    to temporary files (work_mem is small): the cancel comes once the
#    files exist, and they must be gone after it.
#
$trainer->{stderr} = '';
$trainer->query_safe("SET work_mem = '64kB'");
trainer_start(q{CALL train('m', 'b_shuffled', value_col => 'rating', factors => 64, iterations => 50);});
ok($node->poll_query_until('postgres', 'SELECT count(*) > 0 FROM pg_ls_tmpdir()'),
	'spilled source: the sort of the source wrote temporary files');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($trainer_pid)");
trainer_wait_stderr(qr/ERROR:  canceling statement due to user request/,
	'spilled source: the CALL fails with the cancel error');
check_old_model_serves('after the cancel while reading the spilled source');
check_nothing_left('spilled source', $trainer_pid);
$trainer->{stderr} = '';
$trainer->query_safe('RESET work_mem');

#
# 6. statement_timeout again and again in one session, at several points
#    of the training (while reading the source, while solving): the
#    backend's memory does not grow.
#
# Growth allowed: 1 MB.  A training holds far more than that: the
# interactions of B take 26 bytes each while they load (26 MB), the
# factors 6 MB, so an interruption that left its working memory (or a
# twentieth of it) behind would exceed 1 MB within five interruptions.
# What may legitimately grow after the warm-up is the catalog and plan
# caches, which the first interruptions fill; the totals measured while
# writing this test did not grow at all.
my $memory_bound = 1024 * 1024;

# Two warm-ups at 1.5 s (further into the training than the later ones, so
# that their caches cover them), then 0.1 s (reading B) to 1.3 s (solving).
my @memory;
foreach my $ms (1500, 1500, 100, 400, 700, 1000, 1300)
{
	$trainer->{stderr} = '';
	$trainer->query("SET statement_timeout = '${ms}ms';\n$big_train\nRESET statement_timeout;");
	like($trainer->{stderr}, qr/ERROR:  canceling statement due to statement timeout/,
		"repeated timeouts: the CALL is stopped after $ms ms");
	check_nothing_left("repeated timeouts, $ms ms", $trainer_pid);
	push @memory, backend_memory($trainer);
}
check_old_model_serves('after the repeated timeouts');
check_memory_growth('repeated timeouts', $memory_bound, 2, @memory);

#
# 7. pg_terminate_backend() of the trainer: the backend exits mid-training
#
trainer_start($big_train);
trainer_wait_stderr(qr/NOTICE:  iteration 1 of 50/,
	'terminate: retrain reached the ALS iterations');
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($trainer_pid, 60000)"),
	't', 'terminate: the trainer backend exits');
$trainer->{run}->finish;
check_old_model_serves('after the trainer backend was terminated');
check_nothing_left('terminate');

#
# 8. A retrain that completes replaces the model (so the checks above would
#    have seen a change), also for the session with the cached model.
#
$node->safe_psql('postgres',
	q{CALL train('m', 'b', value_col => 'rating', factors => 8, iterations => 2)});
my $new_state = $node->safe_psql('postgres', $state_query);
isnt($new_state, $old_state, 'completed retrain changes the model');
cmp_ok($node->safe_psql('postgres', q{SELECT version FROM recsys.models WHERE name = 'm'}),
	'>', $old_version, 'completed retrain has a newer version');
is($node->safe_psql('postgres',
		q{SELECT num_users || ',' || num_items FROM recsys.models WHERE name = 'm'}),
	$node->safe_psql('postgres',
		q{SELECT count(DISTINCT user_id) || ',' || count(DISTINCT item_id) FROM b}),
	'completed retrain is the model of data B');
is($reader->query_safe($state_query), $new_state,
	'the session with the cached model sees the new version');
$reader->quit;

$node->stop;
done_testing();
