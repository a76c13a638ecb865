//! The Kafka side: a consumer-group member whose positions come from PostgreSQL.
//!
//! On every partition assignment (the first one at start included) the rebalance callback reads the offsets
//! stored in `roomsync_consumer_offsets` and assigns the partitions at exactly those positions (from the
//! beginning where PostgreSQL has none), so Kafka's own committed offsets never decide where the sink resumes:
//! they are only a hint for lag monitoring, committed after PostgreSQL's. Records below PostgreSQL's offset that
//! still arrive (another member moved them meanwhile) are dropped by the unit (see `offsets`).
//!
//! While a unit runs, the member stays in its group ([`SinkConsumer::hold`]): a task keeps a `recv` pending, which
//! serves rebalances and polls at least every half `max.poll.interval.ms`, so a unit that takes longer than that
//! (a throttling storm, a large first load, a wait for another member's unit) does not get its member evicted.
//! What it receives meanwhile is kept, in order, for the next unit, up to a limit (the running unit's size, at
//! least `max_batch_records`, so a catching-up unit is followed by one as large); from there on the assigned
//! partitions are paused (librdkafka drops what it fetched ahead and fetches again from the last record handed
//! out once resumed), so memory stays bounded however long the unit takes. Pausing at once cost every unit a
//! fresh fetch: p99 commit-to-Graph went from 0.3 s to 1.2 s at 100 changes/s (benches/README.md).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use streams::KafkaSettings;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use tracing::{info, warn};

use crate::error::SinkError;
use crate::offsets::{self, Partition};
use crate::work::Source;

/// How long [`SinkConsumer::behind`] waits for a partition's watermarks.
const WATERMARK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Assigns partitions at PostgreSQL's offsets.
pub struct PostgresPositions {
    database: tokio_postgres::Config,
    group: String,
}

impl PostgresPositions {
    /// Reads the stored offsets on a thread of its own: the rebalance callback is synchronous and runs inside
    /// the consumer's poll, on the async executor, where no runtime may be blocked on.
    fn stored(&self, partitions: Vec<Partition>) -> Result<HashMap<Partition, i64>, String> {
        let database = self.database.clone();
        let group = self.group.clone();
        let reader = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let (client, connection) = database.connect(NoTls).await.map_err(|e| e.to_string())?;
                let driver = tokio::spawn(connection);
                let stored = offsets::load(&client, &group, &partitions).await.map_err(|e| e.to_string());
                drop(client);
                let _ = driver.await;
                stored
            })
        });
        reader.join().map_err(|_| "offset reader panicked".to_owned())?
    }
}

impl ClientContext for PostgresPositions {}

impl ConsumerContext for PostgresPositions {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, list: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let partitions: Vec<Partition> =
                    list.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect();
                ::metrics::counter!(crate::metrics::REBALANCES, "kind" => "assign").increment(1);
                match self.stored(partitions.clone()) {
                    Ok(stored) => {
                        for partition in &partitions {
                            let offset = stored.get(partition).map_or(Offset::Beginning, |o| Offset::Offset(*o));
                            if let Err(err) = list.set_partition_offset(&partition.0, partition.1, offset) {
                                warn!(error = %err, "could not set an assigned partition's offset");
                            }
                            info!(
                                topic = %partition.0,
                                partition = partition.1,
                                offset = ?offset,
                                "assigned at the postgres offset"
                            );
                        }
                    }
                    // Kafka's committed offsets are never ahead of PostgreSQL's, so starting there loses
                    // nothing; the unit still drops what PostgreSQL says was applied.
                    Err(err) => warn!(error = %err, "reading postgres offsets failed; assigning at kafka's offsets"),
                }
                if cooperative {
                    consumer.incremental_assign(list)
                } else {
                    consumer.assign(list)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                ::metrics::counter!(crate::metrics::REBALANCES, "kind" => "revoke").increment(1);
                info!(partitions = list.count(), "partitions revoked");
                if cooperative {
                    consumer.incremental_unassign(list)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                warn!(error = ?other, "rebalance error");
                Ok(())
            }
        };
        if let Err(err) = result {
            warn!(error = %err, "applying a rebalance failed");
        }
    }
}

/// The sink's consumer. Clones share one group member; only one of them may receive at a time.
#[derive(Clone)]
pub struct SinkConsumer {
    consumer: Arc<StreamConsumer<PostgresPositions>>,
}

/// A consumer held in its group while a unit runs (see the module docs); [`Held::release`] ends it.
pub struct Held {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Vec<Source>>,
    consumer: Arc<StreamConsumer<PostgresPositions>>,
}

impl Held {
    /// Resumes the partitions (where they were paused) and hands back the records that arrived meanwhile, in the
    /// order they came.
    pub async fn release(self) -> Vec<Source> {
        let _ = self.stop.send(());
        let records = self.task.await.unwrap_or_default();
        if let Ok(assignment) = self.consumer.assignment() {
            if let Err(err) = self.consumer.resume(&assignment) {
                warn!(error = %err, "resuming the partitions failed");
            }
        }
        records
    }
}

fn pause_all(consumer: &StreamConsumer<PostgresPositions>) {
    match consumer.assignment() {
        Ok(assignment) => {
            if let Err(err) = consumer.pause(&assignment) {
                warn!(error = %err, "pausing the partitions failed");
            }
        }
        Err(err) => warn!(error = %err, "reading the assignment failed"),
    }
}

fn source(message: &rdkafka::message::BorrowedMessage<'_>) -> Source {
    Source {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
    }
}

impl SinkConsumer {
    /// Joins `group` on `topics` (manual commits; positions from PostgreSQL, see the module docs).
    pub fn subscribe(
        settings: &KafkaSettings,
        group: &str,
        topics: &[&str],
        database: &tokio_postgres::Config,
    ) -> Result<Self, SinkError> {
        let positions = PostgresPositions { database: database.clone(), group: group.to_owned() };
        let consumer: StreamConsumer<PostgresPositions> = settings
            .consumer_config(group)
            .create_with_context(positions)
            .map_err(|source| SinkError::Kafka { context: "creating the consumer", source })?;
        consumer.subscribe(topics).map_err(|source| SinkError::Kafka { context: "subscribing", source })?;
        Ok(SinkConsumer { consumer: Arc::new(consumer) })
    }

    /// The next record.
    pub async fn recv(&self) -> Result<Source, SinkError> {
        let message = self.consumer.recv().await.map_err(|source| SinkError::Kafka { context: "consuming", source })?;
        Ok(source(&message))
    }

    /// Keeps the member in its group while a unit runs: keeps a `recv` pending until [`Held::release`], holding up
    /// to `limit` records for the next unit, and pauses the assigned partitions once it holds that many.
    pub fn hold(&self, limit: usize) -> Held {
        let (stop, mut stopped) = oneshot::channel();
        let consumer = Arc::clone(&self.consumer);
        let task = tokio::spawn(async move {
            let mut arrived = Vec::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => return arrived,
                    message = consumer.recv() => match message {
                        Ok(message) => {
                            arrived.push(source(&message));
                            // Full: pause every partition (again after each arrival, for those assigned since).
                            if arrived.len() >= limit {
                                pause_all(&consumer);
                            }
                        }
                        // Errors also reach the next `recv` of the sink, which decides about them.
                        Err(err) => warn!(error = %err, "consumer error while a unit runs"),
                    },
                }
            }
        });
        Held { stop, task, consumer: Arc::clone(&self.consumer) }
    }

    /// Whether the broker holds records of an assigned partition beyond those handed out: a catching-up unit
    /// waits for them (a large fetch can take longer than the gap between records). Asks the broker for the high
    /// watermarks (one round trip per partition, only when a catching-up unit's gap has passed); `false` when
    /// that fails or a position is not known yet.
    pub async fn behind(&self) -> bool {
        // Read out first: the list itself may not be held across an await (the sink's future is sent).
        let positions: Vec<(String, i32, i64)> = match self.consumer.position() {
            Ok(list) => list
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(position) => Some((e.topic().to_owned(), e.partition(), position)),
                    _ => None,
                })
                .collect(),
            Err(_) => return false,
        };
        for (topic, partition, position) in positions {
            let marks = streams::watermarks(&self.consumer, &topic, partition, WATERMARK_TIMEOUT).await;
            if marks.is_ok_and(|(_, high)| high > position) {
                return true;
            }
        }
        false
    }

    /// How many partitions this member is assigned (0 when the assignment cannot be read).
    pub fn assigned(&self) -> usize {
        self.consumer.assignment().map(|list| list.count()).unwrap_or(0)
    }

    /// Tells Kafka how far the sink got (a hint for lag monitoring; PostgreSQL's offsets are the truth).
    pub fn commit(&self, next: &BTreeMap<Partition, i64>) {
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            if list.add_partition_offset(topic, *partition, Offset::Offset(*offset)).is_err() {
                return;
            }
        }
        if let Err(err) = self.consumer.commit(&list, CommitMode::Async) {
            warn!(error = %err, "kafka offset commit failed; postgres holds the offsets");
        }
    }
}
