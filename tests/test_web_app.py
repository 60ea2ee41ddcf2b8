"""The dashboard's frame: every page under one navigation and one strict policy, its assets
bundled, and a 404 page for a path no page has (machines' paths keep their answers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.api import create_app
from conveyor.config import load_config
from conveyor.web.render import NAV, age


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    config = tmp_path / "conveyor.toml"
    config.write_text('datadir = "data"\nbaseurl = "http://trunk.example.org/repos"\n')
    return TestClient(create_app(load_config(config)))


def test_every_page_has_the_navigation_and_a_strict_policy(client: TestClient) -> None:
    for item in NAV:
        if item.key == "repos":
            continue  # the published tree, not a page of the dashboard
        answer = client.get(item.href)
        assert answer.status_code == 200, item.href
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        for other in NAV:
            assert f'href="{other.href}"' in answer.text
        assert 'aria-current="page"' in answer.text


def test_the_assets_are_served_from_the_package(client: TestClient) -> None:
    assert "table-wrap" in client.get("/static/web/dashboard.css").text
    assert "data-filter" in client.get("/static/web/dashboard.js").text


def test_a_path_no_page_has_is_a_page_and_a_machines_path_keeps_its_answer(
    client: TestClient,
) -> None:
    answer = client.get("/no/such/<page>")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "No page at /no/such/&lt;page&gt;." in answer.text  # escaped
    assert 'href="/ftbfs"' in answer.text
    for path in ("/api/no-such-call", "/repos/no/such/file"):
        answer = client.get(path)
        assert answer.status_code == 404 and answer.json() == {"detail": "Not Found"}


@pytest.mark.parametrize(
    ("seconds", "shown"), [(5, "5 s"), (120, "2 min"), (7_200, "2 h"), (259_200, "3 d")]
)
def test_ages_read_as_a_person_says_them(seconds: int, shown: str) -> None:
    assert age(1_000_000 - seconds, now=1_000_000) == shown
    assert age(None) == "-"
