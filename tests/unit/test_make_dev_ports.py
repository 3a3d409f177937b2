"""make dev's ports: free when only TIME_WAIT sockets of a stopped make dev linger on them, and a
port taken in the race between the check and the bind is said in one line."""

import errno
import socket

import pytest

from local import dev


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_port_whose_last_connections_linger_in_time_wait_is_free_to_make_dev(monkeypatch):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server's side closes first: it lingers in TIME_WAIT, as after Ctrl-C
    client.close()
    server.close()
    for variable, _, _ in dev.PORTS:
        monkeypatch.setenv(variable, str(_free_port()))
    monkeypatch.setenv("DYNAMODB_LOCAL_PORT", str(port))
    assert dev.taken_ports() == []


def test_a_port_taken_between_the_check_and_the_bind_is_one_line_not_a_traceback(monkeypatch, capsys):
    def taken_meanwhile() -> None:
        raise OSError(errno.EADDRINUSE, "Address already in use")

    monkeypatch.setattr(dev, "main", taken_meanwhile)
    with pytest.raises(SystemExit) as stopped:
        dev.run()
    assert stopped.value.code == 1
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and said[0].startswith("make dev: a port was taken") and "Traceback" not in said[0]
