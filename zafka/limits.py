"""Every limit zafka enforces, in one place, each named with its unit last."""

# Local cluster launcher.
zookeeper_start_timeout_s = 60.0  # a JVM on a busy 2-core machine can take a while
zookeeper_probe_timeout_s = 2.0  # one four-letter-word round trip
four_letter_reply_bytes_max = 64 * 1024
process_stop_grace_s = 10.0  # SIGTERM first, SIGKILL after this
broker_start_timeout_s = 60.0  # until every started broker is registered and answers
broker_probe_timeout_s = 2.0  # one MetadataRequest round trip to a broker
cluster_brokers_max = 32  # brokers one `zafka cluster up` starts
zookeeper_connect_timeout_s = 15.0  # a broker's first connection to ZooKeeper
zookeeper_session_timeout_ms = 6_000  # default `zk_session_timeout_ms`: a dead broker's znode goes
broker_watch_slice_s = 0.2  # how often a wait on ZooKeeper also checks that the broker still runs
docker_call_timeout_s = 60.0  # one docker CLI call (a busy engine can be slow); never unbounded

# Record batches and segments (storage/).
batch_bytes_max = 1_048_576  # one whole batch, header included: Kafka's default message.max.bytes
batch_records_max = 1_000_000  # records in one batch: bounds the objects one decode creates
decompressed_bytes_max = 64 * 1024 * 1024  # a batch payload after zstd: refuses zstd bombs
segment_bytes_max = 2**31 - 1  # index entries store positions as 32-bit numbers, as Kafka
segment_walk_chunk_bytes = 8192  # batch headers are read this much at a time to find offsets

# The wire (transport/): what one message may carry.
frame_bytes_max = 16 * 1024 * 1024  # any single frame; set as ZMQ_MAXMSGSIZE (peer dropped)
header_bytes_max = 1024 * 1024  # the msgpack envelope frame: Metadata of thousands of topics fits
payload_frames_max = 1024  # raw payload frames after the envelope in one message
nesting_depth_max = 4  # messages nested inside messages in one envelope (schema-checked)
collection_items_max = 10_000  # items in one array or map of an envelope
string_bytes_max = 32 * 1024  # one str or bin value inside an envelope
send_queue_messages_max = 10_000  # messages queued per peer socket (ZMQ high-water mark)

# The Kafka protocol listener (actors/kafka/, transport/kafka/).
kafka_request_bytes_max = 16 * 1024 * 1024  # one request frame (Kafka's socket.request.max.bytes)
kafka_connections_max = 1_000  # open client connections per listener; more are closed at accept
kafka_requests_in_flight_max = 64  # per connection: reading pauses beyond (TCP pushes back)
kafka_response_bytes_max = 64 * 1024 * 1024  # answers queued to one connection before it pauses
kafka_initial_rebalance_delay_ms = 500  # a classic group's first rebalance waits for members
kafka_group_tick_ms = 100  # how often classic groups check sessions and rebalance deadlines
kafka_consumer_members_max = 100_000  # KIP-848 members a gateway remembers what they own
kafka_call_timeout_ms = 30_000  # an actor call made for a Kafka request (request.timeout.ms)
routing_id_bytes_max = 255  # a ZeroMQ routing id (a node name)
send_zero_copy_bytes_min = 16 * 1024  # sent frames this large go zero-copy
recv_zero_copy_bytes_min = 4 * 1024  # received frames this large stay a view over libzmq's buffer
reconnect_backoff_ms = 100  # first delay before reconnecting a dropped link
reconnect_backoff_ms_max = 5_000  # the delay doubles up to this
tcp_keepalive_idle_s = 60  # idle time before the first keepalive probe
tcp_keepalive_interval_s = 10  # between probes

# Names (transport/names.py).
rack_bytes_max = 255  # a broker's --rack name
topic_name_bytes_max = 249  # Kafka's rule: <name>-<partition> must fit a 255-byte file name

# Actors (actors/).
mailbox_messages_max = 10_000  # queued messages per actor; beyond it senders get BUSY
inflight_calls_max = 10_000  # calls one actor awaits at once
call_timeout_ms_max = 300_000  # the longest timeout a call may ask for
actor_restarts_max = 5  # restarts within actor_restart_window_s before the process stops
actor_restart_window_s = 60.0
receive_messages_per_step_max = 1_000  # transport messages a runtime takes per step
mailbox_messages_per_step_max = 100  # messages one actor handles per step before the next's turn

# Partition leaders (actors/partition/producer_state.py, actors/partition/fetch_waiters.py).
producers_max = 1_000  # producer ids with de-duplication state per partition (LRU beyond)
fetch_waiters_max = 10_000  # long-polling fetches waiting at once per partition actor
idempotent_in_flight_batches_max = 5  # a producer's unanswered batches per partition, and the
# batches a partition keeps per producer to recognise a retry (Kafka's max.in.flight, idempotent)
replica_lag_time_max_ms = 10_000  # Kafka's replica.lag.time.max.ms (30 s there; 10 s here)
replica_fetch_wait_ms = 500  # Kafka's replica.fetch.wait.max.ms: a follower's long poll
replica_fetch_bytes_max = 1024 * 1024  # Kafka's replica.fetch.max.bytes, per partition
replica_fetch_backoff_ms = 100  # a follower's pause after a failed fetch (Kafka's 1 s)
replica_fetch_timeout_ms = 5_000  # a fetch or epoch question unanswered this long (past the wait)
replica_fetch_response_bytes_max = 10 * 1024 * 1024  # Kafka's replica.fetch.response.max.bytes
replica_fetches_waiting_max = 1_000  # followers' fetches a leader broker holds at once
scrub_bytes_per_turn_max = 8 * 1024 * 1024  # a follower's log checked per turn (whole segments)
acks_waiting_max = 10_000  # acks=all answers a partition leader holds at once (BUSY beyond)
replicas_max = 1_000  # the largest min.insync.replicas a topic may ask
offsets_replicas_count = 3  # __consumer_offsets' (fewer with fewer brokers registered)
flush_timer_ms_min = 10  # fsync_interval_ms of 0 must not make the flush timer spin every step
recovery_point_durable_interval_ms = 60_000  # the recovery point is fsynced at most this often
# (between, a hint; Kafka's log.flush.offset.checkpoint.interval.ms)
leader_imbalance_check_interval_ms = 300_000  # Kafka's leader.imbalance.check.interval.seconds
leader_imbalance_per_broker_percent = 10  # Kafka's: a broker may lose the lead of this much
update_metadata_partitions_max = 5_000  # partitions in one UpdateMetadata (a full one is split)
metadata_refresh_ms = 30_000  # the controller resends every broker its full metadata this often
topic_sync_retry_ms = 1_000  # a broker's topic sync that failed (ZooKeeper unreachable) runs again
hosted_topics_per_turn_max = 50  # topics a broker hosts or drops per runtime turn

# ZooKeeper: topics (coordination/topics.py), producer ids (coordination/producer_ids.py).
topic_partitions_max = 1_000  # one topic's znodes must fit one ZooKeeper transaction (1 MiB)
producer_ids_per_block_count = 1_000  # producer ids a broker claims at once
producer_id_claim_attempts_max = 20  # lost version races in a row before a claim gives up
# Topic auto-creation by Metadata: beyond these, names get THROTTLING_QUOTA_EXCEEDED.
auto_created_topics_per_request_max = 100
auto_created_topics_per_minute_max = 600  # per broker: a token bucket of this size
zookeeper_jobs_queued_max = 10_000  # a broker's ZooKeeper requests waiting for its worker
zookeeper_worker_stop_s = 5.0  # how long a stopping broker waits for a running ZooKeeper job

# Consumer groups (actors/group/).
group_members_max = 1_000  # members of one group (GROUP_MAX_SIZE_REACHED beyond)
session_timeout_ms_max = 1_800_000  # Kafka's group.max.session.timeout.ms
subscription_pattern_bytes_max = 1_000  # a longer regular expression is refused
offset_metadata_bytes_max = 4_096  # Kafka's offset.metadata.max.bytes
group_session_timeout_ms = 45_000  # a member's default session (Kafka's session.timeout.ms)
group_heartbeat_interval_ms = 3_000  # the coordinator's default heartbeat interval (Kafka's)
group_rebalance_timeout_ms = 300_000  # default time a member has to confirm a revocation

# Group coordinators on the broker (actors/group/coordinator.py, actors/group/offsets_loader.py).
group_id_bytes_max = 249  # a group id: 1..249 of [A-Za-z0-9._-] (it names an actor)
member_id_bytes_max = 255  # a member id or a static instance id chosen by a client
group_log_timeout_ms = 30_000  # one append to, or one read of, an __consumer_offsets partition
offsets_load_fetch_bytes = 1_048_576  # one read while a coordinator replays its partition
offsets_load_retry_ms = 1_000  # a replay that failed (its partition not ready) starts again
idle_group_ms = 60_000  # an empty group's actor nobody used for this long is stopped
offsets_segment_bytes = 16 * 1024 * 1024  # __consumer_offsets segments: compaction starts at a roll

# Partition logs on the broker (actors/partition/actor.py).
log_cleanup_interval_ms = 300_000  # retention (delete) or compaction (compact): Kafka's 5 min

# The Python producer (clients/).
key_hash_cache_keys_max = 4096  # keys whose partition hash a Partitioner remembers (~1 MB)
key_hash_cache_key_bytes_max = 64  # longer keys are hashed every time, never kept alive
batch_overhead_bytes = 256  # headroom under batch_bytes_max: header, msgpack columns, zstd frame
request_timeout_ms = 30_000  # the clients' default request.timeout.ms
retry_backoff_ms = 100  # the clients' default first backoff after a retriable error
retry_backoff_ms_max = 1_000  # every retry backoff doubles up to this: the one retry cap
caller_grace_s = 5.0  # a caller waits this beyond a request's timeout: the I/O thread answers first
client_close_timeout_s = 10.0  # how long close() waits for a client's I/O thread to finish
group_close_timeout_ms = 5_000  # how long Consumer.close() may spend committing and leaving
iteration_poll_ms = 1_000  # one poll inside `for record in consumer`
stale_fetches_per_partition_max = 4  # fetches of older epochs in flight before a new one waits
