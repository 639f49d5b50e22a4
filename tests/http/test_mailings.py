"""Mailings over HTTP: create (201/200/409/422), list, audience, dispatch, stop, analytics, 404s."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

import application.service as service_module
from tests.helpers.http import SPRING, SPRING_AUDIENCE, error_of, fixture_bytes, sign_unione, sqlite_only

MAILING = {"id": "m-1", "name": "Weekly digest", "category": "bulk", "email_type": "news", "provider": "unione"}


def seed_events(client: FlaskClient) -> dict[str, int]:
    r = client.post(
        "/v1/webhooks/unione", data=sign_unione(fixture_bytes("unione/batch-mixed.json")), content_type="application/json"
    )
    assert r.status_code == 200, r.json
    return r.json


# ---- create -----------------------------------------------------------------------------------


def test_create_answers_201_with_the_mailing(api: FlaskClient) -> None:
    r = api.post("/v1/mailings", json={**MAILING, "expires_at": "2026-04-01T00:00:00+03:00", "prevent_duplicates": True})
    assert r.status_code == 201
    assert r.json == {
        "id": "m-1",
        "name": "Weekly digest",
        "category": "bulk",
        "email_type": "news",
        "provider": "unione",
        "expires_at": "2026-03-31T21:00:00+00:00",
        "prevent_duplicates": True,
        "started_at": None,
        "summary": {"audience": 0, "sent": 0, "delivered": 0, "responses": {}},
    }


def test_identical_repost_is_200_and_a_different_one_409(api: FlaskClient) -> None:
    assert api.post("/v1/mailings", json=MAILING).status_code == 201
    again = api.post("/v1/mailings", json=MAILING)
    assert again.status_code == 200
    assert again.json["id"] == "m-1"
    r = api.post("/v1/mailings", json={**MAILING, "name": "Another name"})
    assert r.status_code == 409
    assert error_of(r)["code"] == "conflict"


def test_naive_expiry_is_utc(api: FlaskClient) -> None:
    r = api.post("/v1/mailings", json={**MAILING, "expires_at": "2026-04-01T10:00:00"})
    assert r.json["expires_at"] == "2026-04-01T10:00:00+00:00"


@sqlite_only
@pytest.mark.parametrize(
    "body, field",
    [
        ({k: v for k, v in MAILING.items() if k != "name"}, "name"),
        ({**MAILING, "category": "weekly"}, "category"),
        ({**MAILING, "provider": "mailchimp"}, "provider"),
        ({**MAILING, "id": ""}, "id"),
        ({**MAILING, "id": 17}, "id"),
        ({**MAILING, "id": "spring/2026"}, "id"),  # could never be reached at /v1/mailings/{id}
        ({**MAILING, "expires_at": "next tuesday"}, "expires_at"),
        ({**MAILING, "prevent_duplicates": "maybe"}, "prevent_duplicates"),
        ({**MAILING, "colour": "red"}, "colour"),
    ],
)
def test_invalid_fields_are_422_with_details(api: FlaskClient, body: dict[str, Any], field: str) -> None:
    r = api.post("/v1/mailings", json=body)
    assert r.status_code == 422
    error = error_of(r)
    assert error["code"] == "invalid"
    assert field in error["details"]


@sqlite_only
@pytest.mark.parametrize("data", [b"{", b'{"id": "m-1",}', b"\xff\xfe", b"nul"])
def test_malformed_json_is_400(api: FlaskClient, data: bytes) -> None:
    r = api.post("/v1/mailings", data=data, content_type="application/json")
    assert r.status_code == 400
    assert error_of(r)["code"] == "malformed_json"


@sqlite_only
@pytest.mark.parametrize("data", [b"[]", b"null", b"17", b'"text"'])
def test_json_that_is_not_an_object_is_422(api: FlaskClient, data: bytes) -> None:
    r = api.post("/v1/mailings", data=data, content_type="application/json")
    assert r.status_code == 422
    assert error_of(r)["code"] == "invalid"


def test_list_and_get(api: FlaskClient, spring: dict[str, Any]) -> None:
    api.post("/v1/mailings", json=MAILING)
    items = api.get("/v1/mailings").json["items"]
    assert [m["id"] for m in items] == [SPRING, "m-1"]
    one = api.get(f"/v1/mailings/{SPRING}").json
    assert one == items[0]
    assert one["started_at"] is not None
    assert one["summary"] == {"audience": 6, "sent": 6, "delivered": 0, "responses": {"sent_to_provider": 6}}


# ---- 404 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/v1/mailings/nope"),
        ("get", "/v1/mailings/nope/audience"),
        ("post", "/v1/mailings/nope/audience"),
        ("post", "/v1/mailings/nope/dispatch"),
        ("post", "/v1/mailings/nope/stop"),
        ("get", "/v1/mailings/nope/summary"),
        ("get", "/v1/mailings/nope/timeline"),
        ("get", "/v1/mailings/nope/links"),
        ("get", "/v1/mailings/nope/test-sends"),
        ("get", "/v1/mailings/nope/waves/1/send"),
    ],
)
def test_unknown_mailing_is_404(api: FlaskClient, method: str, path: str) -> None:
    kwargs = {"json": {"recipients": [{"contact_id": "c"}]}} if method == "post" and path.endswith("audience") else {}
    r = getattr(api, method)(path, **kwargs)
    assert r.status_code == 404
    error = error_of(r)
    assert error["code"] == "not_found"
    assert "nope" in error["message"]


# ---- audience ---------------------------------------------------------------------------------


def test_adding_the_audience_is_idempotent(api: FlaskClient) -> None:
    api.post("/v1/mailings", json=MAILING)
    r = api.post("/v1/mailings/m-1/audience", json={"recipients": SPRING_AUDIENCE[:4]})
    assert r.json == {"added": 4, "already_present": 0}
    r = api.post("/v1/mailings/m-1/audience", json={"recipients": SPRING_AUDIENCE[2:]})
    assert r.json == {"added": 2, "already_present": 2}
    items = api.get("/v1/mailings/m-1/audience").json["items"]
    assert [i["contact_id"] for i in items] == [a["contact_id"] for a in SPRING_AUDIENCE]
    assert items[0] == {
        "contact_id": "c-1001",
        "name": "Anna",
        "email": "anna@example.com",
        "response": {"code": "planned", "name": "Planned", "reason": None},
        "opens": 0,
        "clicks": 0,
        "updated_at": items[0]["updated_at"],
        "erased_at": None,
    }


@sqlite_only
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"recipients": "c-1"},
        {"recipients": [{}]},
        {"recipients": [{"contact_id": ""}]},
        {"recipients": [{"contact_id": "c", "age": 3}]},
        {"recipients": [{"contact_id": "crm/1"}]},
    ],
)
def test_invalid_audience_is_422(api: FlaskClient, body: dict[str, Any]) -> None:
    api.post("/v1/mailings", json=MAILING)
    r = api.post("/v1/mailings/m-1/audience", json=body)
    assert r.status_code == 422
    assert error_of(r)["code"] == "invalid"


def test_audience_after_the_seed_batch(api: FlaskClient, client: FlaskClient, spring: dict[str, Any]) -> None:
    seed_events(client)
    items = {i["contact_id"]: i for i in api.get(f"/v1/mailings/{SPRING}/audience").json["items"]}
    assert {cid: i["response"]["code"] for cid, i in items.items()} == {
        "c-1001": "clicked",
        "c-1002": "soft_bounce",
        "c-1003": "hard_bounce",
        "c-1004": "unsubscribed",
        "c-1005": "spam_complaint",
        "c-1006": "sent_to_provider",
    }
    assert items["c-1001"]["opens"] == 1 and items["c-1001"]["clicks"] == 1
    assert items["c-1003"]["response"] == {"code": "hard_bounce", "name": "Hard bounce", "reason": "unknown_recipient"}
    assert items["c-1002"]["response"]["reason"] == "will_retry"


def test_audience_filter_and_russian_names(api: FlaskClient, client: FlaskClient, spring: dict[str, Any]) -> None:
    seed_events(client)
    r = api.get(f"/v1/mailings/{SPRING}/audience?response=spam_complaint&lang=ru")
    assert [(i["contact_id"], i["response"]["name"]) for i in r.json["items"]] == [("c-1005", "Отправлено в спам")]
    assert "Отправлено в спам".encode() in r.data  # readable, not \u-escaped
    assert api.get(f"/v1/mailings/{SPRING}/audience?response=opened").json == {"items": [], "next": None}


def test_audience_pages_with_an_opaque_cursor(api: FlaskClient, spring: dict[str, Any]) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "limit=4" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(f"/v1/mailings/{SPRING}/audience?{query}").json
        seen += [i["contact_id"] for i in page["items"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
        assert cursor.isascii() and not cursor.isdigit()
    assert pages == 2
    assert seen == [a["contact_id"] for a in SPRING_AUDIENCE]


@sqlite_only
@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=1001", "limit"),
        ("limit=0", "limit"),
        ("limit=-5", "limit"),
        ("limit=many", "limit"),
        ("response=sent", "response"),
        ("response=", "response"),
        ("cursor=not-ours", "cursor"),
        ("cursor=%FF%FE", "cursor"),
        ("lang=de", "lang"),
    ],
)
def test_invalid_audience_query_is_422(api: FlaskClient, spring: dict[str, Any], query: str, field: str) -> None:
    r = api.get(f"/v1/mailings/{SPRING}/audience?{query}")
    assert r.status_code == 422, r.json
    error = error_of(r)
    assert error["code"] == "invalid"
    assert field in error["details"]


def test_limit_1000_is_allowed(api: FlaskClient, spring: dict[str, Any]) -> None:
    assert len(api.get(f"/v1/mailings/{SPRING}/audience?limit=1000").json["items"]) == 6


# ---- dispatch, stop ---------------------------------------------------------------------------


def test_dispatch_answers_the_send_list_and_outcomes(api: FlaskClient) -> None:
    api.post("/v1/mailings", json={**MAILING, "prevent_duplicates": True})
    api.patch("/v1/contacts/c-3", json={"do_not_use_email": True})
    audience = [
        {"contact_id": "c-1", "email": "a@example.com"},
        {"contact_id": "c-2", "email": "A@example.com"},
        {"contact_id": "c-3", "email": "c@example.com"},
        {"contact_id": "c-4"},
    ]
    api.post("/v1/mailings/m-1/audience", json={"recipients": audience})
    r = api.post("/v1/mailings/m-1/dispatch")
    assert r.status_code == 200
    assert r.json == {
        "send": [{"contact_id": "c-1", "email": "a@example.com", "metadata": {"mailing_id": "m-1", "contact_id": "c-1"}}],
        "outcomes": {
            "sent_to_provider": 1,
            "canceled_duplicate_email": 1,
            "canceled_unsubscribed_all": 1,
            "canceled_no_email": 1,
        },
        "wave": 1,
        "remaining": 0,  # the audience fitted in one call
    }
    # nothing planned any more: a second wave decides nobody
    assert api.post("/v1/mailings/m-1/dispatch").json == {"send": [], "outcomes": {}, "wave": 2, "remaining": 0}


def test_dispatch_with_a_limit_then_the_waves_send_lists_page(api: FlaskClient) -> None:
    api.post("/v1/mailings", json=MAILING)
    api.post("/v1/mailings/m-1/audience", json={"recipients": SPRING_AUDIENCE})
    first = api.post("/v1/mailings/m-1/dispatch?limit=4").json
    assert (first["wave"], first["remaining"], len(first["send"])) == (1, 2, 4)
    second = api.post("/v1/mailings/m-1/dispatch?limit=4").json
    assert (second["wave"], second["remaining"], len(second["send"])) == (2, 0, 2)
    page = api.get("/v1/mailings/m-1/waves/1/send?limit=3").json
    assert page["items"] == first["send"][:3] and page["next"]
    rest = api.get(f"/v1/mailings/m-1/waves/1/send?limit=3&cursor={page['next']}").json
    assert rest == {"items": first["send"][3:], "next": None}
    assert api.get("/v1/mailings/m-1/waves/2/send").json == {"items": second["send"], "next": None}
    for wave in ("3", "0", "-1", "x"):
        r = api.get(f"/v1/mailings/m-1/waves/{wave}/send")
        assert r.status_code == 404 and error_of(r)["code"] == "not_found", wave


@sqlite_only
@pytest.mark.parametrize("limit", ["0", "-1", "x", "1000001"])
def test_invalid_dispatch_limit_is_422(api: FlaskClient, limit: str) -> None:
    api.post("/v1/mailings", json=MAILING)
    r = api.post(f"/v1/mailings/m-1/dispatch?limit={limit}")
    assert r.status_code == 422
    assert "limit" in error_of(r)["details"]


def test_a_dispatch_failing_midway_answers_the_error_shape_and_its_wave_is_recovered(
    api: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 7, failure 9: the answer of a dispatch that fails midway is lost; its decisions are not."""
    monkeypatch.setattr(service_module, "DISPATCH_CHUNK", 2)
    api.post("/v1/mailings", json=MAILING)
    api.post("/v1/mailings/m-1/audience", json={"recipients": SPRING_AUDIENCE})
    real, calls = service_module.dispatch_outcome, [0]

    def dies_at_the_fifth(*args: Any) -> str:
        calls[0] += 1
        if calls[0] == 5:
            raise RuntimeError("worker lost")
        return real(*args)

    monkeypatch.setattr(service_module, "dispatch_outcome", dies_at_the_fifth)
    r = api.post("/v1/mailings/m-1/dispatch")
    assert r.status_code == 500 and r.mimetype == "application/json"
    assert error_of(r)["code"] == "internal"
    monkeypatch.setattr(service_module, "dispatch_outcome", real)
    recovered = api.get("/v1/mailings/m-1/waves/1/send").json["items"]
    assert [i["contact_id"] for i in recovered] == ["c-1001", "c-1002", "c-1003", "c-1004"]  # two chunks journaled
    rest = api.post("/v1/mailings/m-1/dispatch").json
    assert (rest["wave"], rest["remaining"]) == (2, 0)
    sent = [i["contact_id"] for i in recovered + rest["send"]]
    assert sorted(sent) == [c["contact_id"] for c in SPRING_AUDIENCE]  # everyone exactly once


def test_stop_cancels_planned_recipients(api: FlaskClient) -> None:
    api.post("/v1/mailings", json=MAILING)
    api.post("/v1/mailings/m-1/audience", json={"recipients": SPRING_AUDIENCE[:3]})
    assert api.post("/v1/mailings/m-1/stop").json == {"stopped": 3}
    assert api.post("/v1/mailings/m-1/stop").json == {"stopped": 0}
    r = api.get("/v1/mailings/m-1/audience?response=stopped_manually&lang=ru")
    assert [i["response"]["name"] for i in r.json["items"]] == ["Остановлен (вручную)"] * 3


# ---- analytics --------------------------------------------------------------------------------


def test_summary_after_the_seed_batch(api: FlaskClient, client: FlaskClient, spring: dict[str, Any]) -> None:
    seed_events(client)
    s = api.get(f"/v1/mailings/{SPRING}/summary").json
    assert s["audience"] == 6 and s["sent"] == 6
    assert s["delivered"] == 3  # clicked, unsubscribed, spam complaint
    assert s["responses"] == {
        "clicked": 1,
        "hard_bounce": 1,
        "sent_to_provider": 1,
        "soft_bounce": 1,
        "spam_complaint": 1,
        "unsubscribed": 1,
    }
    assert (s["unique_opens"], s["total_opens"], s["unique_clicks"], s["total_clicks"]) == (3, 1, 1, 1)
    assert s["rates"]["delivery"] == 0.5
    assert s["rates"]["bounce"] == round(2 / 6, 4)
    assert s["rates"]["click_to_open"] == round(1 / 3, 4)
    assert s["errors"] == {
        "not_sent": {},
        "not_delivered": {
            "hard_bounce": {"count": 1, "reasons": {"unknown_recipient": 1}},
            "soft_bounce": {"count": 1, "reasons": {"will_retry": 1}},
        },
    }


def test_summary_of_an_empty_mailing_has_null_rates(api: FlaskClient) -> None:
    api.post("/v1/mailings", json=MAILING)
    s = api.get("/v1/mailings/m-1/summary").json
    assert s["audience"] == 0
    assert set(s["rates"].values()) == {None}
    assert s["errors"] == {"not_sent": {}, "not_delivered": {}}


def test_timeline_buckets_first_opens_and_clicks(api: FlaskClient, client: FlaskClient, spring: dict[str, Any]) -> None:
    seed_events(client)
    t = api.get(f"/v1/mailings/{SPRING}/timeline").json
    assert t["start"] == api.get(f"/v1/mailings/{SPRING}").json["started_at"]
    assert len(t["buckets"]) == 48
    assert [b["hour"] for b in t["buckets"][:3]] == [0, 1, 2]
    assert set(t["buckets"][0]) == {"hour", "at", "first_opens", "first_clicks"}
    assert len(api.get(f"/v1/mailings/{SPRING}/timeline?hours=6").json["buckets"]) == 6


def test_timeline_before_dispatch_has_no_start(api: FlaskClient) -> None:
    api.post("/v1/mailings", json=MAILING)
    assert api.get("/v1/mailings/m-1/timeline").json == {"start": None, "buckets": []}


@sqlite_only
@pytest.mark.parametrize("hours", ["0", "-1", "abc", "100000"])
def test_invalid_hours_are_422(api: FlaskClient, spring: dict[str, Any], hours: str) -> None:
    r = api.get(f"/v1/mailings/{SPRING}/timeline?hours={hours}")
    assert r.status_code == 422
    assert "hours" in error_of(r)["details"]


def test_links(api: FlaskClient, client: FlaskClient, spring: dict[str, Any]) -> None:
    assert api.get(f"/v1/mailings/{SPRING}/links").json == {"links": [], "next": None}
    seed_events(client)
    assert api.get(f"/v1/mailings/{SPRING}/links").json == {
        "links": [{"url": "https://shop.example.com/sale?utm_campaign=spring", "clicks": 1, "unique_clicks": 1}],
        "next": None,
    }
