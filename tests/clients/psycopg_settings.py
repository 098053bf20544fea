"""psycopg 3 (what SQLAlchemy and most Python code sits on): settings drivers and users read,
the type lookups psycopg makes, PostgreSQL's to_char patterns and time functions, and
search_path naming a database."""
import sys

import psycopg
from psycopg.types import TypeInfo

url = sys.argv[1]
with psycopg.connect(url, autocommit=True) as conn:
    one = lambda sql, *a: conn.execute(sql, a or None).fetchone()

    # SHOW and current_setting answer PostgreSQL's settings, not DataFusion's.
    assert one("show timezone") == ("UTC",)
    assert one("show DateStyle") == ("ISO, MDY",)
    assert one("show server_version")[0].startswith("16"), one("show server_version")
    assert one("show client_encoding") == ("UTF8",)
    assert one("show integer_datetimes") == ("on",)
    assert one("select current_setting('TimeZone'), current_setting('search_path')") == ("UTC", '"$user", public')
    cur = conn.execute("show transaction isolation level")
    assert cur.description[0].name == "transaction_isolation", cur.description
    # SET changes what SHOW says; read-only and unknown settings fail as in PostgreSQL.
    conn.execute("set application_name = 'psycopg-test'")
    assert one("show application_name") == ("psycopg-test",)
    conn.execute("reset application_name")
    assert one("show application_name") == ("",)
    for sql, code in [
        ("set server_version = '1'", "55P02"),
        ("show nosuch", "42704"),
        ("set nosuch = 1", "42704"),
        ("set timezone = 'Europe/Berlin'", "0A000"),
    ]:
        try:
            conn.execute(sql)
        except psycopg.Error as e:
            assert e.sqlstate == code, (sql, e.sqlstate, str(e))
        else:
            raise AssertionError(f"{sql} succeeded")

    # psycopg's type lookups (hstore is how SQLAlchemy's dialect probes).
    assert TypeInfo.fetch(conn, "hstore") is None
    assert one("select to_regtype('integer')::int, to_regtype('character varying')::int") == (23, 1043)

    # Two special names in one select list.
    cur = conn.execute("select current_user, session_user")
    assert [d.name for d in cur.description] == ["current_user", "session_user"], cur.description
    assert cur.fetchone() == ("admin", "admin")

    # PostgreSQL's to_char patterns.
    assert one("select to_char(timestamp '2024-01-10 09:30:00', 'YYYY-MM-DD HH24:MI')") == ("2024-01-10 09:30",)
    assert one("select to_char(timestamp '2024-01-10 21:05:00', 'FMDD Mon YYYY HH12:MI AM')") == ("10 Jan 2024 09:05 PM",)
    # Time functions.
    row = one("select clock_timestamp() >= now(), statement_timestamp() is not null")
    assert row == (True, True), row

    # LIKE with another escape character (SQLAlchemy escapes with '/').
    assert one("select 'pg_x' like 'pg/_%' escape '/', 'pgax' like 'pg/_%' escape '/'") == (True, False)

    # search_path names the database of plain table names.
    conn.execute('create database "dfs://psy" partitioned by VALUE(1..3)')
    conn.execute('create table "dfs://psy"."t"(k INT, v DOUBLE) partitioned by k')
    conn.execute('insert into "dfs://psy"."t" values (1, 1.5), (2, null)')
    try:
        conn.execute("select * from t")
    except psycopg.Error as e:
        assert e.sqlstate == "42P01", e.sqlstate
    else:
        raise AssertionError("a plain name resolved without search_path")
    conn.execute('set search_path to "dfs://psy", public')
    assert one("show search_path") == ('"dfs://psy", public',)
    assert one("select current_schema()") == ("dfs://psy",)
    assert conn.execute("select k, v from t order by k").fetchall() == [(1, 1.5), (2, None)]
    conn.execute("insert into t values (3, 3.0)")
    assert one("select count(*) from t") == (3,)
    conn.execute("reset search_path")
    assert one("select current_schema()") == ("public",)

print("ok psycopg_settings")
