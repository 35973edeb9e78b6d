"""Reads topic `orders` with confluent-kafka (not crypto-oms code) and checks that every
OrderCreated event is well formed and keyed by its account, as documented."""
import json
import sys

from confluent_kafka import Consumer, KafkaError, TopicPartition

bootstrap = sys.argv[1]
consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": "outside-reader",
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
})
metadata = consumer.list_topics("orders", timeout=10)
partitions = sorted(metadata.topics["orders"].partitions)
ends = {}
for p in partitions:
    _, high = consumer.get_watermark_offsets(TopicPartition("orders", p), timeout=10)
    ends[p] = high
consumer.assign([TopicPartition("orders", p, 0) for p in partitions])
seen = {p: 0 for p in partitions}
created = 0
while any(seen[p] < ends[p] for p in partitions):
    msg = consumer.poll(5.0)
    if msg is None:
        raise SystemExit("timed out reading orders")
    if msg.error():
        if msg.error().code() == KafkaError._PARTITION_EOF:
            continue
        raise SystemExit(f"error: {msg.error()}")
    seen[msg.partition()] = msg.offset() + 1
    headers = dict(msg.headers() or [])
    event = json.loads(msg.value())
    assert headers["event-type"].decode() == event["event"]["type"], (headers, event)
    assert headers["event-id"].decode() == event["id"], (headers, event)
    assert headers["schema-version"].decode() == str(event["version"]), (headers, event)
    if event["event"]["type"] == "OrderCreated":
        order = event["event"]
        assert msg.key().decode() == str(order["account"]), (msg.key(), order)
        for field in ("orderId", "symbol", "side", "orderType", "timeInForce", "quantity", "createdAt"):
            assert field in order, (field, order)
        assert isinstance(order["quantity"], str) and isinstance(order["orderId"], str), order
        created += 1
consumer.close()
assert created > 0, "no OrderCreated events"
print(f"OrderCreated events: {created}")
