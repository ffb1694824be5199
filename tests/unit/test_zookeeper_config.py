from zafka import zookeeper


def test_config_binds_loopback_and_disables_the_admin_server():
    cfg = zookeeper.render_config(client_port=2999, data_dir="/d", tick_ms=200)
    entries = dict(line.split("=", 1) for line in cfg.splitlines() if line)
    assert entries["clientPort"] == "2999"
    assert entries["clientPortAddress"] == "127.0.0.1"
    assert entries["admin.enableServer"] == "false"  # it would bind 0.0.0.0:8080
    assert entries["tickTime"] == "200"
    assert "ruok" in entries["4lw.commands.whitelist"].split(",")


def test_probe_of_a_closed_port_is_not_ok():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        assert zookeeper.four_letter_word(port, "ruok") == ""
        assert not zookeeper.is_ok(port)
        assert not zookeeper.wait_until_ok(port, timeout_s=0.3)
