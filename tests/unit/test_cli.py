import os

import pytest

from zafka import cli, cluster
from zafka.version import __version__


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"zafka {__version__}"


@pytest.mark.parametrize("argv", [["--help"], ["cluster", "--help"], ["cluster", "up", "--help"]])
def test_help_describes_every_level(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    assert "usage: zafka" in capsys.readouterr().out


def test_a_missing_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    assert "required" in capsys.readouterr().err


def test_status_without_a_cluster_says_how_to_start_one(tmp_path, capsys):
    assert cli.main(["cluster", "status", "--dir", str(tmp_path)]) == 1
    assert "zafka cluster up" in capsys.readouterr().out


def test_a_missing_zookeeper_install_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZAFKA_ZK_CLASSPATH", str(tmp_path / "nothing/*"))
    assert cli.main(["cluster", "up", "--dir", str(tmp_path), "--zk-port", "1"]) == 2
    assert "scripts/setup.sh" in capsys.readouterr().err


def test_is_running_checks_the_command_line_not_just_the_pid():
    assert cluster.is_running(os.getpid(), "python")
    assert not cluster.is_running(os.getpid(), "QuorumPeerMain")
