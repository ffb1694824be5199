"""Every znode path zafka uses, in one place (Kafka's ZooKeeper-era layout).

Paths are relative to the cluster's chroot (given in the connect string, `host:port/chroot`).
Topic names are checked (`names.check_topic_name`) before they become part of a path, so a
name can never reach another znode (`..`, `/`).

    /brokers/ids/<id>                              ephemeral: a live broker's endpoint
    /brokers/topics/<topic>                        replica assignment (JSON)
    /brokers/topics/<topic>/partitions             no data
    /brokers/topics/<topic>/partitions/<p>         no data
    /brokers/topics/<topic>/partitions/<p>/state   leader, leader epoch, ISR (JSON; versioned)
    /config/topics/<topic>                         the topic's config overrides (JSON)
    /latest_producer_id_block                      the last block of producer ids claimed
                                                   (JSON; versioned: producer_ids.py)
    /controller                                    ephemeral: the controller's broker id
    /controller_epoch                              the controller epoch (versioned: every
                                                   controller write checks it; controller.py)
    /admin/controller_requests/request-<seq>       work for the controller (JSON; persistent
                                                   sequential; controller_requests.py)
    /admin/reassignments/<topic>:<p>               a partition's target replicas while it
                                                   moves (JSON; reassignments.py)

`coordination/topics.py` documents the JSON of each.
"""

from __future__ import annotations

from zafka.transport.names import check_topic_name

BROKER_IDS = "/brokers/ids"  # one ephemeral child per live broker: its endpoint
BROKER_TOPICS = "/brokers/topics"  # one persistent child per topic: its replica assignment
CONFIG_TOPICS = "/config/topics"  # one persistent child per topic: its config overrides
# The last block of producer ids a broker claimed; its version fences concurrent claims.
LATEST_PRODUCER_ID_BLOCK = "/latest_producer_id_block"
CONTROLLER = "/controller"  # ephemeral: which broker controls
CONTROLLER_EPOCH = "/controller_epoch"  # one more per election won; its version fences writes
CONTROLLER_REQUESTS = "/admin/controller_requests"  # children: work asked of the controller
CONTROLLER_REQUEST_PREFIX = f"{CONTROLLER_REQUESTS}/request-"  # + ZooKeeper's sequence number
REASSIGNMENTS = "/admin/reassignments"  # one child per partition being moved


def broker(broker_id: int) -> str:
    """The ephemeral registration znode of one broker."""
    if broker_id < 0:
        raise ValueError(f"broker id must be >= 0, got {broker_id}")
    return f"{BROKER_IDS}/{broker_id}"


def topic(name: str) -> str:
    """A topic's replica assignment znode; its existence is the topic's existence."""
    return f"{BROKER_TOPICS}/{check_topic_name(name)}"


def topic_partitions(name: str) -> str:
    """The parent of a topic's partition znodes (one child per partition id)."""
    return f"{topic(name)}/partitions"


def partition(name: str, partition_id: int) -> str:
    """The parent of one partition's state znode."""
    if isinstance(partition_id, bool) or not isinstance(partition_id, int) or partition_id < 0:
        raise ValueError(f"partition id must be an int >= 0, got {partition_id!r}")
    return f"{topic_partitions(name)}/{partition_id}"


def partition_state(name: str, partition_id: int) -> str:
    """One partition's leader / leader epoch / ISR; its znode version fences writers."""
    return f"{partition(name, partition_id)}/state"


def topic_config(name: str) -> str:
    """A topic's config overrides (Kafka key -> string value)."""
    return f"{CONFIG_TOPICS}/{check_topic_name(name)}"


def controller_request(name: str) -> str:
    """One queued controller request, by its child name (`request-0000000042`)."""
    if not name.startswith("request-") or "/" in name:
        raise ValueError(f"not a controller request name: {name!r}")
    return f"{CONTROLLER_REQUESTS}/{name}"


def reassignment(name: str, partition_id: int) -> str:
    """A partition's reassignment target (`:` is in no topic name)."""
    partition(name, partition_id)  # the same checks of the name and the id
    return f"{REASSIGNMENTS}/{name}:{partition_id}"
