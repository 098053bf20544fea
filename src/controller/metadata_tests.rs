//! The metadata's transitions: commands applied to a state, as every replica applies them.

use super::*;
use crate::catalog::ColumnType;

fn user(name: &str, is_admin: bool) -> UserMeta {
    UserMeta {
        name: name.to_string(),
        secret: ScramSecret::from_salted_password(vec![1], 1, &[2]),
        is_admin,
        privileges: BTreeMap::new(),
    }
}

fn database(name: &str, owner: &str) -> Command {
    Command::CreateDatabase {
        def: DatabaseDef {
            name: name.to_string(),
            id: 0,
            levels: vec![PartitionLevel::Value {
                key_type: ColumnType::Int,
                values: BTreeSet::new(),
            }],
            engine: "OLAP".to_string(),
            owner: owner.to_string(),
            created_ms: 0,
            placement: Vec::new(),
        },
        if_not_exists: false,
    }
}

fn privs(ps: &[Privilege]) -> BTreeSet<Privilege> {
    ps.iter().copied().collect()
}

fn grant(user: &str, db: &str, ps: &[Privilege]) -> Command {
    Command::Grant {
        user: user.to_string(),
        db: db.to_string(),
        privileges: privs(ps),
    }
}

fn revoke(user: &str, db: &str, ps: &[Privilege]) -> Command {
    Command::Revoke {
        user: user.to_string(),
        db: db.to_string(),
        privileges: privs(ps),
    }
}

/// admin, alice, bob; `dfs://a` owned by admin, `dfs://b` owned by bob.
fn metadata() -> Metadata {
    let mut m = Metadata::default();
    for cmd in [
        Command::CreateUser {
            user: user("admin", true),
            if_not_exists: false,
        },
        Command::CreateUser {
            user: user("alice", false),
            if_not_exists: false,
        },
        Command::CreateUser {
            user: user("bob", false),
            if_not_exists: false,
        },
        database("dfs://a", "admin"),
        database("dfs://b", "bob"),
    ] {
        assert_eq!(m.apply(&cmd), CommandResult::Ok, "{cmd:?}");
    }
    m
}

fn held(m: &Metadata, user: &str) -> BTreeMap<String, BTreeSet<Privilege>> {
    m.users[user].privileges.clone()
}

fn is_denied(r: Result<(), MetadataError>) -> bool {
    matches!(r, Err(MetadataError::PermissionDenied { .. }))
}

#[test]
fn grant_and_revoke_change_only_the_named_database() {
    let mut m = metadata();
    assert_eq!(
        m.apply(&grant("alice", "dfs://a", &[Privilege::Read])),
        CommandResult::Ok
    );
    assert_eq!(
        m.apply(&grant(
            "alice",
            "dfs://a",
            &[Privilege::Write, Privilege::Read]
        )),
        CommandResult::Ok
    );
    assert_eq!(
        m.apply(&grant("alice", ALL_DATABASES, &[Privilege::Read])),
        CommandResult::Ok
    );
    assert_eq!(
        held(&m, "alice"),
        BTreeMap::from([
            ("*".to_string(), privs(&[Privilege::Read])),
            (
                "dfs://a".to_string(),
                privs(&[Privilege::Read, Privilege::Write])
            ),
        ])
    );
    // Revoking on a database leaves `*` alone; revoking what is not held is a no-op.
    assert_eq!(
        m.apply(&revoke(
            "alice",
            "dfs://a",
            &[Privilege::Read, Privilege::Ddl]
        )),
        CommandResult::Ok
    );
    assert_eq!(
        m.apply(&revoke("alice", "dfs://b", &[Privilege::Read])),
        CommandResult::Ok
    );
    assert_eq!(
        held(&m, "alice"),
        BTreeMap::from([
            ("*".to_string(), privs(&[Privilege::Read])),
            ("dfs://a".to_string(), privs(&[Privilege::Write])),
        ])
    );
    // The last privilege on a database removes its entry.
    m.apply(&revoke("alice", "dfs://a", &Privilege::ALL));
    assert!(!held(&m, "alice").contains_key("dfs://a"));
    assert!(held(&m, "bob").is_empty());
}

#[test]
fn grant_needs_an_existing_user_and_database() {
    let mut m = metadata();
    let before = m.clone();
    assert_eq!(
        m.apply(&grant("nobody", "dfs://a", &[Privilege::Read])),
        CommandResult::Err(MetadataError::UserNotFound("nobody".into()))
    );
    assert_eq!(
        m.apply(&grant("alice", "dfs://nosuch", &[Privilege::Read])),
        CommandResult::Err(MetadataError::DatabaseNotFound("dfs://nosuch".into()))
    );
    assert_eq!(
        m.apply(&revoke("alice", "dfs://nosuch", &[Privilege::Read])),
        CommandResult::Err(MetadataError::DatabaseNotFound("dfs://nosuch".into()))
    );
    assert_eq!(
        m.apply(&revoke("nobody", ALL_DATABASES, &[Privilege::Read])),
        CommandResult::Err(MetadataError::UserNotFound("nobody".into()))
    );
    assert_eq!(m, before);
}

#[test]
fn dropping_a_database_or_a_user_drops_their_grants() {
    let mut m = metadata();
    m.apply(&grant("alice", "dfs://a", &[Privilege::Read]));
    m.apply(&grant("alice", "dfs://b", &[Privilege::Read]));
    m.apply(&Command::DropDatabase {
        name: "dfs://a".into(),
        if_exists: false,
    });
    assert_eq!(
        held(&m, "alice"),
        BTreeMap::from([("dfs://b".to_string(), privs(&[Privilege::Read]))])
    );
    // A new database of the same name starts without the old grants.
    m.apply(&database("dfs://a", "admin"));
    assert!(is_denied(m.check_privilege(
        "alice",
        "dfs://a",
        Privilege::Read
    )));

    m.apply(&Command::DropUser {
        name: "alice".into(),
        if_exists: false,
    });
    m.apply(&Command::CreateUser {
        user: user("alice", false),
        if_not_exists: false,
    });
    assert!(held(&m, "alice").is_empty());
    assert!(is_denied(m.check_privilege(
        "alice",
        "dfs://b",
        Privilege::Read
    )));
}

#[test]
fn grants_survive_a_snapshot_and_old_snapshots_have_none() {
    let mut m = metadata();
    m.apply(&grant("alice", ALL_DATABASES, &[Privilege::Ddl]));
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(serde_json::from_str::<Metadata>(&json).unwrap(), m);
    // A user record written before privileges existed.
    let old =
        r#"{"name":"carol","salt":[1],"iterations":1,"salted_password":[2],"is_admin":false}"#;
    let carol: UserMeta = serde_json::from_str(old).unwrap();
    assert!(carol.privileges.is_empty());
}

#[test]
fn admins_pass_everything() {
    let m = metadata();
    for p in Privilege::ALL {
        assert_eq!(m.check_privilege("admin", "dfs://b", p), Ok(()));
        assert_eq!(m.check_privilege("admin", ALL_DATABASES, p), Ok(()));
        assert_eq!(m.check_privilege("admin", "dfs://nosuch", p), Ok(()));
    }
}

#[test]
fn owners_hold_every_privilege_on_their_database_only() {
    let m = metadata();
    for p in Privilege::ALL {
        assert_eq!(m.check_privilege("bob", "dfs://b", p), Ok(()));
        assert!(is_denied(m.check_privilege("bob", "dfs://a", p)));
    }
    // Owning a database does not allow creating others.
    assert!(is_denied(m.check_privilege(
        "bob",
        ALL_DATABASES,
        Privilege::Ddl
    )));
}

#[test]
fn others_need_a_grant_on_the_database_or_on_all() {
    let mut m = metadata();
    assert_eq!(
        m.check_privilege("alice", "dfs://a", Privilege::Read),
        Err(MetadataError::PermissionDenied {
            user: "alice".into(),
            privilege: Privilege::Read,
            db: "dfs://a".into()
        })
    );
    m.apply(&grant("alice", "dfs://a", &[Privilege::Read]));
    assert_eq!(
        m.check_privilege("alice", "dfs://a", Privilege::Read),
        Ok(())
    );
    assert!(is_denied(m.check_privilege(
        "alice",
        "dfs://a",
        Privilege::Write
    )));
    assert!(is_denied(m.check_privilege(
        "alice",
        "dfs://b",
        Privilege::Read
    )));

    m.apply(&grant("alice", ALL_DATABASES, &[Privilege::Write]));
    assert_eq!(
        m.check_privilege("alice", "dfs://a", Privilege::Write),
        Ok(())
    );
    assert_eq!(
        m.check_privilege("alice", "dfs://b", Privilege::Write),
        Ok(())
    );
    assert!(is_denied(m.check_privilege(
        "alice",
        "dfs://b",
        Privilege::Read
    )));
    // CREATE DATABASE asks for DDL on `*`; a grant on one database is not enough.
    m.apply(&grant("alice", "dfs://a", &[Privilege::Ddl]));
    assert!(is_denied(m.check_privilege(
        "alice",
        ALL_DATABASES,
        Privilege::Ddl
    )));
    m.apply(&grant("alice", ALL_DATABASES, &[Privilege::Ddl]));
    assert_eq!(
        m.check_privilege("alice", ALL_DATABASES, Privilege::Ddl),
        Ok(())
    );
}

#[test]
fn unknown_databases_and_users() {
    let m = metadata();
    assert_eq!(
        m.check_privilege("alice", "dfs://nosuch", Privilege::Read),
        Err(MetadataError::DatabaseNotFound("dfs://nosuch".into()))
    );
    assert!(is_denied(m.check_privilege(
        "nobody",
        "dfs://a",
        Privilege::Read
    )));
}

fn commit(tid: u64, ended: Vec<u64>) -> Command {
    Command::CommitTxn {
        tid,
        tables: vec![],
        participants: vec![7],
        task: None,
        applies: None,
        seeded: None,
        ended,
        with: vec![],
    }
}

#[test]
fn transactions_begun_ahead_are_active_until_committed_ended_or_aborted() {
    let mut m = Metadata::default();
    let begin = |count| Command::BeginTxn {
        coordinator: 7,
        now_ms: 0,
        ended: vec![],
        count,
    };
    assert_eq!(m.apply(&begin(4)), CommandResult::Tid(1));
    assert_eq!(m.last_tid, 4);
    assert!((1..=4).all(|t| m.txns[&t].state == TxnState::Active));
    // An old entry without a count begins one.
    assert_eq!(m.apply(&begin(0)), CommandResult::Tid(5));

    assert!(matches!(
        m.apply(&commit(2, vec![])),
        CommandResult::Committed { .. }
    ));
    assert_eq!(m.txns[&2].state, TxnState::Committed);
    // The next commit carries the ended one along.
    assert!(matches!(
        m.apply(&commit(1, vec![2])),
        CommandResult::Committed { .. }
    ));
    assert!(!m.txns.contains_key(&2));
    assert_eq!(m.txns[&1].state, TxnState::Committed);

    // The coordinator restarted: the ids it had not used are aborted with the rest.
    m.apply(&Command::AbortCoordinatorTxns { coordinator: 7 });
    assert_eq!(m.txns.keys().copied().collect::<Vec<_>>(), vec![1]);
    assert_eq!(
        m.apply(&commit(3, vec![])),
        CommandResult::Err(MetadataError::TxnNotActive(3))
    );
}

/// Fields renamed to say which index they hold keep the names older builds wrote and read:
/// snapshots and the change feed (`version`), client sessions and `ctl.write` replies.
#[test]
fn indexes_keep_their_serialised_names() {
    let mut m = Metadata {
        applied_index: 7,
        ..Metadata::default()
    };
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["version"], 7, "{json}");
    let read: Metadata = serde_json::from_value(json).unwrap();
    assert_eq!(read.applied_index, 7);

    let committed = CommandResult::Committed {
        commit_index: 9,
        task: None,
        tasks: vec![],
    };
    let json = serde_json::to_string(&committed).unwrap();
    assert_eq!(json, r#"{"Committed":{"version":9,"task":null}}"#);
    let reply = crate::controller::service::WriteReply {
        result: committed,
        log_index: 9,
    };
    let json = serde_json::to_value(&reply).unwrap();
    assert_eq!(json["version"], 9, "{json}");

    // An applied index read back from a snapshot is what a view reports.
    m.applied_index = 11;
    assert_eq!(
        super::super::view::MetadataView::from(m).applied_index(),
        11
    );
}

/// A transaction block's commit: one entry commits several transactions, all or none.
#[test]
fn one_commit_entry_commits_all_its_transactions_or_none() {
    let mut m = Metadata::default();
    m.apply(&Command::BeginTxn {
        coordinator: 7,
        now_ms: 0,
        ended: vec![],
        count: 4,
    });
    let part = |tid| TxnPart {
        tid,
        tables: vec![],
        participants: vec![7],
        task: None,
    };
    let with = |tid, parts| match commit(tid, vec![]) {
        Command::CommitTxn {
            tid,
            tables,
            participants,
            task,
            applies,
            seeded,
            ended,
            ..
        } => Command::CommitTxn {
            tid,
            tables,
            participants,
            task,
            applies,
            seeded,
            ended,
            with: parts,
        },
        _ => unreachable!(),
    };
    // Transaction 2 is not active (it is refused alone first): the entry commits neither,
    // and forgets 1 too.
    m.apply(&Command::AbortTxn { tid: 2 });
    assert_eq!(
        m.apply(&with(1, vec![part(2)])),
        CommandResult::Err(MetadataError::TxnNotActive(2))
    );
    assert!(!m.txns.contains_key(&1) && !m.txns.contains_key(&2));

    let r = m.apply(&with(3, vec![part(4)]));
    assert!(
        matches!(&r, CommandResult::Committed { tasks, .. } if tasks == &vec![None]),
        "{r:?}"
    );
    assert_eq!(m.txns[&3].state, TxnState::Committed);
    assert_eq!(m.txns[&4].state, TxnState::Committed);
    assert_eq!(m.txns[&3].committed_at, m.txns[&4].committed_at);

    // A single commit serialises without the new field, and an entry without it reads back.
    let json = serde_json::to_value(commit(5, vec![])).unwrap();
    assert!(json["CommitTxn"].get("with").is_none(), "{json}");
    let read: Command = serde_json::from_value(json).unwrap();
    assert_eq!(read, commit(5, vec![]));
}
