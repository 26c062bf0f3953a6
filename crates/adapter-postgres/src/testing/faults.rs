//! Faults armed while the application runs, without DDL: the triggers are installed once, and
//! arming one sets a sequence. (Creating a trigger would wait for every transaction holding a
//! lock on its table, which a test that pauses transactions, like the simulation, cannot allow.)
//!
//! Each fault counts down in a sequence, which no rollback undoes, so that a failure that rolls
//! its transaction back still counts: a trigger raises while `nextval` is at most zero, and
//! arming `count` failures sets the sequence to `1 - count`.

use tokio_postgres::NoTls;

use crate::store::explain;

/// A fault to arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFault {
    /// An update of a row of this table fails as if the server had terminated the connection.
    UpdateFails(&'static str),
    /// The next transaction that writes anything fails at its commit, as if the connection was
    /// lost (its commit marker is refused, in the pipeline with `COMMIT`).
    CommitFails,
    /// The next transaction that writes anything is refused at its commit with a serialization
    /// failure (40001), as SERIALIZABLE would.
    CommitConflicts,
}

/// A connection that arms faults in one database.
pub struct FaultInjector {
    client: tokio_postgres::Client,
}

impl std::fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultInjector").finish_non_exhaustive()
    }
}

const INSTALL_FUNCTIONS: &str = "\
CREATE OR REPLACE FUNCTION injected_update_fault() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    IF nextval(('injected_update_faults_' || TG_TABLE_NAME)::regclass) <= 0 THEN
        RAISE EXCEPTION 'terminating connection: a fault injected by a test';
    END IF;
    RETURN NEW;
END $body$;
CREATE OR REPLACE FUNCTION injected_commit_fault() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    IF nextval('injected_commit_failures') <= 0 THEN
        RAISE EXCEPTION 'terminating connection: a fault injected by a test';
    END IF;
    IF nextval('injected_commit_conflicts') <= 0 THEN
        RAISE EXCEPTION 'could not serialize access: a fault injected by a test' USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END $body$;
CREATE SEQUENCE injected_commit_failures MINVALUE -1000000 START 1;
CREATE SEQUENCE injected_commit_conflicts MINVALUE -1000000 START 1;
CREATE TRIGGER injected_commit_fault BEFORE INSERT ON commit_markers FOR EACH ROW EXECUTE FUNCTION injected_commit_fault();
";

impl FaultInjector {
    /// Installs the triggers on the database at `url`, for updates of `tables` and for commits,
    /// all disarmed.
    ///
    /// # Panics
    /// When the connection or the SQL fails, or a table name is not a plain name.
    pub async fn install(url: &str, tables: &[&str]) -> FaultInjector {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .unwrap_or_else(|error| panic!("fault injector connection: {}", explain(&error)));
        tokio::spawn(connection);
        let mut sql = INSTALL_FUNCTIONS.to_owned();
        for table in tables {
            assert!(
                table.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "not a table name: {table}"
            );
            sql.push_str(&format!(
                "CREATE SEQUENCE injected_update_faults_{table} MINVALUE -1000000 START 1; \
                 CREATE TRIGGER injected_update_fault BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION injected_update_fault();"
            ));
        }
        client
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|error| panic!("installing the fault triggers: {}", explain(&error)));
        FaultInjector { client }
    }

    /// Arms `fault` for the next `count` times it can strike.
    ///
    /// # Panics
    /// When the SQL fails (a table that was not installed, say).
    pub async fn arm(&self, fault: StoreFault, count: u32) {
        let sequence = match fault {
            StoreFault::UpdateFails(table) => format!("injected_update_faults_{table}"),
            StoreFault::CommitFails => "injected_commit_failures".into(),
            StoreFault::CommitConflicts => "injected_commit_conflicts".into(),
        };
        let start = 1 - i64::from(count);
        self.client
            .execute("SELECT setval($1::text::regclass, $2, false)", &[&sequence, &start])
            .await
            .unwrap_or_else(|error| panic!("arming {fault:?}: {}", explain(&error)));
    }
}
