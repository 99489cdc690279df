# Copyright (c) recsys authors
#
# Held-out ranking quality of implicit-feedback ALS on planted data.
#
# The generator's implicit kind picks each user's items by Zipf popularity
# times sigmoid(beta * p_u.q_i), so the interactions carry planted low-rank
# preferences on top of popularity.  For every user with at least 10
# interactions we hold out 20% of them (a fixed hash order, so the split
# does not depend on scan order), train on the rest, and measure
# precision@10 of recommend() (training items excluded) on the held-out
# items.  The popular baseline ranks items by their training count; ials
# must at least double its precision, with the exact (Cholesky) and the
# default conjugate-gradient solver, and with log confidence scaling beat it
# clearly.  Fold-in (recommend_for_items) from a user's training items must
# be as good, and with the exact solver reproduce recommend() exactly,
# since training ends with an exact solve of every user against the final
# item factors.
#
# How strong the structure is matters: with beta = 2 (the generator's
# default) even ranking by the planted preferences times popularity gets only
# about 1.2x the popular baseline's precision, since acceptance is
# sigmoid(2 p.q) with p.q ~ N(0, 1): no item is much more likely than
# average.  With beta = 20 acceptance is nearly a step function of p_u.q_i,
# and with about 150 rows per user and steep popularity (zipf 1.2) the
# popular items a user has not touched yet are mostly ones the user
# rejected, which the factors can see and the baseline cannot.
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

my $t_start = time;

# Planted model: 2000 users x 1000 items, rank 5, 300,000 events.
my $n_rows = 300000;
my @gen_args = (
	'--kind' => 'implicit',
	'--users' => 2000,
	'--items' => 1000,
	'--rows' => $n_rows,
	'--rank' => 5,
	'--beta' => 20,
	'--zipf' => 1.2,
	'--seed' => 7);

# Hyperparameters of every ials model below (implicit ALS wants a much
# larger regularization than ALS-WR: it is not scaled by the row counts).
my $ials_args =
  q{factors => 32, iterations => 15, regularization => 30, alpha => 3, seed => 42};

my $node = PostgreSQL::Test::Cluster->new('implicit');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '256MB'");
$node->start;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $csv = "$dir/events.csv";
my $gen_err = '';
IPC::Run::run([ $generator, @gen_args ], '>', $csv, '2>', \$gen_err)
  or BAIL_OUT("$generator failed: $gen_err");
note "generator: $gen_err";

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION recsys;
CREATE TABLE events (user_id bigint, item_id bigint, count float8);
COPY events FROM '$csv' WITH (FORMAT csv, HEADER true);
});

# Deterministic per-user split: order each user's items by a hash of
# (user, item) and hold out the first 20% of users with >= 10 events.
$node->safe_psql(
	'postgres', q{
CREATE TABLE ranked AS
SELECT user_id, item_id, count,
       row_number() OVER (PARTITION BY user_id
                          ORDER BY md5('005/' || user_id || '/' || item_id)) AS rn,
       count(*) OVER (PARTITION BY user_id) AS n
FROM events;
CREATE TABLE ev_train AS
SELECT user_id, item_id, count FROM ranked WHERE NOT (n >= 10 AND rn <= n / 5);
CREATE TABLE ev_test AS
SELECT user_id, item_id, count FROM ranked WHERE n >= 10 AND rn <= n / 5;
CREATE INDEX ON ev_train (user_id);
CREATE INDEX ON ev_test (user_id, item_id);
ANALYZE ev_train, ev_test;
});

my ($n_train, $n_test, $n_test_users) = split /\|/,
  $node->safe_psql('postgres',
	q{SELECT (SELECT count(*) FROM ev_train), (SELECT count(*) FROM ev_test),
	         (SELECT count(DISTINCT user_id) FROM ev_test)});
note "train rows: $n_train, held-out rows: $n_test of $n_test_users users";
is($n_train + $n_test, $n_rows, 'the split keeps every row');
cmp_ok($n_test, '>', 0.15 * $n_rows, 'held-out set has more than 15% of the rows');
cmp_ok($n_test, '<', 0.20 * $n_rows, 'held-out set has less than 20% of the rows');
cmp_ok($n_test_users, '>', 1500, 'most users have held-out items');

# Train a model, returning its NOTICEs; the test fails if training fails.
sub train
{
	my ($sql) = @_;
	my ($stdout, $stderr) = ('', '');
	my $t0 = time;
	my $rc = $node->psql('postgres', "CALL train($sql)",
		stdout => \$stdout, stderr => \$stderr);
	is($rc, 0, "training succeeds: $sql") or diag $stderr;
	note sprintf("trained in %.2f s: %s", time - $t0, $sql);
	return $stderr;
}

train(q{'pop', 'ev_train', method => 'popular'});
my $cg_log = train(qq{'ials_cg', 'ev_train', method => 'ials', $ials_args});
train(qq{'ials_chol', 'ev_train', method => 'ials', solver => 'cholesky', $ials_args});
train(qq{'ials_log', 'ev_train', value_col => 'count', method => 'ials', }
	  . qq{scaling => 'log', epsilon => 1, $ials_args});
like($cg_log, qr/iteration 15 of 15: loss/, 'ials training reports its iterations');

is( $node->safe_psql(
		'postgres', q{
SELECT string_agg(format('%s:%s:%s:%s:%s:%s', name, method, factors,
                         params->>'solver', params->>'scaling', num_interactions),
                  ' ' ORDER BY name)
FROM recsys.models}),
	"ials_cg:ials:32:cg:linear:$n_train ials_chol:ials:32:cholesky:linear:$n_train "
	  . "ials_log:ials:32:cg:log:$n_train pop:popular:0:::$n_train",
	'catalog: methods, factors, solvers, scalings and interaction counts');

# precision@10 and recall@10 of a model over the held-out users: top10 is
# recommend(u, 10, model) with the user's training items excluded (counted
# as leaks if one shows up anyway).
$node->safe_psql(
	'postgres', q{
CREATE FUNCTION eval_model(model text)
RETURNS TABLE (users bigint, prec float8, recall float8, recs bigint, leaks bigint)
LANGUAGE sql AS $$
WITH tu AS (SELECT user_id, count(*) AS n_held FROM ev_test GROUP BY user_id),
recs AS (SELECT tu.user_id, r.item_id
         FROM tu CROSS JOIN LATERAL recommend(tu.user_id, 10, model) r),
hits AS (SELECT tu.user_id, tu.n_held, count(t.item_id) AS hits,
                count(r.item_id) AS n_recs, count(s.item_id) AS n_seen
         FROM tu LEFT JOIN recs r USING (user_id)
         LEFT JOIN ev_test t ON t.user_id = r.user_id AND t.item_id = r.item_id
         LEFT JOIN ev_train s ON s.user_id = r.user_id AND s.item_id = r.item_id
         GROUP BY tu.user_id, tu.n_held)
SELECT count(*), avg(hits / 10.0)::float8, avg(hits::float8 / n_held),
       sum(n_recs), sum(n_seen)
FROM hits
$$;
});

sub evaluate
{
	my ($model) = @_;
	my ($users, $prec, $recall, $recs, $leaks) = split /\|/,
	  $node->safe_psql('postgres', "SELECT * FROM eval_model('$model')");
	note sprintf("%-9s precision\@10 %.4f, recall\@10 %.4f over %d users",
		$model, $prec, $recall, $users);
	is($recs, 10 * $users, "$model recommends 10 items to every held-out user");
	is($leaks, 0, "$model recommends no training item of the user");
	return $prec;
}

my $t_eval = time;
my $p_pop = evaluate('pop');
my $p_cg = evaluate('ials_cg');
my $p_chol = evaluate('ials_chol');
my $p_log = evaluate('ials_log');
note sprintf("evaluated 4 models in %.2f s", time - $t_eval);

cmp_ok($p_pop, '>', 0.05, 'popular baseline is not degenerate');
cmp_ok($p_cg, '>=', 2 * $p_pop,
	'ials (conjugate gradient) precision@10 is at least twice the popular baseline');
cmp_ok($p_chol, '>=', 2 * $p_pop,
	'ials (Cholesky) precision@10 is at least twice the popular baseline');
cmp_ok(abs($p_cg - $p_chol), '<=', 0.15 * $p_chol,
	'conjugate gradient (3 steps) is within 15% of the exact solver');
cmp_ok($p_log, '>=', 1.5 * $p_pop,
	'ials with log scaling of the counts beats the popular baseline by 1.5x');
note sprintf(
	"precision\@10: popular %.4f, ials cg %.4f (%.2fx), cholesky %.4f (%.2fx), log %.4f (%.2fx)",
	$p_pop, $p_cg, $p_cg / $p_pop, $p_chol, $p_chol / $p_pop,
	$p_log, $p_log / $p_pop);

# Implicit models have no RMSE; the exact solver's loss never increases
# (every half-step is an exact minimization of the same objective).
my ($n_log, $n_rmse, $n_up, $first, $last) = split /\|/,
  $node->safe_psql(
	'postgres', q{
WITH l AS (SELECT l.iteration, l.loss, l.rmse,
                  lag(l.loss) OVER (ORDER BY l.iteration) AS prev
           FROM recsys.training_log l JOIN recsys.models m USING (model_id)
           WHERE m.name = 'ials_chol')
SELECT count(*), count(rmse), count(*) FILTER (WHERE loss > prev * (1 + 1e-6)),
       (SELECT loss FROM l WHERE iteration = 1),
       (SELECT loss FROM l WHERE iteration = 15)
FROM l});
is($n_log, 15, 'the Cholesky model logged 15 iterations');
is($n_rmse, 0, 'ials logs no RMSE');
is($n_up, 0, 'the Cholesky model\'s loss never increases');
cmp_ok($last, '<', $first, 'the Cholesky model\'s loss decreases');
note "Cholesky loss: iteration 1 $first, iteration 15 $last";
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM recsys.training_log l JOIN recsys.models m USING (model_id)
WHERE m.method = 'ials' AND l.rmse IS NOT NULL}),
	0,
	'no ials model logs an RMSE');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM recsys.models WHERE method = 'ials' AND final_rmse IS NOT NULL}),
	0,
	'no ials model has a final RMSE');

# Fold-in on realistic data: 200 held-out users, recommend_for_items() from
# their training items (the CG model: fold-in is an exact solve against its
# item factors), scored on their held-out items, against the popular
# baseline on the same users.
my ($fold_users, $p_fold, $p_fold_pop) = split /\|/,
  $node->safe_psql(
	'postgres', q{
WITH tu AS (SELECT DISTINCT user_id FROM ev_test ORDER BY user_id LIMIT 200),
hist AS (SELECT tu.user_id, array_agg(e.item_id ORDER BY e.item_id) AS items
         FROM tu JOIN ev_train e USING (user_id) GROUP BY tu.user_id),
fold AS (SELECT h.user_id,
                (SELECT count(*) FROM recommend_for_items(h.items, 10, 'ials_cg') r
                 JOIN ev_test t ON t.user_id = h.user_id AND t.item_id = r.item_id) AS hits
         FROM hist h),
pop AS (SELECT tu.user_id,
               (SELECT count(*) FROM recommend(tu.user_id, 10, 'pop') r
                JOIN ev_test t ON t.user_id = tu.user_id AND t.item_id = r.item_id) AS hits
        FROM tu)
SELECT (SELECT count(*) FROM fold), (SELECT avg(hits / 10.0) FROM fold),
       (SELECT avg(hits / 10.0) FROM pop)
});
note sprintf("fold-in precision\@10 %.4f vs popular %.4f over %d users (%.2fx)",
	$p_fold, $p_fold_pop, $fold_users, $p_fold / $p_fold_pop);
is($fold_users, 200, 'fold-in evaluated on 200 users');
cmp_ok($p_fold, '>=', 2 * $p_fold_pop,
	'fold-in precision@10 is at least twice the popular baseline');

# With the exact solver, the stored user factors are the exact solve against
# the final item factors, so folding in a user's training items (value 1
# each, as in training without a value column) reproduces recommend().
my ($n_cmp, $n_same_items, $max_score_diff) = split /\|/,
  $node->safe_psql(
	'postgres', q{
WITH us AS (SELECT DISTINCT user_id FROM ev_train ORDER BY user_id LIMIT 50),
hist AS (SELECT us.user_id, array_agg(e.item_id ORDER BY e.item_id) AS items
         FROM us JOIN ev_train e USING (user_id) GROUP BY us.user_id),
cmp AS (
    SELECT h.user_id,
           (SELECT array_agg(item_id ORDER BY score DESC, item_id)
            FROM recommend_for_items(h.items, 10, 'ials_chol')) AS fold_items,
           (SELECT array_agg(score ORDER BY score DESC, item_id)
            FROM recommend_for_items(h.items, 10, 'ials_chol')) AS fold_scores,
           (SELECT array_agg(item_id ORDER BY score DESC, item_id)
            FROM recommend(h.user_id, 10, 'ials_chol')) AS rec_items,
           (SELECT array_agg(score ORDER BY score DESC, item_id)
            FROM recommend(h.user_id, 10, 'ials_chol')) AS rec_scores
    FROM hist h)
SELECT count(*),
       count(*) FILTER (WHERE fold_items = rec_items AND cardinality(rec_items) = 10),
       max((SELECT max(abs(f - r)) FROM unnest(fold_scores, rec_scores) AS s(f, r)))
FROM cmp
});
note "fold-in vs recommend(): $n_same_items of $n_cmp users identical, "
  . "largest score difference $max_score_diff";
is($n_cmp, 50, 'compared fold-in and recommend() for 50 users');
is($n_same_items, $n_cmp,
	'exact fold-in of the training items reproduces recommend() of the Cholesky model');
cmp_ok($max_score_diff, '<', 1e-4, 'and its scores');

note sprintf("total %.1f s", time - $t_start);

$node->stop;
done_testing();
