"""zafka: a distributed event-streaming platform in Python, in the spirit of Apache Kafka.

    from zafka import Admin, Consumer, Producer

This root package is thin: version, CLI, config, limits, errors and the local cluster
launcher. The logic lives in the subpackages zafka.actors, zafka.transport,
zafka.coordination, zafka.storage and zafka.clients. The client classes are imported on
first use, so `import zafka` (and every broker module) stays light.
"""

from importlib import import_module

from zafka.version import __version__

_CLIENT_NAMES = {
    "Admin": "zafka.clients.admin",
    "NewTopic": "zafka.clients.admin",
    "TopicDescription": "zafka.clients.admin",
    "Consumer": "zafka.clients.consumer",
    "ConsumerRecord": "zafka.clients.consumer",
    "OffsetAndTimestamp": "zafka.clients.consumer",
    "TopicPartition": "zafka.transport.names",
    "GroupMetadata": "zafka.clients.consumer",
    "CommitFailedError": "zafka.clients.membership",
    "ConsumerRebalanceListener": "zafka.clients.consumer_group",
    "OffsetAndMetadata": "zafka.clients.consumer_group",
    "Producer": "zafka.clients.producer",
    "RecordFuture": "zafka.clients.producer",
    "RecordMetadata": "zafka.clients.producer",
    "ZafkaError": "zafka.errors",
}

__all__ = ["__version__", *_CLIENT_NAMES]


def __getattr__(name: str) -> object:
    module = _CLIENT_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'zafka' has no attribute {name!r}")
    return getattr(import_module(module), name)
