//! Transaction blocks over two data nodes: a block's rows, spread over both, appear at
//! COMMIT on both and for every table it wrote, or nowhere; after ROLLBACK or a disconnect
//! no node keeps a staged file; a participant killed while preparing takes the whole block
//! with it.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::SinkExt;

use crate::common::cluster::{parquet_files_by_node, TestCluster};
use crate::{count, create_table, ids, insert_rows, wait_for_count, DB};

async fn count_u(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(&format!("select count(*) from {DB}.\"u\""), &[])
        .await
        .expect("count u")
        .get(0)
}

/// Rows `from..to` of `u` through COPY (spread over every partition).
async fn copy_u(client: &tokio_postgres::Client, from: i64, to: i64) -> u64 {
    let data: String = (from..to).map(|i| format!("{i}\t{}\n", i % 10)).collect();
    let sink = client
        .copy_in(&format!("copy {DB}.\"u\" from stdin"))
        .await
        .expect("copy");
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from(data)).await.expect("send");
    sink.as_mut().finish().await.expect("finish")
}

fn files(cluster: &TestCluster) -> BTreeMap<String, usize> {
    parquet_files_by_node(cluster)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_over_two_data_nodes_commits_whole_or_leaves_nothing() {
    let mut cluster = TestCluster::builder().controllers(1).datanodes(2).build();
    let dn2_alias = cluster.datanodes()[1].clone();
    let dn1 = cluster.client(0).await;
    let dn2 = cluster.client(1).await;
    create_table(&dn1).await;
    dn1.batch_execute(&format!(
        "create table {DB}.\"u\"(id LONG, k INT) partitioned by k"
    ))
    .await
    .unwrap();
    dn1.batch_execute(&insert_rows(0, 10)).await.unwrap();
    let before = files(&cluster);

    // ROLLBACK: nothing on either node.
    dn1.batch_execute(&format!("begin; {}", insert_rows(10, 200)))
        .await
        .unwrap();
    assert_eq!(copy_u(&dn1, 0, 100).await, 100);
    dn1.batch_execute("rollback").await.unwrap();
    assert_eq!((count(&dn2).await.unwrap(), count_u(&dn2).await), (10, 0));
    cluster.wait_until("rolled back files removed", Duration::from_secs(30), || {
        files(&cluster) == before
    });

    // COMMIT: both tables, on both nodes, seen through the other node only afterwards.
    dn1.batch_execute(&format!("begin; {}", insert_rows(10, 200)))
        .await
        .unwrap();
    assert_eq!(copy_u(&dn1, 0, 100).await, 100);
    assert_eq!((count(&dn2).await.unwrap(), count_u(&dn2).await), (10, 0));
    dn1.batch_execute("commit").await.unwrap();
    assert_eq!(ids(&dn2).await, (0..200).collect());
    assert_eq!(count_u(&dn2).await, 100);
    let committed = files(&cluster);
    assert!(
        committed.values().all(|n| *n > 0),
        "the block's rows are on both nodes: {committed:?}"
    );

    // A disconnect mid-block: nothing stays, on either node.
    let writer = cluster.client(0).await;
    writer
        .batch_execute(&format!("begin; {}", insert_rows(200, 300)))
        .await
        .unwrap();
    copy_u(&writer, 100, 200).await;
    drop(writer);
    cluster.wait_until(
        "disconnected block's files removed",
        Duration::from_secs(30),
        || files(&cluster) == committed,
    );
    assert_eq!(
        (count(&dn2).await.unwrap(), count_u(&dn2).await),
        (200, 100)
    );

    // A participant dies after preparing its share: neither table gets any of the block.
    cluster.kill9(&dn2_alias);
    cluster.start_with_env(&dn2_alias, &[("PORPOISE_CRASH_AT", "participant-prepared")]);
    let coordinator = cluster.client(0).await;
    coordinator
        .batch_execute(&format!("begin; {}", insert_rows(300, 400)))
        .await
        .unwrap();
    copy_u(&coordinator, 200, 300).await;
    coordinator
        .batch_execute("commit")
        .await
        .expect_err("a participant crashed while preparing");
    cluster.kill9(&dn2_alias);
    cluster.start(&dn2_alias);
    let dn2 = cluster.client(1).await;
    wait_for_count(&dn2, 200).await;
    assert_eq!(ids(&dn2).await, (0..200).collect());
    assert_eq!(count_u(&dn2).await, 100);
    cluster.wait_until("aborted files removed", Duration::from_secs(30), || {
        files(&cluster) == committed
    });
}
