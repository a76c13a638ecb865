//! Pulls Outlook room-calendar changes (delta, webhooks) into Kafka.
