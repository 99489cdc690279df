# Copyright (c) recsys authors
#
# The implicit ALS solvers against each other (issue 14): the subspace
# solver (iALS++ block coordinate descent, solver => 'subspace') must reach,
# after the same iterations, a training loss within a small margin of the
# conjugate-gradient solver's, and rank held-out items as well (precision@10
# of evaluate() within noise of CG's, and well above the popular baseline),
# on planted-structure data (test/data/generate --kind implicit, as in
# 005_implicit.pl).  Every kernel is covered: block sizes 1 (the default
# kernel family), 5 (a short last block), 16 (the general kernel) and
# factors (one block: the exact solve), the baseline kernels
# (recsys.vector_kernels = generic), the original coordinates (zero
# regularization, where S = Y^T Y + lambda I is not factored), hybrid rows
# (item and user features), 1 and 2 threads (the same factors), and fold-in.
#
# Only comparisons with margins are printed, never values that depend on
# rounding order.
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

my $node = PostgreSQL::Test::Cluster->new('solvers');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '256MB'");
$node->start;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $csv = "$dir/events.csv";
my $gen_err = '';
IPC::Run::run(
	[
		$generator, '--kind' => 'implicit',
		'--users' => 1500, '--items' => 800,
		'--rows' => 200000, '--rank' => 5,
		'--beta' => 20, '--zipf' => 1.2,
		'--seed' => 19
	],
	'>', $csv, '2>', \$gen_err) or BAIL_OUT("$generator failed: $gen_err");

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION recsys;
CREATE TABLE events (user_id bigint, item_id bigint, count float8);
COPY events FROM '$csv' WITH (FORMAT csv, HEADER true);
SELECT count(*) FROM split_per_user('events', 'ev_train', 'ev_test', seed => 19);
CREATE TABLE item_tags AS
  SELECT item_id, 'tag' || (item_id % 13) AS feature FROM (SELECT DISTINCT item_id FROM events) s;
CREATE TABLE user_attrs AS
  SELECT user_id, 'band' || (user_id % 5) AS feature FROM (SELECT DISTINCT user_id FROM events) s;
});

my $base = q{'ev_train', value_col => 'count', method => 'ials', factors => 32, }
  . q{iterations => 15, alpha => 3, seed => 42};
my $common = "$base, regularization => 30";

# Train a model (settings: SET commands before the CALL; args: the
# arguments before options, $common unless given)
sub train
{
	my ($name, $options, $settings, $args) = @_;
	$settings //= '';
	$args //= $common;
	my ($stdout, $stderr) = ('', '');
	my $rc = $node->psql('postgres',
		"$settings CALL train('$name', $args, options => '$options')",
		stdout => \$stdout, stderr => \$stderr);
	is($rc, 0, "training $name succeeds") or diag $stderr;
	return;
}

# The final training loss of a model
sub final_loss
{
	my ($name) = @_;
	return $node->safe_psql('postgres',
		"SELECT final_loss FROM recsys.models WHERE name = '$name'");
}

# precision@10 of a model on the held-out items, and the popular baseline's
sub precision
{
	my ($name) = @_;
	return split /\|/, $node->safe_psql('postgres',
		"SELECT model_value, baseline_value FROM evaluate('$name', 'ev_test', k => 10, compute_auc => false) WHERE metric = 'precision'"
	);
}

train('cg', '{"solver": "cg"}');
train('exact', '{"solver": "cholesky"}');
train('sub', '{"solver": "subspace"}');
train('sub1', '{"solver": "subspace", "block_size": 1}');
train('sub5', '{"solver": "subspace", "block_size": 5}');
train('sub16', '{"solver": "subspace", "block_size": 16}');
train('sub32', '{"solver": "subspace", "block_size": 32}');
train('sub_generic', '{"solver": "subspace", "block_size": 5}',
	q{SET recsys.vector_kernels = 'generic';});
train('sub_t1', '{"solver": "subspace"}', 'SET recsys.training_threads = 1;');
train('sub_t2', '{"solver": "subspace"}', 'SET recsys.training_threads = 2;');

is( $node->safe_psql(
		'postgres', q{
SELECT string_agg(name || ':' || (params->>'solver') || ':' || coalesce(params->>'block_size', '-'), ' ' ORDER BY name)
FROM recsys.models WHERE name IN ('cg', 'exact', 'sub', 'sub16')}),
	'cg:cg:- exact:cholesky:- sub:subspace:2 sub16:subspace:16',
	'params record the solver, and the block size of the subspace solver');

# Losses after the same iterations: the exact solve is the lower bound of
# one sweep per half-step, CG and subspace come within a small margin.
my $l_cg = final_loss('cg');
my $l_exact = final_loss('exact');
note "final losses: cg $l_cg, exact $l_exact";
for my $m (qw(sub sub1 sub5 sub16 sub32 sub_generic))
{
	my $l = final_loss($m);
	note "final loss of $m: $l";
	cmp_ok(abs($l - $l_cg) / $l_cg, '<', 0.005,
		"$m: final loss within 0.5% of CG's");
	cmp_ok($l, '>=', $l_exact * (1 - 1e-4),
		"$m: final loss not below the exact solver's");
}
# One block of all the factors is the exact solve, up to rounding
cmp_ok(abs(final_loss('sub32') - $l_exact) / $l_exact,
	'<', 1e-4, 'block_size = factors: the loss of the exact solver');
# The baseline kernels compute the same sums in another rounding order
cmp_ok(abs(final_loss('sub_generic') - final_loss('sub5')) / $l_cg,
	'<', 1e-4, 'generic kernels: the loss of the vector kernels');
# Rows are solved independently, in blocks fixed by the row count
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM recsys.user_factors a JOIN recsys.user_factors b USING (user_id)
WHERE a.model_id = (SELECT model_id FROM recsys.models WHERE name = 'sub_t1')
  AND b.model_id = (SELECT model_id FROM recsys.models WHERE name = 'sub_t2')
  AND a.factors IS DISTINCT FROM b.factors}),
	'0',
	'1 and 2 training threads give the same user factors');

# Ranking quality equal to CG's within noise: about 15,000 recommendations,
# so the standard error of a precision near 0.4 is 0.004; 0.02 is 5 of them
my ($p_cg, $p_pop) = precision('cg');
for my $m (qw(sub sub5 sub16))
{
	my ($p) = precision($m);
	note "precision\@10: $m $p, cg $p_cg, popular $p_pop";
	cmp_ok(abs($p - $p_cg), '<', 0.02, "$m: precision\@10 within 0.02 of CG's");
	cmp_ok($p, '>', 1.5 * $p_pop, "$m: precision\@10 above 1.5 x popular's");
}

# Zero regularization: the solver works in the original coordinates
train('exact0', '{"solver": "cholesky", "regularization": 0}', '', $base);
train('sub0', '{"solver": "subspace", "block_size": 4, "regularization": 0}', '', $base);
my $l0 = final_loss('exact0');
cmp_ok(abs(final_loss('sub0') - $l0) / $l0, '<', 0.05,
	'zero regularization (original coordinates, slower): within 5% of the exact loss');
cmp_ok(final_loss('sub0'), '>=', $l0 * (1 - 1e-4),
	'zero regularization: not below the exact loss');

# Hybrid rows: item and user features pull the rows toward their priors
my $hybrid = '"item_features": "item_tags", "user_features": "user_attrs"';
train('h_cg', qq({"solver": "cg", $hybrid}));
train('h_sub', qq({"solver": "subspace", $hybrid}));
my $lh = final_loss('h_cg');
cmp_ok(abs(final_loss('h_sub') - $lh) / $lh, '<', 0.005,
	'hybrid: subspace loss within 0.5% of CG\'s');
my ($p_hcg) = precision('h_cg');
my ($p_hsub) = precision('h_sub');
cmp_ok(abs($p_hsub - $p_hcg), '<', 0.02, 'hybrid: precision@10 within 0.02 of CG\'s');

# Fold-in and refresh_user solve one user exactly, whatever the solver
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM recommend_for_items(ARRAY(SELECT item_id FROM ev_train WHERE user_id = 1), 10, 'sub')}),
	'10', 'fold-in from a subspace model');
is($node->safe_psql('postgres', q{SELECT refresh_user('sub', 1)}),
	't', 'refresh_user of a subspace model');

# Option errors name the option, the value and what is allowed
my ($rc, $out, $err) = $node->psql('postgres',
	qq{CALL train('bad', $common, options => '{"solver": "subspace", "block_size": 33}')});
like($err, qr/option "block_size" of method "ials" must be between 1 and factors \(32\), got 33/,
	'block_size above factors');
($rc, $out, $err) = $node->psql('postgres',
	qq{CALL train('bad', $common, options => '{"solver": "cholesky", "block_size": 4}')});
like($err, qr/applies only to solver "subspace", got block_size 4 with solver "cholesky"/,
	'block_size with another solver');
($rc, $out, $err) = $node->psql('postgres',
	qq{CALL train('bad', $common, options => '{"solver": "subspace", "block_size": "4"}')});
like($err, qr/option "block_size" of method "ials"/, 'block_size of the wrong type');

$node->stop;
done_testing();
