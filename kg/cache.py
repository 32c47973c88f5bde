"""Where derived, rebuildable files live (model tables, parsed lexicons)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$JICENG_CACHE_DIR``, else ``$XDG_CACHE_HOME/jiceng``, else ``~/.cache/jiceng``."""
    env = os.environ.get("JICENG_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "jiceng" if xdg else Path.home() / ".cache" / "jiceng"


def source_key(path: Path) -> str:
    """Changes whenever the source file is replaced (size and mtime, as make does)."""
    st = path.stat()
    return f"{st.st_size}-{st.st_mtime_ns}"
