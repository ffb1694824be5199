"""The launcher's ZooKeeper ways (zafka/cluster_zk.py) against a fake `docker` command: what
it runs (host networking, labels, the shared entry point), what it says when Docker or the
image is missing, and that `down` touches only the container it recorded. The real container
runs in tests/integration/test_launcher.py."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from zafka import cli, cluster, cluster_zk, zookeeper
from zafka.cluster_processes import LauncherError, ProcessInfo, load_state, record, save_state

FAKE_DOCKER = """#!{python}
import json, sys
from pathlib import Path
here = Path(__file__).parent
with open(here / "calls.jsonl", "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
answers = json.loads((here / "answers.json").read_text())
words = sys.argv[1:]
key = words[0] + (" " + words[1] if words[0] == "image" else "")
code, out, err = answers.get(key, [0, "", ""])
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(code)
"""
NO_DAEMON = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n"
CONTAINER_ID = "c0ffee" * 10 + "abcd"


class FakeDocker:
    """A `docker` first on PATH that records its arguments and answers from a table keyed
    by subcommand (`version`, `image inspect`, `create`, ...): [exit code, stdout, stderr]."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.answers: dict[str, list] = {"version": [0, "20.10.24\n", ""]}

    def answer(self, key: str, code: int, out: str = "", err: str = "") -> None:
        self.answers[key] = [code, out, err]
        (self.directory / "answers.json").write_text(json.dumps(self.answers))

    def calls(self) -> list[list[str]]:
        path = self.directory / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(FAKE_DOCKER.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    fake = FakeDocker(bin_dir)
    fake.answer("version", 0, "20.10.24\n")
    return fake


@pytest.fixture(autouse=True)
def no_real_port(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Unit tests touch no real port: the launcher's "is this port taken?" probe answers
    "free" here, whatever listens on 127.0.0.1 (another cluster's ZooKeeper on 2181)."""
    probed: list[int] = []

    def probe(port: int, word: str, host: str = "127.0.0.1") -> str:
        probed.append(port)
        return ""

    monkeypatch.setattr(zookeeper, "four_letter_word", probe)
    return probed


def inspect_answer(root: Path, running: bool = True) -> str:
    labels = {cluster_zk.CLUSTER_LABEL: str(root), cluster_zk.SERVICE_LABEL: "zookeeper"}
    return json.dumps([{"State": {"Running": running, "Pid": 4242}, "Config": {"Labels": labels}}])


def container_info(root: Path, marker: str | None = None) -> ProcessInfo:
    log = str(root / "zookeeper" / "zookeeper.log")
    image = zookeeper.DEFAULT_IMAGE
    return ProcessInfo("zookeeper", 4242, 2999, log, marker or str(root), CONTAINER_ID, image)


def test_the_image_comes_from_the_environment_else_the_local_build():
    assert zookeeper.image_name({}) == "zafka/zookeeper:local"
    assert zookeeper.image_name({"ZAFKA_ZK_IMAGE": "zookeeper:3.9"}) == "zookeeper:3.9"
    assert zookeeper.foreground_command("/c/zoo.cfg") == [
        "zkServer.sh",
        "start-foreground",
        "/c/zoo.cfg",
    ]


def test_without_a_docker_command_it_says_how_to_get_docker(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker here
    with pytest.raises(LauncherError, match=r"not installed.*scripts/docker-engine.sh start"):
        cluster_zk.check_docker()


def test_a_stopped_engine_is_reported_with_how_to_start_it(docker, tmp_path, capsys):
    docker.answer("version", 1, "", NO_DAEMON)
    argv = ["cluster", "up", "--zookeeper", "container", "--dir", str(tmp_path / "c")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Docker is not running (Cannot connect to the Docker daemon" in err
    assert "start it with scripts/docker-engine.sh start" in err
    assert not (tmp_path / "c" / "cluster.json").exists()  # nothing started, nothing recorded
    assert [call[0] for call in docker.calls()] == ["version"]


def test_a_missing_image_is_reported_with_how_to_build_or_pull_it(docker, tmp_path, capsys):
    docker.answer("image inspect", 1, "", "Error: No such image\n")
    argv = ["cluster", "up", "--zookeeper", "container", "--dir", str(tmp_path / "c")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "the ZooKeeper image zafka/zookeeper:local is not in Docker" in err
    assert "build it with scripts/zk-image.sh" in err
    assert docker.calls()[-1][-1] == "zafka/zookeeper:local"
    with pytest.raises(LauncherError, match=r"ZAFKA_ZK_IMAGE=zookeeper:3.9 scripts/zk-image.sh"):
        cluster_zk.check_image("zookeeper:3.9")
    assert not any(call[0] == "create" for call in docker.calls())


def test_the_image_option_wins_over_the_environment(docker, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZAFKA_ZK_IMAGE", "from-env:1")
    docker.answer("image inspect", 1, "", "Error: No such image\n")
    argv = ["cluster", "up", "--zookeeper", "container", "--zookeeper-image", "mine:2"]
    assert cli.main([*argv, "--dir", str(tmp_path / "c")]) == 2
    assert "the ZooKeeper image mine:2 is not in Docker" in capsys.readouterr().err


def test_each_way_resolves_to_itself_and_auto_to_local_when_installed(docker, monkeypatch):
    monkeypatch.setattr(cluster_zk, "installed_locally", lambda: True)
    assert cluster_zk.resolve_mode("local", "img") == "local"
    assert cluster_zk.resolve_mode("auto", "img") == "local"
    assert docker.calls() == []  # Docker not even asked
    assert cluster_zk.resolve_mode("container", "img") == "container"
    assert [call[0] for call in docker.calls()] == ["version", "image"]
    monkeypatch.setattr(cluster_zk, "installed_locally", lambda: False)
    assert cluster_zk.resolve_mode("auto", "img") == "container"
    docker.answer("version", 1, "", NO_DAEMON)
    with pytest.raises(LauncherError) as err:
        cluster_zk.resolve_mode("auto", "img")
    assert "not installed here (scripts/setup.sh installs it)" in str(err.value)
    assert "scripts/docker-engine.sh start" in str(err.value)


def test_local_without_an_install_points_to_setup_and_to_the_container(tmp_path, monkeypatch):
    monkeypatch.setenv("ZAFKA_ZK_CLASSPATH", str(tmp_path / "nothing/*"))
    with pytest.raises(LauncherError) as err:
        cluster_zk.resolve_mode("local", "img")
    assert "scripts/setup.sh" in str(err.value) and "--zookeeper container" in str(err.value)


def test_an_unknown_way_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["cluster", "up", "--zookeeper", "podman", "--dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "invalid choice: 'podman'" in capsys.readouterr().err


def test_the_container_runs_on_the_host_network_labelled_with_the_shared_entry_point(
    docker, tmp_path
):
    root, zk_dir = tmp_path / "c", tmp_path / "c" / "zookeeper"
    zk_dir.mkdir(parents=True)
    docker.answer("create", 0, CONTAINER_ID + "\n")
    docker.answer("inspect", 0, inspect_answer(root))
    info, still_starting = cluster_zk._run_container(
        root, zk_dir, zk_dir / "zoo.cfg", 2999, "img:1"
    )
    create = next(call for call in docker.calls() if call[0] == "create")
    options = dict(zip(create[1:-3:2], create[2:-3:2], strict=True))
    assert options == {
        "--network": "host",  # nothing published: the config binds 127.0.0.1
        "--user": f"{os.getuid()}:{os.getgid()}",
        "--label": "zafka.service=zookeeper",  # (the last of two --label options)
        "--volume": f"{zk_dir}:{zk_dir}",
        "--env": "JMXDISABLE=true",  # the official zkServer.sh would start a JMX agent
        "--entrypoint": "zkServer.sh",
    }
    assert f"zafka.cluster={root}" in create
    assert create[-3:] == ["img:1", "start-foreground", str(zk_dir / "zoo.cfg")]
    assert not {"-p", "--publish", "--publish-all", "-P"} & set(create)
    assert ["start", CONTAINER_ID] in docker.calls()
    assert info == ProcessInfo(
        "zookeeper", 4242, 2999, str(zk_dir / "zookeeper.log"), str(root), CONTAINER_ID, "img:1"
    )
    assert load_state(root)["zookeeper"] == info  # recorded before it is awaited
    assert still_starting()
    docker.answer("inspect", 0, inspect_answer(root, running=False))
    assert not still_starting()


def test_a_container_that_does_not_start_is_removed(docker, tmp_path):
    root, zk_dir = tmp_path / "c", tmp_path / "c" / "zookeeper"
    zk_dir.mkdir(parents=True)
    docker.answer("create", 0, CONTAINER_ID + "\n")
    docker.answer("start", 1, "", 'exec: "zkServer.sh": executable file not found in $PATH\n')
    with pytest.raises(LauncherError) as err:
        cluster_zk._run_container(root, zk_dir, zk_dir / "zoo.cfg", 2999, "busybox")
    assert "executable file not found" in str(err.value)
    assert "zkServer.sh start-foreground CONFIG" in str(err.value)
    assert docker.calls()[-1] == ["rm", "--force", CONTAINER_ID]
    assert load_state(root) == {}


def test_down_stops_and_removes_the_recorded_container_and_keeps_its_output(docker, tmp_path):
    root = tmp_path / "c"
    (root / "zookeeper").mkdir(parents=True)
    record(root, container_info(root))
    docker.answer("inspect", 0, inspect_answer(root))
    docker.answer("logs", 0, "ZooKeeper said hello\n")
    results = cluster.stop_all(root)
    assert [(info.name, running) for info, running in results] == [("zookeeper", True)]
    commands = [call[:2] for call in docker.calls() if call[0] in ("stop", "logs", "rm")]
    assert commands == [["stop", "-t"], ["logs", CONTAINER_ID], ["rm", "--force"]]
    assert all(CONTAINER_ID in call for call in docker.calls() if call[0] in ("stop", "rm"))
    log = (root / "zookeeper" / "zookeeper.log").read_text()
    assert f"output of container {CONTAINER_ID}" in log and "ZooKeeper said hello" in log
    assert load_state(root) == {}


def test_down_leaves_a_container_labelled_for_another_cluster_alone(docker, tmp_path):
    root = tmp_path / "c"
    record(root, container_info(root, marker=str(tmp_path / "another")))
    docker.answer("inspect", 0, inspect_answer(root))  # labelled for `root`, not `another`
    assert [running for _, running in cluster.stop_all(root)] == [False]
    assert [call[0] for call in docker.calls()] == ["version", "inspect"]
    assert load_state(root) == {}


def test_down_without_docker_keeps_the_container_recorded_and_says_so(docker, tmp_path):
    root = tmp_path / "c"
    record(root, container_info(root))
    docker.answer("version", 1, "", NO_DAEMON)
    docker.answer("inspect", 1, "", NO_DAEMON)
    with pytest.raises(LauncherError) as err:
        cluster.stop_all(root)
    assert "scripts/docker-engine.sh start" in str(err.value)
    assert "run `zafka cluster down` again" in str(err.value)
    assert load_state(root) == {"zookeeper": container_info(root)}
    assert not cluster_zk.is_alive(container_info(root))  # status: not running


def test_a_process_entry_is_saved_without_container_fields_and_old_files_load(tmp_path):
    local = ProcessInfo("zookeeper", 10, 2181, "/l/zk.log", cluster_zk.ZOOKEEPER_MAIN)
    save_state(tmp_path, {"zookeeper": local, "c": container_info(tmp_path)})
    raw = json.loads((tmp_path / "cluster.json").read_text())
    assert set(raw["zookeeper"]) == {"name", "pid", "port", "log", "marker"}
    assert raw["c"]["container"] == CONTAINER_ID
    assert load_state(tmp_path) == {"zookeeper": local, "c": container_info(tmp_path)}
    assert local.identity() == "pid 10"
    assert container_info(tmp_path).identity() == "container c0ffeec0ffee of zafka/zookeeper:local"


def test_an_explicit_other_way_than_the_running_one_is_refused(tmp_path, monkeypatch):
    root = tmp_path / "c"
    record(root, container_info(root))
    monkeypatch.setattr(cluster_zk, "is_alive", lambda info: True)
    for mode in (None, "auto", "container"):  # kept as it runs
        assert cluster_zk.start_zookeeper(root, 2181, mode) == container_info(root)
    with pytest.raises(LauncherError, match=r"already runs \(container c0ffeec0ffee.*down"):
        cluster_zk.start_zookeeper(root, 2181, "local")
