//! `braid serve --database-url …` given a database it cannot use, through
//! the real binary: an address nobody listens on, a server that accepts
//! and never answers, a wrong password, a user without the right to create
//! tables, a schema migrated by a newer braid.
//! Each stops the start at once (or within the URL's `connect_timeout`)
//! with exit code 2 and one line on stderr that names the problem and the
//! URL with its password masked, and writes nothing: no SQLite file beside
//! it, no table in the database, a newer schema left byte for byte as it
//! was.
//!
//! The PostgreSQL cases need the test server of `scripts/pg.sh` (the wrong
//! password also needs its `braid_password_login` role, whose members must
//! give their password over TCP); without it they print why and pass,
//! except under `CI=true`, where they fail.

use braid_store_postgres::testing::TestDb;
use sqlx::{Connection as _, PgConnection};
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a refused start must take at most (a refused connection or an
/// error from the server comes back in milliseconds; this is slack for a
/// loaded machine, far below sqlx's 30 s pool timeout or a hang).
const QUICK: Duration = Duration::from_secs(5);

/// How a `braid serve` that was expected to stop ended.
struct Refused {
    status: ExitStatus,
    stderr: String,
    took: Duration,
}

/// `braid serve --bind 127.0.0.1:0 --database-url URL` in `dir`, with no
/// configuration from the test runner's environment; waits up to 30 s for
/// it to exit (killing it and failing past that: it did not stop).
fn serve_refused(dir: &Path, url: &str) -> Refused {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_braid"));
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--database-url", url])
        .current_dir(dir);
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("BRAID_") || text == "DATABASE_URL" || text.starts_with("OTEL_") {
            cmd.env_remove(&name);
        }
    }
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn `braid serve`");
    let mut pipe = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`braid serve --database-url {url}` did not stop within 30 s; stderr:\n{}",
                reader.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = started.elapsed();
    Refused {
        status,
        stderr: reader.join().expect("stderr reader"),
        took,
    }
}

impl Refused {
    /// Exit code 2, one line on stderr holding every one of `expected`
    /// and never `secret`; returns that line.
    fn assert_one_line(&self, expected: &[&str], secret: &str) -> String {
        assert_eq!(
            self.status.code(),
            Some(2),
            "exit status {}; stderr:\n{}",
            self.status,
            self.stderr
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "one line on stderr:\n{}", self.stderr);
        let line = lines[0];
        assert!(line.starts_with("error: "), "{line}");
        for part in expected {
            assert!(line.contains(part), "`{part}` in: {line}");
        }
        assert!(!line.contains(secret), "the password is masked: {line}");
        line.to_string()
    }
}

/// Nothing in the directory `braid serve` ran in (no SQLite file, no lock).
fn assert_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "files written beside it: {left:?}");
}

/// A port of 127.0.0.1 that nothing listens on (the kernel's pick, released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn an_address_nobody_listens_on_stops_the_start_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let url = format!("postgres://braid:s3cret@127.0.0.1:{port}/braid");
    let refused = serve_refused(dir.path(), &url);
    let line = refused.assert_one_line(
        &[
            &format!("opening PostgreSQL database postgres://braid:****@127.0.0.1:{port}/braid: "),
            "connecting to PostgreSQL: cannot reach the server: Connection refused",
        ],
        "s3cret",
    );
    println!("{line} ({:?})", refused.took);
    assert!(refused.took < QUICK, "took {:?}", refused.took);
    assert_empty(dir.path());
}

#[test]
fn a_server_that_never_answers_is_given_up_after_connect_timeout() {
    // Connections complete in the kernel's backlog; nobody ever reads them
    // or answers the start-up message.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres://braid:s3cret@127.0.0.1:{port}/braid?connect_timeout=1");
    let refused = serve_refused(dir.path(), &url);
    let line = refused.assert_one_line(
        &[
            &format!(
                "opening PostgreSQL database \
                 postgres://braid:****@127.0.0.1:{port}/braid?connect_timeout=1"
            ),
            "no answer within 1 s",
        ],
        "s3cret",
    );
    println!("{line} ({:?})", refused.took);
    assert!(
        refused.took >= Duration::from_millis(900) && refused.took < QUICK,
        "gave up after the URL's 1 s, not before nor much later: {:?}",
        refused.took
    );
    assert_empty(dir.path());
    drop(silent);
}

/// `url` (`scheme://[userinfo@]host…`) with `userinfo` instead.
fn with_user(url: &str, userinfo: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{userinfo}@{host}")
}

/// The tables of the database's `public` schema.
async fn tables(conn: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .expect("list the tables")
}

/// Every column of every table and a digest of every table's rows: equal
/// fingerprints, same schema and same data.
async fn fingerprint(conn: &mut PgConnection) -> Vec<String> {
    let mut print: Vec<String> = sqlx::query_scalar(
        "SELECT table_name || '.' || column_name || ' ' || data_type \
         FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("list the columns");
    for table in tables(conn).await {
        let digest: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) || ' rows ' || \
             md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM \"{table}\" t"
        )))
        .fetch_one(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("digest of {table}: {e}"));
        print.push(format!("{table}: {digest}"));
    }
    print
}

#[tokio::test]
async fn a_wrong_password_or_a_user_without_rights_is_refused_and_nothing_written() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let mut admin = PgConnection::connect(db.url()).await.expect("connect");
    let group: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM pg_roles WHERE rolname = 'braid_password_login'")
            .fetch_optional(&mut admin)
            .await
            .unwrap();
    if group.is_none() {
        let why = "the test server has no role braid_password_login (whose members must give \
                   their password): start it with `scripts/pg.sh start`";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{why}; CI=true, so this test fails instead of skipping");
        }
        eprintln!("skipped: {why}");
        return;
    }
    // Roles belong to the whole server: a name of this test's own.
    let nanos = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .unwrap()
        .as_nanos();
    let role = format!("braid_pw_{}_{nanos}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'right-pw' IN ROLE braid_password_login"
    )))
    .execute(&mut admin)
    .await
    .expect("create the role");
    let wrong_url = with_user(db.url(), &format!("{role}:wrong-pw"));
    let right_url = with_user(db.url(), &format!("{role}:right-pw"));
    let wrong = PgConnection::connect(&wrong_url).await.map(drop);

    let dir = tempfile::tempdir().unwrap();
    let refused = serve_refused(dir.path(), &wrong_url);
    // The right password, but no right to create tables (PostgreSQL 15 gives
    // none in `public` to users who do not own the database).
    let unprivileged = serve_refused(dir.path(), &right_url);
    let left = tables(&mut admin).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE {role}")))
        .execute(&mut admin)
        .await
        .expect("drop the role");
    let _ = admin.close().await;

    assert!(
        wrong.is_err(),
        "the server let the role in with a wrong password: it does not check passwords"
    );
    let masked = with_user(db.url(), &format!("{role}:****"));
    let line = refused.assert_one_line(
        &[
            &format!("opening PostgreSQL database {masked}: "),
            &format!("password authentication failed for user \"{role}\""),
        ],
        "wrong-pw",
    );
    println!("{line} ({:?})", refused.took);
    assert!(
        !line.contains(" at line "),
        "no PostgreSQL source line: {line}"
    );
    assert!(refused.took < QUICK, "took {:?}", refused.took);
    let line = unprivileged.assert_one_line(
        &[
            &format!("opening PostgreSQL database {masked}: "),
            "migrating the PostgreSQL database: permission denied for schema public",
            "the user needs to own the database, or have CREATE on that schema",
        ],
        "right-pw",
    );
    println!("{line} ({:?})", unprivileged.took);
    assert!(unprivileged.took < QUICK, "took {:?}", unprivileged.took);
    assert!(left.is_empty(), "tables were created: {left:?}");
    assert_empty(dir.path());
}

#[tokio::test]
async fn a_schema_migrated_by_a_newer_braid_is_refused_and_left_unchanged() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = braid_store_postgres::PgStore::connect_url(db.url())
        .await
        .expect("migrate the database");
    store.close().await;
    let known = braid_store_postgres::latest_migration();
    let newer = known + 1;
    let mut admin = PgConnection::connect(db.url()).await.expect("connect");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, 'from a newer braid', true, '\\x00'::bytea, 1)",
    )
    .bind(newer)
    .execute(&mut admin)
    .await
    .expect("record a newer migration");
    let before = fingerprint(&mut admin).await;

    let dir = tempfile::tempdir().unwrap();
    let refused = serve_refused(dir.path(), db.url());
    let after = fingerprint(&mut admin).await;
    let _ = admin.close().await;

    let line = refused.assert_one_line(
        &[
            &format!("opening PostgreSQL database {}", db.url()),
            &format!("the database schema is at migration {newer}, newer than this braid knows (up to {known})"),
        ],
        "\u{0}",
    );
    println!("{line} ({:?})", refused.took);
    assert!(refused.took < QUICK, "took {:?}", refused.took);
    assert!(
        before.len() > 10,
        "the fingerprint covers the schema: {before:?}"
    );
    assert_eq!(before, after, "the database was changed");
    assert_empty(dir.path());
}
