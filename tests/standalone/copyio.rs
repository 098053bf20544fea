//! COPY TO STDOUT and binary COPY FROM STDIN through real clients (rust-postgres' copy API,
//! a raw pgwire connection), and the transaction status and portal row limits that drivers'
//! cursors rely on.

use bytes::Bytes;
use futures::{SinkExt, TryStreamExt};
use tokio_postgres::binary_copy::{BinaryCopyInWriter, BinaryCopyOutStream};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

use crate::common::TestServer;
use crate::wire::{tags, Wire};

/// Everything a COPY TO STDOUT sends, concatenated.
async fn copy_out(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<String, tokio_postgres::Error> {
    let stream = client.copy_out(sql).await?;
    let chunks: Vec<Bytes> = stream.try_collect().await?;
    Ok(String::from_utf8(chunks.concat()).unwrap())
}

async fn copy_in_chunks(
    client: &tokio_postgres::Client,
    sql: &str,
    data: &[u8],
    chunk: usize,
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in(sql).await?;
    futures::pin_mut!(sink);
    for piece in data.chunks(chunk) {
        sink.send(Bytes::copy_from_slice(piece)).await?;
    }
    sink.as_mut().finish().await
}

/// A table with values that need every escaping rule, loaded through COPY FROM text.
async fn server_with_rows() -> (TestServer, tokio_postgres::Client) {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            r#"create database "dfs://co" partitioned by VALUE(1..3);
               create table "dfs://co"."t"(k INT, s STRING, x DOUBLE, b BOOL, ts TIMESTAMP,
                 d DATE, n DECIMAL(10,2)) partitioned by k;"#,
        )
        .await
        .unwrap();
    let data = "1\ta\\tb\\\\c\t1.5\tt\t2024-01-10 09:30:00\t2024-01-10\t12.50\n\
                2\tx,\"y\"\\nz\t-0.25\tf\t2024-01-10 09:30:00.123\t2023-12-31\t-3\n\
                2\t\t\\N\t\\N\t\\N\t\\N\t\\N\n";
    let n = copy_in_chunks(
        &client,
        r#"COPY "dfs://co"."t" FROM STDIN"#,
        data.as_bytes(),
        1 << 20,
    )
    .await
    .unwrap();
    assert_eq!(n, 3);
    (server, client)
}

const ORDERED: &str = r#"(select * from "dfs://co"."t" order by k, s)"#;

#[tokio::test]
async fn copy_to_stdout_prints_text_and_csv_like_postgres() {
    let (_server, client) = server_with_rows().await;
    let text = copy_out(&client, &format!("COPY {ORDERED} TO STDOUT"))
        .await
        .unwrap();
    assert_eq!(
        text,
        "1\ta\\tb\\\\c\t1.5\tt\t2024-01-10 09:30:00\t2024-01-10\t12.50\n\
         2\t\t\\N\t\\N\t\\N\t\\N\t\\N\n\
         2\tx,\"y\"\\nz\t-0.25\tf\t2024-01-10 09:30:00.123\t2023-12-31\t-3.00\n"
    );
    let csv = copy_out(
        &client,
        &format!("COPY {ORDERED} TO STDOUT (FORMAT csv, HEADER)"),
    )
    .await
    .unwrap();
    assert_eq!(
        csv,
        "k,s,x,b,ts,d,n\n\
         1,a\tb\\c,1.5,t,2024-01-10 09:30:00,2024-01-10,12.50\n\
         2,\"\",,,,,\n\
         2,\"x,\"\"y\"\"\nz\",-0.25,f,2024-01-10 09:30:00.123,2023-12-31,-3.00\n"
    );
    // Options: delimiter, NULL string, quote, FORCE_QUOTE; and the legacy syntax psql sends.
    let csv = copy_out(
        &client,
        &format!(
            "COPY {ORDERED} TO STDOUT WITH (FORMAT csv, DELIMITER ';', NULL 'NULL', \
             QUOTE '''', FORCE_QUOTE (b))"
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        csv,
        "1;a\tb\\c;1.5;'t';2024-01-10 09:30:00;2024-01-10;12.50\n\
         2;;NULL;NULL;NULL;NULL;NULL\n\
         2;'x,\"y\"\nz';-0.25;'f';2024-01-10 09:30:00.123;2023-12-31;-3.00\n"
    );
    let text = copy_out(
        &client,
        r#"COPY (select s, k from "dfs://co"."t" where k = 1) TO STDOUT DELIMITER '|' NULL '' HEADER"#,
    )
    .await
    .unwrap();
    assert_eq!(text, "s|k\na\\tb\\\\c|1\n");

    // A table, whole or some columns: every row, in some order.
    let mut lines: Vec<String> = copy_out(&client, r#"COPY "dfs://co"."t" (n, k) TO STDOUT CSV"#)
        .await
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    assert_eq!(lines, vec![",2", "-3.00,2", "12.50,1"]);
    let all = copy_out(&client, r#"COPY "dfs://co"."t" TO STDOUT"#)
        .await
        .unwrap();
    assert_eq!(all.lines().count(), 3);
}

#[tokio::test]
async fn copy_to_stdout_binary_reads_back_with_a_binary_client() {
    let (_server, client) = server_with_rows().await;
    let stream = client
        .copy_out(
            r#"COPY (select k, s, x, b, ts, d from "dfs://co"."t" order by k, s) TO STDOUT
               (FORMAT binary)"#,
        )
        .await
        .unwrap();
    let types = [
        Type::INT4,
        Type::TEXT,
        Type::FLOAT8,
        Type::BOOL,
        Type::TIMESTAMP,
        Type::DATE,
    ];
    let rows: Vec<_> = BinaryCopyOutStream::new(stream, &types)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    let ts = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
    assert_eq!(rows[0].get::<i32>(0), 1);
    assert_eq!(rows[0].get::<&str>(1), "a\tb\\c");
    assert_eq!(rows[0].get::<f64>(2), 1.5);
    assert!(rows[0].get::<bool>(3));
    assert_eq!(
        rows[0].get::<chrono::NaiveDateTime>(4),
        ts("2024-01-10 09:30:00")
    );
    assert_eq!(
        rows[0].get::<chrono::NaiveDate>(5),
        chrono::NaiveDate::from_ymd_opt(2024, 1, 10).unwrap()
    );
    assert_eq!(rows[1].get::<&str>(1), "");
    assert_eq!(rows[1].get::<Option<f64>>(2), None);
    assert_eq!(rows[1].get::<Option<chrono::NaiveDateTime>>(4), None);
    assert_eq!(
        rows[2].get::<chrono::NaiveDateTime>(4),
        ts("2024-01-10 09:30:00.123")
    );

    // An empty result: header and trailer only.
    let stream = client
        .copy_out(r#"COPY (select k from "dfs://co"."t" where k > 5) TO STDOUT (FORMAT binary)"#)
        .await
        .unwrap();
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    let mut expected = b"PGCOPY\n\xff\r\n\0".to_vec();
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
    assert_eq!(chunks.concat(), expected);
}

#[tokio::test]
async fn copy_to_stdout_frames_messages_like_postgres() {
    let (server, _client) = server_with_rows().await;
    let mut wire = Wire::login(server.port()).await;
    // One CopyData per row, the header a message of its own and not counted.
    let (m, status) = wire
        .simple(&format!(
            "select 1; COPY {ORDERED} TO STDOUT (FORMAT csv, HEADER); select 2"
        ))
        .await;
    assert_eq!(tags(&m), "TDCHddddcCTDC", "{m:?}");
    assert_eq!(m[9].command(), "COPY 3");
    assert_eq!(status, 'I');
    // CopyOutResponse: text, 7 columns, all text.
    assert_eq!(m[3].body[..3], [0, 0, 7]);
    // Through the extended protocol, as drivers send it.
    let (m, status) = wire
        .extended(
            r#"COPY "dfs://co"."t" (k) TO STDOUT (FORMAT binary)"#,
            "",
            0,
        )
        .await;
    assert_eq!(tags(&m), "12HddddcC", "{m:?}");
    assert_eq!(m[2].body[..5], [1, 0, 1, 0, 1]);
    assert_eq!(m.last().unwrap().command(), "COPY 3");
    assert_eq!(status, 'I');
    // Errors before any data: no CopyOutResponse.
    for (sql, code) in [
        (r#"COPY "dfs://co"."t" (nope) TO STDOUT"#, "42703"),
        (r#"COPY "dfs://co"."nope" TO STDOUT"#, "42P01"),
        (
            r#"COPY "dfs://co"."t" TO STDOUT (FORMAT csv, FORCE_QUOTE (nope))"#,
            "42703",
        ),
        (
            r#"COPY "dfs://co"."t" TO STDOUT (FORMAT binary, HEADER)"#,
            "42601",
        ),
        (r#"COPY "dfs://co"."t" TO STDOUT (QUOTE '"')"#, "0A000"),
        (
            r#"COPY "dfs://co"."t" TO '/tmp/porpoise-never-written'"#,
            "0A000",
        ),
        ("COPY (select 1/0) TO STDOUT", "22012"),
    ] {
        let (m, status) = wire.simple(sql).await;
        let error = m.iter().find(|m| m.tag == b'E').expect(sql);
        assert_eq!(error.sqlstate().as_deref(), Some(code), "{sql}: {m:?}");
        assert_eq!(status, 'I');
    }
}

#[tokio::test]
async fn copy_to_needs_read_privilege_like_select() {
    let (server, client) = server_with_rows().await;
    client
        .batch_execute("create user reader with password 'reader_pw'")
        .await
        .unwrap();
    let reader = server.client_as("reader", "reader_pw").await.unwrap();
    for sql in [
        r#"COPY "dfs://co"."t" TO STDOUT"#,
        r#"COPY (select count(*) from "dfs://co"."t") TO STDOUT"#,
    ] {
        let e = copy_out(&reader, sql)
            .await
            .expect_err("copied without READ");
        assert_eq!(
            e.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{e}"
        );
    }
    client
        .batch_execute(r#"grant read on database "dfs://co" to reader"#)
        .await
        .unwrap();
    let out = copy_out(
        &reader,
        r#"COPY (select count(*) from "dfs://co"."t") TO STDOUT"#,
    )
    .await
    .unwrap();
    assert_eq!(out, "3\n");
}

/// A `numeric` in its binary send format, for a client without a decimal type.
#[derive(Debug)]
struct Numeric(Vec<u8>);

impl ToSql for Numeric {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}

/// `-1234.5` (digits 1234 and 5000, weight 0, scale 1).
fn numeric() -> Numeric {
    let words: [u16; 6] = [2, 0, 0x4000, 1, 1234, 5000];
    Numeric(words.iter().flat_map(|w| w.to_be_bytes()).collect())
}

#[tokio::test]
async fn binary_copy_from_fills_every_column_type() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            r#"create database "dfs://bi" partitioned by VALUE(1..3);
               create table "dfs://bi"."t"(k INT, bo BOOL, ch CHAR, sh SHORT, l LONG, f FLOAT,
                 db DOUBLE, sy SYMBOL, st STRING, bl BLOB, d DATE, mo MONTH, tm TIME,
                 mi MINUTE, se SECOND, dt DATETIME, ts TIMESTAMP, tu timestamp(6),
                 nt NANOTIMESTAMP, ntm NANOTIME, n DECIMAL(12,3)) partitioned by k;"#,
        )
        .await
        .unwrap();
    let types = [
        Type::INT4,
        Type::BOOL,
        Type::INT2,
        Type::INT2,
        Type::INT8,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::TEXT,
        Type::TEXT,
        Type::BYTEA,
        Type::DATE,
        Type::DATE,
        Type::TIME,
        Type::TIME,
        Type::TIME,
        Type::TIMESTAMP,
        Type::TIMESTAMP,
        Type::TIMESTAMP,
        Type::TIMESTAMP,
        Type::TIME,
        Type::NUMERIC,
    ];
    let sink = client
        .copy_in(r#"COPY "dfs://bi"."t" FROM STDIN (FORMAT binary)"#)
        .await
        .unwrap();
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures::pin_mut!(writer);
    let date = chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
    let time = chrono::NaiveTime::from_hms_micro_opt(9, 30, 15, 250_000).unwrap();
    let ts = date.and_time(time);
    let blob: &[u8] = &[0, 1, 0xff];
    let n = numeric();
    for k in [1i32, 2] {
        let row: Vec<&(dyn ToSql + Sync)> = vec![
            &k,
            &true,
            &-7i16,
            &300i16,
            &-9_000_000_000i64,
            &1.5f32,
            &-2.25f64,
            &"sym",
            &"héllo\t\\",
            &blob,
            &date,
            &date,
            &time,
            &time,
            &time,
            &ts,
            &ts,
            &ts,
            &ts,
            &time,
            &n,
        ];
        writer.as_mut().write(&row).await.unwrap();
    }
    // A row of NULLs, each of its column's type.
    let b: Option<bool> = None;
    let s16: Option<i16> = None;
    let s64: Option<i64> = None;
    let f4: Option<f32> = None;
    let f8: Option<f64> = None;
    let t: Option<&str> = None;
    let by: Option<&[u8]> = None;
    let dd: Option<chrono::NaiveDate> = None;
    let tt: Option<chrono::NaiveTime> = None;
    let tss: Option<chrono::NaiveDateTime> = None;
    let nn: Option<Numeric> = None;
    let row: Vec<&(dyn ToSql + Sync)> = vec![
        &2i32, &b, &s16, &s16, &s64, &f4, &f8, &t, &t, &by, &dd, &dd, &tt, &tt, &tt, &tss, &tss,
        &tss, &tss, &tt, &nn,
    ];
    writer.as_mut().write(&row).await.unwrap();
    assert_eq!(writer.finish().await.unwrap(), 3);

    let rows = client
        .simple_query(r#"select * from "dfs://bi"."t" order by k, bo"#)
        .await
        .unwrap();
    let rows: Vec<Vec<Option<String>>> = rows
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
            }
            _ => None,
        })
        .collect();
    assert_eq!(rows.len(), 3);
    let full: Vec<Option<String>> = [
        "1",
        "t",
        "-7",
        "300",
        "-9000000000",
        "1.5",
        "-2.25",
        "sym",
        "héllo\t\\",
        "\\x0001ff",
        "2024-03-01",
        "2024-03-01",
        "09:30:15.25",
        "09:30:15",
        "09:30:15",
        "2024-03-01 09:30:15",
        "2024-03-01 09:30:15.25",
        "2024-03-01 09:30:15.25",
        "2024-03-01 09:30:15.25",
        "09:30:15.25",
        "-1234.500",
    ]
    .iter()
    .map(|s| Some(s.to_string()))
    .collect();
    assert_eq!(rows[0], full);
    // NULLs sort last: the NULL row comes after k = 2's full row.
    assert_eq!(rows[1][0].as_deref(), Some("2"));
    assert_eq!(rows[1][1..], full[1..]);
    assert_eq!(rows[2][0].as_deref(), Some("2"));
    assert!(rows[2][1..].iter().all(Option::is_none), "{:?}", rows[2]);
}

/// A binary COPY stream for a table of (k INT, s STRING).
fn binary_stream(rows: &[(i32, Option<&str>)]) -> Vec<u8> {
    let mut out = b"PGCOPY\n\xff\r\n\0".to_vec();
    out.extend_from_slice(&[0; 8]);
    for (k, s) in rows {
        out.extend_from_slice(&2i16.to_be_bytes());
        out.extend_from_slice(&4i32.to_be_bytes());
        out.extend_from_slice(&k.to_be_bytes());
        match s {
            Some(s) => {
                out.extend_from_slice(&(s.len() as i32).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

#[tokio::test]
async fn bad_binary_copy_data_is_refused_and_nothing_is_committed() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            r#"create database "dfs://bb" partitioned by VALUE(1..3);
               create table "dfs://bb"."t"(k INT, s STRING) partitioned by k;"#,
        )
        .await
        .unwrap();
    let copy = r#"COPY "dfs://bb"."t" FROM STDIN (FORMAT binary)"#;
    // Good data, cut into 3-byte CopyData messages.
    let good = binary_stream(&[(1, Some("a")), (2, None), (2, Some("ü"))]);
    assert_eq!(copy_in_chunks(&client, copy, &good, 3).await.unwrap(), 3);

    let mut bad_signature = good.clone();
    bad_signature[0] = b'X';
    let mut bad_count = binary_stream(&[(1, Some("b")), (2, Some("c"))]);
    let second = bad_count.len() - 2 - (2 + 8 + 5);
    bad_count[second..second + 2].copy_from_slice(&3i16.to_be_bytes());
    let mut bad_int = binary_stream(&[(1, Some("b"))]);
    bad_int[19 + 2..19 + 6].copy_from_slice(&3i32.to_be_bytes());
    bad_int.remove(19 + 6);
    let truncated = &binary_stream(&[(1, Some("b")), (2, Some("long value"))])[..40];
    let mut bad_utf8 = binary_stream(&[(1, Some("b"))]);
    let at = bad_utf8.len() - 3;
    bad_utf8[at] = 0xff;
    for (data, code) in [
        (bad_signature, "22P04"),
        (bad_count, "22P04"),
        (bad_int, "22P03"),
        (truncated.to_vec(), "22P04"),
        (bad_utf8, "22021"),
    ] {
        for chunk in [1, 1 << 20] {
            let e = copy_in_chunks(&client, copy, &data, chunk)
                .await
                .expect_err("bad binary COPY data accepted");
            assert_eq!(e.code().map(|c| c.code()), Some(code), "{e:?}");
        }
    }
    // Only the good COPY's rows are there, and the session still works.
    let row = client
        .query_one(r#"select count(*), count(s) from "dfs://bb"."t""#, &[])
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (3, 2));
}

#[tokio::test]
async fn transaction_status_follows_begin_errors_and_rollback() {
    let server = TestServer::start();
    let mut wire = Wire::login(server.port()).await;
    assert_eq!(wire.simple("select 1").await.1, 'I');
    assert_eq!(wire.simple("begin").await.1, 'T');
    assert_eq!(wire.simple("select 1").await.1, 'T');
    let (m, status) = wire.simple(r#"select * from "dfs://none"."t""#).await;
    assert_eq!(tags(&m), "E");
    assert_eq!(status, 'E');
    // A failed block takes nothing but its end.
    let (m, status) = wire.simple("select 1").await;
    assert_eq!(m[0].sqlstate().as_deref(), Some("25P02"));
    assert_eq!(status, 'E');
    let (m, status) = wire.simple("commit").await;
    assert_eq!(m[0].command(), "ROLLBACK");
    assert_eq!(status, 'I');
    // An error outside a block leaves none.
    assert_eq!(wire.simple("select * from nope").await.1, 'I');
    assert_eq!(wire.simple("begin; select 1; commit").await.1, 'I');
    assert_eq!(wire.simple("begin; select 1").await.1, 'T');
    assert_eq!(wire.simple("rollback").await.1, 'I');

    // The extended protocol: an error at Parse or Execute fails the block too.
    assert_eq!(wire.extended("begin", "", 0).await.1, 'T');
    assert_eq!(wire.extended("select 1", "", 0).await.1, 'T');
    let (m, status) = wire.extended("select * from nope", "", 0).await;
    assert_eq!(m[0].tag, b'E');
    assert_eq!(status, 'E');
    let (m, status) = wire.extended("select 1", "", 0).await;
    assert_eq!(m[0].sqlstate().as_deref(), Some("25P02"), "{m:?}");
    assert_eq!(status, 'E');
    let (m, status) = wire.extended("rollback", "", 0).await;
    assert_eq!(tags(&m), "12C");
    assert_eq!(status, 'I');
    assert_eq!(wire.extended("start transaction", "", 0).await.1, 'T');
    assert_eq!(wire.extended("select 1/0", "", 0).await.1, 'E');
    assert_eq!(wire.simple("rollback").await.1, 'I');
}

#[tokio::test]
async fn portals_hand_out_rows_in_batches_of_max_rows() {
    let server = TestServer::start();
    let mut client = server.client().await;
    client
        .batch_execute(
            r#"create database "dfs://pr" partitioned by VALUE(1..3);
               create table "dfs://pr"."t"(k INT, v LONG) partitioned by k;
               insert into "dfs://pr"."t" values (1, 1), (1, 2), (2, 3), (2, 4), (2, 5);"#,
        )
        .await
        .unwrap();
    // rust-postgres' portals (Execute with a row limit) inside a transaction.
    let txn = client.transaction().await.unwrap();
    let stmt = txn
        .prepare(r#"select v from "dfs://pr"."t" where v > $1 order by v"#)
        .await
        .unwrap();
    let portal = txn.bind(&stmt, &[&1i64]).await.unwrap();
    let mut got = Vec::new();
    loop {
        let rows = txn.query_portal(&portal, 3).await.unwrap();
        if rows.is_empty() {
            break;
        }
        assert!(rows.len() <= 3);
        got.extend(rows.iter().map(|r| r.get::<_, i64>(0)));
    }
    assert_eq!(got, vec![2, 3, 4, 5]);
    txn.commit().await.unwrap();

    // On the wire: PortalSuspended after each batch, CommandComplete after the last.
    let mut wire = Wire::login(server.port()).await;
    assert_eq!(wire.simple("begin").await.1, 'T');
    let (m, status) = wire
        .extended(r#"select v from "dfs://pr"."t" order by v"#, "p", 2)
        .await;
    assert_eq!(tags(&m), "12DDs");
    assert_eq!(status, 'T');
    assert_eq!(tags(&wire.execute("p", 2).await.0), "DDs");
    let (m, _) = wire.execute("p", 2).await;
    assert_eq!(tags(&m), "DC");
    assert_eq!(m[1].command(), "SELECT 1");
    assert_eq!(wire.simple("commit").await.1, 'I');
}
