//! The real `psql` against a real server: the meta-commands users type first (`\l \dn \dt \d
//! \d+ \du`), also as a user without privileges, errors from `psql -c`, and logging in as users
//! made with CREATE/ALTER/DROP USER, and `\copy ... to` a file.
//!
//! psql runs with `-X -A` (no psqlrc, unaligned `|`-separated output) so lines can be matched
//! exactly. The password travels in the child's `PGPASSWORD`. If psql is not installed the tests
//! say so and pass without checking anything; CI installs it.

#[path = "../common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use common::{TestServer, ADMIN_PASSWORD, ADMIN_USER};

/// A psql that has not finished after this long is killed and the test fails (server hung).
const PSQL_TIMEOUT: Duration = Duration::from_secs(60);

/// Where psql is: `/usr/bin/psql`, or the first `psql` on PATH.
fn psql_path() -> Option<PathBuf> {
    let default = PathBuf::from("/usr/bin/psql");
    if default.is_file() {
        return Some(default);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("psql"))
            .find(|p| p.is_file())
    })
}

/// Returns psql's path, or prints why the test is skipped.
fn psql_or_skip(test: &str) -> Option<PathBuf> {
    let path = psql_path();
    if path.is_none() {
        eprintln!("SKIPPED {test}: psql is not installed (apt-get install postgresql-client)");
    }
    path
}

/// What one psql run printed.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless psql succeeded.
    fn expect_ok(self, what: &str) -> Run {
        assert!(
            self.ok,
            "{what}: psql failed\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        );
        self
    }

    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// The output line whose first fields are `fields` (joined by `|`), if any.
    fn row(&self, fields: &[&str]) -> Option<&str> {
        let prefix = format!("{}|", fields.join("|"));
        self.stdout
            .lines()
            .find(|l| l.starts_with(&prefix) || *l == fields.join("|"))
    }
}

/// psql as `user` with `commands` (each one `-c`), in unaligned output, from a clean
/// environment (no service file, no `PGSSLMODE`: a caller may set its own).
fn psql_command(
    psql: &PathBuf,
    server: &TestServer,
    user: &str,
    password: &str,
    commands: &[&str],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(psql);
    cmd.args(["-X", "-A", "-P", "pager=off", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", "127.0.0.1", "-p", &server.port().to_string()])
        .args(["-U", user, "-d", "porpoise"])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "30")
        .env_remove("PGSERVICE")
        .env_remove("PGSSLMODE")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for c in commands {
        cmd.arg("-c").arg(c);
    }
    cmd
}

/// Runs a psql command, with a deadline.
async fn run_psql(mut cmd: tokio::process::Command) -> Run {
    match tokio::time::timeout(PSQL_TIMEOUT, cmd.output()).await {
        Ok(output) => Run::from(output.expect("run psql")),
        Err(_) => panic!("psql {cmd:?} did not finish within {PSQL_TIMEOUT:?}"),
    }
}

/// Runs psql as `user` with `commands` (each one `-c`), in unaligned output.
async fn psql_as(
    psql: &PathBuf,
    server: &TestServer,
    user: &str,
    password: &str,
    commands: &[&str],
) -> Run {
    run_psql(psql_command(psql, server, user, password, commands)).await
}

async fn psql(psql: &PathBuf, server: &TestServer, commands: &[&str]) -> Run {
    psql_as(psql, server, ADMIN_USER, ADMIN_PASSWORD, commands).await
}

/// A server with two databases: `dfs://md` (a partitioned table and a dimension table) and
/// `dfs://md2` (one table).
async fn server_with_tables() -> TestServer {
    let server = tokio::task::spawn_blocking(TestServer::start)
        .await
        .expect("start the server");
    let client = server.client().await;
    client
        .batch_execute(
            r#"create database "dfs://md" partitioned by VALUE(2023.01.01..2023.01.31);
               create table "dfs://md"."bars"(SecurityID SYMBOL, DateTime DATETIME, Price DOUBLE,
                   Volume INT, Amount LONG, Flag BOOL, Lot SHORT, Ratio FLOAT, TradeDate DATE)
                   partitioned by TradeDate;
               create table "dfs://md"."info"(id int4, big bigint, name text, price float8,
                   day date, at timestamp, amount numeric(10,2), raw bytea, ok bool);
               create database "dfs://md2" partitioned by RANGE(0 10 20);
               create table "dfs://md2"."other"(k INT) partitioned by k;"#,
        )
        .await
        .expect("create the test databases");
    server
}

#[tokio::test]
async fn backslash_l_lists_the_porpoise_database() {
    let Some(psql_bin) = psql_or_skip("backslash_l_lists_the_porpoise_database") else {
        return;
    };
    let server = tokio::task::spawn_blocking(TestServer::start)
        .await
        .unwrap();
    let run = psql(&psql_bin, &server, &[r"\l"]).await.expect_ok(r"\l");
    assert!(
        run.row(&["porpoise"]).is_some(),
        "\\l does not list porpoise:\n{}",
        run.stdout
    );
}

#[tokio::test]
async fn backslash_dn_lists_the_dfs_databases() {
    let Some(psql_bin) = psql_or_skip("backslash_dn_lists_the_dfs_databases") else {
        return;
    };
    let server = server_with_tables().await;
    let run = psql(&psql_bin, &server, &[r"\dn"]).await.expect_ok(r"\dn");
    for db in ["dfs://md", "dfs://md2"] {
        let row = run
            .row(&[db])
            .unwrap_or_else(|| panic!("\\dn does not list {db}:\n{}", run.stdout));
        // The owner is the user who created the database; there is no "postgres" role here.
        assert_eq!(row, format!("{db}|admin"), "\\dn row of {db}");
    }
}

#[tokio::test]
async fn backslash_dt_lists_the_tables() {
    let Some(psql_bin) = psql_or_skip("backslash_dt_lists_the_tables") else {
        return;
    };
    let server = server_with_tables().await;
    let run = psql(&psql_bin, &server, &[r"\dt"]).await.expect_ok(r"\dt");
    for (db, table) in [
        ("dfs://md", "bars"),
        ("dfs://md", "info"),
        ("dfs://md2", "other"),
    ] {
        assert!(
            run.row(&[db, table, "table"]).is_some(),
            "\\dt does not list {db}.{table}:\n{}",
            run.stdout
        );
    }
    // A pattern restricts the list to one database.
    let run = psql(&psql_bin, &server, &[r#"\dt "dfs://md2".*"#])
        .await
        .expect_ok(r"\dt pattern");
    assert!(
        run.row(&["dfs://md2", "other", "table"]).is_some(),
        "{}",
        run.stdout
    );
    assert!(
        run.row(&["dfs://md", "bars", "table"]).is_none(),
        "{}",
        run.stdout
    );
    // A dropped table disappears.
    psql(&psql_bin, &server, &[r#"drop table "dfs://md2"."other""#])
        .await
        .expect_ok("drop table");
    let run = psql(&psql_bin, &server, &[r"\dt"]).await.expect_ok(r"\dt");
    assert!(
        run.row(&["dfs://md2", "other", "table"]).is_none(),
        "{}",
        run.stdout
    );
}

/// The `Type` column of `\d` for each column of a table, in order.
fn described_types(run: &Run) -> Vec<(String, String)> {
    run.lines()
        .iter()
        .skip_while(|l| !l.starts_with("Column|Type"))
        .skip(1)
        .take_while(|l| !l.starts_with('('))
        .filter_map(|l| {
            let mut fields = l.split('|');
            Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
        })
        .collect()
}

#[tokio::test]
async fn backslash_d_shows_postgres_type_names() {
    let Some(psql_bin) = psql_or_skip("backslash_d_shows_postgres_type_names") else {
        return;
    };
    let server = server_with_tables().await;

    let run = psql(&psql_bin, &server, &[r#"\d "dfs://md"."bars""#])
        .await
        .expect_ok(r"\d bars");
    assert!(
        run.stdout.contains(r#"Table "dfs://md.bars""#),
        "no table title:\n{}",
        run.stdout
    );
    let types = described_types(&run);
    let names: Vec<&str> = types.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        names,
        [
            "SecurityID",
            "DateTime",
            "Price",
            "Volume",
            "Amount",
            "Flag",
            "Lot",
            "Ratio",
            "TradeDate"
        ],
        "\\d columns:\n{}",
        run.stdout
    );
    let type_of = |col: &str| {
        types
            .iter()
            .find(|(c, _)| c == col)
            .map(|(_, t)| t.as_str())
            .unwrap_or_default()
    };
    assert_eq!(type_of("SecurityID"), "text", "{}", run.stdout);
    assert!(
        type_of("DateTime").starts_with("timestamp")
            && type_of("DateTime").ends_with("without time zone"),
        "DATETIME is shown as {:?}",
        type_of("DateTime")
    );
    assert_eq!(type_of("Price"), "double precision");
    assert_eq!(type_of("Volume"), "integer");
    assert_eq!(type_of("Amount"), "bigint");
    assert_eq!(type_of("Flag"), "boolean");
    assert_eq!(type_of("Lot"), "smallint");
    assert_eq!(type_of("Ratio"), "real");
    assert_eq!(type_of("TradeDate"), "date");

    let run = psql(&psql_bin, &server, &[r#"\d "dfs://md"."info""#])
        .await
        .expect_ok(r"\d info");
    let types = described_types(&run);
    let expected = [
        ("id", "integer"),
        ("big", "bigint"),
        ("name", "text"),
        ("price", "double precision"),
        ("day", "date"),
        ("at", "timestamp without time zone"),
        // The pg_catalog emulation does not report type modifiers yet: numeric(10,2) shows as
        // numeric.
        ("amount", "numeric"),
        ("raw", "bytea"),
        ("ok", "boolean"),
    ];
    let got: Vec<(&str, &str)> = types
        .iter()
        .map(|(c, t)| (c.as_str(), t.as_str()))
        .collect();
    assert_eq!(got, expected, "\\d info:\n{}", run.stdout);
}

#[tokio::test]
async fn backslash_du_lists_the_users() {
    let Some(psql_bin) = psql_or_skip("backslash_du_lists_the_users") else {
        return;
    };
    let server = tokio::task::spawn_blocking(TestServer::start)
        .await
        .unwrap();
    let run = psql(&psql_bin, &server, &[r"\du"]).await.expect_ok(r"\du");
    let admin = run
        .row(&["admin"])
        .unwrap_or_else(|| panic!("\\du does not list admin:\n{}", run.stdout));
    assert!(
        admin.contains("Superuser"),
        "admin is not a superuser: {admin}"
    );

    psql(
        &psql_bin,
        &server,
        &["create user alice with password 'secret'"],
    )
    .await
    .expect_ok("create user");
    let run = psql(&psql_bin, &server, &[r"\du"]).await.expect_ok(r"\du");
    let alice = run
        .row(&["alice"])
        .unwrap_or_else(|| panic!("\\du does not list alice:\n{}", run.stdout));
    assert!(
        !alice.contains("Superuser"),
        "alice is a superuser: {alice}"
    );
}

#[tokio::test]
async fn psql_c_with_a_bad_statement_fails_with_the_error() {
    let Some(psql_bin) = psql_or_skip("psql_c_with_a_bad_statement_fails_with_the_error") else {
        return;
    };
    let server = server_with_tables().await;

    let run = psql(&psql_bin, &server, &["selec 1"]).await;
    assert!(!run.ok, "psql -c 'selec 1' exited 0:\n{}", run.stdout);
    assert!(
        run.stderr.contains("ERROR:") && run.stderr.contains("selec"),
        "stderr: {}",
        run.stderr
    );

    let run = psql(
        &psql_bin,
        &server,
        &[r#"select * from "dfs://md"."nosuch""#],
    )
    .await;
    assert!(!run.ok, "selecting a missing table exited 0");
    assert!(run.stderr.contains("nosuch"), "stderr: {}", run.stderr);

    // With VERBOSITY=verbose psql prints the SQLSTATE.
    let run = psql(
        &psql_bin,
        &server,
        &[
            r"\set VERBOSITY verbose",
            r#"select nosuch from "dfs://md"."bars""#,
        ],
    )
    .await;
    assert!(!run.ok);
    assert!(run.stderr.contains("42703"), "stderr: {}", run.stderr);

    // A good statement after a failed run works, and its output is what was asked for.
    let run = psql(&psql_bin, &server, &["select 40 + 2 as answer"])
        .await
        .expect_ok("select");
    assert_eq!(run.lines(), ["answer", "42", "(1 row)"]);
}

#[tokio::test]
async fn users_log_in_with_their_current_password() {
    let Some(psql_bin) = psql_or_skip("users_log_in_with_their_current_password") else {
        return;
    };
    let server = tokio::task::spawn_blocking(TestServer::start)
        .await
        .unwrap();
    // Every step is checked and all problems are reported together.
    let mut problems = Vec::new();
    psql(
        &psql_bin,
        &server,
        &["create user alice with password 'first'"],
    )
    .await
    .expect_ok("create user");

    let run = psql_as(&psql_bin, &server, "alice", "first", &["select 42"]).await;
    if run.lines() != ["?column?", "42", "(1 row)"] {
        problems.push(format!(
            "alice cannot log in and query: {}{}",
            run.stdout, run.stderr
        ));
    }

    let run = psql_as(&psql_bin, &server, "alice", "wrong", &["select 1"]).await;
    if run.ok {
        problems.push("a wrong password was accepted".to_owned());
    } else if !run
        .stderr
        .to_lowercase()
        .contains("password authentication failed for user")
    {
        problems.push(format!(
            "a wrong password is refused with an unexpected message: {}",
            run.stderr.trim()
        ));
    }

    psql(
        &psql_bin,
        &server,
        &["alter user alice with password 'second'"],
    )
    .await
    .expect_ok("alter user");
    let run = psql_as(&psql_bin, &server, "alice", "second", &["select 1"]).await;
    if !run.ok {
        problems.push(format!(
            "after ALTER USER the new password is refused: {}",
            run.stderr.trim()
        ));
    }
    let run = psql_as(&psql_bin, &server, "alice", "first", &["select 1"]).await;
    if run.ok {
        problems.push("after ALTER USER the old password still works".to_owned());
    }

    psql(&psql_bin, &server, &["drop user alice"])
        .await
        .expect_ok("drop user");
    for password in ["first", "second"] {
        let run = psql_as(&psql_bin, &server, "alice", password, &["select 1"]).await;
        if run.ok {
            problems.push(format!("the dropped user logs in with {password:?}"));
        }
    }

    let run = psql_as(&psql_bin, &server, "nobody", "x", &["select 1"]).await;
    if run.ok {
        problems.push("an unknown user logged in".to_owned());
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn current_user_is_the_user_who_logged_in() {
    let Some(psql_bin) = psql_or_skip("current_user_is_the_user_who_logged_in") else {
        return;
    };
    let server = tokio::task::spawn_blocking(TestServer::start)
        .await
        .unwrap();
    let run = psql(&psql_bin, &server, &["select current_user"])
        .await
        .expect_ok("select current_user");
    // The value is what matters; the column is named session_user here (PostgreSQL names it
    // current_user).
    assert_eq!(run.lines()[1..], ["admin", "(1 row)"]);

    psql(
        &psql_bin,
        &server,
        &["create user alice with password 'pw'"],
    )
    .await
    .expect_ok("create user");
    let run = psql_as(&psql_bin, &server, "alice", "pw", &["select current_user"])
        .await
        .expect_ok("alice logs in");
    assert_eq!(run.lines()[1..], ["alice", "(1 row)"]);
}

#[tokio::test]
async fn meta_commands_work_for_a_user_without_privileges() {
    let Some(psql_bin) = psql_or_skip("meta_commands_work_for_a_user_without_privileges") else {
        return;
    };
    let server = server_with_tables().await;
    psql(
        &psql_bin,
        &server,
        &["create user alice with password 'pw'"],
    )
    .await
    .expect_ok("create user");
    // The catalog is readable by everyone; the tables are not.
    let run = psql_as(&psql_bin, &server, "alice", "pw", &[r"\l"])
        .await
        .expect_ok(r"\l as alice");
    assert!(run.row(&["porpoise"]).is_some(), "{}", run.stdout);
    let run = psql_as(&psql_bin, &server, "alice", "pw", &[r"\dn"])
        .await
        .expect_ok(r"\dn as alice");
    assert!(run.row(&["dfs://md2"]).is_some(), "{}", run.stdout);
    let run = psql_as(&psql_bin, &server, "alice", "pw", &[r"\dt"])
        .await
        .expect_ok(r"\dt as alice");
    assert!(
        run.row(&["dfs://md", "bars", "table"]).is_some(),
        "{}",
        run.stdout
    );
    let run = psql_as(
        &psql_bin,
        &server,
        "alice",
        "pw",
        &[r#"select count(*) from "dfs://md"."bars""#],
    )
    .await;
    assert!(
        !run.ok && run.stderr.contains("permission denied"),
        "{}{}",
        run.stdout,
        run.stderr
    );
}

#[tokio::test]
async fn with_enable_https_psql_verifies_the_servers_certificate_and_encrypts() {
    let Some(psql_bin) =
        psql_or_skip("with_enable_https_psql_verifies_the_servers_certificate_and_encrypts")
    else {
        return;
    };
    let server =
        tokio::task::spawn_blocking(|| TestServer::start_with_config(&[("enableHTTPS", "true")]))
            .await
            .unwrap();
    // The server made itself a certificate for 127.0.0.1, signed by the CA it made in its
    // home; psql checks it against that CA, and the name.
    let cert = server.home().join("ca").join("ca.crt");
    let connect = |sslmode: &str, root: &std::path::Path| {
        let commands = [r"\conninfo", "select 42"];
        let mut cmd = psql_command(&psql_bin, &server, ADMIN_USER, ADMIN_PASSWORD, &commands);
        cmd.env("PGSSLMODE", sslmode).env("PGSSLROOTCERT", root);
        run_psql(cmd)
    };
    let run = connect("verify-full", &cert).await.expect_ok("verify-full");
    assert!(
        run.stdout.contains("SSL connection (protocol: TLSv1.3"),
        "{}",
        run.stdout
    );
    assert!(run.row(&["42"]).is_some(), "{}", run.stdout);

    // Another certificate does not verify it.
    let other = tempfile::tempdir().unwrap();
    let other_cert = other.path().join("other.crt");
    std::fs::write(&other_cert, OTHER_CERT).unwrap();
    let run = connect("verify-full", &other_cert).await;
    assert!(!run.ok, "{}", run.stdout);
    assert!(
        run.stderr.contains("certificate verify failed"),
        "{}",
        run.stderr
    );
}

/// A self-signed certificate for 127.0.0.1 that no server here serves (made with openssl).
const OTHER_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBiTCCAS6gAwIBAgIUaFgIx9XgcAI2wL2tmEWWK/JultAwCgYIKoZIzj0EAwIw
EDEOMAwGA1UEAwwFb3RoZXIwIBcNMjYxMTIyMDUxNzU4WhgPMjEyNjEwMjkwNTE3
NThaMBAxDjAMBgNVBAMMBW90aGVyMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
F8lDNWCoZCQmGn4Ep1ucufZThRfPX/TXDisbwf8sBRDfxoIxnCxKE3saqG+sik15
EsSlbXyLC5rAORaTm1c2+KNkMGIwHQYDVR0OBBYEFFhGZJWPVLkp6wdBsuwnoPWx
Uq5YMB8GA1UdIwQYMBaAFFhGZJWPVLkp6wdBsuwnoPWxUq5YMA8GA1UdEwEB/wQF
MAMBAf8wDwYDVR0RBAgwBocEfwAAATAKBggqhkjOPQQDAgNJADBGAiEAtGT3f/5H
6LhLl0f3MtNH6M1sZ6BEJc25L3BDON8FGVcCIQD1vRn6Q+uTmhxbhGNJgu1OCQl+
O4Q9RfUDMacR140wOw==
-----END CERTIFICATE-----
";

#[tokio::test]
async fn backslash_copy_to_a_file_writes_what_postgres_writes() {
    let Some(psql_bin) = psql_or_skip("backslash_copy_to_a_file_writes_what_postgres_writes")
    else {
        return;
    };
    let server = server_with_tables().await;
    let client = server.client().await;
    client
        .batch_execute(
            r#"insert into "dfs://md"."info" values
                 (1, 10000000000, 'plain', 1.5, '2024-01-10', '2024-01-10 09:30:00', 12.5,
                  '\x00ff', true),
                 (2, null, 'tab	and \ and "q", comma', -0.125, null, '2024-01-10 09:30:00.25',
                  null, null, false);
               insert into "dfs://md2"."other" values (3);"#,
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("info.csv");
    let text = dir.path().join("info.txt");
    let table = dir.path().join("other.txt");
    let query = r#"(select * from "dfs://md"."info" order by id)"#;
    let run = psql(
        &psql_bin,
        &server,
        &[
            &format!(r"\copy {query} to '{}' csv header", csv.display()),
            &format!(r"\copy {query} to '{}'", text.display()),
            &format!(r#"\copy "dfs://md2"."other" to '{}'"#, table.display()),
        ],
    )
    .await
    .expect_ok(r"\copy ... to");
    assert_eq!(run.lines(), vec!["COPY 2", "COPY 2", "COPY 1"]);
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        "id,big,name,price,day,at,amount,raw,ok\n\
         1,10000000000,plain,1.5,2024-01-10,2024-01-10 09:30:00,12.50,\\x00ff,t\n\
         2,,\"tab\tand \\ and \"\"q\"\", comma\",-0.125,,2024-01-10 09:30:00.25,,,f\n"
    );
    assert_eq!(
        std::fs::read_to_string(&text).unwrap(),
        "1\t10000000000\tplain\t1.5\t2024-01-10\t2024-01-10 09:30:00\t12.50\t\\\\x00ff\tt\n\
         2\t\\N\ttab\\tand \\\\ and \"q\", comma\t-0.125\t\\N\t2024-01-10 09:30:00.25\t\\N\t\\N\tf\n"
    );
    assert_eq!(std::fs::read_to_string(&table).unwrap(), "3\n");

    // What \copy wrote, \copy reads back unchanged.
    client
        .batch_execute(
            r#"create table "dfs://md"."info2"(id int4, big bigint, name text, price float8,
                 day date, at timestamp, amount numeric(10,2), raw bytea, ok bool);"#,
        )
        .await
        .unwrap();
    psql(
        &psql_bin,
        &server,
        &[&format!(
            r#"\copy "dfs://md"."info2" from '{}' csv header"#,
            csv.display()
        )],
    )
    .await
    .expect_ok(r"\copy ... from");
    let again = dir.path().join("again.csv");
    psql(
        &psql_bin,
        &server,
        &[&format!(
            r#"\copy (select * from "dfs://md"."info2" order by id) to '{}' csv header"#,
            again.display()
        )],
    )
    .await
    .expect_ok(r"\copy ... to, again");
    assert_eq!(
        std::fs::read_to_string(&again).unwrap(),
        std::fs::read_to_string(&csv).unwrap()
    );
}
