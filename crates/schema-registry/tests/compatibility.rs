//! Compatibility levels and checks through the REST API, against a real PostgreSQL.

mod support;

use anyhow::Result;
use reqwest::Method;
use schema_registry::{RegistryClient, RegistryError};
use serde_json::json;
use support::{booking, booking_v1, booking_v2, call, fresh};

fn field_without_default() -> String {
    booking(r#"{"name":"id","type":"long"},{"name":"room","type":"string"}"#)
}

#[tokio::test]
async fn backward_is_the_default_and_rejects_a_field_added_without_default() -> Result<()> {
    let (_db, server) = fresh().await?;
    let client = RegistryClient::new(&server.url);
    client.register("bookings-value", &booking_v1()).await?;
    match client.register("bookings-value", &field_without_default()).await {
        Err(RegistryError::Api { status: 409, error_code: 409, .. }) => {}
        other => panic!("expected 409, got {other:?}"),
    }
    client.register("bookings-value", &booking_v2()).await?;
    let (_, versions) = call(Method::GET, &format!("{}/subjects/bookings-value/versions", server.url), None).await?;
    assert_eq!(versions, json!([1, 2]));
    server.stop().await
}

#[tokio::test]
async fn compatibility_endpoint_answers_is_compatible_with_reasons_when_verbose() -> Result<()> {
    let (_db, server) = fresh().await?;
    RegistryClient::new(&server.url).register("bookings-value", &booking_v1()).await?;
    let url = format!("{}/compatibility/subjects/bookings-value/versions/latest", server.url);
    let good = call(Method::POST, &url, Some(json!({ "schema": booking_v2() }))).await?;
    assert_eq!(good, (200, json!({ "is_compatible": true })));
    let bad = call(Method::POST, &url, Some(json!({ "schema": field_without_default() }))).await?;
    assert_eq!(bad, (200, json!({ "is_compatible": false })));
    let (_, verbose) =
        call(Method::POST, &format!("{url}?verbose=true"), Some(json!({ "schema": field_without_default() }))).await?;
    assert_eq!(verbose["is_compatible"], false);
    assert_eq!(verbose["messages"].as_array().map(Vec::len), Some(1));

    let missing = format!("{}/compatibility/subjects/nobody/versions/latest", server.url);
    let (status, body) = call(Method::POST, &missing, Some(json!({ "schema": booking_v2() }))).await?;
    assert_eq!((status, body["error_code"].clone()), (404, json!(40401)));
    server.stop().await
}

#[tokio::test]
async fn config_is_global_or_per_subject_and_none_lets_anything_in() -> Result<()> {
    let (_db, server) = fresh().await?;
    let config = format!("{}/config", server.url);
    assert_eq!(call(Method::GET, &config, None).await?, (200, json!({ "compatibilityLevel": "BACKWARD" })));
    let set = call(Method::PUT, &config, Some(json!({ "compatibility": "FULL" }))).await?;
    assert_eq!(set, (200, json!({ "compatibility": "FULL" })));
    assert_eq!(call(Method::GET, &config, None).await?, (200, json!({ "compatibilityLevel": "FULL" })));
    let (status, body) = call(Method::PUT, &config, Some(json!({ "compatibility": "SIDEWAYS" }))).await?;
    assert_eq!((status, body["error_code"].clone()), (422, json!(42203)));

    let subject = format!("{config}/bookings-value");
    let (status, body) = call(Method::GET, &subject, None).await?;
    assert_eq!((status, body["error_code"].clone()), (404, json!(40408)));
    assert_eq!(
        call(Method::GET, &format!("{subject}?defaultToGlobal=true"), None).await?,
        (200, json!({ "compatibilityLevel": "FULL" }))
    );
    call(Method::PUT, &subject, Some(json!({ "compatibility": "NONE" }))).await?;
    assert_eq!(call(Method::GET, &subject, None).await?, (200, json!({ "compatibilityLevel": "NONE" })));

    let client = RegistryClient::new(&server.url);
    client.register("bookings-value", &booking_v1()).await?;
    client.register("bookings-value", &field_without_default()).await?;
    client.register("bookings-value", r#""string""#).await?;
    server.stop().await
}

#[tokio::test]
async fn transitive_levels_check_every_live_version_while_a_named_version_is_checked_alone() -> Result<()> {
    let (_db, server) = fresh().await?;
    let client = RegistryClient::new(&server.url);
    let config = format!("{}/config/events-value", server.url);
    call(Method::PUT, &config, Some(json!({ "compatibility": "NONE" }))).await?;
    client.register("events-value", &booking(r#"{"name":"a","type":"int"}"#)).await?;
    client.register("events-value", &booking(r#"{"name":"a","type":"string"}"#)).await?;
    call(Method::PUT, &config, Some(json!({ "compatibility": "BACKWARD_TRANSITIVE" }))).await?;

    // Reads version 2's data, not version 1's (an int does not resolve to a string).
    let candidate =
        json!({ "schema": booking(r#"{"name":"a","type":"string"},{"name":"b","type":"int","default":0}"#) });
    let compatibility = format!("{}/compatibility/subjects/events-value/versions", server.url);
    let latest = call(Method::POST, &format!("{compatibility}/latest"), Some(candidate.clone())).await?;
    assert_eq!(latest, (200, json!({ "is_compatible": true })));
    let all = call(Method::POST, &compatibility, Some(candidate.clone())).await?;
    assert_eq!(all, (200, json!({ "is_compatible": false })));
    let register = format!("{}/subjects/events-value/versions", server.url);
    let (status, _) = call(Method::POST, &register, Some(candidate.clone())).await?;
    assert_eq!(status, 409);

    call(Method::PUT, &config, Some(json!({ "compatibility": "BACKWARD" }))).await?;
    let (status, _) = call(Method::POST, &register, Some(candidate)).await?;
    assert_eq!(status, 200);
    server.stop().await
}
