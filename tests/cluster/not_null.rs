//! Columns declared NOT NULL in a table whose partitions are spread over both data nodes: a
//! query's plan unites this node's scan with the other node's, and both must declare the
//! table's columns as the table does, or DataFusion refuses aggregates over them. Every query
//! goes through each data node in turn, and a NULL into a NOT NULL column is still refused.

use tokio_postgres::Client;

use crate::common::cluster::{parquet_files_by_node, TestCluster};

const DB: &str = "\"dfs://nn\"";
const P: &str = "\"dfs://nn\".\"p\"";
const D: &str = "\"dfs://nn\".\"d\"";

/// Rows of `p`: k = 0..200, v = k % 5, w = k except every 7th, which is NULL.
const ROWS: i64 = 200;

async fn one_i64(client: &Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

async fn pairs(client: &Client, sql: &str) -> Vec<(i32, i64)> {
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_null_columns_work_in_queries_over_both_data_nodes() {
    let cluster = TestCluster::builder().controllers(1).datanodes(2).build();
    let dn1 = cluster.client(0).await;
    let dn2 = cluster.client(1).await;
    dn1.batch_execute(&format!(
        "create database {DB} partitioned by HASH([INT, 2]);
         create table {P}(k INT NOT NULL, v INT NOT NULL, w INT) partitioned by k;
         create table {D}(v INT NOT NULL, name STRING NOT NULL);"
    ))
    .await
    .expect("create the tables");
    let rows: Vec<String> = (0..ROWS)
        .map(|k| match k % 7 {
            0 => format!("({k}, {}, NULL)", k % 5),
            _ => format!("({k}, {}, {k})", k % 5),
        })
        .collect();
    dn2.batch_execute(&format!(
        "insert into {P} values {};
         insert into {D} values (0, 'zero'), (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four');",
        rows.join(",")
    ))
    .await
    .expect("insert the rows");
    let files = parquet_files_by_node(&cluster);
    assert!(
        files.values().filter(|n| **n > 0).count() == 2,
        "the partitions are on both data nodes: {files:?}"
    );

    let per_v: Vec<(i32, i64)> = (0..5).map(|v| (v, ROWS / 5)).collect();
    let sum_v: i64 = (0..ROWS).map(|k| k % 5).sum();
    let sum_w: i64 = (0..ROWS).filter(|k| k % 7 != 0).sum();
    let sum_k_v3: i64 = (0..ROWS).filter(|k| k % 5 == 3).sum();
    for client in [&dn1, &dn2] {
        assert_eq!(
            pairs(
                client,
                &format!("select v, count(*) from {D} group by v order by v")
            )
            .await,
            (0..5).map(|v| (v, 1)).collect::<Vec<_>>()
        );
        assert_eq!(
            pairs(
                client,
                &format!("select v, count(*) from {P} group by v order by v")
            )
            .await,
            per_v
        );
        assert_eq!(
            one_i64(client, &format!("select sum(v) from {P}")).await,
            sum_v
        );
        assert_eq!(
            one_i64(client, &format!("select sum(w) from {P}")).await,
            sum_w
        );
        assert_eq!(
            one_i64(client, &format!("select sum(k) from {P} where v = 3")).await,
            sum_k_v3
        );
        assert_eq!(
            pairs(
                client,
                &format!("select k, cast(v as bigint) from {P} where k < 3 and v >= 1 order by k")
            )
            .await,
            vec![(1, 1), (2, 2)]
        );
        // A join of the partitioned table with the dimension table, grouped on a NOT NULL
        // column of each.
        let joined = client
            .query(
                &format!(
                    "select d.name, count(*), sum(p.k) from {P} p join {D} d on p.v = d.v \
                     group by d.name order by d.name"
                ),
                &[],
            )
            .await
            .expect("join");
        let got: Vec<(String, i64, i64)> = joined
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let mut want: Vec<(String, i64, i64)> = ["zero", "one", "two", "three", "four"]
            .iter()
            .enumerate()
            .map(|(v, name)| {
                let ks = (0..ROWS).filter(|k| k % 5 == v as i64);
                (name.to_string(), ROWS / 5, ks.sum())
            })
            .collect();
        want.sort();
        assert_eq!(got, want);
        // A self-join across the two nodes' partitions.
        assert_eq!(
            one_i64(
                client,
                &format!("select count(*) from {P} a join {P} b on a.k = b.k + 1")
            )
            .await,
            ROWS - 1
        );

        // A NULL into a NOT NULL column is refused, whichever node owns its partition.
        for k in [1000, 1001] {
            let e = client
                .execute(&format!("insert into {P} values ({k}, NULL, 1)"), &[])
                .await
                .expect_err("a NULL into a NOT NULL column");
            let db = e.as_db_error().expect("an ErrorResponse");
            assert_eq!(db.code().code(), "23502", "{db:?}");
        }
        // The same in a multi-row VALUES through the simple protocol (psql's way), which
        // DataFusion plans with the table's nullability.
        let e = client
            .batch_execute(&format!(
                "insert into {P} values (1002, 1, 1), (1003, NULL, 1), (1004, 2, NULL)"
            ))
            .await
            .expect_err("a NULL into a NOT NULL column");
        let db = e.as_db_error().expect("an ErrorResponse");
        assert_eq!(db.code().code(), "23502", "{db:?}");
        assert!(db.message().contains("\"v\""), "{db:?}");
        // And bound as a parameter of a prepared INSERT.
        let e = client
            .execute(
                &format!("insert into {P} values ($1, $2, $3)"),
                &[&1005i32, &None::<i32>, &1i32],
            )
            .await
            .expect_err("a NULL parameter into a NOT NULL column");
        let db = e.as_db_error().expect("an ErrorResponse");
        assert_eq!(db.code().code(), "23502", "{db:?}");
    }
    assert_eq!(
        one_i64(&dn1, &format!("select count(*) from {P}")).await,
        ROWS
    );
}
