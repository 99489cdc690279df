# Copyright (c) recsys authors
#
# Concurrency: serving while a model is retrained over and over, and
# concurrent trainings of the same model.
#
# 1. One session retrains model m five times (each CALL commits) while
#    pgbench clients call recommend() on it: no client ever gets an error
#    or a short answer.
# 2. Two sessions train the same model at the same time: the second waits
#    for the first (a lock on the model name), both succeed, and the final
#    model is complete and consistent.  Both for a new model (no row yet:
#    the second training must update the row the first one committed) and
#    for a retrain of an existing one.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The server inherits this: one BLAS thread per backend.
$ENV{OPENBLAS_NUM_THREADS} = 1;

my $generator = 'test/data/generate';
BAIL_OUT("$generator not built (run make)") unless -x $generator;

my $node = PostgreSQL::Test::Cluster->new('concurrent');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '512MB'");
$node->start;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $timeout = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);

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

# Background sessions: send SQL without waiting, then wait for a marker
my $marker = 0;

sub bg_send
{
	my ($bg, $sql) = @_;
	my $mark = 'done-' . ++$marker;
	$bg->{stdin} .= "$sql\n\\echo $mark\n";
	$bg->{run}->pump_nb();
	return $mark;
}

sub bg_is_done
{
	my ($bg, $mark) = @_;
	$bg->{run}->pump_nb();
	return $bg->{stdout} =~ /^\Q$mark\E$/m;
}

sub bg_wait
{
	my ($bg, $re, $stream) = @_;
	$timeout->start($PostgreSQL::Test::Utils::timeout_default);
	return pump_until($bg->{run}, $timeout, \$bg->{$stream // 'stdout'},
		ref $re ? $re : qr/^\Q$re\E$/m);
}

sub bg_session
{
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	return ($bg, $pid);
}

$node->safe_psql('postgres', 'CREATE EXTENSION recsys');
load_table('r', '--users', 5000, '--items', 2000, '--rows', 300000,
	'--seed', 3);
load_table('r2', '--users', 3000, '--items', 1500, '--rows', 150000,
	'--seed', 4);
my ($r2_users, $r2_items, $r2_rows) = split /\|/,
  $node->safe_psql('postgres',
	'SELECT count(DISTINCT user_id), count(DISTINCT item_id), count(*) FROM r2');

my $train_m = q{CALL train('m', 'r', value_col => 'rating', factors => 16, iterations => 10, seed => %d);};
$node->safe_psql('postgres', sprintf($train_m, 42));

#
# 1. Serving during repeated retrains
#
my $v0 = $node->safe_psql('postgres', q{SELECT version FROM recsys.models WHERE name = 'm'});

# Every call must return exactly 10 rows, for known users (1..5000) and
# unknown ones (popular items); a short answer is a division by zero error.
my $script = "$dir/recommend.sql";
PostgreSQL::Test::Utils::append_to_file($script, <<'EOF');
\set uid random(1, 5500)
SELECT 1 / (count(*) = 10)::int FROM recommend(:uid, 10, 'm');
EOF

my ($trainer, $trainer_pid) = bg_session();
$trainer->query_safe('SET client_min_messages = warning');
my $retrains = join("\n", map { sprintf($train_m, $_) } 1 .. 5);
my $mark = bg_send($trainer, $retrains);
ok( $node->poll_query_until(
		'postgres',
		"SELECT query LIKE 'CALL train%' FROM pg_stat_activity WHERE pid = $trainer_pid"),
	'retrain loop started');

# Rounds of pgbench until the last retrain has committed (at least one)
my ($rounds, $transactions, $pgbench_errors) = (0, 0, 0);
while (1)
{
	my ($stdout, $stderr) = ('', '');
	$rounds++;
	IPC::Run::run(
		[
			'pgbench', '--no-vacuum', '--client=2', '--jobs=2', '--time=2',
			'--file', $script,
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$stdout, '2>', \$stderr);
	my $rc = $?;
	my ($processed) = $stdout =~ /number of transactions actually processed: (\d+)/;
	my ($failed) = $stdout =~ /number of failed transactions: (\d+)/;
	if ($rc != 0 || !defined $processed || $processed == 0
		|| !defined $failed || $failed != 0 || $stderr =~ /\S/)
	{
		$pgbench_errors++;
		diag "pgbench round $rounds failed (exit $rc):\n$stdout\n$stderr";
		last;
	}
	$transactions += $processed;
	last if bg_is_done($trainer, $mark);
	die "retrains did not finish in time" if $rounds > 150;
}
note "pgbench: $rounds rounds of 2 s, $transactions recommend() calls";
is($pgbench_errors, 0, 'no recommend() call failed or came up short during the retrains');
ok(bg_wait($trainer, $mark), 'retrain loop finished');
is($trainer->{stderr}, '', 'all five retrains succeeded');
$trainer->{stderr} = '';

my ($v5, $seed5) = split /\|/, $node->safe_psql('postgres',
	q{SELECT version, params->>'seed' FROM recsys.models WHERE name = 'm'});
cmp_ok($v5, '>', $v0, 'retrains produced a newer version');
is($seed5, '5', 'the last retrain is the model that serves');

#
# 2. Concurrent trainings of the same model
#

# The model's storage is complete and consistent with its row in
# recsys.models, and nothing is left under other model ids.
sub check_consistent
{
	my ($model, $table, $iterations, $seed, $users, $items, $rows) = @_;
	my $row = $node->safe_psql(
		'postgres', qq{
SELECT m.num_users, m.num_items, m.num_interactions, m.source,
       m.params->>'seed', m.params->>'iterations',
       (SELECT count(*) FROM recsys.user_factors u WHERE u.model_id = m.model_id),
       (SELECT count(*) FROM recsys.item_factors i WHERE i.model_id = m.model_id),
       (SELECT count(*) FROM recsys.training_log l WHERE l.model_id = m.model_id),
       (SELECT count(*) FROM recsys.training_log l
        WHERE l.model_id = m.model_id AND l.version = m.version),
       (SELECT count(*) FROM recsys.user_factors u
        WHERE u.model_id = m.model_id AND cardinality(u.factors) = m.factors),
       (SELECT count(*) FROM recsys.item_factors i
        WHERE i.model_id = m.model_id AND cardinality(i.factors) = m.factors),
       (SELECT sum(cardinality(u.seen)) FROM recsys.user_factors u WHERE u.model_id = m.model_id)
FROM recsys.models m WHERE m.name = '$model'
});
	my ($nu, $ni, $nint, $source, $pseed, $piter, $cu, $ci, $cl, $clv, $cuk, $cik, $seen)
	  = split /\|/, $row;
	is($source, "public.$table", "$model: trained from $table");
	is($pseed, $seed, "$model: the model of the training that committed last (seed $seed)");
	is($piter, $iterations, "$model: iterations in params");
	is($nu, $users, "$model: num_users is the number of users in $table");
	is($ni, $items, "$model: num_items is the number of items in $table");
	is($nint, $rows, "$model: num_interactions is the number of rows in $table");
	is($cu, $nu, "$model: one user_factors row per user");
	is($ci, $ni, "$model: one item_factors row per item");
	is($cuk, $cu, "$model: every user has the model's number of factors");
	is($cik, $ci, "$model: every item has the model's number of factors");
	is($seen, $rows, "$model: the users' seen lists hold every interaction");
	is($cl, $iterations, "$model: training_log has one row per iteration");
	is($clv, $iterations, "$model: training_log rows are of the current version");
	is($node->safe_psql('postgres', "SELECT count(*) FROM recsys.models WHERE name = '$model'"),
		'1', "$model: one model row");
	is( $node->safe_psql(
			'postgres', q{
SELECT (SELECT count(*) FROM recsys.user_factors WHERE model_id NOT IN (SELECT model_id FROM recsys.models))
     + (SELECT count(*) FROM recsys.item_factors WHERE model_id NOT IN (SELECT model_id FROM recsys.models))
     + (SELECT count(*) FROM recsys.training_log WHERE model_id NOT IN (SELECT model_id FROM recsys.models))
}),
		'0', "$model: no rows of unknown models");
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM recommend(1, 10, '$model')"),
		'10', "$model: serves recommendations");
	return;
}

my ($s1, $pid1) = bg_session();
my ($s2, $pid2) = bg_session();

for my $model ('new_model', 'm')
{
	$s1->{stderr} = '';
	$s2->{stderr} = '';

	# First: data r, 10 iterations; second: data r2, 7 iterations
	my $mark1 = bg_send($s1,
		"CALL train('$model', 'r', value_col => 'rating', factors => 16, iterations => 10, seed => 11);");
	ok(bg_wait($s1, qr/NOTICE:  iteration 1 of 10/, 'stderr'),
		"$model: first training is in its iterations, holding the model lock");
	my $mark2 = bg_send($s2,
		"CALL train('$model', 'r2', value_col => 'rating', factors => 8, iterations => 7, seed => 12);");
	ok( $node->poll_query_until(
			'postgres',
			"SELECT wait_event_type = 'Lock' AND wait_event = 'advisory' FROM pg_stat_activity WHERE pid = $pid2"
		),
		"$model: second training waits for the first");
	unlike($s2->{stderr}, qr/iteration/, "$model: second training has not started iterating");

	ok(bg_wait($s1, $mark1), "$model: first training finished");
	unlike($s1->{stderr}, qr/ERROR/, "$model: first training succeeded")
	  or diag $s1->{stderr};
	ok(bg_wait($s2, $mark2), "$model: second training finished");
	unlike($s2->{stderr}, qr/ERROR/, "$model: second training succeeded")
	  or diag $s2->{stderr};
	like($s2->{stderr}, qr/iteration 7 of 7/, "$model: second training ran all its iterations");

	check_consistent($model, 'r2', 7, 12, $r2_users, $r2_items, $r2_rows);
}

$s1->quit;
$s2->quit;
$trainer->quit;
$node->stop;
done_testing();
