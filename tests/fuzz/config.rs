//! Configuration files, in process: random `key=value` files for every role
//! (`porpoise.cfg`, `controller.cfg`, `cluster.cfg`), random `cluster.nodes` files and whole
//! cluster directories on disk. Property: the parsers return a value or an error that names
//! the file, and never panic; a file made only of valid lines parses.

use std::path::Path;

use porpoise::config::cluster::{
    parse_nodes, ClusterConfig, ControllerFile, DataNodeFile, NodeRole,
};
use porpoise::config::{CfgFile, StandaloneFile};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::{check, runner};

/// Every key any role knows.
fn all_keys() -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = StandaloneFile::KEYS
        .iter()
        .chain(ControllerFile::KEYS)
        .chain(DataNodeFile::KEYS)
        .copied()
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// A value that parses for `key` (as `config/README.md` documents it).
fn valid_value(key: &'static str) -> BoxedStrategy<String> {
    let positive = (1u32..100_000).prop_map(|n| n.to_string()).boxed();
    let boolean = prop::sample::select(vec!["true", "false", "1", "0", "TRUE", "False"])
        .prop_map(str::to_owned)
        .boxed();
    match key {
        "home"
        | "dfsMetaDir"
        | "clusterReplicationWorkDir"
        | "clusterReplicationSSLCAFile"
        | "clusterReplicationSlaveCAFile" => "[a-z/._-]{1,30}".boxed(),
        "port" => any::<u16>().prop_map(|p| p.to_string()).boxed(),
        "listenHost" => prop::sample::select(vec!["127.0.0.1", "0.0.0.0", "::1", "::"])
            .prop_map(str::to_owned)
            .boxed(),
        "newValuePartitionPolicy" => prop::sample::select(vec!["add", "fail", "skip"])
            .prop_map(str::to_owned)
            .boxed(),
        "compactionMinFiles" => (2u32..1000).prop_map(|n| n.to_string()).boxed(),
        "snapshotRetentionSeconds" => any::<u64>().prop_map(|n| n.to_string()).boxed(),
        "mode" => Just("controller".to_owned()).boxed(),
        "dfsHAMode" => prop::sample::select(vec!["raft", "Raft"])
            .prop_map(str::to_owned)
            .boxed(),
        "clusterReplicationMasterCtl" => (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| format!("{}.{}.{}.{}:{port}", ip[0], ip[1], ip[2], ip[3]))
            .boxed(),
        "slaveReplicationDBScope" => prop::collection::vec("[A-Za-z0-9_]{1,8}", 1..4)
            .prop_map(|dbs| {
                dbs.iter()
                    .map(|d| format!("dfs://{d}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .boxed(),
        "clusterReplicationMode" => prop::sample::select(vec!["master", "slave"])
            .prop_map(str::to_owned)
            .boxed(),
        "clusterReplicationSyncPersistence"
        | "enableClusterReplicationSSL"
        | "enableHTTPS"
        | "insecure"
        | "pgwireSSLOnly"
        | "protectedMode" => boolean,
        "authenticationTimeout" => (1u32..=600).prop_map(|n| n.to_string()).boxed(),
        // GB; one query's share never above the node's.
        "maxMemSize" => (1u32..1000).prop_map(|n| n.to_string()).boxed(),
        "memLimitOfQueryResult" => (1u32..=100)
            .prop_map(|n| format!("{}", f64::from(n) / 100.0))
            .boxed(),
        "maxCopyLineSize" => (1u32..=1024).prop_map(|n| n.to_string()).boxed(),
        "clusterReplicationExecutionUsername" | "clusterReplicationExecutionPassword" => {
            "[A-Za-z0-9_]{1,12}".boxed()
        }
        "localSite" => "[a-z0-9.]{1,10}:[0-9]{1,5}:[a-z0-9]{1,8}".boxed(),
        "clusterReplicationPublicSites" => {
            let site = ("[a-z0-9.]{1,10}", any::<u16>(), "[a-z0-9]{1,8}")
                .prop_map(|(host, port, alias)| format!("{host}:{port}:{alias}"));
            prop::collection::vec(site, 1..4)
                .prop_map(|sites| sites.join(","))
                .boxed()
        }
        _ => positive,
    }
}

/// A value that may not parse: garbage, huge or negative numbers, odd unicode.
fn wild_value() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        "-?[0-9]{1,40}",
        Just("18446744073709551616".to_owned()),
        Just("-1".to_owned()),
        Just("0".to_owned()),
        Just("4294967296".to_owned()),
        Just("1e9".to_owned()),
        Just("0x10".to_owned()),
        Just("dfs://".to_owned()),
        Just(",,,".to_owned()),
        Just("999.999.999.999:99999".to_owned()),
        Just("[::1]:80".to_owned()),
        Just("true false".to_owned()),
        Just("a=b=c".to_owned()),
        "\\PC{0,20}",
        ".{0,40}",
    ]
    .boxed()
}

/// One line of a `key=value` file.
fn cfg_line() -> BoxedStrategy<String> {
    let keys = all_keys();
    let key = prop::sample::select(keys.clone());
    prop_oneof![
        4 => key.clone().prop_flat_map(|k| valid_value(k).prop_map(move |v| format!("{k}={v}"))),
        3 => (key.clone(), wild_value()).prop_map(|(k, v)| format!("{k}={v}")),
        1 => ("[A-Za-z]{1,12}", wild_value()).prop_map(|(k, v)| format!("{k}={v}")),
        1 => ("[ \t]{0,3}", key.clone(), "[ \t]{0,3}", "[ \t]{0,3}", wild_value(), " *#.{0,10}")
            .prop_map(|(a, k, b, c, v, comment)| format!("{a}{k}{b}={c}{v}{comment}")),
        1 => "#.{0,20}",
        1 => Just(String::new()),
        1 => Just("=value".to_owned()),
        1 => ".{0,30}",
        1 => "\\PC{0,30}",
    ]
    .boxed()
}

/// A file of lines joined by `\n` or `\r\n`, possibly without a final line break.
fn cfg_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(cfg_line(), 0..12),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(lines, crlf, trailing)| {
            let sep = if crlf { "\r\n" } else { "\n" };
            let mut text = lines.join(sep);
            if trailing {
                text.push_str(sep);
            }
            text
        })
}

/// A file of distinct keys of one role, each with a valid value.
fn valid_cfg(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::subsequence(keys.to_vec(), 0..=keys.len())
        .prop_flat_map(|keys| {
            keys.into_iter()
                .map(|k| valid_value(k).prop_map(move |v| format!("{k} = {v}")))
                .collect::<Vec<_>>()
        })
        .prop_map(|mut lines| {
            // insecure=true contradicts the TLS keys between clusters.
            if lines.iter().any(|l| l.starts_with("insecure ")) {
                lines.retain(|l| !l.starts_with("insecure "));
                lines.push("insecure = false".into());
            }
            lines.join("\n")
        })
}

/// An error's text names the file it is about.
fn names_file(e: &impl std::fmt::Display, path: &Path) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert!(
        text.contains(&path.display().to_string()),
        "error {text:?} does not name {}",
        path.display()
    );
    Ok(())
}

/// Parses `text` for every role; errors must name the file.
fn parse_every_role(text: &str) -> Result<(), TestCaseError> {
    let path = Path::new("fuzz/porpoise.cfg");
    match CfgFile::parse(path, text) {
        Err(e) => names_file(&e, path)?,
        Ok(file) => {
            if let Err(e) = StandaloneFile::from_file(&file) {
                names_file(&e, path)?;
            }
            if let Err(e) = ControllerFile::from_file(&file) {
                names_file(&e, path)?;
            }
            if let Err(e) = DataNodeFile::from_file(&file) {
                names_file(&e, path)?;
            }
        }
    }
    Ok(())
}

#[test]
fn random_key_value_files_parse_or_fail_cleanly() {
    check(&mut runner(2000), &cfg_text(), |text| {
        parse_every_role(&text)
    });
}

#[test]
fn valid_key_value_files_parse() {
    let path = Path::new("fuzz/x.cfg");
    check(&mut runner(300), &valid_cfg(StandaloneFile::KEYS), |text| {
        let file = CfgFile::parse(path, &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        StandaloneFile::from_file(&file).map_err(|e| TestCaseError::fail(e.to_string()))?;
        Ok(())
    });
    check(&mut runner(300), &valid_cfg(ControllerFile::KEYS), |text| {
        let file = CfgFile::parse(path, &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        ControllerFile::from_file(&file).map_err(|e| TestCaseError::fail(e.to_string()))?;
        Ok(())
    });
    check(&mut runner(300), &valid_cfg(DataNodeFile::KEYS), |text| {
        let file = CfgFile::parse(path, &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        DataNodeFile::from_file(&file).map_err(|e| TestCaseError::fail(e.to_string()))?;
        Ok(())
    });
}

/// A node of a valid `cluster.nodes`.
#[derive(Debug, Clone)]
struct Node {
    host: String,
    port: u16,
    alias: String,
    controller: bool,
}

impl Node {
    fn line(&self) -> String {
        let role = if self.controller {
            "controller"
        } else {
            "datanode"
        };
        format!("{}:{}:{},{role}", self.host, self.port, self.alias)
    }
}

/// A valid `cluster.nodes`: 1, 3 or 5 controllers, 1 to 4 data nodes, distinct aliases and
/// addresses.
fn valid_nodes() -> impl Strategy<Value = Vec<Node>> {
    (prop::sample::select(vec![1usize, 3, 5]), 1usize..5)
        .prop_flat_map(|(controllers, datanodes)| {
            let n = controllers + datanodes;
            (
                Just(controllers),
                prop::collection::hash_set("[a-z][a-z0-9_-]{0,7}", n),
                prop::collection::hash_set(1u16.., n),
                prop::sample::select(vec!["127.0.0.1", "localhost", "10.0.0.7"]),
            )
        })
        .prop_map(|(controllers, aliases, ports, host)| {
            aliases
                .into_iter()
                .zip(ports)
                .enumerate()
                .map(|(i, (alias, port))| Node {
                    host: host.to_owned(),
                    port,
                    alias,
                    controller: i < controllers,
                })
                .collect()
        })
}

/// One line of a mutated `cluster.nodes`.
fn nodes_line() -> BoxedStrategy<String> {
    prop_oneof![
        3 => ("[a-z0-9.]{0,12}", "[0-9]{0,7}", "[A-Za-z0-9_-]{0,8}",
              prop::sample::select(vec!["controller", "datanode", "data node", "agent", ""]))
            .prop_map(|(h, p, a, r)| format!("{h}:{p}:{a},{r}")),
        1 => Just("localSite,mode".to_owned()),
        1 => Just("127.0.0.1:8900:c1,controller".to_owned()),
        1 => Just("127.0.0.1:8902:d1,datanode".to_owned()),
        1 => Just("::1:8900:c1,controller".to_owned()),
        1 => Just("127.0.0.1:65536:c9,controller".to_owned()),
        1 => Just("127.0.0.1:8900:c1".to_owned()),
        1 => Just("127.0.0.1:8900:c1:x,controller".to_owned()),
        1 => "#.{0,10}",
        1 => ".{0,30}",
        1 => "\\PC{0,30}",
    ]
    .boxed()
}

#[test]
fn random_cluster_nodes_parse_or_fail_cleanly() {
    let path = Path::new("fuzz/cluster.nodes");
    let text = prop::collection::vec(nodes_line(), 0..10).prop_map(|l| l.join("\n"));
    check(&mut runner(2000), &text, |text| {
        if let Err(e) = parse_nodes(path, &text) {
            names_file(&e, path)?;
        }
        Ok(())
    });
}

#[test]
fn valid_cluster_nodes_parse_to_the_nodes_written() {
    let path = Path::new("fuzz/cluster.nodes");
    check(&mut runner(500), &valid_nodes(), |nodes| {
        let text: String = std::iter::once("localSite,mode".to_owned())
            .chain(nodes.iter().map(Node::line))
            .collect::<Vec<_>>()
            .join("\n");
        let parsed =
            parse_nodes(path, &text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(parsed.len(), nodes.len());
        for (p, n) in parsed.iter().zip(&nodes) {
            prop_assert_eq!(&p.alias, &n.alias);
            prop_assert_eq!(p.port, n.port);
            prop_assert_eq!(p.role == NodeRole::Controller, n.controller);
        }
        Ok(())
    });
}

#[test]
fn random_cluster_directories_load_or_fail_cleanly() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let files = (
        prop::option::of(cfg_text()),
        prop::option::of(prop::collection::vec(nodes_line(), 0..8).prop_map(|l| l.join("\n"))),
        prop::option::of(cfg_text()),
    );
    check(&mut runner(300), &files, |(controller, nodes, cluster)| {
        for (name, text) in [
            ("controller.cfg", &controller),
            ("cluster.nodes", &nodes),
            ("cluster.cfg", &cluster),
        ] {
            let path = dir.path().join(name);
            match text {
                Some(text) => std::fs::write(&path, text).expect("write a config file"),
                None => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        if let Err(e) = ClusterConfig::read_dir(dir.path()) {
            names_file(&e, dir.path())?;
        }
        Ok(())
    });
}

/// The binary itself, given bad files: it exits with an error naming the file, and does not
/// panic.
#[test]
fn the_binary_refuses_bad_config_files_without_panicking() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cfg = dir.path().join("cfg");
    std::fs::create_dir(&cfg).expect("create cfg/");
    let cluster = dir.path().join("cluster");
    std::fs::create_dir(&cluster).expect("create cluster/");
    for (file, text) in [
        ("porpoise.cfg", "port=99999\n"),
        ("porpoise.cfg", "listenHost=::x\n"),
        ("porpoise.cfg", "compactionMinFiles=1\n"),
        ("porpoise.cfg", "\u{feff}port=1\n"),
        ("porpoise.cfg", "home\n"),
        (
            "porpoise.cfg",
            "snapshotRetentionSeconds=18446744073709551616\n",
        ),
    ] {
        std::fs::write(cfg.join(file), text).expect("write the file");
        let stderr = refused(
            porpoise()
                .args(["standalone", "--port", "0", "--config"])
                .arg(&cfg)
                .arg("--home")
                .arg(dir.path().join("home")),
            text,
        );
        assert!(stderr.contains("porpoise.cfg"), "{text:?}: {stderr}");
    }
    for (controller, nodes) in [
        ("", "127.0.0.1:1:c1,controller\n"),
        ("", "127.0.0.1:1:c1,controller\n127.0.0.1:1:d1,datanode\n"),
        ("clusterReplicationQueue=0\n", "x"),
        (
            "",
            "127.0.0.1:1:c1,controller\n127.0.0.1:2:d1,datanode\n127.0.0.1:3:d1,datanode\n",
        ),
    ] {
        std::fs::write(cluster.join("controller.cfg"), controller).expect("write");
        std::fs::write(cluster.join("cluster.nodes"), nodes).expect("write");
        std::fs::write(cluster.join("cluster.cfg"), "").expect("write");
        refused(
            porpoise()
                .arg("up")
                .arg(&cluster)
                .arg("--home")
                .arg(dir.path().join("up-home")),
            nodes,
        );
    }
}

fn porpoise() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_porpoise"))
}

/// Runs `command`, which must fail without panicking; returns its stderr. `given` names the
/// input in assertion messages.
fn refused(command: &mut std::process::Command, given: &str) -> String {
    let out = command.output().expect("run porpoise");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{given:?} was accepted");
    assert!(!stderr.contains("panicked"), "{given:?}: {stderr}");
    stderr
}
