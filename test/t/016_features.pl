# Copyright (c) recsys authors
#
# Content-based and hybrid models on generated data whose item features
# and user attributes shape the planted factors (test/data/generate
# --features: 90% of an item factor's variance comes from its features,
# see the header of generate.c).
#
# Cold start: split_items holds out 10% of the items with all their
# interactions.  Ranking only those items for each test user (AUC over
# the cold items, averaged over users):
#   - the hybrid ials model (item and user features) must be well above
#     chance (0.5) and above a feature-popularity baseline (an item scores
#     the mean training popularity of the items sharing its features);
#   - the content model must beat popular, which knows nothing of cold
#     items (it ranks none of them: chance, 0.5).
# (Over seeds 11-13 and item popularity exponents 0.5 and 0.8 the hybrid
# AUC was 0.60-0.68, 0.02-0.07 above feature popularity; content
# 0.52-0.56.)
# Warm: on the other items, 20% of each user's interactions held out,
# the hybrid model's precision@10 must be within 2% of plain ials (the
# features may help, must not hurt).
# Serving: a visitor known only by attributes gets the same list as a
# user trained with those attributes and no interactions.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The server inherits this: one BLAS thread per backend.
$ENV{OPENBLAS_NUM_THREADS} = 1;

my $generator = 'test/data/generate';
BAIL_OUT("$generator not built (run make)") unless -x $generator;
my $dir = PostgreSQL::Test::Utils::tempdir;

system("$generator --kind implicit --users 3000 --items 1500 --rows 150000 --beta 4 --zipf 0.5 "
	  . "--features 100 --features-per-item 8 --feature-share 0.9 --seed 11 "
	  . "--item-features $dir/if.csv --user-attributes $dir/ua.csv "
	  . "> $dir/events.csv 2>/dev/null") == 0
  or BAIL_OUT("generator failed");

my $node = PostgreSQL::Test::Cluster->new('features');
$node->init;
$node->start;

$node->safe_psql('postgres', qq{
	CREATE EXTENSION recsys;
	SET client_min_messages = warning;
	CREATE TABLE events (user_id int, item_id int, count int);
	COPY events FROM '$dir/events.csv' CSV HEADER;
	CREATE TABLE item_tags (item_id int, feature text, weight real);
	COPY item_tags FROM '$dir/if.csv' CSV HEADER;
	CREATE TABLE user_attrs (user_id int, feature text);
	COPY user_attrs FROM '$dir/ua.csv' CSV HEADER;
	SELECT * FROM split_items('events', 'ev_train', 'ev_cold', test_fraction => 0.1, seed => 3);
	CREATE TABLE cold_items AS SELECT DISTINCT item_id::bigint FROM ev_cold;
});

my $ials = q{"factors": 16, "regularization": 10, "alpha": 3};
my $hybrid = qq{$ials, "item_features": "item_tags", "user_features": "user_attrs"};
my %train = (
	plain => qq{method => 'ials', options => '{$ials}'},
	hybrid => qq{method => 'ials', options => '{$hybrid}'},
	content => q{method => 'content', options => '{"item_features": "item_tags"}'},
	popular => q{method => 'popular'},
);
for my $name (sort keys %train)
{
	$node->safe_psql('postgres',
		"SET client_min_messages = warning; CALL train('$name', 'ev_train', $train{$name});");
}

# Mean over test users of the AUC of their cold items among all cold
# items, in the order of a ranking query (user_id, item_id, score)
sub cold_auc
{
	my ($ranking) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT round(avg(auc(r.ranked, t.relevant))::numeric, 4)
		FROM (SELECT user_id, array_agg(item_id ORDER BY score DESC, item_id) AS ranked
		      FROM ($ranking) s GROUP BY user_id) r
		JOIN (SELECT user_id, array_agg(DISTINCT item_id::bigint) AS relevant
		      FROM ev_cold GROUP BY user_id) t USING (user_id)
	});
}

# A model's ranking of the cold items for every test user
sub model_ranking
{
	my ($model) = @_;
	return qq{SELECT u.user_id, r.item_id, r.score
		FROM (SELECT DISTINCT user_id FROM ev_cold) u
		CROSS JOIN LATERAL recommend(u.user_id, 1000, '$model',
		    candidates => ARRAY(SELECT item_id FROM cold_items)) r};
}

my %auc;
$auc{$_} = cold_auc(model_ranking($_)) for qw(hybrid content);
$auc{feature_popularity} = cold_auc(q{
	WITH pop AS (SELECT item_id, count(*) AS n FROM ev_train GROUP BY 1),
	feature_pop AS (SELECT t.feature, avg(coalesce(p.n, 0)) AS pop
	                FROM item_tags t LEFT JOIN pop p USING (item_id)
	                WHERE t.item_id NOT IN (SELECT item_id FROM cold_items) GROUP BY 1),
	item_score AS (SELECT c.item_id, coalesce(avg(f.pop), 0) AS score
	               FROM cold_items c LEFT JOIN item_tags t USING (item_id)
	               LEFT JOIN feature_pop f USING (feature) GROUP BY 1)
	SELECT u.user_id, i.item_id, i.score
	FROM (SELECT DISTINCT user_id FROM ev_cold) u CROSS JOIN item_score i});
note(join(', ', map { "$_ $auc{$_}" } sort keys %auc));

cmp_ok($auc{hybrid}, '>=', 0.6, 'hybrid: cold-item AUC well above chance');
cmp_ok($auc{hybrid}, '>', $auc{feature_popularity} + 0.02,
	'hybrid: cold-item AUC above the feature-popularity baseline');
for my $model (qw(popular plain))
{
	is($node->safe_psql('postgres', qq{
		SELECT count(*) FROM recommend(1, 10, '$model', candidates => ARRAY(SELECT item_id FROM cold_items))}),
		'0', "$model knows no cold item");
}
cmp_ok($auc{content}, '>', 0.52, 'content: cold items ranked better than by popular (chance)');

# evaluate(candidates => 'cold') measures the same ranking
my ($eval_auc, $eval_base) = split /\|/, $node->safe_psql('postgres', q{
	SELECT round(model_value::numeric, 4), round(baseline_value::numeric, 4)
	FROM evaluate('hybrid', 'ev_cold', 10, candidates => 'cold') WHERE metric = 'auc'});
note("evaluate cold: hybrid AUC $eval_auc, id-order baseline $eval_base");
cmp_ok(abs($eval_auc - $auc{hybrid}), '<', 0.02, "evaluate's cold AUC agrees");

#
# Warm accuracy: precision@10 on held-out interactions of warm items
#
$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT * FROM split_per_user('ev_train', 'warm_train', 'warm_test', test_fraction => 0.2,
	                             min_history => 5, seed => 5);
});
my %precision;
for my $name (qw(plain hybrid))
{
	$node->safe_psql('postgres',
		"SET client_min_messages = warning; CALL train('warm_$name', 'warm_train', $train{$name});");
	$precision{$name} = $node->safe_psql('postgres', qq{
		SELECT round(model_value::numeric, 4) FROM evaluate('warm_$name', 'warm_test', 10)
		WHERE metric = 'precision'});
}
note("warm precision\@10: plain $precision{plain}, hybrid $precision{hybrid}");
cmp_ok($precision{hybrid}, '>=', 0.98 * $precision{plain},
	'hybrid: warm precision within 2% of plain ials');

#
# A visitor known only by attributes is served like a trained user with
# those attributes and no interactions.
#
$node->safe_psql('postgres', q{
	INSERT INTO user_attrs VALUES (100001, 'age:25-34'), (100001, 'region:north');
	SET client_min_messages = warning;
	CALL train('visitors', 'ev_train', method => 'ials',
	           options => '{"factors": 8, "iterations": 3, "user_features": "user_attrs"}');
});
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM recommend(100001, 10, 'visitors') a
	JOIN recommend_for_features(ARRAY['age:25-34', 'region:north'], 10, 'visitors') b
	  ON a.item_id = b.item_id AND abs(a.score - b.score) < 1e-5}),
	'10', 'recommend_for_features serves a visitor as training does');

$node->stop;
done_testing();
