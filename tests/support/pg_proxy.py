"""A TCP proxy in front of PostgreSQL that can blackhole it: bytes are read and dropped, new
connections are accepted and never answered, as when packets to a failed host are dropped
rather than refused."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from order_service.entrypoints.local_servers import free_port


class PostgresProxy:
    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        socket_dir = parse_qs(parts.query).get("host", [None])[0]
        self._socket = (
            str(Path(socket_dir) / f".s.PGSQL.{parts.port or 5432}") if socket_dir else None
        )
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.port = free_port()
        user = parts.username or "postgres"
        self.dsn = urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{self.port}", query=""))
        self.blackholed = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> PostgresProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while self.blackholed:  # a new connection to a dead host: never answered
                await asyncio.sleep(0.1)
            if self._socket:
                up_reader, up_writer = await asyncio.open_unix_connection(self._socket)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self._target)
            await asyncio.gather(
                self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
            )
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()
        finally:
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if self.blackholed:
                continue  # dropped
            writer.write(data)
            await writer.drain()
        writer.close()
