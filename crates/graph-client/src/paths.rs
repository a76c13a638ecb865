//! Every Graph path roomsync uses, relative to the version root, and the one percent-encoding of what goes into
//! them. graph-sink, graph-source and reconcile hand these to [`crate::BatchRequest`]; the client's own calls put
//! them under the configured base. No other crate builds a Graph path or percent-encodes a mailbox.
//!
//! ```text
//! mailbox, event id, subscription id --encode--> one path segment  --> /users/{m}/events/{id}[/decline]
//! $filter / $expand / $select / window values --encode--> one query value --> ?$filter=...&$top=1
//! ```
//! Invariant: a mailbox is spelled the same in every request that names it, whichever stage sends it. Before this
//! module the sink kept `@` and the source, reconcile and the client sent `%40`; Graph took both, but request
//! logs, the emulator's per-mailbox bookkeeping and anything else keyed on the path saw two mailboxes.
//!
//! The encoding: RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) and `@` stay as they are; every other
//! byte becomes `%XX`. `@` is allowed literally in a path segment (RFC 3986 `pchar`) and in a query, and
//! Microsoft's own examples write UPNs that way (`/users/AdeleV_adatum.com%23EXT%23@contoso.com`), so a room
//! addressed by its SMTP address reads as itself. It also keeps the subscription resource
//! (`/users/{mailbox}/events`, a JSON string the emulator matches without decoding) the same as before for every
//! ordinary address; the emulator's throttling gate decodes `%XX` in the mailbox segment, so its per-mailbox
//! throttling holds for either spelling. Everything else is escaped: `/` would split the segment, `#` and `?`
//! would end it, `+` reads as a space in form-decoded queries, and `'`, `(`, `)`, `$`, `=` are OData syntax.

use std::fmt;

use chrono::{DateTime, Utc};

/// A Graph path relative to the version root (`/users/{m}/events?$top=1`), with its query options encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphPath {
    text: String,
    has_query: bool,
}

impl GraphPath {
    fn new(text: String) -> Self {
        Self { text, has_query: false }
    }

    /// Appends one query option; `value` is encoded, `name` is one of ours and goes as it is.
    fn param(mut self, name: &str, value: &str) -> Self {
        self.text.push(if self.has_query { '&' } else { '?' });
        self.has_query = true;
        self.text.push_str(name);
        self.text.push('=');
        self.text.push_str(&encode(value));
        self
    }

    /// `$filter=expression`.
    pub fn filter(self, expression: &str) -> Self {
        self.param("$filter", expression)
    }

    /// `$filter` for events whose single-value extended property `id` equals `value`.
    pub fn filter_property(self, id: &str, value: &str) -> Self {
        self.filter(&filter_extended(id, value))
    }

    /// `$filter` for events that carry the single-value extended property `id`, whatever its value.
    pub fn filter_has_property(self, id: &str) -> Self {
        self.filter(&filter_extended_present(id))
    }

    /// `$expand=expression`.
    pub fn expand(self, expression: &str) -> Self {
        self.param("$expand", expression)
    }

    /// `$expand` of the single-value extended properties `ids` (the only way Graph returns them).
    pub fn expand_properties(self, ids: &[&str]) -> Self {
        self.expand(&expand_extended(ids))
    }

    /// `$select` of `fields`.
    pub fn select(self, fields: &[&str]) -> Self {
        self.param("$select", &fields.join(","))
    }

    /// `$top=n`.
    pub fn top(self, n: usize) -> Self {
        self.param("$top", &n.to_string())
    }

    /// `startDateTime` and `endDateTime` of a window, in RFC 3339 (Graph reads each with its own offset).
    fn window(self, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        self.param("startDateTime", &start.to_rfc3339()).param("endDateTime", &end.to_rfc3339())
    }

    /// The path and query as sent.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The absolute URL under `base`, the configured version root (`https://graph.microsoft.com/v1.0`).
    pub fn under(&self, base: &str) -> String {
        format!("{}{}", base.trim_end_matches('/'), self.text)
    }
}

impl fmt::Display for GraphPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<GraphPath> for String {
    fn from(path: GraphPath) -> Self {
        path.text
    }
}

/// `/users/{mailbox}/events`: single instances and series masters; POST creates here.
pub fn events(mailbox: &str) -> GraphPath {
    GraphPath::new(format!("/users/{}/events", encode(mailbox)))
}

/// `/users/{mailbox}/events/{id}`: one event (GET, PATCH, DELETE).
pub fn event(mailbox: &str, id: &str) -> GraphPath {
    GraphPath::new(format!("/users/{}/events/{}", encode(mailbox), encode(id)))
}

/// `/users/{mailbox}/events/{id}/accept`: the mailbox owner accepts the meeting.
pub fn accept(mailbox: &str, id: &str) -> GraphPath {
    GraphPath::new(format!("{}/accept", event(mailbox, id)))
}

/// `/users/{mailbox}/events/{id}/decline`: the mailbox owner declines the meeting.
pub fn decline(mailbox: &str, id: &str) -> GraphPath {
    GraphPath::new(format!("{}/decline", event(mailbox, id)))
}

/// `/users/{mailbox}/events/{master}/instances` over `[start, end)`: occurrences and exceptions of a series.
pub fn instances(mailbox: &str, master: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> GraphPath {
    GraphPath::new(format!("{}/instances", event(mailbox, master))).window(start, end)
}

/// `/users/{mailbox}/calendarView` over `[start, end)`: occurrences, exceptions and single instances.
pub fn calendar_view(mailbox: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> GraphPath {
    GraphPath::new(format!("/users/{}/calendarView", encode(mailbox))).window(start, end)
}

/// `/users/{mailbox}/calendarView/delta` over `[start, end)`: the first page of a full delta round (later pages
/// and rounds follow the links Graph hands out, never a path built here).
pub fn calendar_view_delta(mailbox: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> GraphPath {
    GraphPath::new(format!("/users/{}/calendarView/delta", encode(mailbox))).window(start, end)
}

/// The `resource` of a change-notification subscription to a mailbox's events: the same text as
/// [`events`], since Graph reads it as a path relative to the version root.
pub fn events_resource(mailbox: &str) -> String {
    events(mailbox).into()
}

/// `/subscriptions`: POST creates a subscription.
pub fn subscriptions() -> GraphPath {
    GraphPath::new("/subscriptions".to_owned())
}

/// `/subscriptions/{id}`: PATCH renews, DELETE removes.
pub fn subscription(id: &str) -> GraphPath {
    GraphPath::new(format!("/subscriptions/{}", encode(id)))
}

/// `/subscriptions/{id}/reauthorize`.
pub fn reauthorize(id: &str) -> GraphPath {
    GraphPath::new(format!("{}/reauthorize", subscription(id)))
}

/// `/places/microsoft.graph.room`: every room of the tenant.
pub fn rooms() -> GraphPath {
    GraphPath::new("/places/microsoft.graph.room".to_owned())
}

/// `/$batch`: JSON batching.
pub fn batch() -> GraphPath {
    GraphPath::new("/$batch".to_owned())
}

/// The `$expand` expression for single-value extended properties by id.
pub fn expand_extended(ids: &[&str]) -> String {
    let clauses: Vec<String> = ids.iter().map(|id| format!("id eq '{}'", quote(id))).collect();
    format!("singleValueExtendedProperties($filter={})", clauses.join(" or "))
}

/// The `$filter` expression matching events whose extended property `id` equals `value`.
pub fn filter_extended(id: &str, value: &str) -> String {
    format!("singleValueExtendedProperties/Any(ep: ep/id eq '{}' and ep/value eq '{}')", quote(id), quote(value))
}

/// The `$filter` expression matching events that carry the extended property `id` (Graph documents an `eq` on
/// the id alone for "resource instances that have certain extended properties").
pub fn filter_extended_present(id: &str) -> String {
    format!("singleValueExtendedProperties/Any(ep: ep/id eq '{}')", quote(id))
}

/// An OData string literal's content: `'` doubled.
fn quote(text: &str) -> String {
    text.replace('\'', "''")
}

/// Percent-encodes one path segment or query value: RFC 3986 unreserved characters and `@` stay, every other
/// byte becomes `%XX` (see the module doc for why `@` stays).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mailbox with each character the stages used to encode differently, or that breaks a path unescaped.
    const MAILBOX: &str = "room a+b/c@example.org";
    const SEGMENT: &str = "room%20a%2Bb%2Fc@example.org";

    fn at(day: u32) -> DateTime<Utc> {
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2030, 1, day, 0, 0, 0).single().expect("valid date")
    }

    #[test]
    fn encoding_keeps_unreserved_characters_and_at_and_escapes_the_rest() {
        assert_eq!(encode("hall-a@kommune.no"), "hall-a@kommune.no");
        assert_eq!(encode("AAMk-_.~"), "AAMk-_.~");
        assert_eq!(encode("AAMk/x+=="), "AAMk%2Fx%2B%3D%3D");
        assert_eq!(encode("a b/c'{x}(y)"), "a%20b%2Fc%27%7Bx%7D%28y%29");
        assert_eq!(encode("#?&$%"), "%23%3F%26%24%25");
        assert_eq!(encode("ø"), "%C3%B8");
    }

    #[test]
    fn every_path_names_a_mailbox_by_the_same_segment() {
        let mailbox_paths = [
            events(MAILBOX),
            event(MAILBOX, "e"),
            accept(MAILBOX, "e"),
            decline(MAILBOX, "e"),
            instances(MAILBOX, "e", at(1), at(2)),
            calendar_view(MAILBOX, at(1), at(2)),
            calendar_view_delta(MAILBOX, at(1), at(2)),
            events(MAILBOX).filter_property("p", "v").top(1),
        ];
        let prefix = format!("/users/{SEGMENT}/");
        for path in mailbox_paths.iter().map(GraphPath::as_str).chain([events_resource(MAILBOX).as_str()]) {
            assert!(path.starts_with(&prefix), "{path}");
        }
    }

    #[test]
    fn item_paths_escape_the_id_as_one_segment() {
        assert_eq!(event(MAILBOX, "AAMk/x+y=").as_str(), format!("/users/{SEGMENT}/events/AAMk%2Fx%2By%3D"));
        assert_eq!(decline(MAILBOX, "AAMk/x").as_str(), format!("/users/{SEGMENT}/events/AAMk%2Fx/decline"));
        assert_eq!(reauthorize("s/1").as_str(), "/subscriptions/s%2F1/reauthorize");
        assert_eq!(events_resource("room-a@example.org"), "/users/room-a@example.org/events");
    }

    #[test]
    fn query_options_are_joined_in_order_with_their_values_encoded() {
        let path = events("r@x.no").filter_property("String {g} Name Id", "O'Neil").top(100).select(&["id", "subject"]);
        assert_eq!(
            path.as_str(),
            "/users/r@x.no/events?$filter=singleValueExtendedProperties%2FAny%28ep%3A%20ep%2Fid%20eq%20%27String%20\
             %7Bg%7D%20Name%20Id%27%20and%20ep%2Fvalue%20eq%20%27O%27%27Neil%27%29&$top=100&$select=id%2Csubject"
        );
        let present = events("r@x.no").filter_has_property("String {g} Name Type").top(1);
        assert_eq!(
            present.as_str(),
            "/users/r@x.no/events?$filter=singleValueExtendedProperties%2FAny%28ep%3A%20ep%2Fid%20eq%20%27String%20\
             %7Bg%7D%20Name%20Type%27%29&$top=1"
        );
        let expanded = event("r@x.no", "e").expand_properties(&["a", "b"]);
        assert_eq!(
            expanded.as_str(),
            "/users/r@x.no/events/e?$expand=singleValueExtendedProperties%28%24filter%3Did%20eq%20%27a%27%20or%20\
             id%20eq%20%27b%27%29"
        );
    }

    #[test]
    fn windows_are_sent_in_rfc3339_and_paths_hang_under_the_base() {
        let view = calendar_view("r@x.no", at(1), at(2));
        assert_eq!(
            view.as_str(),
            "/users/r@x.no/calendarView?startDateTime=2030-01-01T00%3A00%3A00%2B00%3A00\
             &endDateTime=2030-01-02T00%3A00%3A00%2B00%3A00"
        );
        assert_eq!(batch().under("https://graph.test/v1.0/"), "https://graph.test/v1.0/$batch");
        assert_eq!(rooms().under("https://graph.test/v1.0"), "https://graph.test/v1.0/places/microsoft.graph.room");
        assert_eq!(subscriptions().to_string(), "/subscriptions");
    }
}
