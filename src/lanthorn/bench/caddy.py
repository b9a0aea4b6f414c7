"""Caddy, the HTTP/3 reference peer: Debian's package, one process in the foreground,
serving the bench's root with the bench's certificate over HTTPS and, on the same port
number over UDP, HTTP/3."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from lanthorn.bench.targets import (
    Process,
    Tls,
    free_port,
    pinned,
    wait_listening,
    wait_udp_bound,
)

# `admin off`: no admin endpoint on :2019. `auto_https off`: no redirect listener on
# :80 and no certificate management (the certificate is ours); HTTP/3 stays on, as the
# `protocols` line asks. Caddy logs no requests unless a site has a `log` directive.
# Caddy picks a certificate by SNI, and gtlsclient sends "localhost" when it is given an
# address: the bench certificate names both (targets.make_certificate).
CADDYFILE = """\
{{
\tadmin off
\tauto_https off
\tservers {{
\t\tprotocols h1 h2 h3
\t}}
}}
https://:{port} {{
\tbind 127.0.0.1
\ttls {cert} {key}
\troot * {root}
\tfile_server
}}
"""


def caddyfile(port: int, root: Path, tls: Tls) -> str:
    return CADDYFILE.format(port=port, root=root, cert=tls.cert, key=tls.key)


class Caddy(Process):
    """`caddy run` with a generated Caddyfile; its home, config and data directories
    are in the bench's scratch directory, never the user's."""

    name = "caddy"

    def __init__(self, tls: Tls) -> None:
        self.tls = tls

    @staticmethod
    def available() -> bool:
        return shutil.which("caddy") is not None

    def start(self, root: Path, work: Path, cpu: int | None) -> None:
        self.port = free_port(udp=True)
        home = work / "caddy"
        home.mkdir(exist_ok=True)
        conf = home / "Caddyfile"
        conf.write_text(caddyfile(self.port, root, self.tls))
        env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
               "XDG_DATA_HOME": str(home / "data")}  # fmt: skip
        argv = ["caddy", "run", "--config", str(conf), "--adapter", "caddyfile"]
        with open(home / "caddy.log", "ab") as log:
            self.proc = subprocess.Popen(
                pinned(cpu, argv), env=env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_listening(self.port, self.proc)
        wait_udp_bound(self.port, self.proc)
