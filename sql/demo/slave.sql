-- The replication demo, slave side (after sql/demo/master.sql):
--   psql "postgres://admin:123456@127.0.0.1:9902/porpoise" -f sql/demo/slave.sql

-- 1210000 once the APPEND task has run.
select count(*) from loadTable('dfs://testDB', 'testTB');

-- The same content as the master's (compare with the same query there).
select count(*), sum(Volume), round(sum(Amount), 2), min(DateTime), max(DateTime),
       count(distinct SecurityID)
  from "dfs://testDB"."testTB";

-- The three tasks, FINISHED, with the data node that ran each.
select taskId, masterTid, groupId, queueId, operationType, dbName, tableName, executionNode,
       state, details,
       (cast(finishTime as bigint) - cast(masterCommitTime as bigint)) / 1000000 as lag_ms
  from getSlaveReplicationStatus();

select * from getClusterReplicationMetrics(-1);

-- Clients may read a replicated database on a slave, not write it (S01023).
insert into "dfs://testDB"."testTB" values ('000001', timestamp '2023-01-09 09:30:00', 1, 1, 1, 1, 1, 1, 1);
