"""Shared fixtures: real data dirs, real DuckDB files, real HTTP through Litestar."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from lookup.api.app import create_app
from lookup.config import Settings
from lookup.ingest.pipeline import IngestReport, ingest
from lookup.keys import KeyStore, parse_roles

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "fixtures" / "demo"


def problem_of(response: Any, status: int, slug: str) -> dict[str, Any]:
    """Assert the canonical problem details shape and return the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return body


@pytest.fixture(scope="session")
def manifest() -> dict[str, Any]:
    """Ground truth the fixture generator wrote beside the demo files."""
    data: dict[str, Any] = json.loads((DEMO / "manifest.json").read_text())
    return data


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a private data dir, with fast polling for tests."""
    values: dict[str, Any] = {
        "data_dir": str(data_dir),
        "snapshot_poll_seconds": 0.05,
        "key_refresh_seconds": 0.05,
        # Rate limits have their own tests; elsewhere they would only slow tests down.
        "plan_key": "100000/second",
        "plan_account": "100000/second",
        "plan_search": "100000000/second",
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fresh, empty data dir."""
    return make_settings(tmp_path / "var")


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, IngestReport]:
    """The committed demo files ingested once into a session data dir."""
    root = tmp_path_factory.mktemp("demo")
    inbox = root / "inbox"
    shutil.copytree(DEMO, inbox)
    # The privacy sweeps walk every number in order: exactly what the abuse
    # detectors exist to stop. They check the answers, so detection is off.
    settings = make_settings(root / "var", abuse_detection=False)
    return settings, ingest([inbox], settings)


@pytest.fixture(scope="session")
def demo_settings(demo_data: tuple[Settings, IngestReport]) -> Settings:
    """Settings of the data dir holding the ingested demo."""
    return demo_data[0]


def new_key(settings: Settings, roles: str = "lookup", org: str = "acme", **kw: Any) -> str:
    """Create a key in a data dir's key store and return the token."""
    store = KeyStore(settings.keys_path)
    try:
        _, token = store.create(org, parse_roles(roles), **kw)
    finally:
        store.close()
    return token


@pytest.fixture(scope="session")
def demo_client(demo_settings: Settings) -> Iterator[TestClient[Any]]:
    """An HTTP client on the demo data, authenticated with a lookup key."""
    token = new_key(demo_settings, "lookup", org="demo-tests")
    with TestClient(app=create_app(demo_settings)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def uncounted(headers: Any) -> dict[str, str]:
    """An answer's header fields, but for what its tightest limit has left (`RateLimit`):
    one less each request, whatever it asked, and at a window's turn another limit's."""
    fields = dict(headers)
    assert re.fullmatch(r'"[a-z]+-\d+s";r=\d+', fields.pop("ratelimit"))
    return fields
