//! The store through PgBouncer (Debian's 1.18) pooling by session, the mode that works with the
//! driver's named prepared statements (docs/scaling.md). PgBouncer refuses the `options` startup
//! parameter that carries the session settings, so the store sets them after connecting: every
//! connection still runs with them.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adapter_postgres::testing::TestDatabase;
use adapter_postgres::{PgSettings, PgStore};
use application::ports::store::{Transaction, UnitOfWork, UserRepository};
use domain::user::{Role, User};
use uuid::Uuid;

use crate::support::stored_user;

/// A PgBouncer in front of the test server, on a port of its own, stopped when dropped.
struct PgBouncer {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl PgBouncer {
    /// # Panics
    /// When PgBouncer is not installed (`scripts/test-tools.sh` installs it) or does not start.
    fn start(server: &tokio_postgres::Config) -> PgBouncer {
        let (host, port) = match (server.get_hosts().first(), server.get_ports().first()) {
            (Some(tokio_postgres::config::Host::Tcp(host)), Some(port)) => (host.clone(), *port),
            _ => ("127.0.0.1".to_owned(), 5432),
        };
        let user = server.get_user().unwrap_or("postgres");
        let listen = free_port();
        let dir = std::env::temp_dir().join(format!("pgbouncer-{}", Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("pgbouncer dir");
        let config = format!(
            "[databases]\n* = host={host} port={port}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {listen}\n\
             unix_socket_dir =\nauth_type = trust\nauth_file = {dir}/users.txt\npool_mode = session\n\
             max_client_conn = 100\ndefault_pool_size = 20\nlogfile = {dir}/pgbouncer.log\n\
             pidfile = {dir}/pgbouncer.pid\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("pgbouncer.ini"), config).expect("pgbouncer.ini");
        std::fs::write(dir.join("users.txt"), format!("\"{user}\" \"\"\n")).expect("users.txt");
        // PgBouncer will not run as root: as root (CI), it runs as the server's own user.
        let mut command = if is_root() {
            make_writable(&dir);
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--", "pgbouncer"]);
            command
        } else {
            Command::new("pgbouncer")
        };
        let child = command
            .arg(dir.join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer is not installed: run scripts/test-tools.sh");
        let bouncer = PgBouncer { child, dir, port: listen };
        bouncer.wait_until_listening();
        bouncer
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let log = std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "pgbouncer did not start: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `url` with PgBouncer's address instead of the server's.
    fn url_for(&self, url: &str, server_port: u16) -> String {
        url.replace(&format!(":{server_port}/"), &format!(":{}/", self.port))
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // PgBouncer itself, by its pid file: a signal to `runuser` would not reach it.
        let pid = std::fs::read_to_string(self.dir.join("pgbouncer.pid")).unwrap_or_default();
        let stopped = Command::new("kill").arg(pid.trim()).status().is_ok_and(|status| status.success());
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

fn make_writable(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
}

#[tokio::test]
async fn through_pgbouncer_every_connection_runs_with_the_session_settings_and_statements_are_reused() {
    let database = TestDatabase::create().await;
    let server: tokio_postgres::Config = database.url().parse().expect("url");
    let server_port = server.get_ports().first().copied().unwrap_or(5432);
    let bouncer = PgBouncer::start(&server);
    let mut settings = PgSettings::new(bouncer.url_for(database.url(), server_port));
    settings.pool_max_size = 4;
    settings.statement_timeout = Duration::from_millis(1234);
    settings.lock_timeout = Duration::from_millis(567);
    let store = PgStore::connect(&settings).await.expect("connect through pgbouncer");

    // More transactions than connections, at once: each connection serves several, reusing its
    // prepared statements, and every one of them has the settings.
    let users: Vec<User> = (0..24).map(|_| stored_user(Role::Customer)).collect();
    let tasks: Vec<_> = users
        .iter()
        .cloned()
        .map(|user| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await?;
                let found = tx.find_user(user.id).await?;
                tx.insert_user(&user).await?;
                let settings = (
                    tx.show("statement_timeout").await?,
                    tx.show("lock_timeout").await?,
                    tx.show("plan_cache_mode").await?,
                );
                tx.commit().await?;
                Ok::<_, application::ports::store::StoreError>((found.is_none(), settings))
            })
        })
        .collect();
    for task in tasks {
        let (was_absent, settings) = task.await.expect("task").expect("transaction through pgbouncer");
        assert!(was_absent);
        assert_eq!(settings, ("1234ms".into(), "567ms".into(), "force_generic_plan".into()));
    }
    assert!(store.pool_status().connections <= 4);

    let mut direct = database.store().begin().await.expect("begin");
    for user in &users {
        assert!(
            direct.find_user(user.id).await.expect("find").is_some(),
            "committed through pgbouncer"
        );
    }
    direct.rollback().await.expect("rollback");
}
