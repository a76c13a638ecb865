//! The registry's REST API against a real PostgreSQL: registration, reads, lookups, errors, deletes, config.

mod support;

use anyhow::Result;
use reqwest::Method;
use schema_registry::{RegistryClient, RegistryError};
use serde_json::json;
use support::{booking, booking_v1, booking_v2, call, fresh};

#[tokio::test]
async fn registering_the_same_schema_twice_returns_the_same_id() -> Result<()> {
    let (_db, server) = fresh().await?;
    let client = RegistryClient::new(&server.url);
    let first = client.register("bookings-value", &booking_v1()).await?;
    // Same schema, other whitespace and key order: still the same schema.
    let respaced = r#"{ "namespace": "roomsync", "name": "Booking", "type": "record",
        "fields": [ { "type": "long", "name": "id" } ] }"#;
    let second = client.register("bookings-value", respaced).await?;
    assert_eq!(first, second);
    let (_, versions) = call(Method::GET, &format!("{}/subjects/bookings-value/versions", server.url), None).await?;
    assert_eq!(versions, json!([1]));
    server.stop().await
}

#[tokio::test]
async fn the_same_schema_under_two_subjects_has_one_global_id() -> Result<()> {
    let (_db, server) = fresh().await?;
    let client = RegistryClient::new(&server.url);
    let a = client.register("a-value", &booking_v1()).await?;
    let b = client.register("b-value", &booking_v1()).await?;
    assert_eq!(a, b);
    let (status, subjects) = call(Method::GET, &format!("{}/schemas/ids/{a}/subjects", server.url), None).await?;
    assert_eq!((status, subjects), (200, json!(["a-value", "b-value"])));
    server.stop().await
}

#[tokio::test]
async fn a_new_version_gets_a_new_id_and_version_two_and_becomes_latest() -> Result<()> {
    let (_db, server) = fresh().await?;
    let client = RegistryClient::new(&server.url);
    let v1 = client.register("bookings-value", &booking_v1()).await?;
    let v2 = client.register("bookings-value", &booking_v2()).await?;
    assert_ne!(v1, v2);

    let url = format!("{}/subjects/bookings-value/versions", server.url);
    assert_eq!(call(Method::GET, &url, None).await?, (200, json!([1, 2])));
    let (status, latest) = call(Method::GET, &format!("{url}/latest"), None).await?;
    assert_eq!(status, 200);
    assert_eq!(latest, json!({"subject": "bookings-value", "id": v2, "version": 2, "schema": booking_v2()}));
    let (_, first) = call(Method::GET, &format!("{url}/1"), None).await?;
    assert_eq!(first["id"], json!(v1));

    // The raw schema endpoints answer with the schema itself.
    let raw = reqwest::get(format!("{url}/2/schema")).await?.text().await?;
    assert_eq!(raw, booking_v2());
    let raw = reqwest::get(format!("{}/schemas/ids/{v1}/schema", server.url)).await?.text().await?;
    assert_eq!(raw, booking_v1());
    server.stop().await
}

#[tokio::test]
async fn schema_is_fetched_by_id_as_first_registered() -> Result<()> {
    let (_db, server) = fresh().await?;
    let client = RegistryClient::new(&server.url);
    let id = client.register("bookings-value", &booking_v1()).await?;
    assert_eq!(client.schema_by_id(id).await?, booking_v1());
    let (status, body) = call(Method::GET, &format!("{}/schemas/ids/{id}", server.url), None).await?;
    assert_eq!((status, body), (200, json!({ "schema": booking_v1() })));
    server.stop().await
}

#[tokio::test]
async fn unknown_schema_id_is_404_with_error_code_40403() -> Result<()> {
    let (_db, server) = fresh().await?;
    let client = RegistryClient::new(&server.url);
    match client.schema_by_id(4242).await {
        Err(RegistryError::Api { status: 404, error_code: 40403, .. }) => {}
        other => panic!("expected 404/40403, got {other:?}"),
    }
    let (status, body) = call(Method::GET, &format!("{}/schemas/ids/4242", server.url), None).await?;
    assert_eq!(status, 404);
    assert_eq!(body["error_code"], 40403);
    assert!(body["message"].is_string());
    server.stop().await
}

#[tokio::test]
async fn subjects_are_listed_sorted_and_percent_decoded() -> Result<()> {
    let (_db, server) = fresh().await?;
    let client = RegistryClient::new(&server.url);
    client.register("zeta-value", &booking_v1()).await?;
    client.register("a/b c", &booking_v1()).await?;
    client.register("alpha-key", r#""string""#).await?;
    let (status, subjects) = call(Method::GET, &format!("{}/subjects", server.url), None).await?;
    assert_eq!((status, subjects), (200, json!(["a/b c", "alpha-key", "zeta-value"])));
    let (status, versions) = call(Method::GET, &format!("{}/subjects/a%2Fb%20c/versions", server.url), None).await?;
    assert_eq!((status, versions), (200, json!([1])));
    server.stop().await
}

#[tokio::test]
async fn lookup_finds_the_version_and_tells_a_missing_schema_from_a_missing_subject() -> Result<()> {
    let (_db, server) = fresh().await?;
    let client = RegistryClient::new(&server.url);
    let id = client.register("bookings-value", &booking_v1()).await?;
    client.register("bookings-value", &booking_v2()).await?;

    let url = format!("{}/subjects/bookings-value", server.url);
    let (status, found) = call(Method::POST, &url, Some(json!({ "schema": booking_v1() }))).await?;
    assert_eq!(status, 200);
    assert_eq!(found, json!({"subject": "bookings-value", "id": id, "version": 1, "schema": booking_v1()}));

    let other = booking(r#"{"name":"other","type":"int"}"#);
    let (status, body) = call(Method::POST, &url, Some(json!({ "schema": other }))).await?;
    assert_eq!((status, body["error_code"].clone()), (404, json!(40403)));
    let (status, body) =
        call(Method::POST, &format!("{}/subjects/nobody", server.url), Some(json!({ "schema": other }))).await?;
    assert_eq!((status, body["error_code"].clone()), (404, json!(40401)));
    server.stop().await
}

#[tokio::test]
async fn invalid_avro_and_other_schema_types_are_rejected_with_42201() -> Result<()> {
    let (_db, server) = fresh().await?;
    let url = format!("{}/subjects/bookings-value/versions", server.url);
    for body in [
        json!({ "schema": r#"{"type":"record","name":"Booking","fields":[{"name":"id","type":"nope"}]}"# }),
        json!({ "schema": "{not json" }),
        // apache-avro panics on this one; the server must still answer 422.
        json!({ "schema": r#"{"type":"record","name":"{ooking","fields":[]}"# }),
        json!({ "schema": "" }),
        json!({ "schema": r#""string""#, "schemaType": "PROTOBUF" }),
    ] {
        let (status, answer) = call(Method::POST, &url, Some(body.clone())).await?;
        assert_eq!(status, 422, "{body}");
        assert_eq!(answer["error_code"], 42201, "{body}");
        assert!(answer["message"].is_string());
    }
    let client = RegistryClient::new(&server.url);
    match client.register("bookings-value", "{").await {
        Err(RegistryError::Api { status: 422, error_code: 42201, .. }) => {}
        other => panic!("expected 422/42201, got {other:?}"),
    }
    // Nothing was registered by the failures.
    let (status, body) = call(Method::GET, &url, None).await?;
    assert_eq!((status, body["error_code"].clone()), (404, json!(40401)));
    server.stop().await
}

#[tokio::test]
async fn missing_versions_and_bad_version_numbers_have_their_own_codes() -> Result<()> {
    let (_db, server) = fresh().await?;
    RegistryClient::new(&server.url).register("bookings-value", &booking_v1()).await?;
    let url = format!("{}/subjects/bookings-value/versions", server.url);
    let (status, body) = call(Method::GET, &format!("{url}/7"), None).await?;
    assert_eq!((status, body["error_code"].clone()), (404, json!(40402)));
    let (status, body) = call(Method::GET, &format!("{url}/zero"), None).await?;
    assert_eq!((status, body["error_code"].clone()), (422, json!(42202)));
    let (status, body) = call(Method::GET, &format!("{}/subjects/nobody/versions/latest", server.url), None).await?;
    assert_eq!((status, body["error_code"].clone()), (404, json!(40401)));
    let (status, body) = call(Method::GET, &format!("{}/no/such/endpoint", server.url), None).await?;
    assert_eq!((status, body["error_code"].clone()), (404, json!(404)));
    server.stop().await
}

#[tokio::test]
async fn root_types_and_mode_answer_like_confluent() -> Result<()> {
    let (_db, server) = fresh().await?;
    assert_eq!(call(Method::GET, &format!("{}/", server.url), None).await?, (200, json!({})));
    assert_eq!(call(Method::GET, &format!("{}/schemas/types", server.url), None).await?, (200, json!(["AVRO"])));
    assert_eq!(call(Method::GET, &format!("{}/mode", server.url), None).await?, (200, json!({"mode": "READWRITE"})));
    let response = reqwest::get(format!("{}/subjects", server.url)).await?;
    assert_eq!(response.headers()["content-type"], "application/vnd.schemaregistry.v1+json");
    server.stop().await
}

#[tokio::test]
async fn soft_deleted_subject_disappears_and_a_permanent_delete_needs_a_soft_one_first() -> Result<()> {
    let (_db, server) = fresh().await?;
    let client = RegistryClient::new(&server.url);
    client.register("bookings-value", &booking_v1()).await?;
    client.register("bookings-value", &booking_v2()).await?;
    let subject = format!("{}/subjects/bookings-value", server.url);

    let (status, body) = call(Method::DELETE, &format!("{subject}?permanent=true"), None).await?;
    assert_eq!((status, body["error_code"].clone()), (404, json!(40405)));
    assert_eq!(call(Method::DELETE, &subject, None).await?, (200, json!([1, 2])));
    assert_eq!(call(Method::GET, &format!("{}/subjects", server.url), None).await?, (200, json!([])));
    assert_eq!(
        call(Method::GET, &format!("{}/subjects?deleted=true", server.url), None).await?,
        (200, json!(["bookings-value"]))
    );
    let (status, body) = call(Method::DELETE, &subject, None).await?;
    assert_eq!((status, body["error_code"].clone()), (404, json!(40404)));

    // Registering again continues the numbering and keeps the global id.
    let id = client.register("bookings-value", &booking_v1()).await?;
    let (_, latest) = call(Method::GET, &format!("{subject}/versions/latest"), None).await?;
    assert_eq!((latest["version"].clone(), latest["id"].clone()), (json!(3), json!(id)));
    assert_eq!(call(Method::DELETE, &format!("{subject}/versions/3"), None).await?, (200, json!(3)));
    assert_eq!(call(Method::DELETE, &format!("{subject}?permanent=true"), None).await?, (200, json!([1, 2, 3])));
    let (status, _) = call(Method::GET, &format!("{subject}/versions?deleted=true"), None).await?;
    assert_eq!(status, 404);
    server.stop().await
}

#[tokio::test]
async fn a_schema_larger_than_an_index_entry_registers_once() -> Result<()> {
    let (_db, server) = fresh().await?;
    // Several KB of schema: more than a btree index entry may hold, so identity must be unique by fingerprint.
    let fields: Vec<String> =
        (0..300).map(|n| format!(r#"{{"name":"field_{n}","type":"string","doc":"field number {n}"}}"#)).collect();
    let large = booking(&fields.join(","));
    assert!(large.len() > 10_000);
    let client = RegistryClient::new(&server.url);
    let first = client.register("large-value", &large).await?;
    assert_eq!(client.register("large-value", &large).await?, first);
    assert_eq!(client.register("other-value", &large).await?, first);
    assert_eq!(client.schema_by_id(first).await?, large);
    server.stop().await
}

#[tokio::test]
async fn a_body_without_the_registry_content_type_is_still_read_as_json() -> Result<()> {
    let (_db, server) = fresh().await?;
    // What `curl -d` sends: a form content type around a JSON body.
    let response = reqwest::Client::new()
        .post(format!("{}/subjects/plain-value/versions", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(json!({ "schema": r#""string""# }).to_string())
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.json::<serde_json::Value>().await?["id"].is_u64());
    let (status, body) =
        call(Method::POST, &format!("{}/subjects/plain-value/versions", server.url), Some(json!("not an object")))
            .await?;
    assert_eq!((status, body["error_code"].clone()), (400, json!(400)));
    server.stop().await
}

#[tokio::test]
async fn subjects_can_be_filtered_by_prefix() -> Result<()> {
    let (_db, server) = fresh().await?;
    let client = RegistryClient::new(&server.url);
    for subject in ["roomsync.a-value", "roomsync.b-value", "other-value"] {
        client.register(subject, r#""string""#).await?;
    }
    let (_, subjects) = call(Method::GET, &format!("{}/subjects?subjectPrefix=roomsync.", server.url), None).await?;
    assert_eq!(subjects, json!(["roomsync.a-value", "roomsync.b-value"]));
    server.stop().await
}
