-- The replication demo, master side. Start both clusters first (two terminals):
--   cargo run --release -- up config/master --home ./master-data
--   cargo run --release -- up config/slave --home ./slave-data
-- then:
--   psql "postgres://admin:123456@127.0.0.1:8902/porpoise" -f sql/demo/master.sql
-- and sql/demo/slave.sql on the slave (port 9902).

create database "dfs://testDB" partitioned by VALUE(2023.01.01..2023.12.31);

-- New databases are not replicated until switched on (this queues CREATE_DOMAIN).
select setDatabaseForClusterReplication('dfs://testDB', true);

create table "dfs://testDB"."testTB"(
    SecurityID SYMBOL, DateTime DATETIME, PreClosePx DOUBLE, OpenPx DOUBLE, HighPx DOUBLE,
    LowPx DOUBLE, LastPx DOUBLE, Volume INT, Amount DOUBLE)
  partitioned by DateTime;

-- 5,000 securities x 242 minutes = 1,210,000 rows of 2023-01-08, in one transaction: one
-- APPEND task. (COPY "dfs://testDB"."testTB" FROM STDIN with the same rows as CSV is the same
-- task; benches/testtb.rs generates them.)
\copy "dfs://testDB"."testTB" from program 'python3 sql/demo/testtb.py' with (format csv)

select count(*) from "dfs://testDB"."testTB";

-- Three tasks: CREATE_DOMAIN, CREATE_PARTITIONED_TABLE, APPEND. isTruncated turns true once
-- every slave has finished them (run it again after slave.sql).
select * from getMasterReplicationStatus();
select * from getRecentSlaveReplicationInfo();
select * from getDatabaseClusterReplicationStatus();
