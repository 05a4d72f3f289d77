"""The dashboard's section of the settings (see readykit.section)."""

from __future__ import annotations

from pydantic import Field

from readykit.section import Section


class DashboardConfig(Section):
    """readykit.dashboard."""

    dashboard: bool = Field(default=True, description="Serve the ops dashboard at /ops.")
