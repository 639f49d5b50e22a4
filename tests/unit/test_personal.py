"""Which fields are personal (CONTRACT §12): split off whole, put back exactly; the clear part holds no
address; a click URL keeps its identity with the address replaced."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.personal import EMAIL_PLACEHOLDER, merge_personal, person_patterns, redact_text, redact_url, split_personal

ADDRESS = "Anna.K@Mail.Example.com"
text = st.text(max_size=20)
records = st.fixed_dictionaries(
    {"key": text, "source": st.sampled_from(["unione", "sendgrid", "system"]), "fields": st.dictionaries(text, text, max_size=2)},
    optional={
        "raw": st.dictionaries(text, text, max_size=3),
        "detail": text,
        "url": st.sampled_from(
            ["https://shop.example.com/a", f"https://x.example/u?e={ADDRESS}", "https://x/?to=anna.k%40mail.example.com"]
        ),
        "user_agent": text,
        "reason": text,
    },
)
states = st.one_of(
    st.builds(lambda r: {"signal": r, "subject": "contact:c"}, records),
    st.builds(lambda r, e: {"signal": r, "correlation": {"mailing_id": None, "email": e}, "subject": "address:h"}, records, text),
    st.fixed_dictionaries({"mailing_id": text, "contact_id": text, "name": st.none() | text, "email": st.none() | text}),
    st.builds(lambda e: {"command": {"op": "patch", "contact_id": "c", "email": e}}, text),
    # a test send's kept payload: the address beside the signal (the fast path for signals must not skip it)
    st.builds(lambda r, e: {"mailing_id": "m", "contact_id": "c", "email": e, "signal": r}, records, text),
)


def put_back(clear: dict[str, Any], personal: dict[str, Any]) -> dict[str, Any]:
    state = merge_personal(copy.deepcopy(clear), personal)
    signal = state.get("signal")
    if isinstance(signal, dict) and "original_url" in signal:
        signal["url"] = signal.pop("original_url")
    return state


@given(states)
def test_split_and_merge_give_back_the_state_and_the_clear_part_keeps_no_personal_field(state: dict[str, Any]) -> None:
    before = copy.deepcopy(state)
    clear, personal = split_personal(state)
    assert state == before  # the state itself is left as it was
    assert put_back(clear, personal) == before
    signal = clear.get("signal") or {}
    if signal.get("source") != "system":
        assert "raw" not in signal and "detail" not in signal
    assert "@" not in str(signal.get("url", "")) and "%40" not in str(signal.get("url", "")).lower()
    assert clear.get("email") is None and clear.get("name") is None


def test_a_click_url_keeps_its_identity_with_the_address_replaced() -> None:
    assert redact_url(f"https://x.example/u?e={ADDRESS}&utm=1") == f"https://x.example/u?e={EMAIL_PLACEHOLDER}&utm=1"
    assert redact_url("https://x.example/u?e=anna.k%40mail.example.com") == f"https://x.example/u?e={EMAIL_PLACEHOLDER}"
    assert redact_url("https://shop.example.com/sale") == "https://shop.example.com/sale"


def test_redaction_finds_every_form_and_names_only_beside_an_address() -> None:
    addresses, names = person_patterns([ADDRESS]), person_patterns(["Анна Каренина"])
    assert addresses is not None
    body = '{"to": "anna.k%40mail.example.com", "n": "\\u0410\\u043d\\u043d\\u0430 \\u041a\\u0430\\u0440\\u0435\\u043d\\u0438\\u043d\\u0430"}'
    assert redact_text(body, addresses, names) == '{"to": "[erased]", "n": "[erased]"}'
    assert redact_text("Анна Каренина wrote", addresses, names) == "Анна Каренина wrote"  # no address: a name alone stays
