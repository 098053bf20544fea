"""asyncpg and pg8000: connect, settings, parameters, NULLs and types as their users get
them back."""
import asyncio
import datetime
import sys

import asyncpg
import pg8000.native

url = sys.argv[1]


async def with_asyncpg():
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("show timezone") == "UTC"
        assert await conn.fetchval("select current_setting('jit')") == "off"
        await conn.execute('create database "dfs://apg" partitioned by VALUE(1..3)')
        await conn.execute('create table "dfs://apg"."t"(k INT, ts TIMESTAMP, v DOUBLE) partitioned by k')
        await conn.execute('insert into "dfs://apg"."t" values ($1, $2, $3)', 1, datetime.datetime(2024, 1, 10, 9, 30), None)
        await conn.execute('set search_path to "dfs://apg"')
        row = await conn.fetchrow("select k, ts, v, ts::varchar as text from t")
        assert tuple(row) == (1, datetime.datetime(2024, 1, 10, 9, 30), None, "2024-01-10 09:30:00"), row
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()


asyncio.run(with_asyncpg())

parts = url.split("://", 1)[1]
creds, rest = parts.split("@", 1)
user, password = creds.split(":", 1)
hostport, database = rest.split("/", 1)
host, port = hostport.rsplit(":", 1)
conn = pg8000.native.Connection(user, host=host, port=int(port), password=password, database=database)
try:
    assert conn.run("show DateStyle") == [["ISO, MDY"]]
    assert conn.run("select current_user, session_user") == [["admin", "admin"]]
    assert conn.run('select k, v from "dfs://apg"."t" where k = :k', k=1) == [[1, None]]
    assert conn.run("select 1")[0][0] == 1
finally:
    conn.close()

print("ok asyncpg_pg8000")
