# Copyright (c) recsys authors
#
# Compact scoring (src/compact.c): recommend() bounds every item's score
# from 8-bit codes and scores exactly only the items that can still make
# the top n.  Its answers must be exactly those of scoring every item
# (recsys.compact_scoring = off): the same items, in the same order, with
# the same scores to the bit, ties broken by id, whatever is excluded.
#  - every user of a MovieLens-1M-shaped implicit model (6,040 x 3,706,
#    k = 64), with and without the seen items, n from 1 to past the
#    catalog, with candidates and exclude lists;
#  - exact ties: 40 items copied under new ids have the same factors;
#  - k = 13 (not a multiple of the kernels' 4 and 8), and an explicit model
#    (biases and the global mean added);
#  - every kernel: AVX-512 VNNI (where the CPU has it), AVX2
#    (recsys.vector_kernels = avx2) and plain C (generic);
#  - users whose factors are huge (the plain path takes over) or tiny;
#  - the codes in the shared cache (recsys preloaded), also after a
#    retrain, against a server without it;
#  - the path is taken when it should be, and scores only a few items
#    exactly.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The servers inherit this: one BLAS thread per backend.
$ENV{OPENBLAS_NUM_THREADS} = 1;

my $generator = 'test/data/generate';
BAIL_OUT("$generator not built (run make)") unless -x $generator;
my $dir = PostgreSQL::Test::Utils::tempdir;

# Two servers: private cache entries, and the shared cache
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->append_conf('postgresql.conf', 'max_parallel_maintenance_workers = 1');
$plain->start;
my $shared = PostgreSQL::Test::Cluster->new('shared');
$shared->init;
$shared->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'recsys'
recsys.shared_cache_size = '32MB'
max_parallel_maintenance_workers = 1
});
$shared->start;

sub generate
{
	my ($name, @args) = @_;
	my $csv = "$dir/$name.csv";
	system("$generator @args > $csv 2>/dev/null") == 0
	  or BAIL_OUT("generator failed");
	return $csv;
}
my $events = generate('events',
	'--kind implicit --users 6040 --items 3706 --rows 1000000 --seed 42');
my $ratings = generate('ratings',
	'--users 2000 --items 1500 --rows 100000 --seed 3');

# Both servers: model imp; the plain server also odd and exp
my $setup = qq{
	CREATE EXTENSION recsys;
	CREATE TABLE events (user_id int, item_id int, count int);
	COPY events FROM '$events' CSV HEADER;
	-- Items 100001..100040 are copies of 1..40: equal factors, exact ties
	INSERT INTO events SELECT user_id, item_id + 100000, count FROM events WHERE item_id <= 40;
	SET client_min_messages = warning;
	CALL train('imp', 'events', method => 'ials', factors => 64, iterations => 2, seed => 1);
};
$_->safe_psql('postgres', $setup) for ($plain, $shared);
$plain->safe_psql(
	'postgres', qq{
	CREATE TABLE ratings (user_id int, item_id int, rating real);
	COPY ratings FROM '$ratings' CSV HEADER;
	SET client_min_messages = warning;
	CALL train('odd', 'events', method => 'ials', factors => 13, iterations => 1, seed => 1);
	CALL train('exp', 'ratings', value_col => 'rating', factors => 64, iterations => 2, seed => 1);
});

# The copies really tie: the same factors as their originals
is( $plain->safe_psql(
		'postgres', q{
	SELECT count(*) FROM recsys.item_factors a
	JOIN recsys.item_factors b USING (model_id, factors)
	JOIN recsys.models m USING (model_id)
	WHERE m.name = 'imp' AND b.item_id = a.item_id + 100000}),
	'40',
	'40 item copies have the same factors as their originals');

my $nitems = $plain->safe_psql(
	'postgres', q{
	SELECT count(*) FROM recsys.item_factors JOIN recsys.models m USING (model_id)
	WHERE m.name = 'imp'});

# Rows of a recommend() query (user_id, ord, item_id, score as exact text)
# under recsys.compact_scoring = off and under $setting (and any other
# SETs), and how many rows differ: "rows differing"
sub compare
{
	my ($node, $query, $setting, $sets) = @_;
	$sets //= '';
	return $node->safe_psql(
		'postgres', qq{
		$sets
		SET recsys.compact_scoring = off;
		CREATE TEMP TABLE a AS $query;
		SET recsys.compact_scoring = $setting;
		CREATE TEMP TABLE b AS $query;
		SELECT (SELECT count(*) FROM a) || ' ' ||
		       (SELECT count(*) FROM ((TABLE a EXCEPT ALL TABLE b)
		                              UNION ALL (TABLE b EXCEPT ALL TABLE a)) d);
	});
}

# recommend(u, n, model, ...) for users lo..hi, one row per answer
sub per_user
{
	my ($lo, $hi, $args) = @_;
	return qq{
		SELECT u, r.ord, r.item_id, r.score::text AS score
		FROM generate_series($lo, $hi) u
		CROSS JOIN LATERAL recommend(u, $args) WITH ORDINALITY r(item_id, score, ord)};
}

# Every user (and three the model does not know: the popular items), n = 10
my $all = per_user(-1, 6041, q{10, 'imp'});
is(compare($plain, $all, 'on'), '60430 0',
	'every user of the 1M model: the same answers with compact scoring on');
is(compare($plain, $all, 'always'), '60430 0', 'and with it always');

# Seen items kept, n from 1 to past the catalog
is(compare($plain, per_user(1, 3000, q{1, 'imp', exclude_seen => false}), 'on'),
	'3000 0', 'n = 1, seen items kept');
is(compare($plain, per_user(1, 1500, q{50, 'imp', exclude_seen => false}), 'on'),
	'75000 0', 'n = 50, seen items kept');
is(compare($plain, per_user(1, 100, q{900, 'imp'}), 'always'),
	'90000 0', 'n = 900 (compact forced)');
is(compare($plain, per_user(1, 20, q{5000, 'imp', exclude_seen => false}), 'always'),
	20 * $nitems . ' 0', 'n past the catalog: every item, in the same order');

# Candidates (some unknown, some repeated) and exclude lists: a different
# pseudo-random set per user
my $cand = q{(SELECT array_agg((hashint4(u * 7919 + i) & 4095)::bigint) FROM generate_series(1, 300) i)};
my $excl = q{(SELECT array_agg((hashint4(u * 104729 + i) & 511)::bigint) FROM generate_series(1, 100) i)};
is(compare($plain, per_user(1, 2000, qq{10, 'imp', candidates => $cand}), 'on'),
	'20000 0', 'candidates');
is(compare($plain, per_user(1, 2000, qq{10, 'imp', exclude => $excl}), 'on'),
	'20000 0', 'exclude list');
is( compare(
		$plain,
		per_user(1, 2000, qq{20, 'imp', exclude_seen => false, candidates => $cand, exclude => $excl}),
		'always'),
	'40000 0',
	'candidates and exclude list together, seen items kept');
is( compare(
		$plain,
		per_user(1, 20, q{10, 'imp', exclude => (SELECT array_agg(i) FROM generate_series(1, 4000) i)
		                                           || (SELECT array_agg(i) FROM generate_series(100001, 100040) i)}),
		'always'),
	'0 0',
	'everything excluded: no rows either way');

# k = 13 and an explicit model (base and biases added)
is(compare($plain, per_user(1, 3000, q{10, 'odd'}), 'always'),
	'30000 0', 'k = 13');
is(compare($plain, per_user(1, 2000, q{10, 'exp'}), 'always'),
	'20000 0', 'explicit model with biases');
is(compare($plain, per_user(1, 2000, q{10, 'exp', exclude_seen => false}), 'on'),
	'20000 0', 'explicit model, seen items kept');

# Every kernel: AVX2 without AVX-512, and plain C (forced: "on" does not
# use the plain C kernel)
for my $kernels ('avx2', 'generic')
{
	my $set = "SET recsys.vector_kernels = $kernels;";
	is(compare($plain, per_user(1, 2000, q{10, 'imp'}), 'always', $set),
		'20000 0', "$kernels kernels: 1M model");
	is(compare($plain, per_user(1, 1000, q{10, 'odd', exclude_seen => false}), 'always', $set),
		'10000 0', "$kernels kernels: k = 13");
	is(compare($plain, per_user(1, 1000, q{10, 'exp'}), 'always', $set),
		'10000 0', "$kernels kernels: explicit model");
}

# Users with extreme factors: huge (the bounds would not be safe: the
# plain path answers), large, tiny and subnormal; then restored exactly
$plain->safe_psql(
	'postgres', q{
	CREATE TABLE saved AS SELECT uf.model_id, uf.factors FROM recsys.user_factors uf
	JOIN recsys.models m USING (model_id) WHERE m.name IN ('imp', 'exp') AND uf.user_id = 1});
for my $scale ('1e37', '1e30', '1e-20', '1e-42', '1')
{
	$plain->safe_psql(
		'postgres', qq{
		UPDATE recsys.user_factors uf
		SET factors = (SELECT array_agg(v * ${scale}::real) FROM unnest(s.factors) v)
		FROM saved s WHERE s.model_id = uf.model_id AND uf.user_id = 1});
	is( compare(
			$plain, per_user(1, 1, q{10, 'imp'}) . ' UNION ALL ' . per_user(1, 1, q{10, 'exp'}),
			'always'),
		'20 0',
		"a user's factors scaled by $scale");
}

# The path is taken, and scores only a few items exactly (about 14 of
# 3,706 for n = 10 on this model)
my ($ret, $out, $err) = $plain->psql(
	'postgres', q{
	SET client_min_messages = debug2;
	SELECT count(*) FROM generate_series(1, 200) u, recommend(u, 10, 'imp');
	SET recsys.compact_scoring = off;
	SELECT count(*) FROM generate_series(1, 10) u, recommend(u, 10, 'imp');
});
my @exact = sort { $a <=> $b } ($err =~ /compact scoring: (\d+) of $nitems items scored exactly/g);
is(scalar(@exact), 200, 'compact scoring is used for the 200 calls with it on, not with it off');
cmp_ok($exact[100] // 1e9, '<=', 100, 'the median call scores at most 100 items exactly');
note("items scored exactly per call: median $exact[100], max $exact[-1]") if @exact;

# Shared cache: the codes are in the blob; every backend's answers equal
# the server without a shared cache
$shared->safe_psql('postgres', q{SELECT count(*) FROM generate_series(1, 3) u, recommend(u, 10, 'imp')});
my $blob = $shared->safe_psql(
	'postgres', q{
	SELECT max(s.bytes) FROM recsys.shared_cache() s JOIN recsys.models m USING (model_id)
	WHERE m.name = 'imp'});
# Per item: id and popularity 16 bytes, factors 256, bias and norm 8,
# codes 64 + 12 (and the id index)
cmp_ok($blob, '>=', $nitems * (16 + 256 + 8 + 76), 'the shared blob holds the codes');
my $reference = $plain->safe_psql('postgres', "SELECT string_agg(item_id || ':' || score, ',' ORDER BY u, ord) FROM ($all) x");
is($shared->safe_psql('postgres', "SELECT string_agg(item_id || ':' || score, ',' ORDER BY u, ord) FROM ($all) x"),
	$reference, 'shared cache: every user, the answers of the server without it');
is(compare($shared, per_user(1, 3000, q{10, 'imp', exclude_seen => false}), 'always'),
	'30000 0', 'shared cache: compact on and off agree');

# A retrain: new codes with the new version
$shared->safe_psql(
	'postgres', q{
	SET client_min_messages = warning;
	CALL train('imp', 'events', method => 'ials', factors => 64, iterations => 1, seed => 2);
});
is(compare($shared, $all, 'on'), '60430 0', 'after a retrain: compact on and off agree');

$_->stop for ($plain, $shared);
done_testing();
