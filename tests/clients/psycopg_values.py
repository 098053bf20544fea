"""Values that used to come back wrong without an error, as a psycopg user reads them:
timestamps as text, to_char, literals without seconds, integer literals, and the type names
information_schema.columns gives BI tools."""
import datetime
import sys

import psycopg

with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    one = lambda sql: conn.execute(sql).fetchone()
    conn.execute('create database "dfs://values" partitioned by VALUE(1..3)')
    conn.execute(
        'create table "dfs://values"."t"(k INT, ts TIMESTAMP, v DOUBLE, s STRING, n LONG, d NUMERIC(10,2)) partitioned by k'
    )
    conn.execute(
        "insert into \"dfs://values\".\"t\" values (1, '2024-01-10 09:30', 1.5, 'a', 7, 1.25), "
        "(2, '2024-01-10 09:30:00.5', null, null, null, null)"
    )
    rows = conn.execute(
        'select k, ts, ts::varchar as v, cast(ts as text) as t, to_char(ts, \'YYYY-MM-DD HH24:MI\') from "dfs://values"."t" order by k'
    ).fetchall()
    assert rows == [
        (1, datetime.datetime(2024, 1, 10, 9, 30), "2024-01-10 09:30:00", "2024-01-10 09:30:00", "2024-01-10 09:30"),
        (2, datetime.datetime(2024, 1, 10, 9, 30, 0, 500000), "2024-01-10 09:30:00.5", "2024-01-10 09:30:00.5", "2024-01-10 09:30"),
    ], rows
    assert one("select '2024-01-10 00:00'::timestamp") == (datetime.datetime(2024, 1, 10),)
    assert one("select timestamp '2024-01-10 09:30'") == (datetime.datetime(2024, 1, 10, 9, 30),)

    # Integer literals that fit are int4, as in PostgreSQL; larger ones int8.
    cur = conn.execute("select 1, -2 as neg, 3000000000 as big")
    assert [d.type_code for d in cur.description] == [23, 23, 20], cur.description
    assert cur.fetchone() == (1, -2, 3000000000)

    types = conn.execute(
        "select column_name, data_type, udt_name from information_schema.columns "
        "where table_schema = 'dfs://values' and table_name = 't' order by ordinal_position"
    ).fetchall()
    assert types == [
        ("k", "integer", "int4"),
        ("ts", "timestamp without time zone", "timestamp"),
        ("v", "double precision", "float8"),
        ("s", "text", "text"),
        ("n", "bigint", "int8"),
        ("d", "numeric", "numeric"),
    ], types

print("ok psycopg_values")
