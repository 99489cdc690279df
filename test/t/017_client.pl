# Copyright (c) recsys authors
#
# The client example cannot rot: examples/shop.py (Python, psycopg 3) runs
# against a fresh cluster with the extension created, and must exit 0,
# print two recommendation lists with item titles (mostly of the simulated
# user's favourite category) and the A/B report of its experiment, and
# leave the database as it found it: no model, experiment, exposure,
# outcome or table left, and the rows of every recsys table as before.
#
# It runs again with --keep and the connection given by PGHOST/PGPORT:
# its models, experiment and tables stay; a third run reuses those tables,
# drops its models and experiment and keeps the tables (it did not create
# them).  A database that does not exist makes it exit non-zero with a
# message.
#
# The program needs python3 with psycopg 3 (Debian: python3-psycopg, which
# test/setup-debian.sh installs); without them the test is skipped.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

# The server inherits this: one BLAS thread per backend.
$ENV{OPENBLAS_NUM_THREADS} = 1;

my $example = 'examples/shop.py';
BAIL_OUT("$example not found (run from the top of the source tree)") unless -f $example;

# The first python3 that can import psycopg: the one on PATH, else Debian's
# (a python3 from pyenv or a virtualenv may come first on PATH without it).
my ($python, $psycopg);
for my $candidate ('python3', '/usr/bin/python3')
{
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run([ $candidate, '-c', 'import psycopg; print(psycopg.__version__)' ],
			'>', \$out, '2>', \$err);
	};
	if ($ok && $out =~ /^3\./)
	{
		($python, $psycopg) = ($candidate, $out);
		last;
	}
}
plan skip_all => 'python3 with psycopg 3 not found, the client example cannot run '
  . '(Debian: apt-get install python3-psycopg, as test/setup-debian.sh does)'
  unless defined $python;
chomp $psycopg;
note "$python, psycopg $psycopg";

my $node = PostgreSQL::Test::Cluster->new('client');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION recsys');

# Run the example: (exit code, stdout, stderr, seconds)
sub shop
{
	my ($args, %env) = @_;
	my ($out, $err) = ('', '');
	local @ENV{ keys %env } = values %env;
	my $start = time;
	IPC::Run::run([ $python, $example, @$args ], '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return ($? >> 8, $out, $err, sprintf('%.1f', time - $start));
}

# What the example may touch: relations outside the system schemas, and the
# rows of every table of schema recsys (models, factors, experiments, logs).
sub snapshot
{
	my $relations = $node->safe_psql(
		'postgres', q{
		SELECT format('%I.%I %s', n.nspname, c.relname, c.relkind)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
		ORDER BY 1});
	my @tables = map { /^(recsys\.\S+) r$/ ? $1 : () } split /\n/, $relations;
	return "$relations\n" . $node->safe_psql('postgres',
		join(' UNION ALL ', map { "SELECT '$_', count(*) FROM $_" } @tables));
}

# The recommendation lists and the report in the output
sub check_output
{
	my ($run, $out) = @_;
	for my $model ('shop_knn', 'shop_ials')
	{
		my ($list) = $out =~
		  /^Recommendations for user 1 \(likes music\), model \Q$model\E:\n((?:  .*\n)*)/m;
		ok(defined $list, "$run: recommendations of $model printed")
		  or next;
		my @items = $list =~ /^  \d+\. \S.* \[(books|music|kitchen)\] -?\d+\.\d{3}$/mg;
		is(scalar @items, 5, "$run: $model: 5 items with titles, categories and scores");
		my ($hits) = $list =~ /^  (\d) of 5 from the favourite category$/m;
		is($hits, scalar(grep { $_ eq 'music' } @items), "$run: $model: the favourites are counted");
		cmp_ok($hits // 0, '>=', 3, "$run: $model: mostly the favourite category");
	}
	my ($report) = $out =~
	  /^Experiment shop_homepage, users who clicked:\n  variant .*\n((?:  .*\n)*)/m;
	ok(defined $report, "$run: experiment report printed") or return;
	# variant, users, clicked, rate, [low, high], p-value
	my %rows =
	  map { /^  (\w+) +(\d+) +(\d+) +\d\.\d{3} +\[\d\.\d{3}, \d\.\d{3}\] +(\S+)$/ ? ($1 => [ $2, $3, $4 ]) : () }
	  split /\n/, $report;
	is(join(' ', sort keys %rows), 'ials knn', "$run: report rows of both variants");
	is(($rows{knn}[0] // 0) + ($rows{ials}[0] // 0), 300, "$run: 300 users exposed");
	cmp_ok($rows{$_}[1] // 0, '>', 0, "$run: $_: users clicked") for qw(knn ials);
	is($rows{knn}[2], '(control)', "$run: knn is the control");
	like($rows{ials}[2] // '', qr/^\d/, "$run: ials has a p-value");
}

my $before = snapshot();

#
# A run on an empty database, connection given as an argument
#
my ($rc, $out, $err, $secs) = shop([ $node->connstr('postgres') ]);
is($rc, 0, 'shop.py exits 0') or diag("stderr:\n$err\nstdout:\n$out");
is($err, '', 'shop.py writes nothing to stderr');
note "shop.py took $secs s:\n$out";
check_output('first run', $out);
is(snapshot(), $before, 'shop.py leaves nothing behind');

#
# --keep, the connection from the environment
#
($rc, $out, $err) = shop([ '--keep' ], PGHOST => $node->host, PGPORT => $node->port,
	PGDATABASE => 'postgres');
is($rc, 0, 'shop.py --keep exits 0') or diag("stderr:\n$err\nstdout:\n$out");
check_output('--keep', $out);
is( $node->safe_psql(
		'postgres', q{
		SELECT (SELECT string_agg(name, ',' ORDER BY name) FROM recsys.models),
		       (SELECT string_agg(name, ',') FROM recsys.experiments),
		       (SELECT count(DISTINCT user_id) FROM recsys.experiment_exposures),
		       (SELECT count(*) FROM shop_items), (SELECT count(DISTINCT user_id) FROM shop_events)}),
	'shop_ials,shop_knn|shop_homepage|300|30|300',
	'--keep keeps the models, the experiment with its logs and the tables');

# Again, without --keep: it uses the kept tables and leaves them
($rc, $out, $err) = shop([ $node->connstr('postgres') ]);
is($rc, 0, 'shop.py on the kept tables exits 0') or diag("stderr:\n$err\nstdout:\n$out");
like($out, qr/^Using the existing tables shop_items and shop_events$/m, 'it says so');
check_output('kept tables', $out);
$node->safe_psql('postgres', 'DROP TABLE shop_events, shop_items');
is(snapshot(), $before, 'it drops its models and experiment, and only those');

#
# Failure: exit non-zero with a message
#
($rc, $out, $err) = shop([ $node->connstr('no_such_database') ]);
isnt($rc, 0, 'shop.py exits non-zero when it cannot connect');
like($err, qr/^shop\.py: .*no_such_database/, 'with a message on stderr');

$node->stop;
done_testing();
