-- psql 15: SHOW and SET of PostgreSQL's settings, search_path naming a database.
\set QUIET on
show timezone;
show server_version;
show integer_datetimes;
select current_user, session_user;
create database "dfs://psqlset" partitioned by VALUE(1..3);
create table "dfs://psqlset"."t"(k INT, v DOUBLE) partitioned by k;
insert into "dfs://psqlset"."t" values (1, 1.5), (2, null);
set search_path to "dfs://psqlset", public;
show search_path;
select current_schema();
select k, v from t order by k;
\dt
\echo ok psql_settings
