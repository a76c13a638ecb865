//! Singleton roles: the stages of which exactly one instance may act at a time (the CDC reader of a replication
//! slot, the Graph source of an installation), whatever number of `roomsync run` instances are started.
//!
//! ```text
//!  take(session, role) --pg_try_advisory_lock--> held: act for as long as `session` lives
//!                      \--taken by another------> standing by: roomsync_stage_standby{stage} = 1, ask again
//!                                                 every STANDBY_POLL, until the holder's session ends
//! ```
//! Invariants: the role is a PostgreSQL session advisory lock, so it ends exactly when the holder's session ends
//! (a stop, a crash, or a vanished host: sessions that hold a role ask the server for TCP keepalives,
//! [`keepalive_options`], so PostgreSQL ends them within [`KEEPALIVE_SECONDS`]); an instance acts only while its
//! session holds the role, and must stop acting when that session is lost.

use std::future::Future;
use std::time::Duration;

use tokio_postgres::Client;
use tracing::info;

/// How often an instance standing by asks again for the role.
pub const STANDBY_POLL: Duration = Duration::from_secs(2);

/// Gauge (label `stage`): 1 while this instance stands by because another one holds the stage's role.
pub const STANDBY: &str = "roomsync_stage_standby";

/// The server's TCP keepalives on a session that holds a role (or locks, like the graph sink's fence): seconds of
/// silence before the first probe, seconds between probes, unanswered probes that end the session.
const KEEPALIVE: [(&str, u64); 3] =
    [("tcp_keepalives_idle", 10), ("tcp_keepalives_interval", 5), ("tcp_keepalives_count", 3)];

/// How long PostgreSQL takes at most to end the session of a host that vanished (see [`keepalive_options`]).
pub const KEEPALIVE_SECONDS: u64 = KEEPALIVE[0].1 + KEEPALIVE[1].1 * KEEPALIVE[2].1;

/// The keepalives as connection options (libpq `options`: `-c name=value ...`).
pub fn keepalive_options() -> String {
    KEEPALIVE.iter().map(|(name, value)| format!("-c {name}={value}")).collect::<Vec<_>>().join(" ")
}

/// The keepalives as statements for a session already open (`set name = value; ...`).
pub fn keepalive_statements() -> String {
    KEEPALIVE.iter().map(|(name, value)| format!("set {name} = {value}")).collect::<Vec<_>>().join("; ")
}

/// Waits until `session` holds the role `role` of `stage`, standing by meanwhile. `false`: `shutdown` came
/// first.
pub async fn take(
    session: &Client,
    stage: &'static str,
    role: &str,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Result<bool, tokio_postgres::Error> {
    let mut standing_by = false;
    loop {
        let taken: bool =
            session.query_one("select pg_try_advisory_lock(hashtextextended($1, 0))", &[&role]).await?.get(0);
        if taken {
            metrics::gauge!(STANDBY, "stage" => stage).set(0.0);
            if standing_by {
                info!(stage, role, "the active instance is gone: taking over");
            }
            return Ok(true);
        }
        if !standing_by {
            standing_by = true;
            metrics::gauge!(STANDBY, "stage" => stage).set(1.0);
            info!(stage, role, "another instance holds the role: standing by to take over when it stops");
        }
        tokio::select! {
            () = tokio::time::sleep(STANDBY_POLL) => {}
            () = &mut *shutdown => return Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keepalives_read_the_same_as_options_and_as_statements() {
        assert_eq!(
            keepalive_options(),
            "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
        );
        assert_eq!(
            keepalive_statements(),
            "set tcp_keepalives_idle = 10; set tcp_keepalives_interval = 5; set tcp_keepalives_count = 3"
        );
        assert_eq!(KEEPALIVE_SECONDS, 25);
    }
}
