"""`custval serve --model URI --port P`: MLflow's scoring server for a registered model (custval.serving.server),
the URI's alias resolved once, here, so the server serves the version printed; wiring only."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from custval.serving.server import HOST, check_port, resolve_served, server_command
from custval.tracking.store import prepare_store


def serve(model_uri: str, port: int, *, tracking_uri: str | None = None, workers: int = 1,
          started: Callable[[str, str], None] | None = None) -> int:
    """Run the server in the foreground until it stops (SIGINT / SIGTERM stop it); returns its exit status.
    `started(pinned uri, address)` is called once the command is built, before the server starts."""
    check_port(port)
    uri = prepare_store(tracking_uri)
    ref = resolve_served(model_uri)
    pinned = f"models:/{ref.name}/{ref.version}"
    argv, env = server_command(pinned, port, tracking_uri=uri, workers=workers)
    if started is not None:
        started(pinned, f"http://{HOST}:{port}")
    with subprocess.Popen(argv, env=env) as process:
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.terminate()
            process.wait()
            raise
