"""The engine panels, in the order they appear as tabs."""

from __future__ import annotations

from PySide6.QtWidgets import QDockWidget, QWidget

from studio.app.context import StudioContext


def create_panels(ctx: StudioContext, parent: QWidget) -> list[QDockWidget]:
    from studio.app.accompany.panel import AccompanyPanel

    return [AccompanyPanel(ctx, parent)]
