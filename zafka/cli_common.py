"""What the client commands (`topics`, `produce`, `consume`, `bench`) share: the `--bootstrap`
option and its default, `--acks` and `--progress`, and error messages that say what to do.

The bootstrap default, first found wins:
1. the environment variable `ZAFKA_BOOTSTRAP` (HOST:PORT, comma-separated for several);
2. the brokers the local launcher recorded in `.zafka/cluster.json` (`zafka cluster up`,
   run from the current directory): every entry named `broker...` with a `port`;
3. `127.0.0.1:9092`.

Exit codes: 0 done, 1 the operation failed (the message says why and what to do), 2 the
command line is wrong (argparse's usage errors), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zafka.clients.admin import Admin
from zafka.errors import ZafkaError

BOOTSTRAP_ENV = "ZAFKA_BOOTSTRAP"
LAUNCHER_STATE = Path(".zafka") / "cluster.json"
FALLBACK_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_TIMEOUT_MS = 15_000

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

BOOTSTRAP_HELP = (
    "broker address(es), HOST:PORT[,HOST:PORT...] (default: $ZAFKA_BOOTSTRAP, else the "
    "brokers `zafka cluster up` recorded in ./.zafka/cluster.json, else 127.0.0.1:9092)"
)
EXIT_CODES_EPILOG = (
    "exit codes: 0 done, 1 failed (the message says why), 2 bad command line, 130 interrupted"
)


class HelpFormatter(argparse.HelpFormatter):
    """Wraps each line of a description or epilog on its own (argparse would join them into
    one paragraph); indented lines, such as examples, are kept as they are."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            literal = line[:1].isspace()
            lines.append(indent + line if literal else super()._fill_text(line, width, indent))
        return "\n".join(lines)


@dataclass(frozen=True)
class Bootstrap:
    """The bootstrap servers to use and where they came from (for error messages)."""

    servers: str
    source: str


def launcher_brokers(state_file: Path) -> list[str]:
    """ "127.0.0.1:PORT" of each broker recorded in the launcher's state file (entries named
    `broker...` with an int `port`), by name; [] if there is no file or it has none."""
    try:
        raw = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(raw, dict):
        return []
    found = []
    for name, info in sorted(raw.items()):
        port = info.get("port") if isinstance(info, dict) else None
        if str(name).startswith("broker") and type(port) is int and 0 < port < 65536:
            found.append(f"127.0.0.1:{port}")
    return found


def default_bootstrap(
    environ: dict[str, str] | None = None, state_file: Path = LAUNCHER_STATE
) -> Bootstrap:
    """The default for `--bootstrap` (see the module docstring)."""
    env = os.environ if environ is None else environ
    value = env.get(BOOTSTRAP_ENV, "").strip()
    if value:
        return Bootstrap(value, f"${BOOTSTRAP_ENV}")
    brokers = launcher_brokers(state_file)
    if brokers:
        return Bootstrap(",".join(brokers), str(state_file))
    return Bootstrap(FALLBACK_BOOTSTRAP, "the built-in default")


@dataclass(frozen=True)
class Arg:
    """One argument of an action, as `parser.add_argument(*flags, **options)` takes it."""

    flags: tuple[str, ...]
    options: dict[str, object]


def arg(*flags: str, **options: object) -> Arg:
    return Arg(flags, options)


@dataclass(frozen=True)
class OneOf:
    """Arguments of which exactly one must be given (a required mutually exclusive group)."""

    args: tuple[Arg, ...]


@dataclass(frozen=True)
class Action:
    """One action of a command (`topics create`, `groups list`, ...): it runs `func`; its help
    epilog is `example` and the exit codes; every action also gets the connection options."""

    name: str
    func: Callable[[argparse.Namespace], int]
    summary: str
    description: str
    args: tuple[Arg | OneOf, ...] = ()
    example: str = ""


def add_command(
    commands: argparse._SubParsersAction,
    name: str,
    summary: str,
    description: str,
    actions: tuple[Action, ...],
) -> None:
    """Add command `name` (e.g. `topics`) with its `actions` to the `zafka` parser."""
    command = commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=EXIT_CODES_EPILOG,
        formatter_class=HelpFormatter,
    )
    subparsers = command.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action in actions:
        parser = subparsers.add_parser(
            action.name,
            help=action.summary,
            description=action.description,
            epilog="\n".join(filter(None, [action.example, EXIT_CODES_EPILOG])),
            formatter_class=HelpFormatter,
        )
        parser.set_defaults(func=action.func)
        for spec in action.args:
            if isinstance(spec, OneOf):
                group = parser.add_mutually_exclusive_group(required=True)
                for one in spec.args:
                    group.add_argument(*one.flags, **one.options)  # type: ignore[arg-type]
            else:
                parser.add_argument(*spec.flags, **spec.options)  # type: ignore[arg-type]
        add_connection_arguments(parser)


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """`--bootstrap` and `--timeout-ms` (for each request to the cluster)."""
    parser.add_argument("--bootstrap", metavar="HOST:PORT", help=BOOTSTRAP_HELP)
    parser.add_argument(
        "--request-timeout-ms",
        type=positive_int,
        default=DEFAULT_TIMEOUT_MS,
        metavar="MS",
        help=f"how long to wait for the cluster's answer (default: {DEFAULT_TIMEOUT_MS})",
    )


def add_acks_argument(parser: argparse.ArgumentParser) -> None:
    """`--acks` 0, 1 or all (default all, the Producer's default)."""
    parser.add_argument(
        "--acks",
        choices=("0", "1", "all"),
        default="all",
        help="0: do not wait for the broker; 1: the leader stored it; all: every in-sync "
        "replica did (default: all, the producer's default)",
    )


def progress_arg(what: str) -> Arg:
    """`--progress`/`--no-progress`: a progress bar on stderr `what` (e.g. "while reading
    --file"); by default when stderr is a terminal (see `show_progress`)."""
    return arg(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"show a progress bar {what} (default: when stderr is a terminal)",
    )


def add_progress_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """`progress_arg(what)` on `parser`."""
    spec = progress_arg(what)
    parser.add_argument(*spec.flags, **spec.options)  # type: ignore[arg-type]


def show_progress(args: argparse.Namespace) -> bool:
    """`--progress` as given, else whether stderr is a terminal."""
    return args.progress if args.progress is not None else sys.stderr.isatty()


def resolve_bootstrap(args: argparse.Namespace) -> Bootstrap:
    """The servers given with `--bootstrap`, else the default."""
    if args.bootstrap:
        return Bootstrap(args.bootstrap, "--bootstrap")
    return default_bootstrap()


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an int >= 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def key_value(text: str) -> tuple[str, str]:
    """argparse type: KEY=VALUE (the value may be empty and may contain '=')."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def hint(error: ZafkaError, bootstrap: Bootstrap) -> str:
    """What the user can do about `error`, or ""."""
    name = error.error.name
    if name == "REQUEST_TIMED_OUT":
        return (
            f"{bootstrap.servers} came from {bootstrap.source}. Start a local cluster with "
            f"`zafka cluster up`, or point at yours with --bootstrap HOST:PORT or "
            f"${BOOTSTRAP_ENV}."
        )
    if name == "UNKNOWN_TOPIC_OR_PARTITION":
        return (
            "see the topics with `zafka topics list` and their partitions with "
            "`zafka topics describe NAME`."
        )
    if name == "TOPIC_ALREADY_EXISTS":
        return "see it with `zafka topics describe NAME`, or pass --if-not-exists."
    return ""


def fail(message: str, status: int = EXIT_FAILED) -> int:
    """Print `zafka: error: <message>` to stderr; returns `status`."""
    print(f"zafka: error: {message}", file=sys.stderr)
    return status


def report(error: ZafkaError, bootstrap: Bootstrap, what: str = "", advice: str = "") -> int:
    """Print `error` (with what failed, a hint and the command's own `advice`) to stderr;
    returns EXIT_FAILED."""
    prefix = f"{what}: " if what else ""
    status = fail(f"{prefix}{error}")
    for line in (hint(error, bootstrap), advice):
        if line:
            print(f"  {line}", file=sys.stderr)
    return status


def with_admin(
    args: argparse.Namespace,
    work: Callable[[Admin, Bootstrap], int],
    advice: Callable[[ZafkaError], str] = lambda error: "",
) -> int:
    """Run `work` with an Admin on the command's bootstrap servers; an error is reported
    (with `advice(error)`), Ctrl-C exits EXIT_INTERRUPTED."""
    bootstrap = resolve_bootstrap(args)
    try:
        with Admin(bootstrap.servers, request_timeout_ms=args.request_timeout_ms) as admin:
            return work(admin, bootstrap)
    except ZafkaError as err:
        return report(err, bootstrap, "", advice(err))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
