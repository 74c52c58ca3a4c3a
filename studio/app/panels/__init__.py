"""The engine panels, in the order they appear as tabs. Each is a `Panel` dock that shows
plainly when its engine capability is missing."""

from __future__ import annotations

from PySide6.QtWidgets import QDockWidget, QWidget

from studio.app.context import StudioContext


def create_panels(ctx: StudioContext, parent: QWidget) -> list[QDockWidget]:
    from studio.app.accompany.panel import AccompanyPanel
    from studio.app.classify.panel import ClassifyPanel
    from studio.app.export.panel import ExportPanel
    from studio.app.generate.panel import GeneratePanel
    from studio.app.morph.panel import MorphPanel
    from studio.app.train.panel import TrainPanel

    return [cls(ctx, parent) for cls in (AccompanyPanel, GeneratePanel, MorphPanel,
                                         ClassifyPanel, ExportPanel, TrainPanel)]
