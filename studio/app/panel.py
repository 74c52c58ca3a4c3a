"""The base of every engine panel: a dock that shows plainly when its capability is missing.

A panel checks `services.capability(...)` when first shown and again when models change; when
not available, its controls stay disabled and a line says why (never a fake result).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QLabel, QVBoxLayout, QWidget

from studio.app import services
from studio.app.context import StudioContext


class Panel(QDockWidget):
    TITLE = "Panel"
    FEATURES: tuple[str, ...] = ()  # services capability names; any available enables it

    def __init__(self, ctx: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(self.TITLE, parent)
        self.ctx = ctx
        self.setObjectName(self.TITLE.lower().replace(" ", "_").replace("/", "_"))
        self.setAllowedAreas(Qt.DockWidgetArea.RightDockWidgetArea
                             | Qt.DockWidgetArea.LeftDockWidgetArea
                             | Qt.DockWidgetArea.BottomDockWidgetArea)
        body = QWidget(self)
        self.layout_ = QVBoxLayout(body)
        self.layout_.setContentsMargins(6, 6, 6, 6)
        self.notice = QLabel(body)
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("color: #f0b060;")
        self.notice.hide()
        self.layout_.addWidget(self.notice)
        self.controls = QWidget(body)
        self.layout_.addWidget(self.controls)
        self.layout_.addStretch(1)
        self.setWidget(body)
        self.build(self.controls)
        self._checked = False
        ctx.events.modelsChanged.connect(self.check)
        self.visibilityChanged.connect(lambda shown: shown and not self._checked and self.check())

    def build(self, body: QWidget) -> None:
        """Subclasses add their controls to `body`."""

    def availability(self) -> services.Capability:
        caps = [services.capability(f) for f in self.FEATURES]
        if not caps or any(caps):
            return services.Capability(True)
        return services.Capability(False, "; ".join(c.reason for c in caps))

    def ensure_checked(self) -> bool:
        """Check once (panels hidden in a tab are checked when first shown or used)."""
        return self.check() if not self._checked else self.controls.isEnabled()

    def check(self) -> bool:
        self._checked = True
        cap = self.availability()
        self.controls.setEnabled(cap.available)
        self.notice.setVisible(not cap.available)
        self.notice.setText(f"Unavailable: {cap.reason}" if not cap.available else "")
        self.refresh_models()
        return cap.available

    def refresh_models(self) -> None:
        """Subclasses reload their model lists here."""

    def failed(self, what: str, exc: BaseException) -> None:
        self.ctx.say(f"{what} failed: {exc}")
        self.notice.setText(f"{what} failed: {exc}")
        self.notice.show()
