"""Document size and count limits, each checked at both readings of its boundary.

Sources: alpaca, the accounts docs (seed 003, DocumentUpload: "Each encoded content size is
limited to 32MB") and the alpaca-py limit of 10 documents per upload (reference sheet
sections 3 and 9, Upload); buildmarkets, the Compliance & KYC page (seed 004, "File size
and format limits": 10MB per upload, decoded; "Common errors": 400 FILE_TOO_LARGE). The
boundary values, reject statuses and error code come from the dialect's profile.yaml
(``limits``), so "32 MB" is read as both 32,000,000 and 33,554,432 characters and "10MB" as
both 10,000,000 and 10,485,760 bytes. The bodies are 10 to 34 MB: each test builds its one
body once with datagen and sends the bytes as they are.
"""

from __future__ import annotations

import httpx
import pytest

from brokercert.catalog import Catalog, Profile
from brokercert.datagen import RunData, limit_upload_bytes
from brokercert.pytest_plugin import check, expect_4xx, expect_status, json_body
from brokercert.pytest_plugin import requirement_for as _rid

_JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def upload_path(
    _shared_client: httpx.Client, profile: Profile, run_data: RunData, dialect: str
) -> str:
    """Upload path of one account shared by the limit checks (any 2xx create will do here)."""
    op = profile.operation("create_account")
    response = _shared_client.request(op.method, op.path, json=run_data.create_body(dialect))
    body = response.json() if response.is_success else None
    assert isinstance(body, dict) and isinstance(body.get("id"), str), (
        f"precondition: creating a test account failed: HTTP {response.status_code} "
        f"{response.text[:300]}"
    )
    path = profile.operation("upload_documents").path
    return path.format(**{profile.id_param: body["id"]})


def _send(client: httpx.Client, profile: Profile, path: str, body: bytes) -> httpx.Response:
    return client.request(
        profile.operation("upload_documents").method, path, content=body, headers=_JSON
    )


@pytest.mark.requirement("ALP-DOC-002", "BM-DOC-007")
def test_content_just_under_the_limit_is_accepted(
    client: httpx.Client, profile: Profile, catalog: Catalog, dialect: str, upload_path: str
) -> None:
    """A document at the limit's accept_at size is accepted (alpaca 31,999,996 base64 characters;
    buildmarkets 10,000,000 decoded bytes, with 204)."""
    rid = _rid(catalog, "ALP-DOC-002", "BM-DOC-007")
    limit = profile.limit("document_content")
    response = _send(client, profile, upload_path, limit_upload_bytes(dialect, limit, accept=True))
    if dialect == "buildmarkets":  # BM-DOC-007: "accepted with 204"
        expect_status(response, profile.operation("upload_documents").success, rid)
    else:  # ALP-DOC-002 says only "accepted"; the exact 204 is ALP-DOC-001's rule
        check(response.is_success, rid, "a 2xx status", f"HTTP {response.status_code}", response)


@pytest.mark.requirement("ALP-DOC-003", "BM-DOC-008")
def test_content_just_over_the_limit_is_refused(
    client: httpx.Client, profile: Profile, catalog: Catalog, dialect: str, upload_path: str
) -> None:
    """A document at the limit's reject_at size (alpaca 33,554,436 base64 characters, buildmarkets
    10,485,761 decoded bytes) is refused with a reject status (buildmarkets: 400 FILE_TOO_LARGE, or
    413)."""
    rid = _rid(catalog, "ALP-DOC-003", "BM-DOC-008")
    limit = profile.limit("document_content")
    response = _send(client, profile, upload_path, limit_upload_bytes(dialect, limit, accept=False))
    expect_status(response, limit.reject_status, rid)
    # A 413 may come from a body-size cap in front of the API, with no envelope of its own.
    if limit.error_code is not None and response.status_code != 413:
        node = json_body(response, rid)
        for key in profile.error_envelope.code_path.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        check(
            node == limit.error_code,
            rid,
            f"error code {limit.error_code} at `{profile.error_envelope.code_path}`",
            repr(node),
            response,
        )


@pytest.mark.requirement("ALP-DOC-001")
def test_upload_of_the_maximum_number_of_documents_is_accepted(
    client: httpx.Client, profile: Profile, run_data: RunData, upload_path: str
) -> None:
    """An upload of as many documents as the per-upload limit allows (10) answers 204 with an empty
    body."""
    limit = profile.limit("documents_per_upload")
    docs = [run_data.document("alpaca") for _ in range(limit.accept_at)]
    response = client.request(profile.operation("upload_documents").method, upload_path, json=docs)
    expect_status(response, profile.operation("upload_documents").success, "ALP-DOC-001")
    check(
        response.content == b"",
        "ALP-DOC-001",
        "an empty body",
        f"{len(response.content)} bytes: {response.text[:200]!r}",
        response,
    )


@pytest.mark.requirement("ALP-DOC-004")
def test_upload_of_more_documents_than_the_limit_is_refused(
    client: httpx.Client, profile: Profile, run_data: RunData, upload_path: str
) -> None:
    """An upload of more than 10 documents in one request is refused with a 4xx."""
    limit = profile.limit("documents_per_upload")
    docs = [run_data.document("alpaca") for _ in range(limit.reject_at)]
    response = client.request(profile.operation("upload_documents").method, upload_path, json=docs)
    expect_4xx(response, "ALP-DOC-004")
