# Copyright (c) recsys authors
#
# Distributed training over postgres_fdw shards (doc/scale-out.md): a
# coordinator and three shard clusters on this machine.  The coordinator's
# source tables are partitioned BY HASH (user_id), one postgres_fdw foreign
# partition per shard; the same rows are also in local tables, for the
# single-node trainings the distributed ones must equal.
#
#  1. Equality with a single-node training on the same rows: als (explicit
#     ratings), ials with solver cholesky, cg and subspace (block_size 2,
#     and block_size 3 with regularization 0: the original coordinates):
#     item and user factors within 1e-4 relative (as a norm; each value
#     within 1e-4 of the largest |factor|, 1e-3 for the truncated cg
#     solver); subspace ships fewer bytes than cg; identical
#     top-10 (recommend_all) for >= 99% of users, the same counts, the loss
#     of every iteration within 1e-5 relative; the bytes shipped per
#     iteration in the NOTICE and in recsys.training_log.bytes_shipped;
#     nothing written on any shard.
#  2. Serving during a distributed retrain: another session sees the
#     previous version throughout, the new one after the commit.
#  3. Interruptions: a shard stopped (immediate) mid-training (als, and
#     ials with solver subspace, whose item half-step is many rounds), and
#     pg_cancel_backend and statement_timeout on the coordinator: a clean
#     error (naming the shard), the previous model unchanged, no training
#     session left on any shard, nothing written on any shard.
#  4. Security: a mapped role without SELECT on the shard's table (42501,
#     naming the shard); a shard session without the memory for its rows
#     (54000 naming the shard, a hint for its setting); row-level security on a shard (the model counts
#     the visible rows only, and equals a single-node training on them); a
#     non-superuser whose user mapping has no password, a wrong one, then
#     the right one (scram-sha-256 on the shards), first while row-level
#     security hides every row of one shard from it (an error naming it).
#  5. Sources that do not train distributed: mixed local and foreign
#     partitions and a source partitioned by item (errors with hints), and
#     recsys.distributed_training = off (reads every partition here).
use strict;
use warnings;

use FindBin;
use IPC::Run;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RecsysLeftovers;
use List::Util qw(max);
use Time::HiRes qw(time);

# The servers inherit this: one BLAS thread per backend.
$ENV{OPENBLAS_NUM_THREADS} = 1;

my $generator = 'test/data/generate';
BAIL_OUT("$generator not built (run make)") unless -x $generator;

my $t_start = time();
my $dir = PostgreSQL::Test::Utils::tempdir;

# The application_name of the coordinator's sessions on the shards
my $app = 'recsys distributed training';

#
# The clusters.  Autovacuum is off on the shards so that the only writes
# there are the test's own (the checks that a training writes nothing
# compare the shards' tuple counters).
#
my $coord = PostgreSQL::Test::Cluster->new('coordinator');
$coord->init;
$coord->append_conf('postgresql.conf', "maintenance_work_mem = '256MB'");
$coord->start;

my @shards;
for my $i (1 .. 3)
{
	my $shard = PostgreSQL::Test::Cluster->new("shard$i");
	$shard->init;
	$shard->append_conf('postgresql.conf',
		"maintenance_work_mem = '256MB'\nautovacuum = off");
	$shard->start;
	push @shards, $shard;
}
my $super = $coord->safe_psql('postgres', 'SELECT current_user');

# Explicit ratings and implicit counts, as CSV
sub generate
{
	my ($name, @args) = @_;
	my $csv = "$dir/$name.csv";
	my $err = '';
	IPC::Run::run([ $generator, @args ], '>', $csv, '2>', \$err)
	  or BAIL_OUT("$generator failed: $err");
	note "$name: $err";
	return $csv;
}
my $ratings_csv = generate('ratings', '--kind', 'explicit', '--users', 4000,
	'--items', 1500, '--rows', 200000, '--seed', 3);
my $events_csv = generate('events', '--kind', 'implicit', '--users', 4000,
	'--items', 1500, '--rows', 200000, '--seed', 4);

# On every shard: the extension and the two local tables
for my $shard (@shards)
{
	$shard->safe_psql('postgres', q{
		CREATE EXTENSION recsys;
		CREATE TABLE ratings (user_id bigint, item_id bigint, rating real);
		CREATE TABLE events (user_id bigint, item_id bigint, count real);
	});
}

# On the coordinator: the servers, the user mappings, the partitioned
# tables with one foreign partition per shard, and the local copies
my $setup = q{
	CREATE EXTENSION recsys;
	CREATE EXTENSION postgres_fdw;
	CREATE TABLE local_ratings (user_id bigint, item_id bigint, rating real);
	CREATE TABLE local_events (user_id bigint, item_id bigint, count real);
	CREATE TABLE dist_ratings (user_id bigint, item_id bigint, rating real)
	    PARTITION BY HASH (user_id);
	CREATE TABLE dist_events (user_id bigint, item_id bigint, count real)
	    PARTITION BY HASH (user_id);
};
for my $i (1 .. 3)
{
	my $shard = $shards[ $i - 1 ];
	my ($host, $port) = ($shard->host, $shard->port);
	my $r = $i - 1;
	$setup .= qq{
	CREATE SERVER shard$i FOREIGN DATA WRAPPER postgres_fdw
	    OPTIONS (host '$host', port '$port', dbname 'postgres', batch_size '1000');
	CREATE USER MAPPING FOR CURRENT_USER SERVER shard$i OPTIONS (user '$super');
	CREATE FOREIGN TABLE dist_ratings_$i PARTITION OF dist_ratings
	    FOR VALUES WITH (MODULUS 3, REMAINDER $r)
	    SERVER shard$i OPTIONS (schema_name 'public', table_name 'ratings');
	CREATE FOREIGN TABLE dist_events_$i PARTITION OF dist_events
	    FOR VALUES WITH (MODULUS 3, REMAINDER $r)
	    SERVER shard$i OPTIONS (schema_name 'public', table_name 'events');
};
}
$setup .= qq{
	COPY local_ratings FROM '$ratings_csv' WITH (FORMAT csv, HEADER true);
	COPY local_events FROM '$events_csv' WITH (FORMAT csv, HEADER true);
	INSERT INTO dist_ratings SELECT * FROM local_ratings;
	INSERT INTO dist_events SELECT * FROM local_events;
	ANALYZE local_ratings;
	ANALYZE local_events;
};
$coord->safe_psql('postgres', $setup);
$_->safe_psql('postgres', 'ANALYZE') for @shards;

my @per_shard = map {
	$_->safe_psql('postgres',
		'SELECT (SELECT count(*) FROM ratings) || \'/\' || (SELECT count(*) FROM events)')
} @shards;
note 'rows per shard (ratings/events): ' . join(', ', @per_shard);
is( $coord->safe_psql('postgres',
		'SELECT (SELECT count(*) FROM dist_ratings) = (SELECT count(*) FROM local_ratings) AND '
		  . '(SELECT count(*) FROM dist_events) = (SELECT count(*) FROM local_events)'),
	't', 'setup: the partitioned tables hold the same rows as the local ones');
ok(!(grep { $_ =~ m{^0/|/0$} } @per_shard), 'setup: every shard holds rows of both tables');
note sprintf('setup took %.1f s', time() - $t_start);

#
# Helpers
#

# What each shard has written: its relations and the tuples inserted,
# updated and deleted in any table (autovacuum is off).  $relations_only
# for a shard that restarted after a crash (its counters are reset).
sub shard_writes
{
	my ($shard, $relations_only) = @_;
	return $shard->safe_psql('postgres',
		'SELECT count(*) || \' relations, max oid \' || max(oid::int8) FROM pg_class')
	  if $relations_only;
	return $shard->safe_psql('postgres', q{
		SELECT (SELECT count(*) || ' relations, max oid ' || max(oid::int8) FROM pg_class)
		       || ', ' || (SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_all_tables)
		       || ' tuples written'});
}

sub all_shard_writes
{
	return join('; ', map { shard_writes($_) } @shards);
}

# The coordinator's training sessions on a shard
sub shard_sessions
{
	my ($shard) = @_;
	return $shard->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE application_name = '$app'");
}

# Wait until no shard has a session of the coordinator's trainings
sub check_no_shard_sessions
{
	my ($when, @which) = @_;
	@which = @shards unless @which;
	for my $shard (@which)
	{
		ok( $shard->poll_query_until('postgres',
				"SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = '$app'"),
			"$when: no training session left on " . $shard->name);
	}
	return;
}

# Compare two models (names) of the coordinator: the max difference of the
# item and user factors and biases relative to the largest |value| of the
# second model, rows missing on either side, the loss of each iteration,
# the share of users with the same top-10 (recommend_all)
sub compare_models
{
	my ($a, $b) = @_;
	my %r;
	for my $side ('item', 'user')
	{
		my $res = $coord->safe_psql('postgres', qq{
			WITH a AS (SELECT f.${side}_id AS id, x.i, x.v
			           FROM recsys.${side}_factors f JOIN recsys.models m USING (model_id),
			                unnest(f.factors || f.bias) WITH ORDINALITY x(v, i)
			           WHERE m.name = '$a'),
			     b AS (SELECT f.${side}_id AS id, x.i, x.v
			           FROM recsys.${side}_factors f JOIN recsys.models m USING (model_id),
			                unnest(f.factors || f.bias) WITH ORDINALITY x(v, i)
			           WHERE m.name = '$b')
			SELECT max(abs(a.v - b.v)) / (SELECT max(abs(v)) FROM b),
			       sqrt(sum((a.v - b.v) ^ 2) / (SELECT sum(v ^ 2) FROM b)),
			       count(*) FILTER (WHERE a.id IS NULL OR b.id IS NULL),
			       count(*)
			FROM a FULL JOIN b USING (id, i)});
		my ($rel, $norm, $missing, $n) = split /\|/, $res;
		$r{$side} = $rel;
		$r{"${side}_norm"} = $norm;
		$r{"${side}_missing"} = $missing;
		$r{"${side}_values"} = $n;
	}
	my ($loss, $niter) = split /\|/, $coord->safe_psql('postgres', qq{
		SELECT max(abs(a.loss - b.loss) / abs(b.loss)), count(*)
		FROM recsys.training_log a JOIN recsys.models ma ON ma.model_id = a.model_id AND ma.name = '$a'
		JOIN recsys.training_log b ON b.iteration = a.iteration
		JOIN recsys.models mb ON mb.model_id = b.model_id AND mb.name = '$b'});
	$r{loss} = $loss;
	$r{loss_iterations} = $niter;
	my ($same, $users) = split /\|/, $coord->safe_psql('postgres', qq{
		WITH a AS (SELECT user_id, array_agg(item_id ORDER BY score DESC, item_id) AS top
		           FROM recommend_all(10, '$a') GROUP BY user_id),
		     b AS (SELECT user_id, array_agg(item_id ORDER BY score DESC, item_id) AS top
		           FROM recommend_all(10, '$b') GROUP BY user_id)
		SELECT count(*) FILTER (WHERE a.top = b.top), count(*)
		FROM a FULL JOIN b USING (user_id)});
	$r{top10} = $users ? $same / $users : 0;
	$r{top10_users} = $users;
	return \%r;
}

# The counts a model stored
sub model_counts
{
	my ($name) = @_;
	return $coord->safe_psql('postgres', qq{
		SELECT num_users || ',' || num_items || ',' || num_interactions || ','
		       || null_values || ',' || duplicates
		FROM recsys.models WHERE name = '$name'});
}

# Train on the coordinator (a new session), returning its stderr (NOTICEs)
sub coord_train
{
	my ($sql, $settings) = @_;
	my ($stdout, $stderr);
	my $rc = $coord->psql('postgres', ($settings // '') . $sql,
		stdout => \$stdout, stderr => \$stderr);
	is($rc, 0, "the CALL succeeds: $sql") or diag $stderr;
	return $stderr;
}

#
# 1. Equality with single-node training
#
my $writes_before = all_shard_writes();
#
# The tolerance: the largest |difference| of any factor or bias relative
# to the largest |value| (and the same as a norm, ||a - b|| / ||b||, over
# all of them).  Exact solves (als, ials cholesky) agree to about 1e-6 in
# both.  With solver cg the single-node solver runs its truncated CG steps
# in float and the coordinator in double, on sums taken in another order:
# the few steps per sweep do not converge, so the rounding differences
# carry from sweep to sweep and grow.  After 8 sweeps the worst single
# value differs by about 2e-4 of the largest (its norm by about 1e-5) while
# the top-10 lists stay identical; so for cg the per-value bound is 1e-3,
# the norm bound 1e-4 as for the others (doc/scale-out.md).  The subspace
# solver's one sweep per half-step agrees as the exact solves do (about
# 2e-6 measured), so it gets their bound.
#
my @cases = (
	[ 'als', 'ratings', q{value_col => 'rating', method => 'als', factors => 16, iterations => 8},
		1e-4 ],
	[ 'ials_cholesky', 'events',
		q{value_col => 'count', method => 'ials', factors => 16, iterations => 8, solver => 'cholesky'},
		1e-4 ],
	[ 'ials_cg', 'events',
		q{value_col => 'count', method => 'ials', factors => 16, iterations => 8, solver => 'cg'},
		1e-3 ],
	[ 'ials_subspace', 'events',
		q{value_col => 'count', method => 'ials', factors => 16, iterations => 8, solver => 'subspace', options => '{"block_size": 2}'},
		1e-4 ],
	# regularization 0: the original coordinates (S is not factored), with
	# S y kept by the coordinator
	[ 'ials_subspace_orig', 'events',
		q{value_col => 'count', method => 'ials', factors => 16, iterations => 8, solver => 'subspace', regularization => 0, options => '{"block_size": 3}'},
		1e-4 ],
);
for my $case (@cases)
{
	my ($name, $table, $args, $tol) = @$case;
	my $t0 = time();
	my $notices = coord_train("CALL train('d_$name', 'dist_$table', $args)");
	my $t_dist = time() - $t0;
	$t0 = time();
	coord_train("CALL train('s_$name', 'local_$table', $args)",
		'SET recsys.distributed_training = off; ');
	my $t_single = time() - $t0;
	note sprintf('%s: distributed %.2f s, single-node %.2f s', $name, $t_dist, $t_single);

	my @shipped = $notices =~ /iteration \d+ of \d+: .* ([0-9.]+) MB shipped/g;
	is(scalar(@shipped), 8, "$name: every iteration's NOTICE reports the MB shipped")
	  or diag $notices;
	my ($logged, $bytes_min, $bytes_max) = split /\|/, $coord->safe_psql('postgres', qq{
		SELECT count(bytes_shipped), min(bytes_shipped), max(bytes_shipped)
		FROM recsys.training_log JOIN recsys.models USING (model_id) WHERE name = 'd_$name'});
	is($logged, 8, "$name: recsys.training_log.bytes_shipped is recorded for every iteration");
	cmp_ok($bytes_min, '>', 0, "$name: bytes shipped per iteration are positive");
	note sprintf('%s: %.2f to %.2f MB shipped per iteration (NOTICE: %s)',
		$name, $bytes_min / 1048576, $bytes_max / 1048576, join(' ', @shipped));
	is( $coord->safe_psql('postgres', qq{
			SELECT count(bytes_shipped) FROM recsys.training_log
			JOIN recsys.models USING (model_id) WHERE name = 's_$name'}),
		'0', "$name: a single-node training logs no bytes shipped");

	is(model_counts("d_$name"), model_counts("s_$name"),
		"$name: same num_users, num_items, num_interactions, null_values, duplicates");
	is( $coord->safe_psql('postgres', qq{
			SELECT abs(a.global_mean - b.global_mean) <= 1e-9 * abs(b.global_mean)
			FROM recsys.models a, recsys.models b WHERE a.name = 'd_$name' AND b.name = 's_$name'}),
		't', "$name: same global mean");
	my $c = compare_models("d_$name", "s_$name");
	note sprintf('%s: item factors %.3g (norm %.3g), user factors %.3g (norm %.3g) relative, '
		  . 'loss %.3g relative, top-10 identical for %.4f of %d users', $name, $c->{item},
		$c->{item_norm}, $c->{user}, $c->{user_norm}, $c->{loss}, $c->{top10}, $c->{top10_users});
	is($c->{item_missing} + $c->{user_missing}, 0, "$name: the same users and items");
	cmp_ok($c->{item}, '<=', $tol, "$name: every item factor within $tol of the largest");
	cmp_ok($c->{user}, '<=', $tol, "$name: every user factor within $tol of the largest");
	cmp_ok($c->{item_norm}, '<=', 1e-4, "$name: item factors within 1e-4 relative (norm)");
	cmp_ok($c->{user_norm}, '<=', 1e-4, "$name: user factors within 1e-4 relative (norm)");
	is($c->{loss_iterations}, 8, "$name: both models logged 8 iterations");
	cmp_ok($c->{loss}, '<=', 1e-5, "$name: the loss of every iteration within 1e-5 relative");
	cmp_ok($c->{top10}, '>=', 0.99, "$name: identical top-10 for at least 99% of users");
}
is(all_shard_writes(), $writes_before, 'the trainings wrote nothing on any shard');
check_no_shard_sessions('after the trainings');

# The subspace item half-step ships b (b + 1) / 2 + b floats back and b out
# per block, item and shard (k / b blocks), CG k (1 + 2 c): here 54 against
# 112 floats per item and shard, plus the item factors of the user half-step
{
	my %bytes = map {
		$_ => $coord->safe_psql('postgres', qq{
			SELECT max(bytes_shipped) FROM recsys.training_log
			JOIN recsys.models USING (model_id) WHERE name = 'd_$_'})
	} ('ials_cg', 'ials_subspace');
	note sprintf('bytes per iteration: subspace %d, cg %d (%.2f)', $bytes{ials_subspace},
		$bytes{ials_cg}, $bytes{ials_subspace} / $bytes{ials_cg});
	cmp_ok($bytes{ials_subspace}, '<', 0.7 * $bytes{ials_cg},
		'subspace ships less than 0.7 x the bytes of cg per iteration');
}
note sprintf('equality part done after %.1f s', time() - $t_start);


#
# 2. Serving during a distributed retrain.  The retrain runs in an explicit
# transaction, so "before the commit" lasts as long as the test needs, on a
# machine however loaded: other sessions must see the previous version
# while the shards work, after the CALL has stored the new one, and the new
# one only after the COMMIT.
#
my $timeout = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);
my $user1 = $coord->safe_psql('postgres', 'SELECT min(user_id) FROM local_ratings');

# Everything a client can observe of model d_als
my $state_query = qq{
SELECT (SELECT array_agg(item_id ORDER BY item_id) FROM recommend($user1, 10, 'd_als')),
       round(predict($user1, 1, 'd_als')::numeric, 3),
       m.model_id, m.version, m.num_users, m.num_items, m.num_interactions,
       (SELECT count(*) FROM recsys.user_factors u WHERE u.model_id = m.model_id),
       (SELECT count(*) FROM recsys.item_factors i WHERE i.model_id = m.model_id),
       (SELECT count(*) FROM recsys.training_log l WHERE l.model_id = m.model_id),
       (SELECT count(*) FROM recsys.models)
FROM recsys.models m WHERE m.name = 'd_als'
};

# A session that served the model before (its backend caches the items)
my $reader = $coord->background_psql('postgres', on_error_stop => 0);
$reader->set_query_timer_restart();
my $old_state = $reader->query_safe($state_query);
like($old_state, qr/^\{\d+(,\d+){9}\}\|/, 'serving: the reader session recommends 10 items');

# The session that retrains; it must survive its own errors
my $trainer = $coord->background_psql('postgres', on_error_stop => 0);
$trainer->set_query_timer_restart();
my $trainer_pid = $trainer->query_safe('SELECT pg_backend_pid()');
$trainer->query_safe('\set VERBOSITY verbose');

# Send statements to the trainer without waiting for them
sub trainer_start
{
	my ($sql) = @_;
	$trainer->{stdout} = '';
	$trainer->{stderr} = '';
	$trainer->{stdin} .= "$sql\n";
	$trainer->{timeout}->start($PostgreSQL::Test::Utils::timeout_default);
	$trainer->{run}->pump_nb();
	return;
}

# Wait until the trainer's stderr (or stdout) matches $re
sub trainer_wait
{
	my ($re, $what, $stream) = @_;
	$timeout->start($PostgreSQL::Test::Utils::timeout_default);
	$trainer->{timeout}->start($PostgreSQL::Test::Utils::timeout_default);
	ok(pump_until($trainer->{run}, $timeout, \$trainer->{ $stream // 'stderr' }, $re), $what)
	  or diag "stdout: $trainer->{stdout}\nstderr: $trainer->{stderr}";
	return;
}

# The previous model is what every other session sees
sub check_old_model_serves
{
	my ($when) = @_;
	is($coord->safe_psql('postgres', $state_query), $old_state,
		"$when: a new session sees the previous model, unchanged");
	is($reader->query_safe($state_query), $old_state,
		"$when: the session with the cached model sees the previous model");
	return;
}

my $retrain_args = q{value_col => 'rating', method => 'als', factors => 16};
trainer_start("BEGIN;\nCALL train('d_als', 'dist_ratings', $retrain_args, iterations => 12);\n"
	  . "SELECT 'stored' AS marker;");
trainer_wait(qr/NOTICE:  00000: iteration 2 of 12/,
	'serving: the distributed retrain reached its sweeps');
check_old_model_serves('serving, while the shards train');
trainer_wait(qr/stored/, 'serving: the CALL stored the new model (not committed)', 'stdout');
unlike($trainer->{stderr}, qr/ERROR/, 'serving: the retrain raised no error');
check_old_model_serves('serving, before the commit');
check_no_shard_sessions('serving, before the commit');
$trainer->{stderr} = '';
$trainer->query('COMMIT');
unlike($trainer->{stderr}, qr/ERROR/, 'serving: the COMMIT succeeds');
my $new_state = $coord->safe_psql('postgres', $state_query);
isnt($new_state, $old_state, 'serving: after the commit a new session sees the new model');
cmp_ok((split /\|/, $new_state)[3], '>', (split /\|/, $old_state)[3],
	'serving: the new model has a higher version');
is($reader->query_safe($state_query), $new_state,
	'serving: the session with the cached model sees the new model after the commit');
is($coord->safe_psql('postgres', q{
	SELECT count(*) FROM recsys.training_log JOIN recsys.models USING (model_id)
	WHERE name = 'd_als' AND bytes_shipped > 0}), '12',
	'serving: the new version logged its 12 iterations with bytes shipped');
$old_state = $new_state;

#
# 3. Interruptions: a shard stopped immediately, a shard's session
# terminated, a cancel and a statement timeout on the coordinator, each in
# the middle of a long distributed retrain.  Each gives a clean error, the
# previous model keeps serving, no session of the training is left on any
# shard and nothing was written on any shard.
#
my $long_train =
  "CALL train('d_als', 'dist_ratings', $retrain_args, iterations => 10000);";

# Start the long retrain and wait until it sweeps
sub start_long_train
{
	my ($what, $prefix) = @_;
	trainer_start(($prefix // '') . $long_train);
	trainer_wait(qr/NOTICE:  00000: iteration 2 of 10000/, "$what: the retrain reached its sweeps");
	return;
}

# After an interruption: the error, the session usable, the model intact
sub check_interrupted
{
	my ($what, $error_re) = @_;
	trainer_wait($error_re, "$what: the CALL fails with a clean error");
	unlike($trainer->{stderr}, qr/iteration 10000 of 10000/, "$what: the retrain did not complete");
	is($trainer->query('SELECT 1'), '1', "$what: the trainer session is usable again");
	check_old_model_serves("after $what");
	is(leftovers($coord, $trainer_pid), nothing_left(1),
		"$what: nothing left behind on the coordinator");
	return;
}

# a. A shard stopped (immediate) mid-training
my $relations_before = join('; ', map { shard_writes($_, 1) } @shards);
$writes_before = all_shard_writes();
start_long_train('shard stopped');
$shards[1]->stop('immediate');
check_interrupted('shard stopped',
	qr/ERROR:  (08006|08000|57P01|57P03|XX000): shard shard2 failed during/);
note "shard stopped: $1" if $trainer->{stderr} =~ /(ERROR:.*)/;
$shards[1]->start;
check_no_shard_sessions('shard stopped');
is(join('; ', map { shard_writes($_, 1) } @shards), $relations_before,
	'shard stopped: no relation created on any shard');

# a'. The same with solver subspace (the stop lands in one of its many
# rounds: a block of the item half-step, or the user half-step): the
# previous subspace model stays as it was
{
	my $sub_state = qq{SELECT version, (SELECT sum(abs(v)) FROM recsys.item_factors f,
	                   unnest(f.factors) v WHERE f.model_id = m.model_id)
	                   FROM recsys.models m WHERE name = 'd_ials_subspace'};
	my $sub_before = $coord->safe_psql('postgres', $sub_state);
	$relations_before = join('; ', map { shard_writes($_, 1) } @shards);
	trainer_start("CALL train('d_ials_subspace', 'dist_events', value_col => 'count', "
		  . "method => 'ials', factors => 16, solver => 'subspace', "
		  . "options => '{\"block_size\": 2}', "
		  . "iterations => 10000);");
	trainer_wait(qr/NOTICE:  00000: iteration 2 of 10000/,
		'subspace, shard stopped: the retrain reached its sweeps');
	$shards[0]->stop('immediate');
	trainer_wait(qr/ERROR:  (08006|08000|57P01|57P03|XX000): shard shard1 failed during/,
		'subspace, shard stopped: the CALL fails with a clean error');
	note "subspace, shard stopped: $1" if $trainer->{stderr} =~ /(ERROR:.*)/;
	is($trainer->query('SELECT 1'), '1', 'subspace, shard stopped: the trainer session is usable again');
	is($coord->safe_psql('postgres', $sub_state), $sub_before,
		'subspace, shard stopped: the previous subspace model is unchanged');
	is(leftovers($coord, $trainer_pid), nothing_left(1),
		'subspace, shard stopped: nothing left behind on the coordinator');
	$shards[0]->start;
	check_no_shard_sessions('subspace, shard stopped');
	is(join('; ', map { shard_writes($_, 1) } @shards), $relations_before,
		'subspace, shard stopped: no relation created on any shard');
}

# b. The training's session on a shard terminated (the shard fails)
$writes_before = all_shard_writes();
start_long_train('shard session terminated');
is( $shards[2]->safe_psql('postgres',
		"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '$app'"),
	'1', 'shard session terminated: the training had one session on shard3');
check_interrupted('shard session terminated', qr/ERROR:  \w{5}: shard shard3 failed during/);
check_no_shard_sessions('shard session terminated');
is(all_shard_writes(), $writes_before, 'shard session terminated: nothing written on any shard');

# c. pg_cancel_backend() on the coordinator
start_long_train('cancel');
is($coord->safe_psql('postgres', "SELECT pg_cancel_backend($trainer_pid)"),
	't', 'cancel: pg_cancel_backend() signals the trainer');
check_interrupted('cancel', qr/ERROR:  57014: canceling statement due to user request/);
check_no_shard_sessions('cancel');
is(all_shard_writes(), $writes_before, 'cancel: nothing written on any shard');

# d. statement_timeout on the coordinator
trainer_start("SET statement_timeout = '3s';\n$long_train\nRESET statement_timeout;");
check_interrupted('statement timeout', qr/ERROR:  57014: canceling statement due to statement timeout/);
check_no_shard_sessions('statement timeout');
is(all_shard_writes(), $writes_before, 'statement timeout: nothing written on any shard');
note sprintf('interruptions done after %.1f s', time() - $t_start);

#
# 4. Security on a shard.  A second server for shard2 maps the coordinator's
# superuser to role "limited" there; table lim_ratings has the partitions of
# dist_ratings, that of shard2 through this server.
#
$shards[1]->safe_psql('postgres', 'CREATE ROLE limited LOGIN');
{
	my ($host, $port) = ($shards[1]->host, $shards[1]->port);
	$coord->safe_psql('postgres', qq{
		CREATE SERVER shard2_limited FOREIGN DATA WRAPPER postgres_fdw
		    OPTIONS (host '$host', port '$port', dbname 'postgres');
		CREATE USER MAPPING FOR CURRENT_USER SERVER shard2_limited OPTIONS (user 'limited');
		CREATE TABLE lim_ratings (user_id bigint, item_id bigint, rating real)
		    PARTITION BY HASH (user_id);
		CREATE FOREIGN TABLE lim_ratings_1 PARTITION OF lim_ratings
		    FOR VALUES WITH (MODULUS 3, REMAINDER 0)
		    SERVER shard1 OPTIONS (schema_name 'public', table_name 'ratings');
		CREATE FOREIGN TABLE lim_ratings_2 PARTITION OF lim_ratings
		    FOR VALUES WITH (MODULUS 3, REMAINDER 1)
		    SERVER shard2_limited OPTIONS (schema_name 'public', table_name 'ratings');
		CREATE FOREIGN TABLE lim_ratings_3 PARTITION OF lim_ratings
		    FOR VALUES WITH (MODULUS 3, REMAINDER 2)
		    SERVER shard3 OPTIONS (schema_name 'public', table_name 'ratings');
	});
}
my $lim_args = q{value_col => 'rating', method => 'als', factors => 16, iterations => 5};

# a. The mapped role may not read the shard's table: 42501, naming the shard
my ($rc, $out, $err) = (0, '', '');
$rc = $coord->psql('postgres', "\\set VERBOSITY verbose\nCALL train('d_lim', 'lim_ratings', $lim_args)",
	stdout => \$out, stderr => \$err);
isnt($rc, 0, 'no privilege: the CALL fails');
like($err, qr/ERROR:  42501: shard shard2_limited failed during shard_open.*: permission denied for (table|relation) (public\.)?ratings/,
	'no privilege: 42501 naming the shard and the table');
is($coord->safe_psql('postgres', "SELECT count(*) FROM recsys.models WHERE name = 'd_lim'"),
	'0', 'no privilege: no model stored');
check_no_shard_sessions('no privilege');

# a'. A shard whose session has too little maintenance_work_mem for its
# rows: the shard's 54000, naming the shard, with a hint that sends the
# caller to the shard's setting for the mapped role (a SET on the
# coordinator does not reach the shard's session)
$shards[1]->safe_psql('postgres', "ALTER ROLE $super SET maintenance_work_mem = '1MB'");
($rc, $out, $err) = (0, '', '');
$rc = $coord->psql('postgres',
	"\\set VERBOSITY verbose\nCALL train('d_mem', 'dist_ratings', $lim_args)",
	stdout => \$out, stderr => \$err);
$shards[1]->safe_psql('postgres', "ALTER ROLE $super RESET maintenance_work_mem");
isnt($rc, 0, 'shard memory: the CALL fails');
like($err, qr/ERROR:  54000: shard shard2 failed during shard_open.*maintenance_work_mem is 1 MB/,
	'shard memory: 54000 naming the shard and its budget');
like($err, qr/HINT:  Raise maintenance_work_mem on shard shard2 for the role this server connects as \(ALTER ROLE \S+ SET maintenance_work_mem there/,
	'shard memory: the hint names the shard and its role setting');
is($coord->safe_psql('postgres', "SELECT count(*) FROM recsys.models WHERE name = 'd_mem'"),
	'0', 'shard memory: no model stored');
check_no_shard_sessions('shard memory');

# b. Row-level security on the shard: the model is trained on the rows the
# mapped role sees, as a query through the foreign table would see them,
# and equals a single-node training on those rows
$shards[1]->safe_psql('postgres', q{
	GRANT SELECT ON ratings TO limited;
	ALTER TABLE ratings ENABLE ROW LEVEL SECURITY;
	CREATE POLICY hide_some ON ratings FOR SELECT TO limited USING (item_id % 5 <> 0);
});
$coord->safe_psql('postgres', q{
	CREATE TABLE local_lim AS SELECT * FROM lim_ratings;
	ANALYZE local_lim;
});
my ($visible, $all) = split /\|/, $coord->safe_psql('postgres',
	'SELECT (SELECT count(*) FROM local_lim), (SELECT count(*) FROM local_ratings)');
cmp_ok($visible, '<', $all, 'row-level security: the policy hides rows through the foreign table');
coord_train("CALL train('d_lim', 'lim_ratings', $lim_args)");
coord_train("CALL train('s_lim', 'local_lim', $lim_args)", 'SET recsys.distributed_training = off; ');
is(model_counts('d_lim'), model_counts('s_lim'),
	'row-level security: the distributed model counts the visible rows only');
is($coord->safe_psql('postgres', "SELECT num_interactions FROM recsys.models WHERE name = 'd_lim'"),
	$visible, 'row-level security: num_interactions is the number of visible rows');
{
	my $c = compare_models('d_lim', 's_lim');
	note sprintf('row-level security: item factors %.3g, user factors %.3g relative, top-10 %.4f',
		$c->{item}, $c->{user}, $c->{top10});
	cmp_ok($c->{item}, '<=', 1e-4, 'row-level security: item factors within 1e-4 relative');
	cmp_ok($c->{user}, '<=', 1e-4, 'row-level security: user factors within 1e-4 relative');
	cmp_ok($c->{top10}, '>=', 0.99, 'row-level security: identical top-10 for >= 99% of users');
}

# c. A non-superuser on the coordinator: its user mapping must carry a
# password (as postgres_fdw requires), and the shards must ask for it
for my $shard (@shards)
{
	$shard->safe_psql('postgres', q{
		CREATE ROLE trainer LOGIN PASSWORD 'secret-pw';
		GRANT SELECT ON ratings TO trainer;
	});
	# scram-sha-256 for this role, before the test's trust lines
	my $hba = $shard->data_dir . '/pg_hba.conf';
	my $lines = PostgreSQL::Test::Utils::slurp_file($hba);
	open(my $fh, '>', $hba) or die "could not write $hba: $!";
	print $fh "local all trainer scram-sha-256\nhost all trainer 127.0.0.1/32 scram-sha-256\n$lines";
	close $fh;
	$shard->reload;
}
$coord->safe_psql('postgres', q{
	CREATE ROLE trainer LOGIN;
	GRANT SELECT ON dist_ratings TO trainer;
	CREATE USER MAPPING FOR trainer SERVER shard1 OPTIONS (user 'trainer');
	CREATE USER MAPPING FOR trainer SERVER shard2 OPTIONS (user 'trainer');
	CREATE USER MAPPING FOR trainer SERVER shard3 OPTIONS (user 'trainer');
});
my $as_trainer = "SET ROLE trainer;\n\\set VERBOSITY verbose\n";
$rc = $coord->psql('postgres', $as_trainer . "CALL train('d_trainer', 'dist_ratings', $lim_args)",
	stdout => \$out, stderr => \$err);
isnt($rc, 0, 'no password: the CALL fails');
like($err, qr/ERROR:  2F003: a password is required to train from shard shard1/,
	'no password: 2F003, naming the shard');
$coord->safe_psql('postgres',
	join("\n", map { "ALTER USER MAPPING FOR trainer SERVER shard$_ OPTIONS (ADD password 'wrong-pw');" } 1 .. 3));
$rc = $coord->psql('postgres', $as_trainer . "CALL train('d_trainer', 'dist_ratings', $lim_args)",
	stdout => \$out, stderr => \$err);
isnt($rc, 0, 'wrong password: the CALL fails');
like($err, qr/ERROR:  08001: could not connect to shard shard\d: .*password authentication failed/,
	'wrong password: 08001, naming the shard');
$coord->safe_psql('postgres',
	join("\n", map { "ALTER USER MAPPING FOR trainer SERVER shard$_ OPTIONS (SET password 'secret-pw');" } 1 .. 3));

# Row-level security on shard2 has no policy for this role: it sees no row
# there, and a shard without rows is an error naming it (documented)
$rc = $coord->psql('postgres', $as_trainer . "CALL train('d_trainer', 'dist_ratings', $lim_args)",
	stdout => \$out, stderr => \$err);
isnt($rc, 0, 'a shard where the role sees no row: the CALL fails');
like($err, qr/ERROR:  02000: shard shard2 failed during shard_open.*: source relation \S*ratings has no usable interactions/,
	'a shard where the role sees no row: 02000, naming the shard');
$shards[1]->safe_psql('postgres', 'ALTER TABLE ratings DISABLE ROW LEVEL SECURITY');
$rc = $coord->psql('postgres', $as_trainer . "CALL train('d_trainer', 'dist_ratings', $lim_args)",
	stdout => \$out, stderr => \$err);
is($rc, 0, 'with the password: the non-superuser trains distributed') or diag $err;
like($err, qr/MB shipped/, 'with the password: the training ran distributed');
is($coord->safe_psql('postgres', "SELECT owner FROM recsys.models WHERE name = 'd_trainer'"),
	'trainer', 'with the password: the model belongs to the role');
check_no_shard_sessions('non-superuser');

#
# 5. Sources that do not train distributed
#
$coord->safe_psql('postgres', qq{
	CREATE TABLE mixed (user_id bigint, item_id bigint, rating real) PARTITION BY HASH (user_id);
	CREATE TABLE mixed_0 PARTITION OF mixed FOR VALUES WITH (MODULUS 2, REMAINDER 0);
	CREATE FOREIGN TABLE mixed_1 PARTITION OF mixed FOR VALUES WITH (MODULUS 2, REMAINDER 1)
	    SERVER shard1 OPTIONS (schema_name 'public', table_name 'ratings');
	CREATE TABLE by_item (user_id bigint, item_id bigint, rating real) PARTITION BY HASH (item_id);
	CREATE FOREIGN TABLE by_item_1 PARTITION OF by_item FOR VALUES WITH (MODULUS 1, REMAINDER 0)
	    SERVER shard1 OPTIONS (schema_name 'public', table_name 'ratings');
});
my @refused = (
	[ 'mixed partitions', "CALL train('x', 'mixed', $lim_args)",
		qr/ERROR:  0A000: source \S*mixed mixes postgres_fdw partitions with other partitions.*HINT:  .*recsys.distributed_training = off/s ],
	[ 'partitioned by item', "CALL train('x', 'by_item', $lim_args)",
		qr/ERROR:  0A000: distributed training needs source \S*by_item partitioned by its user column "user_id".*HINT:  Partition it BY HASH \(user_id\)/s ],
	[ 'an unsupported method', "CALL train('x', 'dist_ratings', value_col => 'rating', method => 'item_knn')",
		qr/ERROR:  0A000: distributed training does not support method item_knn yet.*HINT:  SET recsys.distributed_training = off/s ],
	[ 'preprocessing', "CALL train('x', 'dist_ratings', $lim_args, options => '{\"min_user_interactions\": 3}')",
		qr/ERROR:  0A000: distributed training does not support preprocessing options yet/ ],
);
for my $case (@refused)
{
	my ($what, $sql, $re) = @$case;
	$rc = $coord->psql('postgres', "\\set VERBOSITY verbose\n$sql", stdout => \$out, stderr => \$err);
	isnt($rc, 0, "$what: refused");
	like($err, $re, "$what: the error says why and what to do");
}
coord_train("CALL train('x', 'dist_ratings', $lim_args)", 'SET recsys.distributed_training = off; ');
is($coord->safe_psql('postgres', q{
	SELECT m.num_interactions = (SELECT count(*) FROM local_ratings)
	       AND (SELECT count(bytes_shipped) FROM recsys.training_log l WHERE l.model_id = m.model_id) = 0
	FROM recsys.models m WHERE name = 'x'}),
	't', 'recsys.distributed_training = off: every partition is read here, nothing shipped');
check_no_shard_sessions('at the end');

$reader->quit;
$trainer->quit;
note sprintf('the test took %.1f s', time() - $t_start);
done_testing();
