# Copyright (c) recsys authors
#
# A/B experiments under concurrent load: pgbench clients serve through an
# experiment (each call logs an exposure) and log outcomes at the same time,
# while the variants' model retrains.  Afterwards every call is in the logs
# exactly once, each logged row carries the variant the user is assigned
# to, every attributed outcome points at an exposure of the same user (one
# that showed its item when there is one), and the report counts exactly
# the logged rows.
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
my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('experiment_load');
$node->init;
$node->start;

my $csv = "$dir/events.csv";
system("$generator --kind implicit --users 2000 --items 500 --rows 40000 "
	  . "--rank 4 --beta 20 --seed 4 > $csv 2>/dev/null") == 0
  or BAIL_OUT("generator failed");
$node->safe_psql('postgres', qq{
	CREATE EXTENSION recsys;
	CREATE TABLE events (user_id int, item_id int, count int);
	COPY events FROM '$csv' CSV HEADER;
	SET client_min_messages = warning;
	CALL train('m', 'events', method => 'ials', factors => 16, iterations => 3, seed => 1);
	CALL train('p', 'events', method => 'popular');
	SELECT create_experiment('load', '[{"name": "ials", "model": "m", "weight": 2},
	                                  {"name": "popular", "model": "p"}]');
});

# Two scripts: serve (logs an exposure) and click on an item of the list.
# Each also counts itself in a table, in the same transaction: pgbench's
# own per-script counts are not exact.
$node->safe_psql('postgres', 'CREATE TABLE calls (kind text)');
my $serve = "$dir/serve.sql";
PostgreSQL::Test::Utils::append_to_file($serve, <<'EOF');
\set uid random(1, 2200)
BEGIN;
SELECT 1 / (count(*) = 5)::int FROM recommend_experiment('load', :uid, 5);
INSERT INTO calls VALUES ('serve');
COMMIT;
EOF
my $click = "$dir/click.sql";
PostgreSQL::Test::Utils::append_to_file($click, <<'EOF');
\set uid random(1, 2200)
\set item random(1, 500)
BEGIN;
SELECT log_outcome('load', :uid, :item, 'click', 1);
INSERT INTO calls VALUES ('click');
COMMIT;
EOF

my ($out, $err) = ('', '');
my $bench = IPC::Run::start(
	[
		'pgbench', '--no-vacuum', '--client=4', '--jobs=2', '--transactions=2000',
		'--file', "$serve\@3", '--file', "$click\@1",
		'-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$out, '2>', \$err);
# The variants' model retrains meanwhile
for my $seed (2 .. 4)
{
	$node->safe_psql('postgres', qq{SET client_min_messages = warning;
		CALL train('m', 'events', method => 'ials', factors => 16, iterations => 3, seed => $seed)});
}
$bench->finish;
my ($failed) = $out =~ /number of failed transactions: (\d+)/;
ok($? == 0 && defined $failed && $failed == 0 && $err !~ /\S/, 'no pgbench call failed')
  or diag "$out\n$err";

my ($processed) = $out =~ /number of transactions actually processed: (\d+)/;
my ($served, $clicked) = split /\|/, $node->safe_psql('postgres',
	q{SELECT count(*) FILTER (WHERE kind = 'serve'), count(*) FILTER (WHERE kind = 'click') FROM calls});
is($served + $clicked, $processed, 'every transaction counted itself');
note "pgbench: $served serving calls, $clicked outcomes, during 3 retrains";
cmp_ok($served, '>', 100, 'many serving calls ran');

is($node->safe_psql('postgres', 'SELECT count(*) FROM recsys.experiment_exposures'),
	$served, 'every serving call logged exactly one exposure');
is($node->safe_psql('postgres', 'SELECT count(*) FROM recsys.experiment_outcomes'),
	$clicked, 'every outcome call logged exactly one outcome');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM recsys.experiment_exposures x
	WHERE x.variant <> experiment_variant('load', x.user_id)
	   OR cardinality(x.items) <> 5}),
	'0', 'every exposure has the user\'s variant and the 5 items served');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM recsys.experiment_outcomes o
	WHERE o.variant <> experiment_variant('load', o.user_id)}),
	'0', 'every outcome has the user\'s variant');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM recsys.experiment_outcomes o
	JOIN recsys.experiment_exposures x USING (exposure_id)
	WHERE x.user_id <> o.user_id OR x.variant <> o.variant}),
	'0', 'every attributed outcome points at an exposure of its user, in its variant');
cmp_ok($node->safe_psql('postgres', q{
	SELECT count(*) FROM recsys.experiment_outcomes o
	JOIN recsys.experiment_exposures x USING (exposure_id)
	WHERE o.item_id = ANY (x.items)}),
	'>', 0, 'outcomes on a shown item are attributed to an exposure that showed it');
is($node->safe_psql('postgres', q{
	SELECT sum(exposures) = (SELECT count(*) FROM recsys.experiment_exposures)
	   AND sum(exposed_users) = (SELECT count(DISTINCT user_id) FROM recsys.experiment_exposures)
	FROM experiment_report('load')}),
	't', 'the report counts exactly the logged exposures and exposed users');

$node->stop;
done_testing();
