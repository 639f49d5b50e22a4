"""Mailing analytics (CONTRACT §5): one implementation for the live views and the what-if.

Rows come grouped (``count`` recipients alike) from SQL, or one by one from
an in-memory replay; the arithmetic is the same.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from domain.catalogue import DELIVERED, NOT_DELIVERED, NOT_SENT, RESPONSES


def _rate(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else round(numerator / denominator, 4)


class SummaryBuilder:
    def __init__(self) -> None:
        self.audience = 0
        self.sent = 0
        self.responses: Counter[str] = Counter()
        self.reasons: dict[str, Counter[str]] = {}
        self.unique_opens = 0
        self.total_opens = 0
        self.unique_clicks = 0
        self.total_clicks = 0

    def add(
        self,
        response: str,
        reason: str | None,
        sent: bool,
        unique_open: bool,
        opens: int,
        clicks: int,
        unique_click: bool | None = None,
        count: int = 1,
    ) -> None:
        """``opens`` and ``clicks`` are totals over the ``count`` recipients of the row."""
        self.audience += count
        if sent:
            self.sent += count
        self.responses[response] += count
        if RESPONSES[response].group in (NOT_SENT, NOT_DELIVERED):
            reasons = self.reasons.setdefault(response, Counter())  # listed even when no reason is known
            if reason is not None:
                reasons[reason] += count
        if unique_open:
            self.unique_opens += count
        if unique_click if unique_click is not None else clicks > 0:
            self.unique_clicks += count
        self.total_opens += opens
        self.total_clicks += clicks

    def result(self) -> dict[str, Any]:
        delivered = sum(n for code, n in self.responses.items() if RESPONSES[code].group == DELIVERED)
        bounces = self.responses["soft_bounce"] + self.responses["hard_bounce"]
        errors: dict[str, dict[str, Any]] = {NOT_SENT: {}, NOT_DELIVERED: {}}
        for code, reasons in sorted(self.reasons.items()):
            errors[RESPONSES[code].group][code] = {
                "count": self.responses[code],
                "reasons": dict(sorted(reasons.items())),
            }
        return {
            "audience": self.audience,
            "sent": self.sent,
            "delivered": delivered,
            "responses": {code: n for code, n in sorted(self.responses.items()) if n},
            "unique_opens": self.unique_opens,
            "total_opens": self.total_opens,
            "unique_clicks": self.unique_clicks,
            "total_clicks": self.total_clicks,
            "rates": {
                "delivery": _rate(delivered, self.sent),
                "bounce": _rate(bounces, self.sent),
                "open": _rate(self.unique_opens, delivered),
                "click": _rate(self.unique_clicks, delivered),
                "click_to_open": _rate(self.unique_clicks, self.unique_opens),
                "unsubscribe": _rate(self.responses["unsubscribed"], delivered),
                "spam_complaint": _rate(self.responses["spam_complaint"], delivered),
            },
            "errors": errors,
        }
