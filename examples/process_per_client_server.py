"""TCP echo server with a process per client: isolation at the price of a fork each.

python examples/process_per_client_server.py [PORT]
"""

import multiprocessing
import socket
import sys


def serve(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(4096):
            conn.sendall(data)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9003
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        print(f"listening on {server.getsockname()[1]}", flush=True)
        while True:
            conn, _ = server.accept()
            child = multiprocessing.Process(target=serve, args=(conn,), daemon=True)
            child.start()
            conn.close()  # the child has its own copy of the socket
            multiprocessing.active_children()  # reap finished children
