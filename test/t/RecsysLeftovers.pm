# Copyright (c) recsys authors
#
# What an interrupted statement may leave behind, for the TAP tests that
# interrupt recsys (002: training, 009: serving, fold-in, evaluation):
# temporary files (listed by the server and on disk), advisory locks,
# temporary relations, worker threads of the backend, and the backend's
# memory across repeated interruptions.
package RecsysLeftovers;

use strict;
use warnings;

use Exporter 'import';
use File::Find;
use List::Util qw(max);
use Test::More;

our @EXPORT = qw(leftovers nothing_left backend_memory check_memory_growth);

# Files under the data directory's base/pgsql_tmp, where sorts, hashes and
# tuplestores that exceed work_mem spill (shared filesets are directories
# there, so look inside them too).
sub temp_files_on_disk
{
	my ($node) = @_;
	my $dir = $node->data_dir . '/base/pgsql_tmp';
	my $n = 0;
	find(sub { $n++ unless $_ eq '.' }, $dir) if -d $dir;
	return $n;
}

# Threads of a backend (recsys runs worker threads while it trains and in
# recommend_all; every interruption must join them); 1 when /proc is not
# there to tell.
sub backend_threads
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/status") or return 1;
	my ($threads) = map { /^Threads:\s+(\d+)/ ? $1 : () } <$fh>;
	close $fh;
	return $threads // 1;
}

# What is left, seen from another session (as superuser), from the file
# system and, for a backend that still exists ($pid given), from /proc.
sub leftovers
{
	my ($node, $pid) = @_;
	my ($listed, $locks, $relations) = split /\|/, $node->safe_psql(
		'postgres', q{
		SELECT (SELECT count(*) FROM pg_ls_tmpdir()),
		       (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'),
		       (SELECT count(*) FROM pg_class WHERE relpersistence = 't')});
	my $left = "temporary files: $listed listed, " . temp_files_on_disk($node)
	  . " on disk, advisory locks: $locks, temporary relations: $relations";
	$left .= ', threads: ' . backend_threads($pid) if defined $pid;
	return $left;
}

# What leftovers() says when nothing is left
sub nothing_left
{
	my ($with_pid) = @_;
	my $none = 'temporary files: 0 listed, 0 on disk, advisory locks: 0, '
	  . 'temporary relations: 0';
	$none .= ', threads: 1' if $with_pid;
	return $none;
}

# Memory of a background_psql session's backend: bytes by memory context name
sub backend_memory
{
	my ($session) = @_;
	$session->{stderr} = '';
	my $out = $session->query_safe(
		'SELECT name, sum(total_bytes) FROM pg_backend_memory_contexts GROUP BY name');
	return { map { split /\|/ } split /\n/, $out };
}

# Sum of a backend_memory() result
sub total
{
	my ($memory) = @_;
	my $sum = 0;
	$sum += $_ for values %$memory;
	return $sum;
}

# Memory snapshots taken after each interruption, the first ones warm-up:
# the later ones may exceed the last warm-up snapshot by less than $bound
# bytes (on failure the growth of each context is printed).
sub check_memory_growth
{
	my ($name, $bound, $warmups, @memory) = @_;
	my ($warm, @later) = @memory[ $warmups - 1 .. $#memory ];
	note "$name: backend memory after the warm-up " . total($warm)
	  . ' bytes, then ' . join(', ', map { total($_) } @later);
	cmp_ok(max(map { total($_) } @later) - total($warm), '<', $bound,
		"$name: backend memory does not grow with repeated interruptions")
	  or diag join("\n", map {
			sprintf('%s: %+d bytes', $_, ($later[-1]{$_} // 0) - ($warm->{$_} // 0))
		} grep { ($later[-1]{$_} // 0) != ($warm->{$_} // 0) } sort keys %{ $later[-1] });
	return;
}

1;
