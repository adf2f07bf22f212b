"""The directory prometheus_client's multiprocess mode keeps its per-process files in.

The client chooses between in-memory values and files (``PROMETHEUS_MULTIPROC_DIR``) when it is
first imported, so ``signoff serve`` calls :func:`prepare` before importing the application:
every serving process it starts (``--workers``) inherits the variable and writes its samples
there, and a scrape answered by any of them sums all of them.

One directory per ``signoff serve`` (named by its pid) under the data directory; directories of
``signoff serve`` processes that are gone are removed at start (a stopped process cannot remove
its own: uvicorn ends it by re-raising the stop signal). Files of a serving process that
died are kept while its parent lives: its counters and histograms still count (a restarted
worker must not make a counter go down), and none of our in-process series is a gauge.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def prepare(data_dir: Path) -> Path | None:
    """Create this process's metrics directory, remove those of dead processes, and point
    ``PROMETHEUS_MULTIPROC_DIR`` at it. None when the operator set the variable: their
    directory, their cleaning."""
    if os.environ.get(ENV):
        return None
    root = data_dir.resolve() / "metrics"
    root.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.isdigit() and not _alive(int(entry.name)):
            shutil.rmtree(entry, ignore_errors=True)
    mine = root / str(os.getpid())
    shutil.rmtree(mine, ignore_errors=True)  # a dead process's, with our reused pid
    mine.mkdir()
    os.environ[ENV] = str(mine)
    return mine
