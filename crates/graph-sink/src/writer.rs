//! Graph calls for the items of one mailbox: lookups by tag, then creates, updates and deletes, each phase as
//! `$batch` requests of up to 20 (the client chunks, honours Retry-After, resends throttled inner requests, and
//! never has more than 4 requests in flight per mailbox).
//!
//! ```text
//! Find   -> GET events?$filter=Any(BookingSystemId eq id)&$expand=tags -> adopt (same hash: no write;
//!           else Update) | Create(transactionId) | Delete(found) | gone
//! Create -> POST (transactionId)  201: synced               definite: parked   ambiguous failure: Find again
//! Update -> PATCH (full content)  200: synced  404: Find again, next generation   definite: parked
//! Delete -> DELETE                204 or 404: deleted        definite: parked
//! ```
//! Invariants: an item whose request failed transiently keeps its step (the unit retries it later); a definite
//! failure parks only that item, so a poison item never holds up the rest of its room.

use graph_client::properties::{
    self, BOOKING_SYSTEM_ID, BOOKING_SYSTEM_TYPE, ROOMSYNC_CONTENT_HASH, ROOMSYNC_ITEM_KEY,
};
use graph_client::{paths, BatchRequest, BatchResponse, ErrorClass, Event, GraphClient, GraphError, Method};
use serde::Deserialize;
use tracing::{debug, warn};

use crate::content::event_for;
use crate::plan::{create_transaction_id, Step};
use crate::work::{Op, Work};

/// Events sharing one reservation id in one room, asked for in one page (pieces of a reservation).
const LOOKUP_PAGE: usize = 100;

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<Event>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
}

/// What a failed request means for its item.
enum Failure {
    /// Try again later.
    Retry,
    /// Park with this class.
    Park(&'static str),
    /// The event is not there.
    NotFound,
}

fn failure(err: &GraphError) -> Failure {
    match err.classify() {
        ErrorClass::Transient { .. } | ErrorClass::Throttled { .. } | ErrorClass::Conflict => Failure::Retry,
        ErrorClass::NotFound => Failure::NotFound,
        ErrorClass::Definite | ErrorClass::SyncStateGone => Failure::Park("graph_definite"),
    }
}

/// Sends `requests` as `$batch` calls. When the whole call fails, every item shares that failure: transient
/// ones are retried with the unit, anything else parks them (a refused mailbox, for example).
async fn send(
    client: &GraphClient,
    mailbox: &str,
    requests: Vec<BatchRequest>,
    items: &mut [&mut Work],
) -> Option<Vec<BatchResponse>> {
    let n = requests.len();
    let err = match client.batch(mailbox, requests).await {
        Ok(answers) if answers.len() == n => return Some(answers),
        Ok(_) => GraphError::Decode("batch answer count differs from the request count".into()),
        Err(err) => err,
    };
    warn!(error = %err, "graph batch failed");
    for work in items.iter_mut() {
        match failure(&err) {
            Failure::Park(kind) if !matches!(err, GraphError::Decode(_)) => work.park(kind, err.to_string()),
            _ => retry(work, &err),
        }
    }
    None
}

fn retry(work: &mut Work, err: &GraphError) {
    work.failures += 1;
    metrics::counter!(crate::metrics::ITEMS_RETRIED).increment(1);
    debug!(item_key = %work.item_key, error = %err, "graph write will be retried");
    // A create that failed without a throttle (a timeout, a 5xx, a lost or unreadable answer) may have landed:
    // Graph de-duplicates a repeated transactionId only for a while and never against a deleted event, so the
    // next round looks the item up by its tags first and posts again (same transactionId) only if nothing is
    // there. A 429 means the request was not processed: posting again is safe.
    if matches!(work.step, Step::Create(_)) && !matches!(err.classify(), ErrorClass::Throttled { .. }) {
        work.step = Step::Find;
    }
}

/// Whether `event` is the one `work` is about: roomsync's key matches, or it is the PHP integration's event
/// for the same reservation (no roomsync key, same type and id) and the item is the reservation unsplit.
fn is_candidate(work: &Work, event: &Event) -> bool {
    let Some(item) = &work.desired else { return false };
    match event.extended(ROOMSYNC_ITEM_KEY) {
        Some(key) => key == work.item_key,
        None => {
            let unsplit = work.item_key == format!("{}:{}", item.kind.as_str(), item.reservation_id);
            unsplit
                && event.extended(BOOKING_SYSTEM_TYPE).is_some_and(|t| t.eq_ignore_ascii_case(item.kind.as_str()))
                && event.extended(BOOKING_SYSTEM_ID) == Some(item.reservation_id.to_string().as_str())
        }
    }
}

fn found(work: &mut Work, events: &[Event]) {
    let candidate = events.iter().find(|e| is_candidate(work, e) && e.id.is_some());
    let upsert = work.desired.as_ref().is_some_and(|d| d.op == vocabulary::records::UpsertOrDelete::Upsert);
    match (candidate, upsert) {
        (Some(event), true) => {
            if event.extended(ROOMSYNC_CONTENT_HASH) == work.desired_hash().as_deref() {
                settle_unless_edited(work, Op::Adopt, event);
            } else {
                work.step = Step::Update(event.id.clone().unwrap_or_default());
            }
        }
        (Some(event), false) => work.step = Step::Delete(event.id.clone().unwrap_or_default()),
        (None, _) => nothing_tagged(work),
    }
}

/// No event carries the item's tags: an upsert is created, a deletion is done.
pub(crate) fn nothing_tagged(work: &mut Work) {
    let upsert = work.desired.as_ref().is_some_and(|d| d.op == vocabulary::records::UpsertOrDelete::Upsert);
    if upsert {
        let tx = create_transaction_id(&work.mailbox, &work.item_key, work.row.as_ref(), work.vanished);
        work.transaction_id = tx;
        work.step = Step::Create(tx);
    } else {
        work.deleted();
    }
}

/// Takes `event` as the item written, unless someone edited it in Outlook after roomsync wrote it: a create
/// answered by transactionId de-duplication, or an event found by its tags, carries roomsync's content-hash tag
/// whatever its fields now say. Recording its changeKey would make the resolver take the edited version for
/// roomsync's own (an echo) for ever; the item is rewritten with the full content instead.
fn settle_unless_edited(work: &mut Work, op: Op, event: &Event) {
    let content = work.desired.as_ref().and_then(|d| d.content.as_ref());
    match (content.and_then(|c| crate::content::shows(event, c)), &event.id) {
        (Some(false), Some(id)) => {
            metrics::counter!(crate::metrics::EDITED_BEFORE_SETTLED, "op" => op.as_str()).increment(1);
            debug!(item_key = %work.item_key, event_id = %id, "event edited in Outlook before roomsync settled it: rewriting");
            work.step = Step::Update(id.clone());
        }
        _ => work.synced(op, event),
    }
}

/// Looks up, by their tags, the events of the items of one mailbox whose step is `Find`.
pub async fn find(client: &GraphClient, mailbox: &str, items: &mut [Work]) {
    let mut asked: Vec<&mut Work> = items.iter_mut().filter(|w| !w.is_done() && w.step == Step::Find).collect();
    if asked.is_empty() {
        return;
    }
    let requests: Vec<BatchRequest> = asked
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let id = w.desired.as_ref().map(|d| d.reservation_id).unwrap_or_default().to_string();
            let url = paths::events(mailbox)
                .filter_property(BOOKING_SYSTEM_ID, &id)
                .expand_properties(&properties::ROOMSYNC_PROPERTIES)
                .top(LOOKUP_PAGE);
            BatchRequest::new(format!("f{i}"), Method::GET, url)
        })
        .collect();
    let Some(answers) = send(client, mailbox, requests, &mut asked).await else { return };
    for (work, answer) in asked.iter_mut().zip(answers) {
        match answer.json::<Page>() {
            Ok(page) => {
                if page.next_link.is_some() {
                    warn!(item_key = %work.item_key, "more tagged events share this reservation id than a page");
                }
                found(work, &page.value)
            }
            Err(err) => match failure(&err) {
                Failure::Retry => retry(work, &err),
                Failure::Park(kind) => work.park(kind, err.to_string()),
                Failure::NotFound => work.park("unknown_mailbox", err.to_string()),
            },
        }
    }
}

fn request(i: usize, mailbox: &str, work: &Work) -> Result<BatchRequest, String> {
    let body = |event: &Event| serde_json::to_value(event).map_err(|e| e.to_string());
    let event = || {
        work.desired
            .as_ref()
            .ok_or_else(|| "no content".to_owned())
            .and_then(|d| event_for(d).map_err(|e| e.to_string()))
    };
    let mut r = match &work.step {
        Step::Create(tx) => {
            let mut e = event()?;
            e.transaction_id = Some(tx.to_string());
            let mut r = BatchRequest::new(format!("w{i}"), Method::POST, paths::events(mailbox));
            r.body = Some(body(&e)?);
            r
        }
        Step::Update(id) => {
            let mut r = BatchRequest::new(format!("w{i}"), Method::PATCH, paths::event(mailbox, id));
            r.body = Some(body(&event()?)?);
            r
        }
        Step::Delete(id) => BatchRequest::new(format!("w{i}"), Method::DELETE, paths::event(mailbox, id)),
        Step::Skip | Step::Find => return Err("nothing to write".into()),
    };
    r.depends_on.clear();
    Ok(r)
}

/// Sends the creates, updates and deletes of one mailbox's items.
pub async fn write(client: &GraphClient, mailbox: &str, items: &mut [Work]) {
    let mut asked: Vec<&mut Work> = Vec::new();
    let mut requests = Vec::new();
    for work in items.iter_mut().filter(|w| !w.is_done() && w.intent().is_some()) {
        match request(requests.len(), mailbox, work) {
            Ok(r) => {
                requests.push(r);
                asked.push(work);
            }
            Err(reason) => work.park("bad_content", reason),
        }
    }
    if requests.is_empty() {
        return;
    }
    let Some(answers) = send(client, mailbox, requests, &mut asked).await else { return };
    for (work, answer) in asked.iter_mut().zip(answers) {
        let step = work.step.clone();
        let result = match answer.error() {
            Some(err) => Err(err),
            None => Ok(answer),
        };
        match (step, result) {
            (Step::Create(_), Ok(a)) => match a.json::<Event>() {
                Ok(event) => settle_unless_edited(work, Op::Create, &event),
                Err(err) => retry(work, &err),
            },
            (Step::Update(_), Ok(a)) => match a.json::<Event>() {
                Ok(event) => work.synced(Op::Update, &event),
                Err(err) => retry(work, &err),
            },
            (Step::Delete(_), Ok(_)) => work.deleted(),
            (Step::Skip | Step::Find, Ok(_)) => {}
            (step, Err(err)) => match (failure(&err), step) {
                (Failure::Retry, _) => retry(work, &err),
                (Failure::NotFound, Step::Delete(_)) => work.deleted(),
                (Failure::NotFound, Step::Update(_)) => {
                    // Someone deleted the event in Outlook: look again, then create a new generation.
                    work.vanished = true;
                    work.step = Step::Find;
                }
                (Failure::NotFound, _) => work.park("unknown_mailbox", err.to_string()),
                (Failure::Park(kind), _) => work.park(kind, err.to_string()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::request;
    use crate::plan::Step;
    use crate::work::{Source, Work};

    #[test]
    fn a_delete_names_the_mailbox_as_every_stage_does() {
        let mailbox = "room a+b/c@example.org";
        let source = Source { topic: "t".into(), partition: 0, offset: 0, key: None, value: None };
        let mut work = Work::new(mailbox.into(), "event:1".into(), None, None, source);
        work.step = Step::Delete("AAMk/x+y=".into());
        let url = request(0, mailbox, &work).map(|r| r.url).unwrap_or_default();
        let expected = "/users/room%20a%2Bb%2Fc@example.org/events/AAMk%2Fx%2By%3D";
        assert_eq!(url, expected, "\n  sent: {url}\n  want: {expected}");
    }
}
