"""UDP echo server: SOCK_DGRAM (not SOCK_STREAM), recvfrom/sendto, no connections.

python examples/udp_echo_server.py [PORT]
"""

import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 9001
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
    server.bind(("127.0.0.1", port))
    print(f"listening on {server.getsockname()[1]}", flush=True)
    while True:
        data, addr = server.recvfrom(65507)  # one whole datagram, boundaries preserved
        server.sendto(data, addr)
