"""Every znode path zafka uses, in one place (Kafka's ZooKeeper-era layout).

Paths are relative to the cluster's chroot (given in the connect string, `host:port/chroot`).
"""

BROKER_IDS = "/brokers/ids"  # one ephemeral child per live broker: its endpoint


def broker(broker_id: int) -> str:
    """The ephemeral registration znode of one broker."""
    if broker_id < 0:
        raise ValueError(f"broker id must be >= 0, got {broker_id}")
    return f"{BROKER_IDS}/{broker_id}"
