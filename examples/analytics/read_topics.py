#!/usr/bin/env python3
"""Reads every roomsync topic with keys and values decoded: the analytics recipe of the README, runnable.

    python3 -m venv .venv && .venv/bin/pip install "confluent-kafka[avro,schemaregistry]>=2.6,<3"
    .venv/bin/python examples/analytics/read_topics.py                       # follow, decoded with the registry
    .venv/bin/python examples/analytics/read_topics.py --schemas schemas --to-end   # only the .avsc files

Keys: the CDC table topics (<prefix>.cdc.<schema>.<table>) have Avro keys (the primary key record,
schemas/cdc/<schema>.<table>.key.avsc); every other topic, <prefix>.cdc.transactions included, has UTF-8 string
keys. Values are Avro in the Confluent wire format (magic byte 0, 4-byte schema id, Avro binary); a value of
None is a tombstone (it follows each delete on the CDC topics).

Prints one JSON object per record: topic, partition, offset, key, value. A record that cannot be decoded is
reported on stderr with its position and the exit status is 1: nothing is skipped silently.
"""

import argparse
import io
import json
import os
import struct
import sys

import fastavro
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

# The value schema file of each topic, by the topic's name after the prefix (schemas/ is the contract).
VALUE_FILES = {
    "graph.events": "graph_event.avsc",
    "reservations": "reservation.avsc",
    "sync.desired": "desired_item.avsc",
    "sync.imports": "import_record.avsc",
    "deadletter": "dead_letter.avsc",
    "cdc.transactions": "cdc/transactions.avsc",
}


def is_cdc_table(prefix, topic):
    """Whether `topic` is a CDC table topic (Avro key) rather than one with a string key."""
    return topic.startswith(prefix + ".cdc.") and topic != prefix + ".cdc.transactions"


class RegistryDecoder:
    """Decodes with the schema registry, as any Confluent deserialiser does."""

    def __init__(self, url, prefix):
        self.avro = AvroDeserializer(SchemaRegistryClient({"url": url}))
        self.prefix = prefix

    def key(self, topic, data):
        if is_cdc_table(self.prefix, topic):
            return self.avro(data, SerializationContext(topic, MessageField.KEY))
        return data.decode("utf-8")

    def value(self, topic, data):
        return self.avro(data, SerializationContext(topic, MessageField.VALUE))


class FileDecoder:
    """Decodes with only the repository's schemas/*.avsc (no registry): the files are the contract."""

    def __init__(self, directory, prefix):
        self.directory = directory
        self.prefix = prefix
        self.parsed = {}

    def schema(self, name):
        if name not in self.parsed:
            with open(os.path.join(self.directory, name), encoding="utf-8") as f:
                self.parsed[name] = fastavro.parse_schema(json.load(f))
        return self.parsed[name]

    def file_of(self, topic, field):
        rest = topic[len(self.prefix) + 1:]
        if is_cdc_table(self.prefix, topic):
            table = rest[len("cdc."):]
            return "cdc/%s.key.avsc" % table if field == "key" else "cdc/%s.avsc" % table
        if rest not in VALUE_FILES:
            raise ValueError("no schema file for topic %s" % topic)
        return VALUE_FILES[rest]

    def read(self, name, data):
        if len(data) < 5 or data[0] != 0:
            raise ValueError("not the Confluent wire format (magic byte 0 and a schema id)")
        (_schema_id,) = struct.unpack(">I", data[1:5])
        return fastavro.schemaless_reader(io.BytesIO(data[5:]), self.schema(name), None)

    def key(self, topic, data):
        if is_cdc_table(self.prefix, topic):
            return self.read(self.file_of(topic, "key"), data)
        return data.decode("utf-8")

    def value(self, topic, data):
        return self.read(self.file_of(topic, "value"), data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092", help="Kafka bootstrap servers")
    parser.add_argument("--registry", default="http://127.0.0.1:18081", help="schema registry URL")
    parser.add_argument("--schemas", help="decode with the .avsc files of this directory instead of the registry")
    parser.add_argument("--prefix", default="roomsync", help="roomsync's kafka.topic_prefix")
    parser.add_argument("--group", default="analytics", help="consumer group (when following)")
    parser.add_argument("--to-end", action="store_true",
                        help="read every partition from the beginning up to its current end, then stop")
    args = parser.parse_args()

    config = {"bootstrap.servers": args.bootstrap}
    topics = sorted(t for t in AdminClient(config).list_topics(timeout=10).topics
                    if t.startswith(args.prefix + "."))
    if not topics:
        sys.exit("no topic starts with %s. (is kafka.topic_prefix right?)" % args.prefix)
    decoder = FileDecoder(args.schemas, args.prefix) if args.schemas else RegistryDecoder(args.registry, args.prefix)
    consumer = Consumer(dict(config, **{"group.id": args.group, "auto.offset.reset": "earliest",
                                        "enable.auto.commit": not args.to_end}))
    remaining = {}
    if args.to_end:
        metadata = consumer.list_topics(timeout=10)
        assignment = []
        for topic in topics:
            for partition in metadata.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                if high > low:
                    remaining[(topic, partition)] = high
                    assignment.append(TopicPartition(topic, partition, low))
        consumer.assign(assignment)
    else:
        consumer.subscribe(topics)

    failures = 0
    try:
        while not args.to_end or remaining:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                sys.exit("kafka: %s" % msg.error())
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            try:
                key = None if msg.key() is None else decoder.key(topic, msg.key())
                value = None if msg.value() is None else decoder.value(topic, msg.value())
                print(json.dumps({"topic": topic, "partition": partition, "offset": offset,
                                  "key": key, "value": value}, default=str, ensure_ascii=False), flush=True)
            except Exception as error:  # one bad record is reported, the rest is still read
                failures += 1
                print("cannot decode %s/%d@%d: %s" % (topic, partition, offset, error), file=sys.stderr)
            if remaining.get((topic, partition), offset + 2) <= offset + 1:
                del remaining[(topic, partition)]
    finally:
        consumer.close()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
