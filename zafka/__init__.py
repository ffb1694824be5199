"""zafka: a distributed event-streaming platform in Python, in the spirit of Apache Kafka.

This root package is thin: version, CLI, config, limits, errors and the local cluster
launcher. The logic lives in the subpackages zafka.actors, zafka.transport,
zafka.coordination, zafka.storage and zafka.clients.
"""

from zafka.version import __version__

__all__ = ["__version__"]
