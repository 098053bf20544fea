"""SQLAlchemy 2 with pandas over psycopg 3: connect, write a DataFrame with NULLs with
to_sql into a database (a schema is a database: schema="dfs://..."), read it back with
read_sql (through the second URL: another data node of a cluster), and reflect it with
sqlalchemy.inspect."""
import math
import sys

import pandas as pd
import sqlalchemy as sa


def engine(url):
    return sa.create_engine(url.replace("postgres://", "postgresql+psycopg://", 1))


first, second = engine(sys.argv[1]), engine(sys.argv[2])
db = "dfs://sa_pandas"

with first.connect() as c:
    # What the dialect asks when it connects.
    assert c.exec_driver_sql("show transaction isolation level").scalar() == "read committed"
    assert c.exec_driver_sql("show standard_conforming_strings").scalar() == "on"
    assert c.execute(sa.text("select 1")).scalar() == 1
    c.exec_driver_sql(f'create database "{db}" partitioned by VALUE(2024.01.01..2024.01.03)')

frame = pd.DataFrame(
    {
        "ts": pd.to_datetime(["2024-01-01 09:30", "2024-01-02 10:00", "2024-01-03 11:15"]),
        "price": [1.5, None, 3.25],
        "qty": [10, 20, 30],
        "sym": ["a", None, "c"],
    }
)
frame.to_sql("quotes", first, schema=db, index=False)

back = pd.read_sql(f'select * from "{db}"."quotes" order by qty', second)
assert list(back.columns) == ["ts", "price", "qty", "sym"], list(back.columns)
assert [str(t) for t in back["ts"]] == ["2024-01-01 09:30:00", "2024-01-02 10:00:00", "2024-01-03 11:15:00"], back
assert back["price"][0] == 1.5 and math.isnan(back["price"][1]) and back["price"][2] == 3.25, back
assert list(back["qty"]) == [10, 20, 30], back
assert back["sym"][0] == "a" and pd.isna(back["sym"][1]) and back["sym"][2] == "c", back

# Appending goes through the same INSERT path.
frame.head(1).to_sql("quotes", first, schema=db, index=False, if_exists="append")
count = pd.read_sql(f'select count(*) as n from "{db}"."quotes"', second)["n"][0]
assert count == 4, count

inspector = sa.inspect(second)
assert db in inspector.get_schema_names(), inspector.get_schema_names()
assert inspector.get_table_names(schema=db) == ["quotes"], inspector.get_table_names(schema=db)
columns = inspector.get_columns("quotes", schema=db)
assert [c["name"] for c in columns] == ["ts", "price", "qty", "sym"], columns
types = [type(c["type"]).__name__ for c in columns]
assert types == ["TIMESTAMP", "DOUBLE_PRECISION", "BIGINT", "TEXT"], types
assert all(c["nullable"] for c in columns), columns
assert inspector.get_pk_constraint("quotes", schema=db)["constrained_columns"] == []
assert inspector.get_indexes("quotes", schema=db) == []
assert inspector.get_foreign_keys("quotes", schema=db) == []

# A database on search_path makes plain table names work, also in read_sql.
with second.connect() as c:
    c.exec_driver_sql(f'set search_path to "{db}"')
    assert c.exec_driver_sql("show search_path").scalar() == f'"{db}"'
    assert c.exec_driver_sql("select current_schema()").scalar() == db
    plain = pd.read_sql("select qty from quotes order by qty", c)
    assert list(plain["qty"]) == [10, 10, 20, 30], plain

# psycopg runs statements in a transaction block unless autocommit is on: the block's rows
# are seen (through the other node) only after commit(), and rollback() leaves none of them.
def quotes():
    return pd.read_sql(f'select count(*) as n from "{db}"."quotes"', second)["n"][0]


insert = sa.text(
    f'insert into "{db}"."quotes" (ts, qty, sym) values (\'2024-01-02 12:00\', :qty, :sym)'
)
with first.connect() as c:
    c.execute(insert, [{"qty": 40, "sym": "x"}, {"qty": 41, "sym": "y"}])
    assert quotes() == 4
    c.rollback()
    assert quotes() == 4
    c.execute(insert, {"qty": 42, "sym": "z"})
    assert quotes() == 4
    c.commit()
    assert quotes() == 5

print("ok sqlalchemy_pandas")
