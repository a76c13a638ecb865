//! Requests shaped exactly as Microsoft's Kiota-generated SDKs send them (msgraph-sdk-python 1.61 with
//! msgraph-core and kiota-http; msgraph-sdk-dotnet's batch content): URL templates, middleware headers, model
//! serialisation. A client built on an SDK must work against the emulator as it does against Graph.

use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

use crate::tenant::{start, Graph, ROOM};

const TAG: &str = "String {66f5a359-4659-4830-9070-00050ec6ac6e} Name roomsyncReservation";

/// What kiota-http and msgraph-core's telemetry handler put on every request.
fn sdk(g: &Graph, method: Method, path_and_query: &str, client_request_id: &str) -> RequestBuilder {
    g.http
        .request(method, format!("{}/v1.0{path_and_query}", g.base))
        .bearer_auth(&g.token)
        .header("Accept", "application/json")
        .header("User-Agent", "python-httpx/0.28.1 kiota-python/1.9.2")
        .header("client-request-id", client_request_id)
        .header("SdkVersion", "graph-python/1.61.0, graph-python-core/1.4.0 (featureUsage=0x0)")
        .header("HostOs", "Linux 6.1")
        .header("RuntimeEnvironment", "Python/3.12.3")
}

/// Sends with a JSON body as Kiota does (`Content-Type: application/json`, the model's `@odata.type` first).
async fn send(request: RequestBuilder, body: Option<&Value>) -> (u16, reqwest::header::HeaderMap, Value) {
    let request = match body {
        Some(b) => request.header("Content-Type", "application/json").body(b.to_string()),
        None => request,
    };
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

/// An `Event` model as kiota-serialization-json writes it: only set properties, `@odata.type` on the event and
/// on attendees (their generated models default it), enums as their wire strings.
fn sdk_event(subject: &str, hour: u32, transaction_id: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.event",
        "attendees": [{
            "@odata.type": "#microsoft.graph.attendee",
            "emailAddress": {"address": "room@example.org", "name": "Room"},
            "type": "resource",
        }],
        "body": {"content": "Booked by roomsync", "contentType": "text"},
        "end": {"dateTime": format!("2030-03-04T{:02}:00:00", hour + 1), "timeZone": "W. Europe Standard Time"},
        "importance": "normal",
        "location": {"displayName": "Room"},
        "showAs": "busy",
        "singleValueExtendedProperties": [{"id": TAG, "value": transaction_id}],
        "start": {"dateTime": format!("2030-03-04T{hour:02}:00:00"), "timeZone": "W. Europe Standard Time"},
        "subject": subject,
        "transactionId": transaction_id,
    })
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20")
}

#[tokio::test]
async fn an_sdk_client_creates_reads_patches_and_syncs_events() {
    let g = start().await;
    let prefer = r#"outlook.timezone="W. Europe Standard Time", IdType="ImmutableId""#;

    // POST {+baseurl}/users/{user%2Did}/events: the UPN percent-encoded by the URL template.
    let create = sdk(&g, Method::POST, "/users/room%40example.org/events", "c0a8e0b2-0001-4000-8000-000000000001")
        .header("Prefer", prefer);
    let (status, headers, created) = send(create, Some(&sdk_event("Sprint review", 9, "tx-1"))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        headers.get("client-request-id").and_then(|v| v.to_str().ok()),
        Some("c0a8e0b2-0001-4000-8000-000000000001")
    );
    assert!(headers.get("location").is_some() && headers.get("request-id").is_some());
    assert_eq!(
        created["start"],
        json!({"dateTime": "2030-03-04T09:00:00.0000000", "timeZone": "W. Europe Standard Time"})
    );
    assert_eq!(created["originalStartTimeZone"], "W. Europe Standard Time");
    let id = created["id"].as_str().expect("id").to_string();

    // GET .../events/{event%2Did}{?%24expand,%24select}: Kiota percent-encodes the `$` and the expression.
    let expand = encode(&format!("singleValueExtendedProperties($filter=id eq '{TAG}')"));
    let path = format!("/users/{ROOM}/events/{id}?%24expand={expand}");
    let (status, _, read) = send(sdk(&g, Method::GET, &path, "c0a8e0b2-0001-4000-8000-000000000002"), None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["singleValueExtendedProperties"][0]["value"], "tx-1");

    // GET .../events{?%24filter,...}: the Any() filter that finds tagged events.
    let filter = encode(&format!("singleValueExtendedProperties/Any(ep: ep/id eq '{TAG}' and ep/value eq 'tx-1')"));
    let (status, _, found) = send(
        sdk(
            &g,
            Method::GET,
            &format!("/users/{ROOM}/events?%24filter={filter}"),
            "c0a8e0b2-0001-4000-8000-000000000003",
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["value"].as_array().map(Vec::len), Some(1));

    // PATCH with only the changed property (plus the model's @odata.type).
    let patch = json!({"@odata.type": "#microsoft.graph.event", "subject": "Sprint review (moved)"});
    let (status, _, patched) = send(
        sdk(&g, Method::PATCH, &format!("/users/{ROOM}/events/{id}"), "c0a8e0b2-0001-4000-8000-000000000004"),
        Some(&patch),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_ne!(patched["changeKey"], created["changeKey"]);

    // calendarView/delta() with the template's order (endDateTime first) and encoded colons, paged by Prefer.
    send(
        sdk(&g, Method::POST, &format!("/users/{ROOM}/events"), "c0a8e0b2-0001-4000-8000-000000000005"),
        Some(&sdk_event("Retro", 11, "tx-2")),
    )
    .await;
    send(
        sdk(&g, Method::POST, &format!("/users/{ROOM}/events"), "c0a8e0b2-0001-4000-8000-000000000006"),
        Some(&sdk_event("Planning", 13, "tx-3")),
    )
    .await;
    let delta = format!(
        "/users/{ROOM}/calendarView/delta()?endDateTime=2030-04-01T00%3A00%3A00Z&startDateTime=2030-03-01T00%3A00%3A00Z"
    );
    let mut next = Some(format!("{}/v1.0{delta}", g.base));
    let (mut seen, mut delta_link, mut pages) = (Vec::new(), None, 0);
    while let Some(url) = next.take() {
        // The SDK's page iterator follows nextLink verbatim (with_url).
        let request = g
            .http
            .get(&url)
            .bearer_auth(&g.token)
            .header("Prefer", "odata.maxpagesize=2")
            .header("Accept", "application/json");
        let (status, headers, page) = send(request, None).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(headers.get("preference-applied").and_then(|v| v.to_str().ok()), Some("odata.maxpagesize=2"));
        pages += 1;
        seen.extend(
            page["value"].as_array().into_iter().flatten().filter_map(|e| e["id"].as_str().map(str::to_string)),
        );
        next = page["@odata.nextLink"].as_str().map(str::to_string);
        delta_link = page["@odata.deltaLink"].as_str().map(str::to_string);
    }
    assert_eq!((seen.len(), pages), (3, 2));
    let (status, _, _) = send(
        sdk(&g, Method::DELETE, &format!("/users/{ROOM}/events/{id}"), "c0a8e0b2-0001-4000-8000-000000000007"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let link = delta_link.expect("deltaLink");
    let (_, _, changes) = send(g.http.get(link).bearer_auth(&g.token).header("Accept", "application/json"), None).await;
    assert_eq!(
        changes["value"],
        json!([{"@odata.type": "#microsoft.graph.event", "id": id, "@removed": {"reason": "deleted"}}])
    );
}

#[tokio::test]
async fn an_sdk_batch_with_depends_on_runs_and_a_throttled_sdk_gets_an_integer_retry_after() {
    let g = start().await;
    // msgraph-sdk-dotnet's BatchRequestContent: relative urls, header values as strings, dependsOn ids.
    let batch = json!({"requests": [
        {"id": "1", "method": "POST", "url": format!("/users/{ROOM}/events"),
         "headers": {"Content-Type": "application/json; charset=utf-8"}, "body": sdk_event("Standup", 8, "tx-b1")},
        {"id": "2", "method": "GET", "url": format!("/users/{ROOM}/events?%24top=5"), "dependsOn": ["1"],
         "headers": {"Accept": "application/json"}},
    ]});
    let (status, _, answer) =
        send(sdk(&g, Method::POST, "/$batch", "c0a8e0b2-0002-4000-8000-000000000001"), Some(&batch)).await;
    assert_eq!(status, 200, "{answer}");
    let by_id = |id: &str| {
        answer["responses"].as_array().into_iter().flatten().find(|r| r["id"] == id).cloned().unwrap_or_default()
    };
    assert_eq!(by_id("1")["status"], 201);
    assert_eq!(by_id("2")["status"], 200);
    assert_eq!(by_id("2")["body"]["value"][0]["subject"], "Standup");

    // kiota-http's RetryHandler reads Retry-After with int(): the rate window must answer whole seconds.
    let limited = json!({"rateLimitRequests": 1, "rateLimitWindowMs": 60_000});
    g.http.patch(format!("{}/_emulator/faults", g.base)).json(&limited).send().await.expect("faults");
    let path = format!("/users/{ROOM}/events");
    send(sdk(&g, Method::GET, &path, "c0a8e0b2-0002-4000-8000-000000000002"), None).await;
    let (status, headers, _) = send(sdk(&g, Method::GET, &path, "c0a8e0b2-0002-4000-8000-000000000003"), None).await;
    assert_eq!(status, 429);
    let retry_after = headers.get("retry-after").and_then(|v| v.to_str().ok()).expect("Retry-After");
    assert!(retry_after.parse::<u64>().is_ok_and(|s| (1..=60).contains(&s)), "{retry_after}");
}
