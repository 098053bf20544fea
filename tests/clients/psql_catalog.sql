-- psql 15's catalog meta-commands answer (databases are schemas).
\set QUIET on
create database "dfs://psqlcat" partitioned by VALUE(1..3);
create table "dfs://psqlcat"."t"(k INT, ts TIMESTAMP) partitioned by k;
\dt+
\dn+
\df
\dT
\db
select localtimestamp is not null as lt, pg_size_pretty(123456789::bigint) as size;
\echo ok psql_catalog
