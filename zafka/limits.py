"""Every limit zafka enforces, in one place, each named with its unit last.

Later subsystems (frames, batches, fetches, mailboxes, in-flight calls) add theirs here.
"""

# Local cluster launcher.
zookeeper_start_timeout_s = 60.0  # a JVM on a busy 2-core machine can take a while
zookeeper_probe_timeout_s = 2.0  # one four-letter-word round trip
four_letter_reply_bytes_max = 64 * 1024
process_stop_grace_s = 10.0  # SIGTERM first, SIGKILL after this
