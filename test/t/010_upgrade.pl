# Copyright (c) recsys authors
#
# Upgrades: a database created with every released version of recsys and
# brought to the current version with ALTER EXTENSION recsys UPDATE has
# exactly the objects of a fresh install (functions with their bodies,
# settings and privileges, types with their columns and comments, tables
# with their columns, constraints, indexes, policies, triggers, comments,
# storage and ACLs, the dumped configuration tables), and the models,
# grants and experiments made under the old version keep serving the same
# answers after the upgrade.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The server inherits this: one BLAS thread per backend.
$ENV{OPENBLAS_NUM_THREADS} = 1;

my $generator = 'test/data/generate';
BAIL_OUT("$generator not built (run make)") unless -x $generator;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->start;

my $current = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'recsys'});
# Released versions: every frozen install script other than the current one
my @released = sort grep { $_ ne $current } map { /recsys--([\d.]+)\.sql$/ ? $1 : () }
  glob('sql/recsys--*.sql');
ok(@released >= 1, "released versions to upgrade from: @released (current $current)");

# Every object of the extension, described by name (never by oid), one
# line each, sorted: two databases with equal descriptions have the same
# extension objects.
my $describe = q{
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'recsys'),
members AS (
	SELECT d.classid, d.objid FROM pg_depend d, ext
	WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
lines AS (
	SELECT 'member ' || pg_describe_object(classid, objid, 0) AS l FROM members
	UNION ALL
	SELECT 'function ' || p.oid::regprocedure || ' ' || pg_get_functiondef(p.oid)
	       || ' acl=' || coalesce(p.proacl::text, '-')
	       || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
	FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
	WHERE p.prokind <> 'a'
	UNION ALL
	SELECT 'aggregate ' || p.oid::regprocedure || ' ' || row(a.aggtransfn, a.aggfinalfn,
	       a.aggcombinefn, a.aggserialfn, a.aggdeserialfn, a.aggtranstype::regtype,
	       a.agginitval, a.aggfinalmodify, p.proparallel)::text
	FROM pg_proc p JOIN pg_aggregate a ON a.aggfnoid = p.oid
	JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
	UNION ALL
	SELECT 'type ' || t.oid::regtype || ' kind=' || t.typtype::text
	       || ' comment=' || coalesce(obj_description(t.oid, 'pg_type'), '-')
	       || ' columns=' || coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod),
	                                                     ', ' ORDER BY a.attnum)
	                                   FROM pg_attribute a
	                                   WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '-')
	FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
	UNION ALL
	SELECT 'relation ' || c.oid::regclass || ' kind=' || c.relkind::text || ' rls=' || c.relrowsecurity
	       || ' acl=' || coalesce(c.relacl::text, '-')
	       || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '-')
	FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
	UNION ALL
	SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
	       || ' notnull=' || a.attnotnull || ' storage=' || a.attstorage::text
	       || ' default=' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '-')
	       || ' comment=' || coalesce(col_description(a.attrelid, a.attnum), '-')
	FROM pg_attribute a JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = a.attrelid
	LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
	WHERE a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(co.oid)
	FROM pg_constraint co JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = co.conrelid
	UNION ALL
	SELECT 'index ' || pg_get_indexdef(i.indexrelid)
	FROM pg_index i JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = i.indrelid
	UNION ALL
	SELECT 'policy ' || row(p.schemaname, p.tablename, p.policyname, p.permissive, p.roles, p.cmd,
	       p.qual, p.with_check)::text
	FROM pg_policies p WHERE p.schemaname = 'recsys'
	UNION ALL
	SELECT 'trigger ' || pg_get_triggerdef(t.oid)
	FROM pg_trigger t JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = t.tgrelid
	WHERE NOT t.tgisinternal
	UNION ALL
	SELECT 'namespace ' || n.nspname || ' acl=' || coalesce(n.nspacl::text, '-')
	       || ' comment=' || coalesce(obj_description(n.oid, 'pg_namespace'), '-')
	FROM pg_namespace n WHERE n.nspname = 'recsys'
	UNION ALL
	SELECT 'config dump ' || c.oid::regclass || ' ' || coalesce(e.extcondition[i], '')
	FROM pg_extension e, unnest(e.extconfig) WITH ORDINALITY AS u(oid, i)
	JOIN pg_class c ON c.oid = u.oid WHERE e.extname = 'recsys'
	UNION ALL
	SELECT 'version ' || extversion || ' relocatable=' || extrelocatable
	FROM pg_extension WHERE extname = 'recsys')
-- one line per object: the newlines inside function bodies become ' | '
SELECT string_agg(replace(l, E'\n', ' | '), E'\n' ORDER BY l) FROM lines};

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION recsys');
my $fresh = $node->safe_psql('fresh', $describe);
like($fresh, qr/^version \Q$current\E /m, "fresh install is version $current");

# The lines only one of two descriptions has, marked - (upgraded) or + (fresh)
sub differences
{
	my ($upgraded, $fresh) = @_;
	my %u = map { $_ => 1 } split /\n/, $upgraded;
	my %f = map { $_ => 1 } split /\n/, $fresh;
	return join("\n", (map { "- $_" } grep { !$f{$_} } sort keys %u),
		(map { "+ $_" } grep { !$u{$_} } sort keys %f));
}

my $csv = "$PostgreSQL::Test::Utils::tmp_check/upgrade.csv";
system("$generator --kind implicit --users 300 --items 200 --rows 6000 "
	  . "--rank 4 --beta 20 --seed 3 > $csv 2>/dev/null") == 0
  or BAIL_OUT("generator failed");

# What the old version's models, grants and experiments answer
my $answers = q{
	SELECT (SELECT string_agg(item_id || ':' || round(score::numeric, 4), ',' ORDER BY score DESC, item_id)
	        FROM recommend(1, 10, 'm')),
	       (SELECT string_agg(item_id || ':' || round(score::numeric, 4), ',' ORDER BY score DESC, item_id)
	        FROM similar_items(5, 5, 'm')),
	       (SELECT string_agg(name || '/' || version, ',' ORDER BY name) FROM recsys.models),
	       (SELECT count(*) FROM recsys.model_grants),
	       (SELECT string_agg(experiment_variant('exp', u), ',' ORDER BY u) FROM generate_series(1, 20) u),
	       (SELECT count(*) FROM recsys.experiment_exposures)};

for my $from (@released)
{
	my $db = "from_" . ($from =~ s/\./_/gr);
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{
		CREATE EXTENSION recsys VERSION '$from';
		CREATE ROLE app_$db;
		CREATE TABLE events (user_id int, item_id int, count int);
		COPY events FROM '$csv' CSV HEADER;
		SET client_min_messages = warning;
		CALL train('m', 'events', method => 'ials', factors => 8, iterations => 4, seed => 1);
		CALL train('p', 'events', method => 'popular');
		SELECT grant_model('m', 'app_$db', 'serve');
		SELECT create_experiment('exp', '[{"name": "a", "model": "m"}, {"name": "b", "model": "p"}]');
		SELECT log_exposure('exp', 1, ARRAY[1, 2, 3]);
	});
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'recsys'}),
		$from, "$db: created at version $from");
	my $before = $node->safe_psql($db, $answers);

	$node->safe_psql($db, 'ALTER EXTENSION recsys UPDATE');
	is(differences($node->safe_psql($db, $describe), $fresh), '',
		"$db: after ALTER EXTENSION UPDATE, the objects equal a fresh $current install");
	is($node->safe_psql($db, $answers), $before,
		"$db: models, grants and experiments made under $from answer the same after the upgrade");

	# The upgraded database keeps working: retraining and serving
	$node->safe_psql($db, q{
		SET client_min_messages = warning;
		CALL train('m', 'events', method => 'ials', factors => 8, iterations => 4, seed => 1);
	});
	is($node->safe_psql($db, q{SELECT count(*) FROM recommend(1, 10, 'm')}), '10',
		"$db: retraining and serving work after the upgrade");
	$node->safe_psql($db, "DROP EXTENSION recsys CASCADE; DROP ROLE app_$db");
}

$node->stop;
done_testing();
