"""A loopback HTTP/1.1 server that misbehaves on purpose, for transport failure tests.

Each connection is handed to a ``Behaviour``: it reads requests with :func:`read_request` and
answers, stalls, closes or resets as the test wants. The server counts connections and
requests, and the most connections open at once.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

Behaviour = Callable[["Connection"], Awaitable[None]]


@dataclass
class RawServer:
    port: int
    connections: int = 0
    open_now: int = 0
    peak_open: int = 0
    requests: list[bytes] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Connection:
    server: RawServer
    number: int  # 1 for the server's first connection
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def read_request(self) -> bytes:
        """One request, head and body, as received; recorded on the server."""
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        self.server.requests.append(head + body)
        return head + body

    async def answer(self, body: bytes = b"{}", *, headers: bytes = b"") -> None:
        self.writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + headers
            + b"content-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        await self.writer.drain()

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until_client_closes(self) -> None:
        while await self.reader.read(65536):
            pass

    def close(self) -> None:
        self.writer.close()

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


async def answer_all(connection: Connection) -> None:
    """A well-behaved keep-alive server."""
    try:
        while True:
            await connection.read_request()
            await connection.answer()
    except asyncio.IncompleteReadError:
        return


@asynccontextmanager
async def raw_server(behaviour: Behaviour) -> AsyncIterator[RawServer]:
    state = RawServer(port=0)
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        state.connections += 1
        state.open_now += 1
        state.peak_open = max(state.peak_open, state.open_now)
        try:
            await behaviour(Connection(state, state.connections, reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            # Cancelled: the server is stopping (a cancelled handler task would be logged).
            pass
        finally:
            state.open_now -= 1
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


@asynccontextmanager
async def unaccepting_port() -> AsyncIterator[int]:
    """A port whose accept queue is full, so a new connection hangs until it times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        await asyncio.sleep(0.05)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
