//! The standalone server through a real pgwire client: compaction of small files, prepared
//! statements with parameters, result type OIDs, restart durability, concurrent writers.

#[path = "../common/mod.rs"]
mod common;
mod copyio;
mod cursors;
mod txn;
mod wire;

use std::time::{Duration, Instant};

use common::{parquet_files, TestServer};
use tokio_postgres::types::Type;

#[tokio::test]
async fn small_inserts_are_compacted_without_disturbing_readers() {
    // Replaced files are deleted at once (by default they stay a minute for older queries).
    let server = TestServer::start_with_config(&[("snapshotRetentionSeconds", "0")]);
    let client = server.client().await;
    client
        .batch_execute(
            r#"create database "dfs://small" partitioned by VALUE(1..3);
               create table "dfs://small"."t"(k INT, v LONG) partitioned by k;"#,
        )
        .await
        .unwrap();
    for i in 0..24i64 {
        client
            .execute(r#"insert into "dfs://small"."t" values (1, $1)"#, &[&i])
            .await
            .unwrap();
    }
    let data = server.home().join("datanode").join("data");
    assert!(parquet_files(&data) >= 24, "each insert writes a file");

    // Compaction runs in the background; every read meanwhile sees all 24 rows exactly once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row = client
            .query_one(r#"select count(*), sum(v) from "dfs://small"."t""#, &[])
            .await
            .unwrap();
        assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (24, 276));
        if parquet_files(&data) < 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "small files were never compacted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn prepared_statements_bind_parameters_and_report_types() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            r#"create database "dfs://p" partitioned by VALUE(2023.01.01..2023.01.03);
               create table "dfs://p"."t"(d DATE, sym SYMBOL, qty INT, px DOUBLE, n LONG, ok BOOL)
                 partitioned by d;"#,
        )
        .await
        .unwrap();
    let insert = client
        .prepare(r#"insert into "dfs://p"."t" values ($1, $2, $3, $4, $5, $6)"#)
        .await
        .unwrap();
    let day = chrono::NaiveDate::from_ymd_opt(2023, 1, 2).unwrap();
    for i in 0..5i32 {
        let n = client
            .execute(
                &insert,
                &[
                    &day,
                    &format!("S{i}"),
                    &i,
                    &(i as f64 * 1.5),
                    &(i as i64),
                    &(i % 2 == 0),
                ],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    let select = client
        .prepare(r#"select sym, qty, px, n, ok, d from "dfs://p"."t" where qty >= $1 order by qty"#)
        .await
        .unwrap();
    let types: Vec<Type> = select.columns().iter().map(|c| c.type_().clone()).collect();
    assert!(
        matches!(types[0], Type::TEXT | Type::VARCHAR),
        "{:?}",
        types[0]
    );
    assert_eq!(
        &types[1..],
        &[Type::INT4, Type::FLOAT8, Type::INT8, Type::BOOL, Type::DATE]
    );
    let rows = client.query(&select, &[&3i32]).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<_, String>(0), "S3");
    assert_eq!(rows[1].get::<_, f64>(2), 6.0);
    assert_eq!(rows[1].get::<_, chrono::NaiveDate>(5), day);
    // count(*) is named count and is a bigint, as in PostgreSQL.
    let row = client
        .query_one(r#"select count(*) from "dfs://p"."t""#, &[])
        .await
        .unwrap();
    assert_eq!(row.columns()[0].name(), "count");
    assert_eq!(row.columns()[0].type_(), &Type::INT8);
    assert_eq!(row.get::<_, i64>(0), 5);
}

/// A parameter bound to NULL is a NULL of the parameter's type, whether the client named the
/// type in Parse (`prepare_typed`) or the server inferred it from a cast or the context, as
/// SQLAlchemy (which casts every INSERT parameter), psycopg, asyncpg and node-postgres send it.
#[tokio::test]
async fn null_parameters_are_nulls_of_their_type() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            r#"create database "dfs://np" partitioned by VALUE(1..3);
               create table "dfs://np"."t"(k INT, c INT, s STRING) partitioned by k;"#,
        )
        .await
        .unwrap();
    let none_int: Option<i32> = None;
    let none_str: Option<&str> = None;

    // Selected, cast, and under coalesce, with the type inferred from the cast.
    let row = client
        .query_one("select $1::int", &[&none_int])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<i32>>(0), None);
    let row = client
        .query_one("select $1::varchar", &[&none_str])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0), None);
    let row = client
        .query_one("select coalesce($1::text, 'x')", &[&none_str])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "x");

    // The same with the types named by the client in Parse, and with no cast at all.
    let typed = client
        .prepare_typed(
            "select $1::int, coalesce($2::varchar, 'y'), $3",
            &[Type::INT4, Type::VARCHAR, Type::TEXT],
        )
        .await
        .unwrap();
    let row = client
        .query_one(&typed, &[&none_int, &none_str, &none_str])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<i32>>(0), None);
    assert_eq!(row.get::<_, String>(1), "y");
    assert_eq!(row.get::<_, Option<String>>(2), None);

    // Parameters the client calls `unknown` (as psycopg and pg8000 send text values).
    let unknown = client
        .prepare_typed(
            "select coalesce($1::text, 'z'), $2, $3::int",
            &[Type::UNKNOWN, Type::UNKNOWN, Type::UNKNOWN],
        )
        .await
        .unwrap();
    let row = client
        .query_one(&unknown, &[&none_str, &none_str, &none_int])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "z");
    assert_eq!(row.get::<_, Option<String>>(1), None);
    assert_eq!(row.get::<_, Option<i32>>(2), None);

    // Inserted with casts (SQLAlchemy's form) and read back as NULLs.
    let n = client
        .execute(
            r#"insert into "dfs://np"."t" values ($1::int, $2::int, $3::varchar)"#,
            &[&Some(1i32), &none_int, &none_str],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let insert = client
        .prepare_typed(
            r#"insert into "dfs://np"."t" values ($1, $2, $3)"#,
            &[Type::INT4, Type::INT4, Type::VARCHAR],
        )
        .await
        .unwrap();
    client
        .execute(&insert, &[&Some(2i32), &none_int, &Some("b")])
        .await
        .unwrap();
    let rows = client
        .query(r#"select k, c, s from "dfs://np"."t" order by k"#, &[])
        .await
        .unwrap();
    let got: Vec<(i32, Option<i32>, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(got, vec![(1, None, None), (2, None, Some("b".to_owned()))]);

    // `c = NULL` is never true: no rows, as in PostgreSQL.
    let rows = client
        .query(r#"select k from "dfs://np"."t" where c = $1"#, &[&none_int])
        .await
        .unwrap();
    assert!(rows.is_empty());
    let rows = client
        .query(
            r#"select k from "dfs://np"."t" where s = $1::varchar"#,
            &[&none_str],
        )
        .await
        .unwrap();
    assert!(rows.is_empty());
}

/// What asyncpg issues: `pg_advisory_unlock_all()` whenever its pool takes a connection back,
/// and `current_setting('jit')` when it introspects types.
#[tokio::test]
async fn asyncpg_settings_and_advisory_unlock() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .simple_query("SELECT pg_advisory_unlock_all();")
        .await
        .unwrap();
    client
        .execute("SELECT pg_advisory_unlock_all()", &[])
        .await
        .unwrap();
    let row = client
        .query_one("SELECT current_setting('jit') AS cur", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "off");

    let err = client
        .query_one("select current_setting('nosuch')", &[])
        .await
        .unwrap_err();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.code().code(), "42704");
    assert_eq!(
        db.message(),
        "unrecognized configuration parameter \"nosuch\""
    );
    let row = client
        .query_one("select current_setting('nosuch', true)", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0), None);
}

#[tokio::test]
async fn everything_acknowledged_survives_a_restart() {
    let mut server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            r#"create database "dfs://r" partitioned by RANGE(0 100 200), HASH([SYMBOL, 3]);
               create table "dfs://r"."t"(id INT, s SYMBOL, v DOUBLE) partitioned by id, s;
               create table "dfs://r"."dim"(k SYMBOL, name STRING);
               insert into "dfs://r"."t" values (1, 'a', 1.0), (150, 'b', 2.0), (199, 'c', 3.0);
               insert into "dfs://r"."dim" values ('a', 'alpha');
               update "dfs://r"."t" set v = v + 10 where id = 150;
               delete from "dfs://r"."t" where id = 199;
               alter table "dfs://r"."t" add column w LONG;
               insert into "dfs://r"."t" values (2, 'z', 4.0, 7);
               create user carol with password 'secret';"#,
        )
        .await
        .unwrap();
    drop(client);
    server.restart();
    let client = server.client().await;
    let rows = client
        .query(r#"select id, s, v, w from "dfs://r"."t" order by id"#, &[])
        .await
        .unwrap();
    let got: Vec<(i32, String, f64, Option<i64>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "a".into(), 1.0, None),
            (2, "z".into(), 4.0, Some(7)),
            (150, "b".into(), 12.0, None)
        ]
    );
    let dim: String = client
        .query_one(r#"select name from "dfs://r"."dim" where k = 'a'"#, &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(dim, "alpha");
    // The user created before the restart can log in.
    let carol = common::connect(&server.url_for("carol", "secret")).await;
    assert!(carol.is_ok(), "carol cannot log in after restart");
}

#[tokio::test]
async fn concurrent_writers_lose_nothing() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            r#"create database "dfs://w" partitioned by VALUE(0..7);
               create table "dfs://w"."t"(k INT, writer INT, i INT) partitioned by k;"#,
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for writer in 0..4i32 {
        let c = server.client().await;
        tasks.push(tokio::spawn(async move {
            for i in 0..25i32 {
                c.execute(
                    r#"insert into "dfs://w"."t" values ($1, $2, $3), ($4, $2, $3)"#,
                    &[&(i % 7), &writer, &i, &((i + 1) % 7)],
                )
                .await
                .unwrap();
            }
        }));
    }
    // A writer that updates and deletes in the same table meanwhile.
    let c = server.client().await;
    let rewriter = tokio::spawn(async move {
        for _ in 0..5 {
            c.execute(r#"update "dfs://w"."t" set i = i where k = 3"#, &[])
                .await
                .unwrap();
            c.execute(r#"delete from "dfs://w"."t" where writer = 99"#, &[])
                .await
                .unwrap();
        }
    });
    for t in tasks {
        t.await.unwrap();
    }
    rewriter.await.unwrap();
    let rows = client
        .query(
            r#"select writer, count(*) from "dfs://w"."t" group by writer order by writer"#,
            &[],
        )
        .await
        .unwrap();
    let counts: Vec<(i32, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(counts, vec![(0, 50), (1, 50), (2, 50), (3, 50)]);
}

#[tokio::test]
async fn wrong_password_is_refused_with_28p01() {
    let server = TestServer::start();
    let err = match server.client_as("admin", "not-the-password").await {
        Ok(_) => panic!("a wrong password was accepted"),
        Err(e) => e,
    };
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
        "{err}"
    );
    let err = match server.client_as("nobody", "x").await {
        Ok(_) => panic!("an unknown user was accepted"),
        Err(e) => e,
    };
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
        "{err}"
    );
}

async fn copy_in(
    client: &tokio_postgres::Client,
    sql: &str,
    data: &str,
) -> Result<u64, tokio_postgres::Error> {
    use futures::SinkExt;
    let sink = client.copy_in(sql).await?;
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::copy_from_slice(data.as_bytes()))
        .await?;
    sink.as_mut().finish().await
}

#[tokio::test]
async fn copy_text_and_csv_with_nulls_escapes_and_bad_lines() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            r#"create database "dfs://cp" partitioned by VALUE(1..3);
               create table "dfs://cp"."t"(k INT, s STRING, x DOUBLE) partitioned by k;"#,
        )
        .await
        .unwrap();
    // Text format: tab separated, \N is NULL, backslash escapes.
    let n = copy_in(
        &client,
        r#"COPY "dfs://cp"."t" FROM STDIN"#,
        "1\ta\\tb\t1.5\n2\t\\N\t\\N\n",
    )
    .await
    .unwrap();
    assert_eq!(n, 2);
    // CSV with a header, a quoted field holding a comma, and a column list.
    let n = copy_in(
        &client,
        r#"COPY "dfs://cp"."t" (s, k) FROM STDIN WITH (FORMAT csv, HEADER true)"#,
        "s,k\n\"x, y\",3\n",
    )
    .await
    .unwrap();
    assert_eq!(n, 1);
    let rows = client
        .query(r#"select k, s, x from "dfs://cp"."t" order by k"#, &[])
        .await
        .unwrap();
    let got: Vec<(i32, Option<String>, Option<f64>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, Some("a\tb".into()), Some(1.5)),
            (2, None, None),
            (3, Some("x, y".into()), None)
        ]
    );
    // A bad line fails the whole COPY with 22P02 and PostgreSQL's context; nothing is added.
    let err = copy_in(
        &client,
        r#"COPY "dfs://cp"."t" FROM STDIN WITH (FORMAT csv)"#,
        "1,ok,1\n2,ok,notanumber\n",
    )
    .await
    .unwrap_err();
    let db = err.as_db_error().expect("a server error");
    assert_eq!(
        db.code(),
        &tokio_postgres::error::SqlState::INVALID_TEXT_REPRESENTATION
    );
    assert!(db.message().contains("notanumber"), "{}", db.message());
    assert_eq!(
        db.where_(),
        Some(r#"COPY t, line 2, column x: "notanumber""#)
    );
    // Missing and extra columns are 22P04.
    for data in ["1,only\n", "1,a,1,extra\n"] {
        let err = copy_in(
            &client,
            r#"COPY "dfs://cp"."t" FROM STDIN WITH (FORMAT csv)"#,
            data,
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.as_db_error().map(|e| e.code().code()),
            Some("22P04"),
            "{data:?}: {err}"
        );
    }
    // The session still works and the table is unchanged.
    let n: i64 = client
        .query_one(r#"select count(*) from "dfs://cp"."t""#, &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
}

#[tokio::test]
async fn filters_on_the_partition_column_read_only_matching_partitions() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            r#"create database "dfs://prune" partitioned by VALUE(2023.01.01..2023.01.10);
               create table "dfs://prune"."t"(day DATE, v INT) partitioned by day;"#,
        )
        .await
        .unwrap();
    for d in 1..=10 {
        client
            .execute(
                &format!(r#"insert into "dfs://prune"."t" values ('2023-01-{d:02}', {d})"#),
                &[],
            )
            .await
            .unwrap();
    }
    let plan = |sql: String| {
        let client = &client;
        async move {
            let rows = client
                .simple_query(&format!("explain {sql}"))
                .await
                .unwrap();
            rows.iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(1).map(str::to_owned),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let files = |plan: &str| plan.matches(".parquet").count();
    let all = plan(r#"select sum(v) from "dfs://prune"."t""#.into()).await;
    assert_eq!(files(&all), 10, "{all}");
    let one = plan(r#"select sum(v) from "dfs://prune"."t" where day = '2023-01-03'"#.into()).await;
    assert_eq!(files(&one), 1, "{one}");
    let three = plan(
        r#"select sum(v) from "dfs://prune"."t" where day between '2023-01-04' and '2023-01-06'"#
            .into(),
    )
    .await;
    assert_eq!(files(&three), 3, "{three}");
    // And the answers are right.
    let sum: i64 = client
        .query_one(
            r#"select sum(v) from "dfs://prune"."t" where day between '2023-01-04' and '2023-01-06'"#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sum, 15);
}

#[tokio::test]
async fn garbage_on_the_wire_does_not_hurt_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut server = TestServer::start();
    let startup = {
        // A valid StartupMessage for user admin, then a message of an unknown type.
        let mut body = Vec::new();
        body.extend_from_slice(&196608u32.to_be_bytes());
        body.extend_from_slice(b"user\0admin\0database\0porpoise\0\0");
        let mut m = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        m.extend_from_slice(&body);
        m.extend_from_slice(b"\xfe\x00\x00\x00\x05\x00");
        m
    };
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = vec![0u8; 4096];
    for b in random.iter_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
    let payloads: Vec<Vec<u8>> = vec![
        random,
        // A length prefix of almost 2 GiB, then nothing.
        vec![0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0],
        // A length prefix shorter than the header.
        vec![0, 0, 0, 2],
        // An unknown protocol version.
        vec![0, 0, 0, 8, 0, 9, 0, 9],
        // SSLRequest (refused with 'N'), then garbage.
        vec![0, 0, 0, 8, 4, 210, 22, 47, 1, 2, 3],
        startup,
    ];
    for payload in payloads {
        let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
            .await
            .unwrap();
        let _ = socket.write_all(&payload).await;
        let _ = socket.shutdown().await;
        // The server answers or hangs up; either way, it must not take long.
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut sink)).await;
    }
    assert!(
        server.exit_status().is_none(),
        "the server died:\n{}",
        server.log()
    );
    let client = server.client().await;
    let row = client.query_one("select 41 + 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 42);
}
