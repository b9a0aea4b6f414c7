"""Blocking TCP client: send first, then read the whole reply.

python examples/tcp_echo_client.py PORT MESSAGE
"""

import socket
import sys

port, message = int(sys.argv[1]), sys.argv[2].encode()
with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
    sock.sendall(message)
    sock.shutdown(socket.SHUT_WR)  # "that is all": the server's recv returns b""
    reply = b""
    while chunk := sock.recv(4096):
        reply += chunk
print(reply.decode())
