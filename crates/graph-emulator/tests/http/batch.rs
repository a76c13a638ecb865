//! `$batch` payload rules: what Graph refuses as a whole before running any inner request.

use reqwest::Method;
use serde_json::json;

use crate::tenant::{start, ROOM};

#[tokio::test]
async fn an_absolute_inner_url_fails_the_whole_batch_as_graph_does() {
    let g = start().await;
    // msgraph-sdk-python-core's BatchRequestItem sends absolute URLs (its issue #1116); Graph answers the whole
    // batch 400 "Invalid batch payload format." (microsoft-graph-docs-contrib issue #8576) and runs nothing.
    let create = json!({
        "id": "1",
        "method": "POST",
        "url": format!("https://graph.microsoft.com/v1.0/users/{ROOM}/events"),
        "headers": {"Content-Type": "application/json"},
        "body": {"subject": "x", "start": {"dateTime": "2030-01-07T08:00:00", "timeZone": "UTC"},
                 "end": {"dateTime": "2030-01-07T09:00:00", "timeZone": "UTC"}},
    });
    let a = g.call(Method::POST, "/$batch", Some(json!({"requests": [create]})), &[]).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.body["error"]["code"], "BadRequest");
    assert_eq!(a.body["error"]["message"], "Invalid batch payload format.");
    assert!(g.emu.mailbox_events(ROOM).expect("mailbox").is_empty(), "no inner request ran");
    assert!(g.emu.requests().iter().all(|r| !r.in_batch));
}
