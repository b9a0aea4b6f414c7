"""Blocking TCP echo server: one client at a time (the lecture's first example, fixed:
it reads until the client closes, so partial reads never lose data).

    python examples/tcp_echo_server.py [PORT]      # 0 picks a free port
"""

import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    print(f"listening on {server.getsockname()[1]}", flush=True)
    while True:
        conn, addr = server.accept()
        with conn:
            while data := conn.recv(4096):  # b"" means the client closed its side
                conn.sendall(data)  # sendall: send() may write only part of it
