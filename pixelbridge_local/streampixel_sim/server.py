"""The HTTP plumbing: a threaded loopback server that hands each POST to the simulator."""

from __future__ import annotations

import json
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from pixelbridge_local.streampixel_sim.simulator import StreampixelSimulator


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], simulator: StreampixelSimulator) -> None:
        super().__init__(address, Handler)
        self.simulator = simulator


class Handler(BaseHTTPRequestHandler):
    server_version = "StreampixelSim/1.0"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length > 0 else b""
        simulator = cast(SimulatorServer, self.server).simulator
        status, body = simulator.handle_post(
            self.path, self.headers.get("Content-Type", ""), raw_body, self._wait_for_caller_gone
        )
        if status == 0:  # drop_next_connections: processed, then the connection closes unanswered
            self.close_connection = True
            return
        self._send_json(status, body)

    def _wait_for_caller_gone(self, stopping: threading.Event) -> None:
        """Block until the client closes its end of the connection (EOF), or the simulator stops."""
        while not stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.1)
            if not readable:
                continue
            try:
                if self.connection.recv(1, socket.MSG_PEEK) == b"":
                    return
            except OSError:
                return
            stopping.wait(0.1)  # the client sent more bytes (never, while it awaits an answer)

    def do_GET(self) -> None:
        self._send_json(404, {"message": "Not found"})

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        encoded = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its read timeout fired during slow_next_calls)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: request lines would include nothing secret, but tests stay readable
