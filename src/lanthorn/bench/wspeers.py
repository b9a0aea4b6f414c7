"""The WebSocket echo servers lanthorn is measured against, as plain scripts (run by the
interpreter that has the library: the `websockets` one is lanthorn's own, aiohttp lives
in .venv-peers): `python wspeers.py websockets|aiohttp PORT`. Each echoes every message
on any path, on 127.0.0.1, with no compression."""

from __future__ import annotations

import asyncio
import sys


async def _websockets(port: int) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", port, compression=None, max_size=None):
        await asyncio.Future()


def _aiohttp(port: int) -> None:
    from aiohttp import WSMsgType, web

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=0)
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.BINARY:
                await ws.send_bytes(message.data)
            elif message.type is WSMsgType.TEXT:
                await ws.send_str(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", echo)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if kind == "websockets":
        asyncio.run(_websockets(port))
    else:
        _aiohttp(port)
