//! Metric names of the Graph client, in one place. Labels are low-cardinality: `method`, `status` (the HTTP
//! status code, or `network` when no answer came), `reason` (throttled, transient); never URLs or mailboxes.

/// Counter: HTTP requests answered (or failed on the network), by `method` and `status`; a `$batch` counts once.
pub const REQUESTS: &str = "roomsync_graph_requests_total";
/// Counter: inner requests of `$batch` calls answered, by `method` and `status`.
pub const BATCH_ITEMS: &str = "roomsync_graph_batch_items_total";
/// Counter: 429 answers (top-level and inside `$batch`).
pub const THROTTLED: &str = "roomsync_graph_throttled_total";
/// Counter: requests (or `$batch` items) sent again, by `reason` (throttled, transient).
pub const RETRIES: &str = "roomsync_graph_retries_total";

/// The `reason` label of a retry.
pub(crate) fn retry_reason(class: &crate::ErrorClass) -> &'static str {
    match class {
        crate::ErrorClass::Throttled { .. } => "throttled",
        _ => "transient",
    }
}
