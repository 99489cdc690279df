# Copyright (c) recsys authors
#
# Held-out accuracy on planted low-rank data.
#
# The generator plants rating = mu + b_u + b_i + p_u.q_i + N(0, sigma^2)
# (--continuous: unrounded, unclamped), so no model can beat RMSE sigma on
# unseen (user, item) pairs.  We hold out 10% of the rows, train explicit ALS
# with the planted rank on the rest, and require the held-out RMSE of
# predict() to be within 10% of that noise floor.  Two baselines (the global
# mean, and the mean plus user and item biases fitted in SQL) must be much
# worse, so that the bound really measures the learned factors.
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

# Planted model: 2000 users x 1000 items, rank 5, noise sigma 0.5.
# 300,000 rows: 150 per user on average, enough for the per-row estimation
# error to stay well below the 10% margin.
my $sigma = 0.5;
my $rank = 5;
my @gen_args = (
	'--users' => 2000,
	'--items' => 1000,
	'--rows' => 300000,
	'--rank' => $rank,
	'--noise' => $sigma,
	'--seed' => 7,
	'--continuous');

my $node = PostgreSQL::Test::Cluster->new('rmse');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '256MB'");
$node->start;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $csv = "$dir/ratings.csv";
my $gen_err = '';
IPC::Run::run([ $generator, @gen_args ], '>', $csv, '2>', \$gen_err)
  or BAIL_OUT("$generator failed: $gen_err");
note "generator: $gen_err";

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION recsys;
CREATE TABLE ratings (user_id bigint, item_id bigint, rating float8);
COPY ratings FROM '$csv' WITH (FORMAT csv, HEADER true);
});

# Deterministic 90/10 split: a seeded random() over the rows in file order
# (same session, so setseed applies).
$node->safe_psql(
	'postgres', q{
SELECT setseed(0.25);
CREATE TABLE split AS SELECT *, random() < 0.1 AS held_out FROM ratings;
CREATE TABLE r_train AS SELECT user_id, item_id, rating FROM split WHERE NOT held_out;
CREATE TABLE r_test AS SELECT user_id, item_id, rating FROM split WHERE held_out;
ANALYZE r_train, r_test;
});

my ($n_train, $n_test) = split /\|/,
  $node->safe_psql('postgres',
	'SELECT (SELECT count(*) FROM r_train), (SELECT count(*) FROM r_test)');
note "train rows: $n_train, held-out rows: $n_test";
cmp_ok($n_test, '>', 0.08 * 300000, 'held-out set has at least 8% of the rows');
cmp_ok($n_test, '<', 0.12 * 300000, 'held-out set has at most 12% of the rows');

# ALS-WR scales lambda by each row's count, so a small lambda suffices.
my ($ok, $stdout, $stderr) = (0, '', '');
my $rc = $node->psql(
	'postgres', q{
CALL train('m', 'r_train', value_col => 'rating', factors => 5,
           iterations => 15, regularization => 0.01, seed => 42);
},
	stdout => \$stdout,
	stderr => \$stderr);
is($rc, 0, 'training succeeds') or diag $stderr;
like($stderr, qr/iteration 15 of 15: loss/, 'training reports its iterations');

my $catalog = $node->safe_psql('postgres',
	q{SELECT factors, num_interactions, final_rmse FROM recsys.models WHERE name = 'm'});
my ($factors, $n_interactions, $train_rmse) = split /\|/, $catalog;
is($factors, 5, 'model has the requested number of factors');
is($n_interactions, $n_train, 'model was trained on every training row');
note "training RMSE (recsys.models.final_rmse): $train_rmse";

# Held-out RMSE of predict(), and the two baselines.
my $rmse = $node->safe_psql(
	'postgres', q{
SELECT sqrt(avg((predict(user_id, item_id, 'm') - rating) ^ 2)) FROM r_test
});
my $rmse_mean = $node->safe_psql(
	'postgres', q{
SELECT sqrt(avg(((SELECT avg(rating) FROM r_train) - rating) ^ 2)) FROM r_test
});
my $rmse_biases = $node->safe_psql(
	'postgres', q{
WITH mu AS (SELECT avg(rating) AS m FROM r_train),
bi AS (SELECT item_id, avg(rating - m) AS b FROM r_train, mu GROUP BY item_id),
bu AS (SELECT user_id, avg(rating - m - bi.b) AS b
       FROM r_train JOIN bi USING (item_id), mu GROUP BY user_id)
SELECT sqrt(avg((m + coalesce(bu.b, 0) + coalesce(bi.b, 0) - rating) ^ 2))
FROM r_test LEFT JOIN bu USING (user_id) LEFT JOIN bi USING (item_id), mu
});

note sprintf(
	"held-out RMSE %.4f = %.3f x sigma (%.2f); global mean baseline %.4f, bias baseline %.4f",
	$rmse, $rmse / $sigma, $sigma, $rmse_mean, $rmse_biases);

cmp_ok($rmse, '<=', 1.10 * $sigma,
	'held-out RMSE is within 10% of the noise floor');
cmp_ok($rmse, '>=', 0.90 * $sigma,
	'held-out RMSE is not below the noise floor (no leak of the test set)');
cmp_ok($rmse_mean, '>=', 1.5 * $sigma,
	'global-mean baseline is far from the noise floor');
cmp_ok($rmse_biases, '>=', 1.5 * $sigma,
	'bias-only baseline is far from the noise floor');
cmp_ok($rmse, '<', 0.7 * $rmse_biases,
	'the factors beat the bias-only baseline by a wide margin');

# predict() is mu + b_u + b_i + p_u.q_i of the stored model.
my $mismatches = $node->safe_psql(
	'postgres', q{
WITH m AS (SELECT model_id, global_mean FROM recsys.models WHERE name = 'm'),
pairs AS (SELECT user_id, item_id FROM r_test ORDER BY user_id, item_id LIMIT 500),
manual AS (
    SELECT p.user_id, p.item_id,
           m.global_mean + u.bias + i.bias
           + (SELECT sum(uf * itf)
              FROM unnest(u.factors, i.factors) AS t(uf, itf)) AS expected
    FROM pairs p, m
    JOIN recsys.user_factors u ON u.model_id = m.model_id
    JOIN recsys.item_factors i ON i.model_id = m.model_id
    WHERE u.user_id = p.user_id AND i.item_id = p.item_id)
SELECT count(*) FILTER (WHERE abs(predict(user_id, item_id, 'm') - expected) > 1e-3),
       count(*)
FROM manual
});
my ($bad, $checked) = split /\|/, $mismatches;
cmp_ok($checked, '>', 400, 'checked predict() on stored factors');
is($bad, 0, 'predict() equals mu + b_u + b_i + p_u.q_i');

$node->stop;
done_testing();
