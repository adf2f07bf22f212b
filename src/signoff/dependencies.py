"""The request plumbing every router shares: the database and the settings.

Routes declare ``db: DB`` and ``settings: Config``; both come from ``app.state``, set once by
``create_app``. Jobs and emails need no dependency: a write defers them on its session and
``Database.write`` hands them over after the commit.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from signoff.config import Settings, get_settings
from signoff.db import Database, get_db

DB = Annotated[Database, Depends(get_db)]
Config = Annotated[Settings, Depends(get_settings)]
