"""asyncio TCP client: write, signal the end, read the whole reply.

python examples/asyncio_echo_client.py PORT MESSAGE
"""

import asyncio
import sys


async def main(port: int, message: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(message.encode())
    writer.write_eof()
    reply = await reader.read()  # until the server closes
    print(reply.decode())
    writer.close()
    await writer.wait_closed()


asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
