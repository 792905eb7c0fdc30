"""The user's seeknal cache directory, shared by the compile cache and the runtime.

Everything kept there is a cache: deleting it at any time is safe, and
``SEEKNAL_NO_CACHE=1`` bypasses all of it. It lives outside the project, so nothing a
pull request commits can plant an entry.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

ENV_DIR = "SEEKNAL_CACHE_DIR"
ENV_DISABLE = "SEEKNAL_NO_CACHE"


def cache_directory() -> Path:
    """``$SEEKNAL_CACHE_DIR``, else ``$XDG_CACHE_HOME/seeknal``, else ``~/.cache/seeknal``
    (not created here).

    Example:
        >>> os.environ["SEEKNAL_CACHE_DIR"] = "/tmp/cache"
        >>> cache_directory()
        PosixPath('/tmp/cache')
    """
    explicit = os.environ.get(ENV_DIR)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "seeknal"
    return Path.home() / ".cache" / "seeknal"


def usable_cache_directory() -> Path | None:
    """:func:`cache_directory`, or None when there is none to use: no home directory
    (a container user without one; Python then raises, or leaves ``~`` unexpanded).
    Caches are then off rather than written somewhere shared or relative."""
    try:
        directory = cache_directory()
    except (RuntimeError, KeyError, OSError):
        return None
    return directory if directory.is_absolute() else None


def cache_disabled_by_environment() -> bool:
    """``SEEKNAL_NO_CACHE`` set to anything but empty, ``0``, ``false`` or ``no``."""
    value = os.environ.get(ENV_DISABLE, "").strip().lower()
    return value not in ("", "0", "false", "no")


def keyed_file(kind: str, key: str) -> Path | None:
    """``<cache directory>/<kind>/<sha256 of key>.json``: the one file of that kind kept
    for ``key`` (a path); None when caches are off (``SEEKNAL_NO_CACHE``) or there is no
    cache directory to use.

    Example:
        >>> os.environ["SEEKNAL_CACHE_DIR"] = "/tmp/cache"
        >>> keyed_file("runs", "/home/me/shop")  # doctest: +ELLIPSIS
        PosixPath('/tmp/cache/runs/....json')
    """
    if cache_disabled_by_environment():
        return None
    directory = usable_cache_directory()
    if directory is None:
        return None
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return directory / kind / f"{digest}.json"


def write_cache_file(path: Path, content: str | bytes) -> bool:
    """Write ``content`` to ``path`` (directories made) through a temporary file renamed
    over it, so a reader sees the old file or the new one; text as UTF-8. A cache that
    cannot be written (a read-only home, a full disk) is not an error: False."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError:
        return False
    return True
