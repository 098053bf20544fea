//! COPY TO STDOUT and binary COPY FROM STDIN of a table whose partitions live on both data
//! nodes, through either node.

use bytes::Bytes;
use futures::{SinkExt, TryStreamExt};
use tokio_postgres::binary_copy::{BinaryCopyInWriter, BinaryCopyOutStream};
use tokio_postgres::types::{ToSql, Type};

use crate::common::cluster::{parquet_files_by_node, TestCluster};
use crate::{count, create_table, DB};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_binary_and_out_of_a_table_spread_over_two_nodes() {
    let cluster = TestCluster::builder().controllers(1).datanodes(2).build();
    let dn1 = cluster.client(0).await;
    let dn2 = cluster.client(1).await;
    create_table(&dn1).await;

    // Binary COPY through the second node: rows of every partition, on both nodes.
    let sink = dn2
        .copy_in(&format!(
            "copy {DB}.\"t\" (id, k, v) from stdin (format binary)"
        ))
        .await
        .unwrap();
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::INT4, Type::FLOAT8]);
    futures::pin_mut!(writer);
    for id in 0..5000i64 {
        let k = (id % 10) as i32;
        let v = id as f64 + 0.5;
        let row: [&(dyn ToSql + Sync); 3] = [&id, &k, &v];
        writer.as_mut().write(&row).await.unwrap();
    }
    assert_eq!(writer.finish().await.unwrap(), 5000);
    assert_eq!(count(&dn1).await.unwrap(), 5000);
    let files = parquet_files_by_node(&cluster);
    assert!(
        files.values().all(|n| *n > 0),
        "partitions are spread over both data nodes: {files:?}"
    );

    // COPY TO through the first node: every row once, in PostgreSQL's text format.
    let chunks: Vec<Bytes> = dn1
        .copy_out(&format!("copy {DB}.\"t\" to stdout"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let text = String::from_utf8(chunks.concat()).unwrap();
    let mut ids: Vec<i64> = text
        .lines()
        .map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            let id: i64 = fields[0].parse().unwrap();
            assert_eq!(fields[1], (id % 10).to_string(), "{l}");
            assert_eq!(fields[2], format!("{id}.5"), "{l}");
            id
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..5000).collect::<Vec<_>>());

    // A query's rows in binary through the second node.
    let stream = dn2
        .copy_out(&format!(
            "copy (select k, count(*) as n from {DB}.\"t\" group by k order by k) to stdout \
             (format binary)"
        ))
        .await
        .unwrap();
    let rows: Vec<_> = BinaryCopyOutStream::new(stream, &[Type::INT4, Type::INT8])
        .try_collect()
        .await
        .unwrap();
    let counts: Vec<(i32, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(counts, (0..10).map(|k| (k, 500)).collect::<Vec<_>>());

    // A binary COPY that fails at its last row leaves nothing on either node.
    let mut data = b"PGCOPY\n\xff\r\n\0".to_vec();
    data.extend_from_slice(&[0; 8]);
    for id in 5000..5100i64 {
        data.extend_from_slice(&3i16.to_be_bytes());
        data.extend_from_slice(&8i32.to_be_bytes());
        data.extend_from_slice(&id.to_be_bytes());
        data.extend_from_slice(&4i32.to_be_bytes());
        data.extend_from_slice(&((id % 10) as i32).to_be_bytes());
        data.extend_from_slice(&(-1i32).to_be_bytes());
    }
    data.extend_from_slice(&2i16.to_be_bytes());
    let sink = dn1
        .copy_in(&format!(
            "copy {DB}.\"t\" (id, k, v) from stdin (format binary)"
        ))
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(Bytes::from(data)).await.unwrap();
    let e = sink
        .as_mut()
        .finish()
        .await
        .expect_err("a bad row was accepted");
    assert_eq!(e.code().map(|c| c.code()), Some("22P04"), "{e:?}");
    assert_eq!(count(&dn1).await.unwrap(), 5000);
    assert_eq!(count(&dn2).await.unwrap(), 5000);
}
