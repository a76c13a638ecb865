//! Streams bb_* changes from PostgreSQL logical replication into Kafka.
