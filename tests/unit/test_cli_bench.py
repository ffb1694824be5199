"""`zafka bench`: its pure parts (percentiles, the workload's keys and values, pacing, the
summary lines) and its command line. No sockets."""

from __future__ import annotations

import math

import pytest

from zafka import bench_e2e, benchrun, benchstats, cli, cli_bench
from zafka.benchstats import Pacer, fmt, format_lines, percentiles, quantile_name
from zafka.clients.delivery import BatchResult, RecordFuture
from zafka.errors import ZafkaError


@pytest.mark.parametrize(
    ("samples", "quantiles", "expected"),
    [
        ([5], (50, 99, 99.9), [5, 5, 5]),
        ([3, 1, 2], (50,), [2]),
        ([1, 2, 3, 4], (50, 75, 100), [2, 3, 4]),
        (list(range(1, 101)), (50, 99, 99.9, 100), [50, 99, 100, 100]),
        (list(range(1000, 0, -1)), (50, 99, 99.9), [500, 990, 999]),  # no float drift at 99.9
        (list(range(1, 10_001)), (99.9, 99.99), [9990, 9999]),
    ],
)
def test_percentiles_are_nearest_rank(samples, quantiles, expected):
    assert percentiles(samples, quantiles) == expected


def test_percentiles_of_nothing_are_nan():
    assert all(math.isnan(v) for v in percentiles([], (50, 99)))


@pytest.mark.parametrize("q", [0, -1, 100.5])
def test_percentiles_refuse_quantiles_outside_0_100(q):
    with pytest.raises(ValueError, match="percentile"):
        percentiles([1, 2], (q,))


@pytest.mark.parametrize(
    ("q", "name"), [(50, "p50"), (99, "p99"), (99.9, "p999"), (99.99, "p9999")]
)
def test_quantile_names(q, name):
    assert quantile_name(q) == name


@pytest.mark.parametrize(
    ("value", "text"),
    [(12, "12"), (0.5, "0.500"), (99.9994, "99.999"), (123456.7, "123457"), (math.nan, "nan")],
)
def test_fmt_follows_the_benchmarks_format(value, text):
    assert fmt(value) == text


def test_throughput_and_latency_lines():
    pairs = benchstats.throughput_lines(1000, 116_000, 0.5)
    assert pairs == [
        ("records", 1000),
        ("elapsed_s", 0.5),
        ("records_per_s", 2000.0),
        ("mb_per_s", 0.232),
    ]
    latency = dict(benchstats.latency_lines("latency", [1_000_000, 2_000_000, 3_000_000]))
    assert latency == {
        "latency_p50_ms": 2.0,
        "latency_p99_ms": 3.0,
        "latency_p999_ms": 3.0,
        "latency_max_ms": 3.0,
    }
    assert format_lines([("records", 1000), ("latency_p50_ms", 2.0)]) == (
        "records=1000\nlatency_p50_ms=2.000\n"
    )


def test_no_time_gives_nan_rates_and_no_samples_nan_latencies():
    pairs = dict(benchstats.throughput_lines(0, 0, 0.0))
    assert math.isnan(pairs["records_per_s"]) and math.isnan(pairs["mb_per_s"])
    assert all(math.isnan(v) for _, v in benchstats.latency_lines("latency", []))


def test_keys_are_distinct_16_byte_and_outnumber_the_partitioner_cache():
    from zafka import limits

    keys = benchstats.key_pool()
    assert len(set(keys)) == len(keys) == benchstats.KEY_POOL_KEYS
    assert {len(k) for k in keys} == {benchstats.KEY_BYTES}
    assert len(keys) > limits.key_hash_cache_keys_max


def test_values_are_distinct_letters_of_the_size_asked():
    values = benchstats.value_pool(100)
    assert len(set(values)) == len(values) == benchstats.VALUE_POOL_VALUES
    assert {len(v) for v in values} == {100}
    assert set(b"".join(values)) <= set(benchstats.LETTERS)
    assert benchstats.value_pool(100) == values  # the same every run
    big = benchstats.value_pool(4 * 1024 * 1024)
    assert len(big) * 4 * 1024 * 1024 <= benchstats.VALUE_POOL_BYTES_MAX
    assert benchstats.value_pool(0) == [b""]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 9))
        self.now += seconds + 0.0001  # every sleep oversleeps by 0.1 ms


def test_pacer_keeps_an_absolute_schedule():
    clock = FakeClock()
    pacer = Pacer(1000, clock=clock, sleep=clock.sleep)
    for i in range(4):
        pacer.wait(i)
    # event 0 is due at once; each later sleep makes up for the oversleep before it
    assert clock.slept == [0.001, 0.001 - 0.0001, 0.001 - 0.0001]
    clock.now += 0.01  # the sender fell behind: no sleep until it is on schedule again
    pacer.wait(4)
    assert len(clock.slept) == 3


def test_pacer_refuses_a_rate_of_zero():
    with pytest.raises(ValueError):
        Pacer(0)


def test_pool_bytes_counts_items_taken_in_turn():
    assert benchrun.pool_bytes([b"a", b"bb", b"ccc"], 7) == 2 * 6 + 1
    assert benchrun.pool_bytes(None, 7) == 0


def test_payload_counts_keys_and_values_of_consumer_records():
    batch = [("t", 0, 0, 0, b"key", b"value", None), ("t", 0, 1, 0, None, b"v2", None)]
    assert benchrun.payload(batch) == 3 + 5 + 2
    assert benchrun.payload([("t", 0, 0, 0, None, None, None)]) == 0


# --- the command line -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["bench", "--help"]]
    + [["bench", action, "--help"] for action in ("produce", "consume", "e2e")],
)
def test_help_at_every_level(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: zafka bench")
    assert "exit codes" in out
    if len(argv) > 2:
        assert "--bootstrap" in out and "--records" in out and "--progress" in out


def test_produce_defaults():
    args = cli.build_parser().parse_args(["bench", "produce"])
    assert (args.topic, args.records, args.record_size) == ("zafka-bench", 1_000_000, 100)
    assert args.latency_every == benchrun.DEFAULT_LATENCY_EVERY_RECORDS
    assert (args.keys, args.acks, args.partitions) == (False, "all", None)
    assert args.bootstrap is None and args.progress is None
    assert args.func is cli_bench._produce


def test_produce_options():
    argv = "bench produce --topic t --records 10 --record-size 50 --keys --acks 1"
    argv += " --partitions 3 --bootstrap 127.0.0.1:1234 --no-progress --latency-every 1"
    args = cli.build_parser().parse_args(argv.split())
    assert (args.topic, args.records, args.record_size, args.keys) == ("t", 10, 50, True)
    assert (args.acks, args.partitions, args.bootstrap, args.progress) == (
        "1",
        3,
        "127.0.0.1:1234",
        False,
    )
    assert args.latency_every == 1


def test_consume_defaults_to_everything_the_topic_holds():
    args = cli.build_parser().parse_args(["bench", "consume", "--records", "5"])
    assert (args.records, args.timeout_ms) == (5, benchrun.DEFAULT_IDLE_TIMEOUT_MS)
    assert cli.build_parser().parse_args(["bench", "consume"]).records is None
    assert not hasattr(args, "acks") and not hasattr(args, "rate")


def test_e2e_options():
    args = cli.build_parser().parse_args(["bench", "e2e", "--rate", "2500.5", "--no-keys"])
    assert (args.rate, args.records, args.keys) == (2500.5, cli_bench.DEFAULT_E2E_RECORDS, False)
    assert args.func is cli_bench._e2e


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        ("bench produce --records 0", "must be at least 1"),
        ("bench produce --records many", "not a whole number"),
        ("bench produce --record-size -1", "must be 0 or more"),
        ("bench produce --acks 2", "invalid choice"),
        ("bench produce --partitions 0", "must be at least 1"),
        ("bench produce --latency-every 0", "must be at least 1"),
        ("bench e2e --rate 0", "must be more than 0"),
        ("bench e2e --rate fast", "not a number"),
        ("bench e2e --rate inf", "must be more than 0"),
        ("bench consume --timeout-ms 0", "must be at least 1"),
        ("bench consume --acks 1", "unrecognized arguments"),
        ("bench", "required"),
    ],
)
def test_bad_options_are_usage_errors(argv, complaint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv.split())
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err


def test_e2e_needs_room_for_the_send_time(capsys):
    assert cli.main(["bench", "e2e", "--record-size", "7", "--bootstrap", "127.0.0.1:1"]) == 2
    assert "at least 8" in capsys.readouterr().err


def test_summaries_name_their_figures():
    produce = benchrun.ProduceResult(sent=3, delivered=3, payload_bytes=300, seconds=1.0)
    produce.latencies_ns.extend([1_000_000, 2_000_000, 3_000_000])
    names = [name for name, _ in benchrun.produce_summary(produce)]
    assert names == [
        "records",
        "errors",
        "elapsed_s",
        "records_per_s",
        "mb_per_s",
        "latency_samples",
        "latency_p50_ms",
        "latency_p99_ms",
        "latency_p999_ms",
        "latency_max_ms",
    ]
    e2e = dict(bench_e2e.e2e_summary(bench_e2e.E2EResult(sent=10, send_seconds=2.0), 5.0))
    assert (e2e["sent"], e2e["send_records_per_s"], e2e["target_records_per_s"]) == (10, 5.0, 5.0)
    assert math.isnan(e2e["e2e_latency_p50_ms"])


class FakeProducer:
    """send() as the Producer's: a RecordFuture per record on a BatchResult per `batch`
    records; flush() completes the open batches, failing those whose number is in `fail`."""

    def __init__(
        self, batch: int, fail: frozenset[int] = frozenset(), stuck: frozenset[int] = frozenset()
    ) -> None:
        self.batch, self.fail, self.stuck = batch, fail, stuck
        self.flush_timeouts: list[float | None] = []
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self.batches: list[BatchResult] = []

    def send(self, topic, value, key=None):
        index = len(self.sent) % self.batch
        if index == 0:
            self.batches.append(BatchResult(topic, 0))
        self.sent.append((topic, value, key))
        return RecordFuture(self.batches[-1], index, 0)

    def flush(self, timeout=None):
        """Completes the open batches but the `stuck` ones (then raises, as a flush that
        timed out does)."""
        self.flush_timeouts.append(timeout)
        for number, batch in enumerate(self.batches):
            if not batch.done() and number not in self.stuck:
                error = ZafkaError("REQUEST_TIMED_OUT") if number in self.fail else None
                batch.complete(-1 if error else number * self.batch, error)
        if any(not batch.done() for batch in self.batches):
            raise ZafkaError("REQUEST_TIMED_OUT", f"flush did not finish in {timeout} s")


@pytest.mark.parametrize("latency_every", [1, 16])
def test_run_produce_counts_every_outcome_and_samples_latency(latency_every):
    producer = FakeProducer(batch=1000, fail=frozenset({2}))
    keys, values = [b"k1", b"k2"], [b"a" * 10, b"b" * 20, b"c" * 30]
    result = benchrun.run_produce(
        producer,
        "t",
        5000,
        values,
        keys,
        latency_every=latency_every,
    )
    assert producer.sent[:4] == [
        ("t", b"a" * 10, b"k1"),
        ("t", b"b" * 20, b"k2"),
        ("t", b"c" * 30, b"k1"),
        ("t", b"a" * 10, b"k2"),
    ]
    assert (result.sent, result.errors, result.delivered) == (5000, 1000, 4000)
    assert result.first_error is not None and result.first_error.error.name == "REQUEST_TIMED_OUT"
    assert len(result.latencies_ns) == 4000 // latency_every  # the failed batch has none
    assert all(v >= 0 for v in result.latencies_ns)
    assert result.payload_bytes == 5000 * 2 + (1667 * 10 + 1667 * 20 + 1666 * 30)


def test_run_produce_without_latency_drops_the_futures():
    producer = FakeProducer(batch=100)
    result = benchrun.run_produce(producer, "t", 3000, [b"v"], None, latency_every=None)
    assert (result.sent, result.errors, result.delivered) == (3000, 0, None)
    assert len(result.latencies_ns) == 0 and producer.sent[0] == ("t", b"v", None)


def test_run_produce_bounds_the_flush_and_fails_what_it_did_not_deliver():
    producer = FakeProducer(batch=1000, stuck=frozenset({1}))
    result = benchrun.run_produce(producer, "t", 3000, [b"v"], None)
    assert producer.flush_timeouts == [benchrun.FLUSH_TIMEOUT_S]
    assert (result.sent, result.errors, result.delivered) == (3000, 1000, 2000)
    assert "flush did not finish" in str(result.first_error)
