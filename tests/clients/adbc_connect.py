"""The ADBC PostgreSQL driver (with pyarrow): connecting (its pg_type query), driver info,
DDL, INSERT with parameters, the Arrow schema and object listing of a table, reading a query
as an Arrow table (binary COPY TO). (Ingesting one, `adbc_ingest`, fails still: the driver's
lookup of the target table's columns finds none.)"""
import sys

import adbc_driver_postgresql.dbapi as dbapi
import pyarrow as pa

url = sys.argv[1].replace("postgres://", "postgresql://", 1)
# Autocommit is a connect() argument: without it the driver runs everything in one
# transaction block, whose writes a ROLLBACK at close would discard.
with dbapi.connect(url, autocommit=True) as conn:
    info = conn.adbc_get_info()
    assert info["vendor_name"] == "PostgreSQL", info
    assert str(info["vendor_version"]).startswith("16"), info
    with conn.cursor() as cur:
        cur.execute('create database "dfs://adbc" partitioned by VALUE(1..3)')
        cur.execute('create table "dfs://adbc"."t"(k INT, v DOUBLE, s STRING) partitioned by k')
        cur.execute('insert into "dfs://adbc"."t" values (1, 1.5, \'x\')')
        cur.execute('insert into "dfs://adbc"."t" values ($1, $2, $3)', (2, None, None))
    schema = conn.adbc_get_table_schema("t", db_schema_filter="dfs://adbc")
    assert schema.names == ["k", "v", "s"], schema
    assert schema.types == [pa.int32(), pa.float64(), pa.string()], schema
    objects = conn.adbc_get_objects(depth="db_schemas").read_all().to_pylist()
    schemas = [s["db_schema_name"] for c in objects for s in c["catalog_db_schemas"]]
    assert "dfs://adbc" in schemas, objects

    with conn.cursor() as cur:
        cur.execute('select k, v, s from "dfs://adbc"."t" order by k')
        table = cur.fetch_arrow_table()
        assert table.to_pylist() == [
            {"k": 1, "v": 1.5, "s": "x"},
            {"k": 2, "v": None, "s": None},
        ], table.to_pylist()

print("ok adbc_connect")
