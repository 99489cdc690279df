# Copyright (c) recsys authors
#
# Trained models are user data: pg_dump (custom format) keeps them and
# pg_restore brings them back identical, serving the same answers, with the
# model id and version sequences restored so that later trainings in the
# restored database get new ids and versions.
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

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '256MB'");
$node->start;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $csv = "$dir/ratings.csv";
my $gen_err = '';
IPC::Run::run(
	[ $generator, '--users', 1000, '--items', 500, '--rows', 50000, '--seed', 5 ],
	'>', $csv, '2>', \$gen_err)
  or BAIL_OUT("$generator failed: $gen_err");
note "generator: $gen_err";

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION recsys;
CREATE TABLE ratings (user_id bigint, item_id bigint, rating float8);
COPY ratings FROM '$csv' WITH (FORMAT csv, HEADER true);
});

# m is retrained once, so its version is not the first; m2 is a second model
$node->safe_psql(
	'postgres', q{
CALL train('m', 'ratings', value_col => 'rating', factors => 16, iterations => 5, seed => 1);
CALL train('m2', 'ratings', value_col => 'rating', factors => 4, iterations => 3);
CALL train('m', 'ratings', value_col => 'rating', factors => 16, iterations => 8, seed => 2);
CALL train('knn', 'ratings', method => 'item_knn', value_col => 'rating', options => '{"neighbors": 20}');
});

# Everything stored, as one comparable string per table
my %contents = (
	models_rows => q{SELECT string_agg(t::text, E'\n' ORDER BY model_id) FROM recsys.models t},
	training_log_rows => q{SELECT md5(string_agg(t::text, ',' ORDER BY model_id, iteration)) || ' ' || count(*)
                      FROM recsys.training_log t},
	user_factors_rows => q{SELECT md5(string_agg(t::text, ',' ORDER BY model_id, user_id)) || ' ' || count(*)
                      FROM recsys.user_factors t},
	item_factors_rows => q{SELECT md5(string_agg(t::text, ',' ORDER BY model_id, item_id)) || ' ' || count(*)
                      FROM recsys.item_factors t},
	item_neighbors_rows => q{SELECT md5(string_agg(t::text, ',' ORDER BY model_id, item_id)) || ' ' || count(*)
                      FROM recsys.item_neighbors t},
	per_model_row_counts => q{SELECT m.name, m.version,
                       (SELECT count(*) FROM recsys.user_factors u WHERE u.model_id = m.model_id),
                       (SELECT count(*) FROM recsys.item_factors i WHERE i.model_id = m.model_id),
                       (SELECT count(*) FROM recsys.training_log l WHERE l.model_id = m.model_id)
                FROM recsys.models m ORDER BY name},);
my %answers = (
	recommend => q{SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recommend(1, 10, 'm')},
	recommend_scores => q{SELECT array_agg(score ORDER BY score DESC, item_id) FROM recommend(1, 10, 'm')},
	recommend_m2 => q{SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recommend(2, 10, 'm2')},
	recommend_unknown => q{SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recommend(-1, 5, 'm')},
	predict => q{SELECT array_agg(predict(1, i, 'm') ORDER BY i) FROM generate_series(1, 20) i},
	similar => q{SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM similar_items(1, 5, 'm')},
	recommend_knn => q{SELECT array_agg(item_id || ':' || score ORDER BY score DESC, item_id) FROM recommend(1, 10, 'knn')},);

my (%before, %after);
for my $k (keys %contents, keys %answers)
{
	$before{$k} = $node->safe_psql('postgres', $contents{$k} // $answers{$k});
}
like($before{recommend}, qr/^\{\d+(,\d+){9}\}$/, 'model m recommends 10 items');
note "before dump: $before{per_model_row_counts}";

my $dump = "$dir/recsys.dump";
$node->command_ok(
	[
		'pg_dump', '--format=custom', '--file', $dump,
		'-h', $node->host, '-p', $node->port, 'postgres'
	],
	'pg_dump -Fc succeeds');
$node->command_ok([ 'createdb', '-h', $node->host, '-p', $node->port, 'restored' ],
	'createdb succeeds');
$node->command_ok(
	[
		'pg_restore', '--exit-on-error', '-d', 'restored',
		'-h', $node->host, '-p', $node->port, $dump
	],
	'pg_restore succeeds');

for my $k (sort keys %contents)
{
	is($node->safe_psql('restored', $contents{$k}), $before{$k},
		"restored database has the same $k");
}
for my $k (sort keys %answers)
{
	is($node->safe_psql('restored', $answers{$k}), $before{$k},
		"restored database gives the same $k answer");
}

# The sequences came along: new trainings get new versions and ids
my ($old_version, $old_max_id) = split /\|/, $node->safe_psql('restored',
	q{SELECT (SELECT version FROM recsys.models WHERE name = 'm'),
             (SELECT max(model_id) FROM recsys.models)});
$node->safe_psql(
	'restored', q{
CALL train('m', 'ratings', value_col => 'rating', factors => 16, iterations => 2, seed => 3);
CALL train('m3', 'ratings', value_col => 'rating', factors => 4, iterations => 2);
});
cmp_ok($node->safe_psql('restored', q{SELECT version FROM recsys.models WHERE name = 'm'}),
	'>', $old_version, 'retrain in the restored database gets a newer version');
cmp_ok($node->safe_psql('restored', q{SELECT model_id FROM recsys.models WHERE name = 'm3'}),
	'>', $old_max_id, 'new model in the restored database gets a new model id');
is($node->safe_psql('restored', q{SELECT count(*) FROM recommend(1, 10, 'm3')}),
	'10', 'new model in the restored database serves');

# The original database is untouched by all this
is($node->safe_psql('postgres', $contents{models_rows}), $before{models_rows},
	'original database still has its models');

$node->stop;
done_testing();
