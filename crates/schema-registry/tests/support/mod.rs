//! Runs the registry server on 127.0.0.1:0 over a fresh database, and speaks raw HTTP to it.

#![allow(dead_code)] // each test binary uses a different part of the harness

use anyhow::{Context, Result};
use schema_registry::server::{serve, ServeError, Store, StoreConfig};
use serde_json::Value;
use testkit::TestDatabase;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running registry server.
pub struct Server {
    /// Its base URL.
    pub url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl Server {
    /// Starts a server over the database at `database_url` (tables are created if absent).
    pub async fn start(database_url: &str) -> Result<Self> {
        let config = StoreConfig { database_url: database_url.to_owned(), max_connections: 4 };
        let store = Store::open(&config).await.context("opening the store")?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, store, async move {
            let _ = stopped.await;
        }));
        Ok(Server { url, stop, task })
    }

    /// Stops the server and waits until it has.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

/// A fresh empty database with a server over it.
pub async fn fresh() -> Result<(TestDatabase, Server)> {
    let database = TestDatabase::create_empty().await?;
    let server = Server::start(database.url()).await?;
    Ok((database, server))
}

/// Sends `method url` with an optional JSON body the way Confluent's clients do; returns status and JSON body.
pub async fn call(method: reqwest::Method, url: &str, body: Option<Value>) -> Result<(u16, Value)> {
    let mut request =
        reqwest::Client::new().request(method, url).header("accept", schema_registry::client::CONTENT_TYPE);
    if let Some(body) = body {
        request = request.header("content-type", schema_registry::client::CONTENT_TYPE).body(body.to_string());
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    let json = serde_json::from_str(&text).with_context(|| format!("answer is not JSON: {text}"))?;
    Ok((status, json))
}

/// A record schema named `Booking` with the given fields JSON.
pub fn booking(fields: &str) -> String {
    format!(r#"{{"type":"record","name":"Booking","namespace":"roomsync","fields":[{fields}]}}"#)
}

/// The first version of the booking schema.
pub fn booking_v1() -> String {
    booking(r#"{"name":"id","type":"long"}"#)
}

/// A backward-compatible second version: a field added with a default.
pub fn booking_v2() -> String {
    booking(r#"{"name":"id","type":"long"},{"name":"room","type":"string","default":""}"#)
}
