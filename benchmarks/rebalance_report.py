"""The figures of benchmarks/rebalance_bench.py from what its members reported (the events
of benchmarks/rebalance_procs.py `member`, per member name, in the order each reported them).
Pure: no I/O. The definitions are in rebalance_bench.py's docstring."""

from __future__ import annotations

Events = dict[str, list[dict]]  # member name -> its events
Delivery = tuple[float, str, float]  # (poll time, member, the latest send time handed out)


class ReportError(Exception):
    """The group did not end in a state the figures are defined for."""


def owners(events: Events, partitions: int, until: float = float("inf")) -> dict[int, set[str]]:
    """Who owns each partition at `until`, by the callbacks."""
    owned: dict[int, set[str]] = {p: set() for p in range(partitions)}
    for name, evs in events.items():
        for e in evs:
            if e["t"] > until:
                break
            if e["e"] == "assigned":
                for p in e["parts"]:
                    owned[p].add(name)
            elif e["e"] in ("revoked", "lost"):
                for p in e["parts"]:
                    owned[p].discard(name)
    return owned


def single_owners(owned: dict[int, set[str]]) -> dict[int, str] | None:
    """Each partition's one owner, or None unless every partition has exactly one."""
    if any(len(names) != 1 for names in owned.values()):
        return None
    return {p: next(iter(names)) for p, names in owned.items()}


def deliveries(events: Events, partitions: int) -> dict[int, list[Delivery]]:
    """Per partition, every poll that handed out some of its records, in time order."""
    out: dict[int, list[Delivery]] = {p: [] for p in range(partitions)}
    for name, evs in events.items():
        for e in evs:
            if e["e"] == "poll":
                for p, row in e["parts"].items():
                    out[int(p)].append((e["t"], name, row[4] / 1e9))
    for rows in out.values():
        rows.sort()
    return out


def consumed_again(events: Events, partitions: int, t0: float) -> dict[int, float] | None:
    """Per partition, when its final owner first handed out a record sent at or after t0;
    None while some partition has no single owner or has not got there yet."""
    final = single_owners(owners(events, partitions))
    if final is None:
        return None
    done = {}
    for p, rows in deliveries(events, partitions).items():
        t = next((t for t, name, sent in rows if name == final[p] and sent >= t0), None)
        if t is None:
            return None
        done[p] = t
    return done


def steady(events: Events, partitions: int) -> bool:
    """Every partition has one owner, and that owner has handed out some of its records."""
    final = single_owners(owners(events, partitions))
    if final is None:
        return False
    rows = deliveries(events, partitions)
    return all(any(name == final[p] for _, name, _ in rows[p]) for p in range(partitions))


def longest_gap(times: list[float], start: float, end: float, observed_until: float) -> float:
    """The longest gap between consecutive `times` that overlaps [start, end]; one still open
    at `observed_until` counts up to it, and [start, first time] if none came before start."""
    longest, prev = 0.0, None
    for t in [*times, observed_until]:
        if prev is None:
            if t > start:
                longest = t - start
        elif t > start and prev < end:
            longest = max(longest, t - prev)
        prev = t
        if t >= end:
            break
    return longest


def coverage(events: Events) -> tuple[int, int, int]:
    """(distinct records read, offsets skipped below the highest read, records read twice
    or more), over all partitions: a poll hands out consecutive offsets of a partition."""
    spans: dict[str, list[tuple[int, int, int]]] = {}
    for evs in events.values():
        for e in evs:
            if e["e"] == "poll":
                for p, row in e["parts"].items():
                    spans.setdefault(p, []).append((row[1], row[2], row[0]))
    distinct = missing = again = 0
    for rows in spans.values():
        rows.sort()
        covered, upto = 0, -1  # offsets covered so far, the highest one
        for first, last, count in rows:
            covered += max(0, last - max(first, upto + 1) + 1)
            upto = max(upto, last)
            again += count
        distinct += covered
        missing += upto + 1 - covered
        again -= covered
    return distinct, missing, again


def milestones(events: Events, newcomer: str, t0: float, t1: float) -> list[tuple[str, object]]:
    """What happened between the join (t0) and the end of the rebalance (t1), in ms after
    t0: when the old members were told to give partitions up (their target shrank) and did
    (revoked callbacks), when the newcomer's join was answered (epoch > 0), when it was told
    its final partitions and when its assigned callback ran."""
    old_told, revokes = [], []
    for name, evs in events.items():
        if name == newcomer:
            continue
        target = None
        for e in evs:
            if e["e"] == "member":
                if target is not None and t0 <= e["t"] <= t1 and set(e["target"]) < target:
                    old_told.append(e["t"])
                target = set(e["target"])
            elif e["e"] == "revoked" and t0 <= e["t"] <= t1:
                revokes.append(e["t"])
    mine = [e for e in events[newcomer] if e["t"] <= t1]
    joined = [e["t"] for e in mine if e["e"] == "member" and e["epoch"] > 0]
    told = [e["t"] for e in mine if e["e"] == "member" and e["target"]]
    assigned = [e["t"] for e in mine if e["e"] == "assigned"]

    def ms(times: list[float], pick=max) -> object:
        return round((pick(times) - t0) * 1000) if times else "none"

    return [
        ("new_joined_ms", ms(joined, min)),
        ("old_told_ms", ",".join(str(ms([t])) for t in sorted(old_told)) or "none"),
        ("revoked_ms", ",".join(str(ms([t])) for t in sorted(revokes)) or "none"),
        ("new_told_ms", ms(told)),
        ("new_assigned_ms", ms(assigned)),
    ]


def figures(
    events: Events,
    partitions: int,
    newcomer: str,
    t0: float,
    observed_until: float,
    window_s: float,
) -> list[tuple[str, object]]:
    """The measured name=value pairs (rebalance_bench.py's docstring defines them)."""
    before = single_owners(owners(events, partitions, t0))
    final = single_owners(owners(events, partitions))
    done = consumed_again(events, partitions, t0)
    if before is None or final is None or done is None:
        raise ReportError("the group did not settle with one owner per partition")
    if newcomer not in final.values():
        raise ReportError("the member that joined got no partition")
    t1 = max(done.values())
    rebalance_s = t1 - t0
    window = max(window_s, rebalance_s)
    moved = sorted(p for p in range(partitions) if before[p] != final[p])
    unmoved = [p for p in range(partitions) if p not in moved]
    times = {p: [t for t, _, _ in rows] for p, rows in deliveries(events, partitions).items()}
    gaps_before = [longest_gap(times[p], t0 - window, t0, observed_until) for p in unmoved]
    gaps_during = [longest_gap(times[p], t0, t0 + window, observed_until) for p in unmoved]
    moved_gaps = [longest_gap(times[p], t0, t0 + window, observed_until) for p in moved]
    gap_before, gap_during = max(gaps_before, default=0.0), max(gaps_during, default=0.0)
    ratio = round(gap_during / gap_before, 2) if gap_before > 0 else "inf"
    distinct, missing, again = coverage(events)

    def ms(seconds: list[float]) -> str:
        return ",".join(str(round(s * 1000)) for s in seconds)

    return [
        ("rebalance_s", round(rebalance_s, 3)),
        ("unaffected_stall_ratio", ratio),
        ("moved_partitions", len(moved)),
        ("gap_before_ms", ms([gap_before])),
        ("gap_during_ms", ms([gap_during])),
        ("moved_gap_ms", ms([max(moved_gaps, default=0.0)])),
        ("moved", ",".join(map(str, moved))),
        ("unmoved", ",".join(map(str, unmoved))),
        ("gaps_before_ms", ms(gaps_before)),
        ("gaps_during_ms", ms(gaps_during)),
        ("moved_gaps_ms", ms(moved_gaps)),
        *milestones(events, newcomer, t0, t1),
        ("window_s", round(window, 3)),
        ("records_read", distinct),
        ("records_missing", missing),
        ("records_read_again", again),
    ]
