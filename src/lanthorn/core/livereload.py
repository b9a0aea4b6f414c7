"""Live reload (development): the script HTML pages get, and where it goes.

The script connects back over a WebSocket (config.LIVE_RELOAD_PATH) and, told which files
changed, swaps the page's stylesheets in place when only CSS changed (the page keeps its
state) or reloads it; when the server goes away it reconnects with back-off.
`window.lanthornLiveReload` says whether it is connected ("open" or "closed").
"""

from __future__ import annotations

from lanthorn.config import LIVE_RELOAD_PATH

SCRIPT = """<script>/* lanthorn live reload */(() => {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "@PATH@";
  let wait = 250;
  const connect = () => {
    const socket = new WebSocket(url);
    socket.onopen = () => { wait = 250; window.lanthornLiveReload = "open"; };
    socket.onmessage = (event) => {
      const change = JSON.parse(event.data);
      if (!change.css) { location.reload(); return; }
      for (const link of document.querySelectorAll('link[rel="stylesheet"]')) {
        const href = new URL(link.href);
        if (change.css.includes(href.pathname)) {
          href.searchParams.set("lanthorn-reload", Date.now());
          link.href = href.href;
        }
      }
    };
    socket.onclose = () => {
      window.lanthornLiveReload = "closed";
      setTimeout(connect, wait);
      wait = Math.min(wait * 2, 5000);
    };
  };
  connect();
})();</script>
""".replace("@PATH@", LIVE_RELOAD_PATH).encode()
# Larger pages are served as they are (read whole to inject, they would cost memory).
MAX_PAGE_BYTES = 8 * 1024 * 1024


def inject(page: bytes) -> bytes:
    """`page` with the script before its last </body> (or at the end)."""
    at = page.lower().rfind(b"</body>")
    return page + SCRIPT if at < 0 else page[:at] + SCRIPT + page[at:]
