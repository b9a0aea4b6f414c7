"""asyncio TCP echo server: one thread, many clients, coroutines instead of threads.

python examples/asyncio_echo_server.py [PORT]
"""

import asyncio
import sys


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(4096):
        writer.write(data)
        await writer.drain()  # back-pressure: wait while the client is slow to read
    writer.close()
    await writer.wait_closed()


async def main(port: int) -> None:
    server = await asyncio.start_server(echo, "127.0.0.1", port)
    print(f"listening on {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()  # serve_forever, not "server_forever"


asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9004))
