"""The dashboard's HTTP client and number formatting, without a server (an httpx mock
transport answers as the API does)."""

from __future__ import annotations

import json

import httpx
import pytest

from service.dashboard import fmt
from service.dashboard.client import ApiClient, ApiError


def _client(handler) -> ApiClient:
    return ApiClient("http://api.test/", "tok-1 ", transport=httpx.MockTransport(handler))


def test_requests_carry_the_token_and_drop_unset_filters():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"total": 0, "offset": 0, "limit": 5, "items": []})

    c = _client(handler)
    c.skus(3, category=["A", "B"], tier=[], status=None, q="", min_risk=0.5, limit=5)
    (r,) = seen
    assert r.headers["authorization"] == "Bearer tok-1"
    assert r.url.path == "/api/v1/plans/3/skus"
    assert r.url.params.get_list("category") == ["A", "B"]
    assert set(r.url.params.keys()) == {"category", "min_risk", "limit"}


def test_a_sku_is_one_path_segment():
    paths = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        return httpx.Response(200, json={})

    _client(handler).sku(1, "A/B 7%")
    assert paths == ["/api/v1/plans/1/skus/A%2FB%207%25"]


def test_a_refused_override_names_the_rule_and_week():
    detail = [{"loc": ["body", "discount", 2], "msg": "override refused for SKU 'S1': deeper "
               "first", "type": "rule_violation", "rule": "markdown_only", "week": 3,
               "sku": "S1"}]  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body == {"action": "override", "reason": "why", "sku": "S1",
                        "discount": [0.5, 0.3], "coupon": [0.0, 0.0]}  # fmt: skip
        return httpx.Response(422, json={"detail": detail})

    with pytest.raises(ApiError) as caught:
        _client(handler).review(1, action="override", reason="why", sku="S1",
                                discount=[0.5, 0.3], coupon=[0, 0])  # fmt: skip
    err = caught.value
    assert err.status == 422
    (v,) = err.violations
    assert (v.rule, v.week, v.sku) == ("markdown_only", 3, "S1")
    assert err.message == "discount.2: override refused for SKU 'S1': deeper first"


def test_other_errors_and_no_answer():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"detail": "category 'X' is not one of yours"})

    with pytest.raises(ApiError, match=r"not one of yours \(HTTP 403\)") as caught:
        _client(handler).overview(1)
    assert caught.value.violations == []

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(ApiError, match="could not be reached") as caught:
        _client(down).me()
    assert caught.value.status == 0


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [
        (1234.5, "USD", "1,234 USD"),  # big amounts lose their cents
        (-1234.5, "USD", "-1,234 USD"),
        (13.234, "EUR", "13.23 EUR"),
        (0.0, None, "0.00"),
        (None, "USD", fmt.MISSING),
        (float("nan"), "USD", fmt.MISSING),
    ],
)
def test_money(value, currency, text):
    assert fmt.money(value, currency) == text


def test_numbers_people_read():
    assert fmt.money_ci(2762.1, 2723.41, 2800.79, "USD") == "2,762 USD [2,723, 2,801]"
    assert fmt.money_ci(13.23, 9.39, 17.08, "USD") == "13.23 USD [9.39, 17.08]"
    assert fmt.pct(0.305) == "30 %" and fmt.pct(0.2764, 1) == "27.6 %"
    assert fmt.sku_label("S1", "SOFT DRINKS") == "S1 · SOFT DRINKS"
    assert fmt.sku_label("S1", None) == fmt.sku_label("S1", "S1") == "S1"
    assert fmt.week_label(2, ["2026-01-05", "2026-01-12"]) == "week 2 (2026-01-12)"
    assert fmt.week_label(3, ["2026-01-05", "2026-01-12"]) == "week 3"
    assert fmt.week_label(1, None) == "week 1"
    assert fmt.drivers("a = 1 (raises risk); b = 0 (lowers risk)") == [
        "a = 1 (raises risk)",
        "b = 0 (lowers risk)",
    ]
    assert fmt.drivers(None) == []
