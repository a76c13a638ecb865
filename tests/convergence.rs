//! Randomized end-to-end convergence under chaos (issue #9): a seeded workload drives the booking tables the way
//! PorticoEstate writes them and the room calendars the way Outlook users do, while the stages (each a real
//! `roomsync run --stage` process) are SIGKILLed one at a time or all at once, the broker is restarted,
//! PostgreSQL sessions are terminated and Graph misbehaves. Then the faults stop, the system is left to settle,
//! and an independent oracle (`convergence/oracle.rs`) says what every room calendar, the mapping table and the
//! conflicts table must hold.
//!
//! The second test of this binary (issue #18, `convergence/crash.rs`) SIGKILLs a single `roomsync run` process
//! with every stage at chosen points of the booking system's work and requires the oracle's calendars after
//! every restart: `ROOMSYNC_CRASH_ROUNDS` (default: every kill point once) and `ROOMSYNC_CRASH_SEED`.
//!
//! ```text
//!  seed -> workload (booking SQL | Outlook users | faults) for ROOMSYNC_CHAOS_SECONDS
//!       -> calm (faults off, held notifications stay lost, broker up)
//!       -> wait until calendars + mapping + conflicts == oracle(final bb_* tables, Outlook history)
//!       -> wait until no Graph write for STABLE (a loop never gets there) -> writes per event bounded
//! ```
//!
//! Running it (the local stack must be up: `scripts/stack up`; the test starts its own tansu broker, found via
//! `ROOMSYNC_TANSU`, `tansu` on PATH or `~/.cache/roomsync/tools/bin/tansu`):
//!
//! ```text
//! cargo test -p roomsync --test convergence                                    # short: CI, ~75 s of workload
//! ROOMSYNC_CHAOS_SECONDS=1800 cargo test -p roomsync --test convergence        # long: 30 minutes of workload
//! ROOMSYNC_CHAOS_SEED=1234 cargo test -p roomsync --test convergence           # replay the run a failure names
//! ```
//! The seed fixes the sequence of actions and faults (not the thread timing), and every failure message starts
//! with it; the failure also writes every action plus roomsync's tables and the calendars to
//! `$TMPDIR/roomsync-chaos-<seed>-<pid>-actions.log`. Set `RUST_LOG=info` to see the stages' logs.
//!
//! Switches (for bisecting, and to mark a scenario that meets a known pipeline bug, listed in the findings file):
//! `ROOMSYNC_CHAOS_FAULTS=` kinds out of `kill,crash,broker,postgres,storm,lost,duplicates,delta`, or `all`, or `none`;
//! `ROOMSYNC_CHAOS_SKIP=` scenarios out of `outlook-deletes-roomsync-event`, `outlook-owner-deletes-booking`,
//! `reservation-over-imported-booking`, `outlook-series`, `outlook-moves-own-booking`. Unset, they default to
//! leaving out what meets a known pipeline bug (`faults::KNOWN_BROKEN_FAULTS`,
//! `workload::KNOWN_BROKEN_SCENARIOS`); the report line of every run says what was left out. Everything, known
//! bugs included: `ROOMSYNC_CHAOS_FAULTS=all ROOMSYNC_CHAOS_SKIP= cargo test -p roomsync --test convergence`.
//!
//! Left out of the workload (the oracle could not model it exactly, or it is another test's job): imports written
//! as bb_event rows (`import_bb_events`), the `decline` conflict policy and overlap policies other than `trim`,
//! room-mapping changes, deactivated resources or buildings, edits of single occurrences of an Outlook series and
//! moves of whole series, Outlook all-day bookings and meeting requests, items near the sync window's edges,
//! delta-token expiry and subscription lifecycle events.
//!
//! The chaos run is made twice: with one process per stage, and (issue #14) with three per stage on six
//! partitions, sharing the consumer groups and standing by for the CDC and Graph-source roles; a kill then hits
//! one instance of the stage, each in turn.
//!
//! The graph-sink stage runs its periodic reconciliation every minute here (production: every 30 minutes): an
//! event roomsync created and someone deleted between two delta rounds is reported by no notification and no
//! delta round, so only the full comparison can repair it (FINDINGS.md, F11).

#[path = "convergence/booking.rs"]
mod booking;
#[path = "support/broker.rs"]
mod broker;
#[path = "convergence/compare.rs"]
mod compare;
#[path = "convergence/crash.rs"]
mod crash;
#[path = "convergence/faults.rs"]
mod faults;
#[path = "convergence/harness.rs"]
mod harness;
#[path = "convergence/oracle.rs"]
mod oracle;
#[path = "convergence/outlook.rs"]
mod outlook;
#[path = "support/process.rs"]
mod process;
#[path = "convergence/run.rs"]
mod run;
mod support;
#[path = "convergence/workload.rs"]
mod workload;
#[path = "convergence/writes.rs"]
mod writes;

/// The seed when `ROOMSYNC_CHAOS_SEED` is not set.
const DEFAULT_SEED: u64 = 20_261_123;
/// Seconds of workload when `ROOMSYNC_CHAOS_SECONDS` is not set (the CI version).
const DEFAULT_SECONDS: u64 = 75;

fn setting(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(value) => value.trim().parse().map_err(|_| anyhow::anyhow!("{name} must be a whole number, not {value:?}")),
        Err(_) => Ok(default),
    }
}

/// The two whole-system tests of this binary take turns: each runs its own broker and roomsync processes, and on
/// two cores their workloads' pacing and convergence deadlines must not compete with each other.
static ONE_SYSTEM_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn booking_and_outlook_changes_converge_under_chaos() -> anyhow::Result<()> {
    chaos(1).await
}

/// Issue #14: three processes of every stage on six partitions, killed one at a time and all at once during the
/// workload, with the same faults and the same oracle.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn booking_and_outlook_changes_converge_under_chaos_with_three_instances() -> anyhow::Result<()> {
    chaos(3).await
}

async fn chaos(instances: usize) -> anyhow::Result<()> {
    let _turn = ONE_SYSTEM_AT_A_TIME.lock().await;
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
    let seed = setting("ROOMSYNC_CHAOS_SEED", DEFAULT_SEED)?;
    let seconds = setting("ROOMSYNC_CHAOS_SECONDS", DEFAULT_SECONDS)?;
    eprintln!(
        "chaos: seed {seed}, {seconds} s of workload, {instances} instance(s) (replay with ROOMSYNC_CHAOS_SEED={seed})"
    );
    match run::run(seed, std::time::Duration::from_secs(seconds), instances).await {
        Ok(report) => {
            eprintln!("chaos: converged; seed {seed}, {instances} instance(s)\n{report}");
            Ok(())
        }
        Err(error) => Err(error.context(format!(
            "chaos run with {instances} instance(s) failed; seed {seed} (replay with ROOMSYNC_CHAOS_SEED={seed})"
        ))),
    }
}

/// Rounds of the kill-and-restart test when `ROOMSYNC_CRASH_ROUNDS` is not set: every kill point once.
const DEFAULT_CRASH_ROUNDS: u64 = crash::POINTS.len() as u64;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_process_killed_at_any_point_converges_after_its_restart() -> anyhow::Result<()> {
    let _turn = ONE_SYSTEM_AT_A_TIME.lock().await;
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
    let seed = setting("ROOMSYNC_CRASH_SEED", DEFAULT_SEED)?;
    let rounds = setting("ROOMSYNC_CRASH_ROUNDS", DEFAULT_CRASH_ROUNDS)?;
    eprintln!("crash: seed {seed}, {rounds} rounds (replay with ROOMSYNC_CRASH_SEED={seed})");
    match crash::run(seed, usize::try_from(rounds)?).await {
        Ok(report) => {
            eprintln!("crash: converged after every restart; seed {seed}\n{report}");
            Ok(())
        }
        Err(error) => {
            Err(error.context(format!("crash test failed; seed {seed} (replay with ROOMSYNC_CRASH_SEED={seed})")))
        }
    }
}
