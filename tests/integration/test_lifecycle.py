"""The whole lifecycle of a mailing through the application service, on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from application.queries import Queries
from application.service import ResponsesApp
from domain.contacts import ContactState
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key
from interface.providers import elasticemail, unione
from projections.replay import rebuild
from tests.helpers.stores import FIXTURES

T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
KEY = "test-key"


def signed_batch(path: str) -> bytes:
    body = (FIXTURES / path).read_text()
    digest = hashlib.md5(body.replace("AUTH_PLACEHOLDER", KEY).encode()).hexdigest()
    return body.replace("AUTH_PLACEHOLDER", digest).encode()


def unione_event(status: str, contact: str | None, email: str, at: str, *, url: str | None = None, test: bool = False) -> bytes:
    data: dict = {"job_id": "job-x", "email": email, "status": status, "event_time": at}
    if contact is not None:
        data["metadata"] = {"mailing_id": "spring-sale", "contact_id": contact, **({"test": 1} if test else {})}
    if url:
        data["url"] = url
    return json.dumps(
        {
            "auth": "x",
            "events_by_user": [{"user_id": 1, "events": [{"event_name": "transactional_email_status", "event_data": data}]}],
        }
    ).encode()


def responses(app: ResponsesApp, mailing: str) -> dict[str, str]:
    app.wait_for_views()
    items = Queries(app).audience(mailing, limit=1000)["items"]
    return {i["contact_id"]: i["response"]["code"] for i in items}


def test_a_mailing_from_audience_to_contact_effects(app: ResponsesApp) -> None:
    q = Queries(app)
    # Contacts known before the mailing: one unsubscribed from the "news" type, one marked do-not-email.
    app.set_subscription("c-2003", "news", False)
    app.change_contact("c-2004", {"do_not_use_email": True})
    app.change_contact("c-2005", {"email": "old@example.com", "email_is_actual": False})

    app.create_mailing(
        {
            "id": "spring-sale",
            "name": "Spring",
            "category": "bulk",
            "email_type": "news",
            "provider": "unione",
            "prevent_duplicates": True,
        }
    )
    audience = [
        {"contact_id": "c-1001", "name": "Anna", "email": "anna@example.com"},
        {"contact_id": "c-1002", "email": "boris@example.org"},
        {"contact_id": "c-1003", "email": "nobody@example.net"},
        {"contact_id": "c-1004", "email": "vera@example.com"},
        {"contact_id": "c-1005", "email": "gleb@example.com"},
        {"contact_id": "c-1006", "email": "dina@example.com"},
        {"contact_id": "c-2001"},
        {"contact_id": "c-2002", "email": "ANNA@example.com "},
        {"contact_id": "c-2003", "email": "typed@example.com"},
        {"contact_id": "c-2004", "email": "dne@example.com"},
        {"contact_id": "c-2005"},
    ]
    assert app.add_audience("spring-sale", audience) == {"added": 11, "already_present": 0}
    assert app.add_audience("spring-sale", audience[:2]) == {"added": 0, "already_present": 2}
    assert set(responses(app, "spring-sale").values()) == {"planned"}

    sent = app.dispatch("spring-sale", now=T0)
    assert sent["outcomes"] == {
        "sent_to_provider": 6,
        "canceled_no_email": 1,
        "canceled_duplicate_email": 1,
        "canceled_unsubscribed_type": 1,
        "canceled_unsubscribed_all": 1,
        "canceled_invalid_email": 1,
    }
    assert [s["contact_id"] for s in sent["send"]] == [f"c-100{i}" for i in range(1, 7)]
    assert sent["send"][0]["metadata"] == {"mailing_id": "spring-sale", "contact_id": "c-1001"}
    assert app.dispatch("spring-sale", now=T0)["send"] == []  # a second wave sends nobody twice

    # The provider's batch, then the same batch again (a retry): nothing counted twice.
    body = signed_batch("unione/batch-mixed.json")
    assert unione.verify(body, [KEY])
    batch = unione.parse(body, T0 + timedelta(hours=1))
    first = app.record_batch(batch)
    assert (first.accepted, first.duplicates, first.unmatched) == (8, 0, 0)  # 7 signals + 1 notice
    again = app.record_batch(unione.parse(body, T0 + timedelta(hours=2)))
    assert (again.accepted, again.duplicates) == (0, 8)

    # Out of order: Dina's click arrives before her delivery; a test send is kept apart.
    app.record_batch(
        unione.parse(
            unione_event("clicked", "c-1006", "dina@example.com", "2026-03-14 10:20:00", url="https://shop.example.com/a"),
            T0 + timedelta(hours=1),
        )
    )
    app.record_batch(
        unione.parse(unione_event("delivered", "c-1006", "dina@example.com", "2026-03-14 10:04:15"), T0 + timedelta(hours=1))
    )
    test_send = app.record_batch(
        unione.parse(
            unione_event("opened", "c-1006", "dina@example.com", "2026-03-14 10:30:00", test=True), T0 + timedelta(hours=1)
        )
    )
    assert test_send.accepted == 1
    # Email-only correlation: Boris's delivery without metadata matches by address among this provider's recipients.
    by_email = app.record_batch(
        unione.parse(unione_event("delivered", None, "Boris@Example.org", "2026-03-14 10:50:00"), T0 + timedelta(hours=1))
    )
    assert by_email.accepted == 1

    got = responses(app, "spring-sale")
    assert got["c-1001"] == "clicked"  # delivered → opened → clicked
    assert got["c-1002"] == "delivered"  # soft bounce, then delivered
    assert got["c-1003"] == "hard_bounce"
    assert got["c-1004"] == "unsubscribed"
    assert got["c-1005"] == "spam_complaint"
    assert got["c-1006"] == "clicked"  # the late delivery does not undo the click

    summary = q.summary("spring-sale")
    assert summary["audience"] == 11
    assert summary["sent"] == 6
    assert summary["delivered"] == 5
    assert summary["unique_opens"] == 4  # anna (opened), dina (click implies), vera and gleb (implied)
    assert summary["total_opens"] == 1
    assert summary["unique_clicks"] == 2 and summary["total_clicks"] == 2
    assert summary["rates"]["delivery"] == round(5 / 6, 4)
    assert summary["errors"]["not_delivered"]["hard_bounce"] == {"count": 1, "reasons": {"unknown_recipient": 1}}
    assert summary["errors"]["not_sent"]["canceled_no_email"]["count"] == 1
    links = {link["url"]: link for link in q.links("spring-sale")["links"]}
    assert links["https://shop.example.com/sale?utm_campaign=spring"] == {
        "url": "https://shop.example.com/sale?utm_campaign=spring",
        "clicks": 1,
        "unique_clicks": 1,
    }
    tests_kept = q.side("test_send", mailing_id="spring-sale")["items"]
    assert len(tests_kept) == 1
    assert len(q.side("notice")["items"]) == 1

    # Contact effects.
    assert q.contact("c-1003")["flags"] == {"do_not_use_email": True, "email_is_actual": False, "unsubscribed_types": []}
    assert q.contact("c-1004")["flags"]["do_not_use_email"] is True
    assert q.contact("c-1005")["flags"]["do_not_use_email"] is True
    assert q.contact("c-1001")["flags"] == {"do_not_use_email": False, "email_is_actual": True, "unsubscribed_types": []}
    assert q.contact("c-1001")["responses"][0]["response"]["code"] == "clicked"

    # A signal for a recipient who is not in the audience yet is kept, then matched when it appears.
    late = app.record_batch(
        unione.parse(unione_event("delivered", "c-3001", "zoe@example.com", "2026-03-14 11:00:00"), T0 + timedelta(hours=3))
    )
    assert late.unmatched == 1
    app.wait_for_views()
    assert [u["correlation"]["contact_id"] for u in q.side("unmatched")["items"]] == ["c-3001"]
    app.add_audience("spring-sale", [{"contact_id": "c-3001", "email": "zoe@example.com"}])
    assert responses(app, "spring-sale")["c-3001"] == "delivered"
    assert q.side("unmatched")["items"] == []

    # Rebuilding every view from the journal gives exactly the live views.
    live = q.audience("spring-sale", limit=1000)
    live_summary = q.summary("spring-sale")
    live_contacts = [q.contact(c) for c in ("c-1003", "c-1004", "c-2003")]
    rebuild(app, app.active_rules())
    assert app.generation() == 2
    assert q.audience("spring-sale", limit=1000) == live
    assert q.summary("spring-sale") == live_summary
    assert [q.contact(c) for c in ("c-1003", "c-1004", "c-2003")] == live_contacts


def test_elastic_email_notifications_fold_like_the_seed(app: ResponsesApp) -> None:
    app.create_mailing({"id": "spring-sale", "name": "Spring", "category": "bulk", "provider": "elasticemail"})
    app.add_audience("spring-sale", [{"contact_id": f"c-100{i}", "email": f"u{i}@example.com"} for i in range(1, 6)])
    app.dispatch("spring-sale", now=T0)
    lines = [
        line
        for line in (FIXTURES / "elasticemail/notifications.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    from urllib.parse import parse_qsl

    for line in lines:
        app.record_batch(elasticemail.parse(dict(parse_qsl(line)), T0 + timedelta(hours=1)))
    got = responses(app, "spring-sale")
    assert got == {
        "c-1001": "clicked",
        "c-1002": "soft_bounce",
        "c-1003": "invalid_address",
        "c-1004": "unsubscribed",
        "c-1005": "spam_complaint",
    }
    assert Queries(app).contact("c-1003")["flags"]["email_is_actual"] is False


def test_stop_and_sweep(app: ResponsesApp) -> None:
    app.create_mailing({"id": "m1", "name": "M1", "category": "trigger", "provider": "sendgrid"})
    app.add_audience("m1", [{"contact_id": "a", "email": "a@example.com"}, {"contact_id": "b", "email": "b@example.com"}])
    app.dispatch("m1", now=T0)
    app.add_audience("m1", [{"contact_id": "c", "email": "c@example.com"}])
    assert app.stop("m1", now=T0) == 1
    assert responses(app, "m1")["c"] == "stopped_manually"

    # Still waiting for the provider: not due before 48 hours, unknown response after.
    assert app.sweep(now=T0 + timedelta(hours=1))["checked"] == 2
    assert set(responses(app, "m1").values()) == {"sent_to_provider", "stopped_manually"}
    delivered = ParsedBatch(
        events=[
            ProviderEvent(
                Signal(
                    key=dedup_key("x"),
                    source="sendgrid",
                    fields={"event": "delivered"},
                    received_at=T0 + timedelta(hours=2),
                    occurred_at=T0 + timedelta(hours=2),
                ),
                Correlation("m1", "a"),
            )
        ]
    )
    app.record_batch(delivered)
    assert app.sweep(now=T0 + timedelta(hours=49))["checked"] == 1
    assert responses(app, "m1") == {"a": "delivered", "b": "unknown_response", "c": "stopped_manually"}

    # An expired mailing stops its planned recipients.
    app.create_mailing({"id": "m2", "name": "M2", "category": "bulk", "provider": "unione", "expires_at": T0})
    app.add_audience("m2", [{"contact_id": "z", "email": "z@example.com"}])
    assert app.sweep(now=T0 + timedelta(minutes=1))["expired"] == 1
    assert responses(app, "m2") == {"z": "stopped_expired"}


def test_a_batch_read_before_another_follower_moved_on_is_refused(app: ResponsesApp) -> None:
    """Two followers on one database never apply the same events twice."""
    import pytest

    from projections.views import StaleBatch

    app.create_mailing({"id": "m", "name": "M", "category": "bulk", "provider": "unione"})
    app.add_audience("m", [{"contact_id": "a", "email": "a@example.com"}])
    app.dispatch("m", now=T0)
    app.wait_for_views()
    g, position = app.generation(), app.views_position()
    assert position > 0
    with pytest.raises(StaleBatch), app.views.batch(g, 0, position) as store:  # a slower follower that read from the start
        store.put_contact("intruder", ContactState())
    assert app.views_position() == position
    assert app.views.fetch(f"SELECT contact_id FROM {app.views.t(g, 'contacts')} WHERE contact_id = 'intruder'") == []


def test_a_poison_event_is_set_aside_and_the_views_go_on(app: ResponsesApp, monkeypatch) -> None:
    """An event the views cannot hold must not stop every later event (nor lose it: it is quarantined)."""
    from projections.projector import Projector

    app.create_mailing({"id": "m", "name": "M", "category": "bulk", "provider": "sendgrid"})
    app.add_audience("m", [{"contact_id": "a", "email": "a@example.com"}, {"contact_id": "b", "email": "b@example.com"}])
    app.dispatch("m", now=T0)
    app.wait_for_views()

    real = Projector._signal_recorded

    def choke(self, seq, oid, data):  # the views cannot store this one (think: a value the database refuses)
        if data["signal"]["key"] == "poison":
            raise ValueError("value too large for the view")
        return real(self, seq, oid, data)

    monkeypatch.setattr(Projector, "_signal_recorded", choke)

    def delivered(contact: str, key: str) -> ProviderEvent:
        at = T0 + timedelta(minutes=5)
        return ProviderEvent(
            Signal(key=key, source="sendgrid", fields={"event": "delivered"}, received_at=at, occurred_at=at),
            Correlation("m", contact),
        )

    app.record_batch(ParsedBatch(events=[delivered("a", "poison"), delivered("b", "fine")]))
    app.wait_for_views()
    assert responses(app, "m") == {"a": "sent_to_provider", "b": "delivered"}
    assert app.views_position() == app.journal_position()
    quarantined = Queries(app).side("quarantine")["items"]
    assert [q["source"] for q in quarantined] == ["projection"]
    assert "value too large for the view" in quarantined[0]["error"] and '"poison"' in quarantined[0]["raw"]
    # The journal still holds the event: once the views can take it, a rebuild folds it in.
    monkeypatch.setattr(Projector, "_signal_recorded", real)
    rebuild(app, app.active_rules())
    assert responses(app, "m") == {"a": "delivered", "b": "delivered"}


def test_long_tracking_urls_are_counted_in_the_click_map(app: ResponsesApp) -> None:
    url = "https://shop.example.com/track?" + "x" * 6000  # longer than an index entry may be on PostgreSQL
    app.create_mailing({"id": "m", "name": "M", "category": "bulk", "provider": "sendgrid"})
    app.add_audience("m", [{"contact_id": "a", "email": "a@example.com"}])
    app.dispatch("m", now=T0)
    at = T0 + timedelta(minutes=5)
    click = ProviderEvent(
        Signal(key="k", source="sendgrid", fields={"event": "click"}, received_at=at, occurred_at=at, url=url),
        Correlation("m", "a"),
    )
    app.record_batch(ParsedBatch(events=[click]))
    app.wait_for_views()
    assert Queries(app).links("m")["links"] == [{"url": url, "clicks": 1, "unique_clicks": 1}]
    assert Queries(app).side("quarantine")["items"] == []


def test_timeline_counts_first_opens_and_clicks_per_hour_from_the_first_sending(app: ResponsesApp) -> None:
    """A sender that dispatches itself reports sent_to_provider; the chart starts at its first sending."""
    from domain.signals import system_signal

    app.create_mailing({"id": "m", "name": "M", "category": "trigger", "provider": "sendgrid"})
    app.add_audience("m", [{"contact_id": c, "email": f"{c}@example.com"} for c in ("a", "b")])

    def event(contact: str, kind: str, minutes: int, provider_event: str | None = None) -> ProviderEvent:
        at = T0 + timedelta(minutes=minutes)
        if provider_event is None:
            return ProviderEvent(system_signal(kind, key=f"{contact}{kind}", at=at), Correlation("m", contact))
        return ProviderEvent(
            Signal(
                key=f"{contact}{kind}{minutes}",
                source="sendgrid",
                fields={"event": provider_event},
                received_at=at,
                occurred_at=at,
                url="https://x.example/",
            ),
            Correlation("m", contact),
        )

    app.record_batch(
        ParsedBatch(
            events=[
                event("a", "sent_to_provider", 0),
                event("b", "sent_to_provider", 1),
                event("a", "opened", 30, "open"),
                event("a", "opened", 45, "open"),  # only the first open counts in the chart
                event("b", "opened", 70, "open"),
                event("b", "clicked", 130, "click"),
            ]
        )
    )
    app.wait_for_views()
    timeline = Queries(app).timeline("m", hours=3)
    assert timeline["start"] == T0.isoformat()
    assert [(b["hour"], b["first_opens"], b["first_clicks"]) for b in timeline["buckets"]] == [(0, 1, 0), (1, 1, 0), (2, 0, 1)]
