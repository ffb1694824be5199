"""Every limit zafka enforces, in one place, each named with its unit last.

Later subsystems (frames, batches, fetches, mailboxes, in-flight calls) add theirs here.
"""

# Local cluster launcher.
zookeeper_start_timeout_s = 60.0  # a JVM on a busy 2-core machine can take a while
zookeeper_probe_timeout_s = 2.0  # one four-letter-word round trip
four_letter_reply_bytes_max = 64 * 1024
process_stop_grace_s = 10.0  # SIGTERM first, SIGKILL after this

# Record batches (storage/batch.py).
batch_bytes_max = 1_048_576  # one whole batch, header included: Kafka's default message.max.bytes
batch_records_max = 1_000_000  # records in one batch: bounds the objects one decode creates
decompressed_bytes_max = 64 * 1024 * 1024  # a batch payload after zstd: refuses zstd bombs
