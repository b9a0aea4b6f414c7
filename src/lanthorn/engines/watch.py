"""Live reload's watcher: one daemon thread per worker that watches the document root
(watchfiles: inotify, debounced) and reports the URL paths of what changed to the
worker's drivers (Service.changes), which tell the open live-reload sockets."""

from __future__ import annotations

import logging
import os
import threading

from lanthorn.driver import Service

log = logging.getLogger("lanthorn")
DEBOUNCE_MS = 50  # an editor's save (write, rename, chmod) is one change


def start(service: Service) -> None:
    """Watch the root if live reload is on (a no-op otherwise)."""
    if not service.config.site.live_reload:
        return
    root = os.path.realpath(service.config.site.root)
    threading.Thread(
        target=_watch, args=(service, root), name="lanthorn-watch", daemon=True
    ).start()


def _watch(service: Service, root: str) -> None:
    import watchfiles  # only when live reload is on

    try:
        for changes in watchfiles.watch(root, debounce=DEBOUNCE_MS, step=20, raise_interrupt=False):
            paths = {"/" + os.path.relpath(path, root).replace(os.sep, "/") for _, path in changes}
            service.changes.notify(tuple(sorted(paths)))
    except Exception:  # the server goes on without live reload
        log.exception("live reload: watching %s failed", root)
