from zafka import limits
from zafka.storage.batch import HEADER_SIZE
from zafka.storage.config import LogConfig
from zafka.transport.names import group_actor_name

UNITS = ("_s", "_ms", "_bytes_max", "_bytes", "_max", "_min", "_count", "_percent")


def test_every_limit_is_named_with_its_unit_last_and_is_positive():
    names = [n for n in vars(limits) if not n.startswith("_")]
    assert names
    for name in names:
        assert name.endswith(UNITS), f"{name} does not end with a unit"
        assert getattr(limits, name) > 0


# --- how limits relate: each pair below breaks something if it is turned around ------------


def test_a_whole_batch_fits_one_frame_and_one_decompression():
    assert limits.batch_bytes_max <= limits.frame_bytes_max  # a batch travels as one frame
    assert limits.batch_bytes_max <= limits.decompressed_bytes_max
    assert limits.batch_overhead_bytes < limits.batch_bytes_max // 100  # the SDK's headroom
    assert limits.batch_bytes_max <= limits.segment_bytes_max
    assert limits.batch_bytes_max <= LogConfig().segment_bytes  # a segment holds one


def test_readers_can_always_make_progress():
    assert limits.segment_walk_chunk_bytes >= HEADER_SIZE  # a chunk holds a batch header
    assert limits.offsets_load_fetch_bytes >= limits.batch_bytes_max  # a replay read holds one


def test_a_session_outlives_heartbeats_and_fits_the_broker_cap():
    assert 3 * limits.group_heartbeat_interval_ms <= limits.group_session_timeout_ms
    assert limits.group_session_timeout_ms <= limits.session_timeout_ms_max


def test_waits_a_call_may_ask_for_are_within_the_call_cap():
    for wait_ms in (
        limits.request_timeout_ms,
        limits.group_rebalance_timeout_ms,
        limits.group_log_timeout_ms,
    ):
        assert wait_ms <= limits.call_timeout_ms_max


def test_backoffs_start_below_their_caps():
    assert limits.retry_backoff_ms < limits.retry_backoff_ms_max
    assert limits.reconnect_backoff_ms < limits.reconnect_backoff_ms_max
    assert limits.flush_timer_ms_min < limits.retry_backoff_ms_max


def test_closing_a_consumer_leaves_its_group_before_the_io_thread_is_given_up():
    assert limits.group_close_timeout_ms / 1000 < limits.client_close_timeout_s


def test_names_fit_where_they_go():
    # a partition directory is <topic>-<partition>: a file name of at most 255 bytes
    directory = "t" * limits.topic_name_bytes_max + f"-{limits.topic_partitions_max - 1}"
    assert len(directory.encode()) <= 255
    longest_group = group_actor_name("g" * limits.group_id_bytes_max)
    assert len(longest_group.encode()) <= limits.string_bytes_max  # an actor address


def test_a_runtime_step_takes_less_than_a_mailbox_holds():
    assert limits.mailbox_messages_per_step_max <= limits.mailbox_messages_max
    assert limits.receive_messages_per_step_max < limits.mailbox_messages_max // 2


def test_probes_are_shorter_than_the_waits_they_serve():
    assert limits.zookeeper_probe_timeout_s < limits.zookeeper_start_timeout_s
    assert limits.broker_probe_timeout_s < limits.broker_start_timeout_s
    assert limits.zookeeper_connect_timeout_s < limits.broker_start_timeout_s
    assert limits.broker_watch_slice_s < limits.broker_probe_timeout_s
