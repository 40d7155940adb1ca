"""The CSV export over real HTTP: a Content-Disposition whose filename goes out as
ISO-8859-1 bytes (with the RFC 6266 UTF-8 form beside it), and who may export what."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.demo.target_api import Session, error
from tracereplay.demo.accounts import sandbox_client_ids
from tracereplay.demo.target.routes.exports import export_filename


def export(http: httpx.Client, session: Session, client_id: str, **params: str) -> httpx.Response:
    return http.get(f"/api/v1/clients/{client_id}/export", params=params, headers=session.headers)


def test_the_filename_header_is_latin_1_bytes(http: httpx.Client, client_user: Session) -> None:
    response = export(http, client_user, client_user.user["client_id"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    raw = dict(response.headers.raw)[b"content-disposition"]
    assert raw.startswith(b'attachment; filename="Ausf\xfchrungsbericht-')  # ü as one byte
    assert b"\xc3\xbc" not in raw  # not UTF-8
    assert b"filename*=UTF-8''Ausf%C3%BChrungsbericht-" in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def test_the_csv_holds_the_clients_recent_executions(
    http: httpx.Client, client_user: Session
) -> None:
    own = client_user.user["client_id"]
    rows = list(csv.DictReader(io.StringIO(export(http, client_user, own, days="2").text)))
    assert rows, "a configured seeded client has executions in the last two days"
    since = (datetime.now(UTC) - timedelta(days=2, minutes=1)).isoformat()
    assert all(r["started_at"] >= since[:19] for r in rows)
    errors = csv.DictReader(io.StringIO(export(http, client_user, own, status="error").text))
    assert {r["status"] for r in errors} <= {"error"}


def test_export_checks_access_and_bounds(
    http: httpx.Client, client_user: Session, admin: Session
) -> None:
    other = next(c for c in sandbox_client_ids(7) if c != client_user.user["client_id"])
    error(export(http, client_user, other), 403)
    assert export(http, admin, other).status_code == 200
    error(export(http, admin, other, days="31"), 422)
    error(export(http, admin, "00000000-0000-4000-8000-000000000000"), 404)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Brown, Tate and Sons", "Ausführungsbericht-Brown-Tate-and-Sons-2026-03-02.csv"),
        ('Müller "Bau" GmbH', "Ausführungsbericht-Müller-Bau-GmbH-2026-03-02.csv"),
        ("Łódź/Kraków", "Ausführungsbericht-_ódź-Kraków-2026-03-02.csv"),
    ],
)
def test_export_filenames_stay_within_latin_1(name: str, expected: str) -> None:
    filename = export_filename(name, "2026-03-02")
    assert filename == expected.replace("ź", "_")
    filename.encode("latin-1")  # what Starlette encodes header values as
