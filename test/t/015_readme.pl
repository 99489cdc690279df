# Copyright (c) recsys authors
#
# The README cannot rot: every ```sql block of README.md runs, in order,
# on the data the README tells a newcomer to load, which is the demo's
# (test/demo.sh's generator arguments, test/demo.sql's ratings table).
#
# The node starts without the extension: the README's own blocks create it
# (CREATE EXTENSION recsys, in the install section) and everything they
# join.  Each block runs in its own psql session with ON_ERROR_STOP, as a
# reader pasting it would, as the node's superuser; a failing block fails
# the test with its text and psql's error.  ```bash and plain blocks are
# not run, but the README's load command must use the demo's generator
# arguments and table.  Relative links of README.md and doc/*.md must
# point at files that exist.
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
BAIL_OUT('README.md not found (run from the top of the source tree)') unless -f 'README.md';

my $readme = slurp_file('README.md');

#
# The demo's data: test/demo.sh's generator arguments, test/demo.sql's table
#
my ($gen_line) = slurp_file('test/demo.sh') =~ /^GEN_ARGS=\(([^)]*)\)/m
  or BAIL_OUT('GEN_ARGS=(...) not found in test/demo.sh');
my @gen_args = split ' ', $gen_line;
my ($create) = slurp_file('test/demo.sql') =~ /(CREATE TABLE ratings \([^)]*\))/
  or BAIL_OUT('CREATE TABLE ratings (...) not found in test/demo.sql');

# The README's load command must load the same data into the same table
my $gen_cmd = join ' ', $generator, @gen_args;
ok(index($readme, $gen_cmd) >= 0, "README loads the demo's data: $gen_cmd");
ok(index($readme, $create) >= 0, "README creates the demo's table: $create");

my $dir = PostgreSQL::Test::Utils::tempdir;
my $csv = "$dir/ratings.csv";
my $gen_err = '';
IPC::Run::run([ $generator, @gen_args ], '>', $csv, '2>', \$gen_err)
  or BAIL_OUT("$generator failed: $gen_err");
note "generator: $gen_err";

my $node = PostgreSQL::Test::Cluster->new('readme');
$node->init;
$node->start;
$node->safe_psql('postgres', qq{
$create;
COPY ratings FROM '$csv' WITH (FORMAT csv, HEADER true);
ANALYZE ratings;
});

#
# Every ```sql block, in order, with the line it starts on
#
my @blocks;
{
	my ($in, $start, $text, $lineno) = (undef, 0, '', 0);
	for my $line (split /\n/, $readme)
	{
		$lineno++;
		if (!defined $in)
		{
			if ($line =~ /^```\s*(\S*)\s*$/)
			{
				($in, $start, $text) = ($1, $lineno, '');
			}
			elsif ($line =~ /^\s*```/)
			{
				fail("README.md line $lineno: a fence that does not start a line: $line");
			}
		}
		elsif ($line =~ /^```\s*$/)
		{
			push @blocks, { line => $start, sql => $text } if $in eq 'sql';
			undef $in;
		}
		else
		{
			$text .= "$line\n";
		}
	}
	ok(!defined $in, 'README.md has no unclosed code block')
	  or diag("the block opened at line $start is not closed");
}
cmp_ok(scalar @blocks, '>=', 8, 'README.md has at least 8 sql blocks');
my ($first_create) = grep { $blocks[$_]{sql} =~ /^\s*CREATE EXTENSION recsys\b/mi } 0 .. $#blocks;
ok(defined $first_create, 'a README sql block creates the extension');

for my $i (0 .. $#blocks)
{
	my $b = $blocks[$i];
	my ($stdout, $stderr) = ('', '');
	my $ret = $node->psql(
		'postgres', $b->{sql},
		stdout => \$stdout,
		stderr => \$stderr,
		on_error_stop => 1,
		timeout => $PostgreSQL::Test::Utils::timeout_default);
	my $name = sprintf('README sql block %d of %d (line %d) runs', $i + 1, scalar @blocks, $b->{line});
	is($ret, 0, $name)
	  or diag("block at README.md line $b->{line}:\n$b->{sql}\npsql:\n$stderr");
	note("output of the block at line $b->{line}:\n$stdout");
	like($stdout, qr/\S/, "README sql block at line $b->{line} shows something")
	  if $b->{sql} =~ /^\s*SELECT\b/mi;
}

#
# Relative links of the README and the doc pages point at existing files
#
for my $page ('README.md', glob('doc/*.md'))
{
	my $text = slurp_file($page);
	(my $base = $page) =~ s{[^/]*$}{};
	my @bad;
	my $n = 0;
	while ($text =~ /\]\(([^)\s]+)\)/g)
	{
		my $target = $1;
		next if $target =~ m{^[a-z][a-z0-9+.-]*:}i || $target =~ /^#/;
		$target =~ s/#.*//;
		$n++;
		push @bad, $target unless -e "$base$target";
	}
	is(join(', ', @bad), '', "$page: its $n relative links point at existing files");
}

$node->stop;
done_testing();
