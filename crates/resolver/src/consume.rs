//! The Kafka driver.

use std::future::Future;

use crate::config::Config;
use crate::error::ResolverError;

/// Runs the resolver until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ResolverError> {
    let _ = config;
    shutdown.await;
    Ok(())
}
