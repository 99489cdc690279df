# Copyright (c) recsys authors
#
# Attacks on other roles' models that need two sessions at once (the
# single-session ones are in sql/attacks.sql):
#  - Lock squatting: an ordinary login takes every advisory lock it can
#    name (the 1.1 key of the model name, and the keys of the locks it
#    sees in pg_locks while the owner trains); the owner's training,
#    refresh, forget and drop still go through at once, and pg_locks shows
#    no key derived from the name alone.
#  - Forged cache identity: a session keeps the shared-cache blob of a
#    model pinned; the extension is dropped and created again and a new
#    model gets the same id and version.  The new model is served, never
#    the pinned blob of the old one (the random per-version token).
#  - Thread limit: recsys.training_threads = 64 set by an ordinary login
#    gives it at most the capped number of threads; a superuser gets more.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

# The server inherits this: one BLAS thread per backend.
$ENV{OPENBLAS_NUM_THREADS} = 1;

my $generator = 'test/data/generate';
BAIL_OUT("$generator not built (run make)") unless -x $generator;
my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('attacks');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'recsys'
recsys.shared_cache_size = '8MB'
max_parallel_maintenance_workers = 1
});
$node->start;

my $csv = "$dir/events.csv";
system("$generator --kind implicit --users 3000 --items 1000 --rows 60000 --rank 5 --beta 20 --seed 3 > $csv 2>/dev/null") == 0
  or BAIL_OUT("generator failed");
my $big = "$dir/big.csv";
system("$generator --kind implicit --users 20000 --items 4000 --rows 600000 --rank 5 --beta 20 --seed 4 > $big 2>/dev/null") == 0
  or BAIL_OUT("generator failed");

$node->safe_psql('postgres', qq{
	CREATE EXTENSION recsys;
	CREATE ROLE victim LOGIN;
	CREATE ROLE attacker LOGIN;
	CREATE TABLE events (user_id int, item_id int, count int);
	COPY events FROM '$csv' CSV HEADER;
	ALTER TABLE events OWNER TO victim;
	CREATE TABLE big (user_id int, item_id int, count int);
	COPY big FROM '$big' CSV HEADER;
	GRANT SELECT ON big TO attacker;
});

# psql as a given role
sub as
{
	my ($role, $sql, %opts) = @_;
	return $node->psql('postgres', $sql, extra_params => [ '-U', $role ], %opts);
}

my $train = q{SET client_min_messages = warning;
	CALL train('m', 'events', method => 'ials', factors => 8, iterations => 2, seed => 1);};
my ($rc, $out, $err) = as('victim', $train);
is($rc, 0, 'the victim trains model m') or diag($err);

#
# Lock squatting
#
my $attacker = $node->background_psql('postgres', on_error_stop => 0,
	extra_params => [ '-U', 'attacker' ]);
# The 1.1 key (hashtext of the name, "recs") and its bigint form
$attacker->query_safe(q{
	SELECT pg_advisory_lock(hashtext('m'), x'72656373'::int),
	       pg_advisory_lock((hashtext('m')::bigint << 32) | x'72656373'::bigint),
	       pg_advisory_lock(hashtext('m'));
});

# The victim holds its training lock in an open transaction; the attacker
# takes every advisory lock pg_locks shows, by both SQL key forms.
my $victim = $node->background_psql('postgres', on_error_stop => 0,
	extra_params => [ '-U', 'victim' ]);
$victim->query_safe("BEGIN; $train");
my $seen = $node->safe_psql('postgres', q{
	SELECT string_agg(classid || ',' || objid || ',' || objsubid, ';')
	FROM pg_locks WHERE locktype = 'advisory' AND granted
	  AND pid = (SELECT pid FROM pg_stat_activity WHERE usename = 'victim' AND state LIKE 'idle in transaction%')});
isnt($seen, '', "the victim's training lock is visible in pg_locks ($seen)");
my @keys = map { [ split /,/ ] } split /;/, $seen;
ok(!grep({ $_->[2] == 1 || $_->[2] == 2 } @keys),
	'recsys locks use a fourth key field that SQL cannot use');
my $hash = $node->safe_psql('postgres', q{SELECT hashtext('m')::oid});
ok(!grep({ $_->[1] == $hash || $_->[0] == $hash } @keys),
	'no lock key is the plain hash of the model name');
# pg_locks shows the keys as unsigned oids; SQL takes them as int4 or int8
sub signed32 { my ($u) = @_; return $u >= 2**31 ? $u - 2**32 : $u; }
for my $k (@keys)
{
	my ($hi, $lo) = (signed32($k->[0]), signed32($k->[1]));
	$attacker->query_safe("SELECT pg_advisory_lock($hi, $lo),
		pg_advisory_lock(($k->[0]::bigint << 32) | $k->[1]::bigint)");
}
$victim->query_safe('COMMIT');

# With all those held, the owner's operations do not wait.
for my $op (
	[ 'train', $train ],
	[ 'refresh_user', q{SELECT refresh_user('m', 1)} ],
	[ 'forget_user', q{SELECT forget_user('m', 2)} ],
	[ 'drop_model', q{SELECT drop_model('m')} ])
{
	($rc, $out, $err) = as('victim', "SET lock_timeout = '5s'; $op->[1]");
	is($rc, 0, "$op->[0] is not blocked by the attacker's advisory locks") or diag($err);
}
$attacker->quit;
$victim->quit;

#
# Forged cache identity across a dropped and recreated extension
#
# A fresh extension: 'first' and later 'second' both get model 1, version 1
$node->safe_psql('postgres', q{
	DROP EXTENSION recsys;
	CREATE EXTENSION recsys;
	CREATE TABLE a_events AS SELECT * FROM events WHERE item_id <= 500;
	CREATE TABLE b_events AS SELECT user_id, item_id + 500 AS item_id, count FROM events WHERE item_id <= 500;
	SET client_min_messages = warning;
	CALL train('first', 'a_events', method => 'ials', factors => 8, iterations => 2, seed => 1);
});
my $pinner = $node->background_psql('postgres', on_error_stop => 0);
my $first_items = $pinner->query_safe(
	q{SELECT min(item_id) || '-' || max(item_id) FROM recommend(1, 5, 'first')});
my $key = $node->safe_psql('postgres', q{SELECT model_id || '/' || version FROM recsys.models});
is($node->safe_psql('postgres', q{SELECT count(*) FROM recsys.shared_cache() WHERE pins > 0}),
	'1', "a session pins model $key in the shared cache");
$node->safe_psql('postgres', q{
	DROP EXTENSION recsys;
	CREATE EXTENSION recsys;
	SET client_min_messages = warning;
	CALL train('second', 'b_events', method => 'ials', factors => 8, iterations => 2, seed => 1);
});
is($node->safe_psql('postgres', q{SELECT model_id || '/' || version FROM recsys.models}),
	$key, 'the new model has the id and version of the pinned one');
my $second_items = $node->safe_psql('postgres',
	q{SELECT min(item_id) || '-' || max(item_id) FROM recommend(1, 5, 'second')});
ok($second_items =~ /^(\d+)-\d+$/ && $1 > 500,
	"the new model serves its own items ($second_items), not the pinned blob's ($first_items)");
$pinner->quit;

#
# Thread limit
#
# The most threads a backend had while running $sql (sampled from /proc)
sub max_threads
{
	my ($role, $sql) = @_;
	my $s = $node->background_psql('postgres', on_error_stop => 0,
		extra_params => [ '-U', $role ]);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	$s->query_until(qr/started/, "\\echo started\n$sql\n\\echo done\n");
	my $max = 0;
	my $deadline = time + 120;
	while (time < $deadline)
	{
		open(my $fh, '<', "/proc/$pid/status") or last;
		my ($t) = map { /^Threads:\s+(\d+)/ ? $1 : () } <$fh>;
		close $fh;
		$max = $t if defined $t && $t > $max;
		last if $s->{stdout} =~ /done/;
		$s->{run}->pump_nb;
		usleep(2_000);
	}
	$s->quit;
	return $max;
}
SKIP:
{
	skip '/proc is not available', 2 unless -r "/proc/$$/status";
	my $cap = $node->safe_psql('postgres', q{SHOW max_parallel_maintenance_workers}) + 1;
	my $wide = q{SET recsys.training_threads = 64; SET client_min_messages = warning;
		CALL train('%s', 'big', method => 'ials', factors => 32, iterations => 3, seed => 1);};
	my $attacker_max = max_threads('attacker', sprintf($wide, 'threads_a'));
	cmp_ok($attacker_max, '<=', $cap,
		"an ordinary role asking for 64 threads gets at most $cap ($attacker_max)");
	my $super_max = max_threads($node->safe_psql('postgres', 'SELECT current_user'),
		sprintf($wide, 'threads_s'));
	cmp_ok($super_max, '>', $cap, "a superuser may raise it ($super_max threads)");
}

$node->stop;
done_testing();
