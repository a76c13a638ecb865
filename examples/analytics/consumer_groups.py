#!/usr/bin/env python3
"""Consumer groups of a Kafka cluster with their committed offsets and lag per partition (what a Kafka UI shows).

    .venv/bin/python examples/analytics/consumer_groups.py [--bootstrap 127.0.0.1:19092] [--prefix roomsync]

Prints one JSON object per group and partition: group, topic, partition, committed, end, lag. Only ListGroups
and OffsetFetch are used (tansu 0.6.0 on its sqlite storage fails DescribeGroups; see the README). roomsync's
groups are <prefix>-graph-sink (its authoritative offsets are in PostgreSQL; Kafka's are committed after them) and
<prefix>-resolver-inputs (the resolver's read position; it always rebuilds from the beginning).
"""

import argparse
import json
import sys

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092", help="Kafka bootstrap servers")
    parser.add_argument("--prefix", default="", help="only groups and topics whose name starts with this")
    args = parser.parse_args()

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    listed = admin.list_consumer_groups(request_timeout=10).result()
    groups = sorted(g.group_id for g in listed.valid if g.group_id.startswith(args.prefix))
    for error in listed.errors:
        print("listing groups: %s" % error, file=sys.stderr)
    topics = admin.list_topics(timeout=10).topics
    partitions = [TopicPartition(t, p) for t in sorted(topics) if t.startswith(args.prefix)
                  for p in sorted(topics[t].partitions)]
    for group in groups:
        # committed() is an OffsetFetch: it reads the group's offsets without joining the group.
        consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": group, "enable.auto.commit": False})
        try:
            for tp in consumer.committed(partitions, timeout=10):
                if tp.error or tp.offset < 0:
                    continue
                _low, end = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
                print(json.dumps({"group": group, "topic": tp.topic, "partition": tp.partition,
                                  "committed": tp.offset, "end": end, "lag": max(end - tp.offset, 0)}), flush=True)
        finally:
            consumer.close()
    if listed.errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
