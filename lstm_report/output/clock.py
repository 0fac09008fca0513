"""When a page says it was generated: now, or SOURCE_DATE_EPOCH for reproducible builds."""

from __future__ import annotations

import datetime as _dt
import os


def generated_at() -> str:
    """Generation time in UTC; honours SOURCE_DATE_EPOCH for reproducible builds."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and epoch.strip().isdigit():
        moment = _dt.datetime.fromtimestamp(int(epoch), tz=_dt.timezone.utc)
    else:
        moment = _dt.datetime.now(tz=_dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
