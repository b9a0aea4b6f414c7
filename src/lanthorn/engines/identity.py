"""Which user a worker runs as: `--user NAME` drops root once the ports are bound, so
ports below 1024 can be served by an unprivileged process (nginx's `user`)."""

from __future__ import annotations

import os
import pwd

from lanthorn.errors import ConfigError


def account(name: str) -> pwd.struct_passwd:
    """The user `name`; ConfigError if there is none (checked before anything binds)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(f"no such user {name!r}") from None


def become(name: str | None) -> None:
    """Switch this process to user `name` (groups first, then the user id: after setuid
    there is no way back). Nothing to do when already that user."""
    if name is None:
        return
    user = account(name)
    if os.getuid() == user.pw_uid and os.geteuid() == user.pw_uid:
        return
    try:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    except PermissionError as exc:
        raise ConfigError(f"cannot run as user {name!r}: {exc.strerror}") from None
