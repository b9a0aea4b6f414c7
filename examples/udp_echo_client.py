"""UDP client: a datagram may be lost, so wait with a timeout instead of forever.

python examples/udp_echo_client.py PORT MESSAGE
"""

import socket
import sys

port, message = int(sys.argv[1]), sys.argv[2].encode()
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    sock.settimeout(2)
    sock.sendto(message, ("127.0.0.1", port))
    try:
        reply, _ = sock.recvfrom(65507)
    except TimeoutError:
        sys.exit("no reply within 2 s: the datagram or its answer was lost")
print(reply.decode())
