# Copyright (c) recsys authors
#
# The item-neighbour methods on planted data, and interrupted builds.
#
# Ranking: the generator's implicit kind picks each user's items by Zipf
# popularity times sigmoid(beta * p_u.q_i), so items liked by the same
# users share planted factors: item-item structure.  For every user with
# at least 10 interactions, 20% are held out (split_per_user, seeded);
# item_knn (cosine, and BM25-weighted) and ease train on the rest and must
# at least double the popular baseline's held-out precision@10, as
# ials does (005_implicit.pl).
#
# Interruptions: statement_timeout at several points of an item_knn build
# (1M interactions) and of an ease build (5,000 items), and a cancel from
# another session, each end with a clean error soon after the timeout,
# leave the previous version of the model serving the same answers, and
# leave nothing behind (no temporary file, lock, relation or thread).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RecsysLeftovers;
use Test::More;
use Time::HiRes qw(time);

# The server inherits this: one BLAS thread per backend.
$ENV{OPENBLAS_NUM_THREADS} = 1;

my $generator = 'test/data/generate';
BAIL_OUT("$generator not built (run make)") unless -x $generator;
my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('methods');
$node->init;
$node->append_conf('postgresql.conf', qq{
maintenance_work_mem = '512MB'
max_parallel_maintenance_workers = 1
});
$node->start;

# Generate a CSV
sub generate
{
	my ($name, $args) = @_;
	my $csv = "$dir/$name.csv";
	system("$generator --kind implicit $args > $csv 2>/dev/null") == 0
	  or BAIL_OUT("generator failed");
	return $csv;
}
my $planted = generate('planted',
	'--users 2000 --items 1000 --rows 300000 --rank 5 --beta 20 --zipf 1.2 --seed 7');
my $big = generate('big', '--users 6040 --items 3706 --rows 1000000 --rank 5 --beta 20 --seed 8');
my $wide = generate('wide', '--users 3000 --items 5000 --rows 200000 --rank 5 --beta 20 --seed 9');

$node->safe_psql('postgres', qq{
	CREATE EXTENSION recsys;
	CREATE TABLE events (user_id int, item_id int, count int);
	COPY events FROM '$planted' CSV HEADER;
	SELECT * FROM split_per_user('events', 'ev_train', 'ev_test', test_fraction => 0.2,
	                             min_history => 10, seed => 1);
	CREATE TABLE big (user_id int, item_id int, count int);
	COPY big FROM '$big' CSV HEADER;
	CREATE TABLE wide (user_id int, item_id int, count int);
	COPY wide FROM '$wide' CSV HEADER;
});

#
# Ranking on planted data
#
my %models = (
	pop => q{method => 'popular'},
	knn => q{method => 'item_knn'},
	knn_bm25 => q{method => 'item_knn', options => '{"weighting": "bm25"}'},
	ease => q{method => 'ease'},
	ials => q{method => 'ials', factors => 32, regularization => 30, alpha => 3},
);
my %seconds;
for my $m (sort keys %models)
{
	my $t0 = time;
	$node->safe_psql('postgres',
		"SET client_min_messages = warning; CALL train('$m', 'ev_train', $models{$m})");
	$seconds{$m} = time - $t0;
}

# precision@10 of a model over the test users, training items excluded
sub precision
{
	my ($m) = @_;
	return $node->safe_psql('postgres', qq{
		WITH t AS (SELECT user_id, array_agg(item_id::bigint) AS items
		           FROM ev_test GROUP BY user_id)
		SELECT avg((SELECT count(*) FROM recommend(t.user_id, 10, '$m') r
		            WHERE r.item_id = ANY (t.items)) / 10.0)
		FROM t});
}
my %p = map { $_ => precision($_) } keys %models;
note sprintf("precision\@10 on held-out items: %s",
	join(', ', map { sprintf("%s %.4f (%.2fx popular, trained in %.2f s)",
		$_, $p{$_}, $p{$_} / $p{pop}, $seconds{$_}) } sort keys %p));
cmp_ok($p{pop}, '>', 0.05, 'the popular baseline is not degenerate');
cmp_ok($p{knn}, '>=', 2 * $p{pop}, 'item_knn precision@10 is at least twice the popular baseline');
cmp_ok($p{knn_bm25}, '>=', 2 * $p{pop},
	'item_knn with bm25 weighting is at least twice the popular baseline');
cmp_ok($p{ease}, '>=', 2 * $p{pop}, 'ease precision@10 is at least twice the popular baseline');

# The same through recommend_for_items (a new user is a list of items)
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM (SELECT DISTINCT user_id FROM ev_train WHERE user_id <= 200) u
		WHERE (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recommend(u.user_id, 10, 'knn'))
		   IS DISTINCT FROM
		      (SELECT array_agg(item_id ORDER BY score DESC, item_id)
		       FROM recommend_for_items(ARRAY(SELECT item_id::bigint FROM ev_train t WHERE t.user_id = u.user_id),
		                                10, 'knn'))}),
	'0', 'recommend_for_items from a user\'s training items answers exactly as recommend');

#
# Interrupted builds
#
my $session = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $session->query_safe('SELECT pg_backend_pid()');
my $nothing_left = nothing_left(1);

# What a model serves: its version and some answers
sub state_of
{
	my ($m) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT (SELECT version || ':' || num_items FROM recsys.models WHERE name = '$m') || ' ' ||
		       (SELECT string_agg(item_id::text, ',' ORDER BY u, ord)
		        FROM generate_series(1, 20) u, recommend(u, 5, '$m') WITH ORDINALITY AS r(item_id, score, ord))});
}

for my $case (
	[ 'item_knn', 'big', q{method => 'item_knn'}, [ 200, 400, 600, 800 ] ],
	[ 'ease', 'wide', q{method => 'ease'}, [ 200, 400, 700 ] ])
{
	my ($method, $table, $args, $timeouts) = @$case;
	my $m = "int_$method";
	my $train = "CALL train('$m', '$table', $args)";
	my $t0 = time;
	$node->safe_psql('postgres', "SET client_min_messages = warning; $train");
	my $full = time - $t0;
	note sprintf("%s on %s: a whole training takes %.2f s", $method, $table, $full);
	my $before = state_of($m);
	for my $ms (@$timeouts)
	{
		# (a warm run is faster than the first: stay well below it)
		next if $ms / 1000 > 0.6 * $full;
		$session->{stderr} = '';
		my $t1 = time;
		$session->query("SET client_min_messages = warning; SET statement_timeout = '${ms}ms';\n"
			  . "$train;\nRESET statement_timeout;");
		my $took = time - $t1;
		like($session->{stderr}, qr/canceling statement due to statement timeout/,
			"$method: stopped by statement_timeout after $ms ms");
		cmp_ok($took - $ms / 1000, '<', 1.0,
			sprintf("$method: the error came %.0f ms after the timeout", 1000 * ($took - $ms / 1000)));
		is(state_of($m), $before, "$method: the previous version serves the same answers after $ms ms");
		is(leftovers($node, $pid), $nothing_left, "$method: nothing left behind after $ms ms");
	}

	# A cancel from another session, once the build is under way
	$session->{stderr} = '';
	$session->{stdin} .= "$train;\n";
	$session->{run}->pump_nb;
	$node->poll_query_until('postgres', qq{
		SELECT query LIKE 'CALL train%' AND clock_timestamp() > query_start + interval '300 ms'
		FROM pg_stat_activity WHERE pid = $pid}) or die "the training did not start";
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	is($session->query("SELECT 'after cancel'"), 'after cancel', "$method: the session works after a cancel");
	like($session->{stderr}, qr/canceling statement due to user request/,
		"$method: stopped by pg_cancel_backend");
	is(state_of($m), $before, "$method: the previous version serves the same answers after a cancel");
	is(leftovers($node, $pid), $nothing_left, "$method: nothing left behind after a cancel");
}

#
# Interrupts that raise no error (here: requests to log the backend's
# memory contexts, served at every CHECK_FOR_INTERRUPTS) stop the training
# threads; the loop must go on with the rows not yet done.  The models
# trained while being interrupted again and again equal those trained in
# peace, row for row.
#
sub digest
{
	my ($m) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT md5(string_agg(f.item_id || ':' || f.neighbors::text || f.weights::text, ';' ORDER BY f.item_id))
		       || md5(coalesce((SELECT string_agg(i.item_id || ':' || i.factors::text, ';' ORDER BY i.item_id)
		                        FROM recsys.item_factors i JOIN recsys.models mm USING (model_id)
		                        WHERE mm.name = '$m'), ''))
		FROM recsys.models m LEFT JOIN recsys.item_neighbors f USING (model_id) WHERE m.name = '$m'});
}
for my $case ([ 'item_knn', q{'big', method => 'item_knn'} ],
	[ 'ials', q{'big', method => 'ials', factors => 16, iterations => 3} ])
{
	my ($method, $args) = @$case;
	$node->safe_psql('postgres', "SET client_min_messages = warning; CALL train('calm_$method', $args)");
	$session->{stderr} = '';
	$session->{stdin} .= "SET client_min_messages = warning; CALL train('busy_$method', $args);\n";
	$session->{run}->pump_nb;
	my $signals = 0;
	while ($node->safe_psql('postgres', "SELECT state = 'active' FROM pg_stat_activity WHERE pid = $pid") eq 't'
		|| $signals == 0)
	{
		$node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($pid)");
		$signals++;
	}
	is($session->query("SELECT 'done'"), 'done', "$method: trained while interrupted $signals times");
	is($session->{stderr}, '', "$method: no error");
	is(digest("busy_$method"), digest("calm_$method"),
		"$method: the model trained while interrupted equals the one trained in peace");
}
$session->quit;

$node->stop;
done_testing();
