"""Document upload rules: success answer, document types, mime types, content, unknown accounts.

Sources: alpaca, the accounts docs (seed 003: DocumentUpload, Document Type enum, Document
model) and reference sheet sections 3 and 9 (Upload); buildmarkets, the Compliance & KYC
page (seed 004: "Uploading Documents": request body, supported document_type values, file
size and format limits, common errors) and reference sheet section 10 (Upload). The size
limits are in test_document_limits.py.

Upload to a closed account: neither dialect's documents say how it is answered, so
accepting and refusing it are both conformant here. What they do fix, that ACCOUNT_CLOSED
is final, is checked after an upload by test_status.py::test_closed_account_stays_closed
(ALP-STATE-004, BM-STATE-002).
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import pytest

from brokercert.catalog import Catalog, Profile
from brokercert.datagen import RunData
from brokercert.pytest_plugin import check, expect_4xx, expect_status, json_body
from brokercert.pytest_plugin import requirement_for as _rid

# Seed 004, "Supported document_type values" (14 values).
BM_DOCUMENT_TYPES = (
    "identity_verification",
    "address_verification",
    "date_of_birth_verification",
    "tax_id_verification",
    "account_approval_letter",
    "cip_result",
    "w8ben",
    "w9",
    "company_formation",
    "entity_operating_document",
    "entity_registration",
    "hio_declaration_form",
    "limited_trading_authorization",
    "pep_declaration_form",
)
# Seed 003, "Document Type" enum.
ALP_DOCUMENT_TYPES = (
    "identity_verification",
    "address_verification",
    "date_of_birth_verification",
    "tax_id_verification",
)
# Seed 004, "File size and format limits": supported image and document types.
BM_MIME_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")

# Small files that start with their type's magic bytes, so a server that sniffs content
# sees the declared type.
_MAGIC = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "image/gif": b"GIF89a",
    "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "application/pdf": b"%PDF-1.4\n",
}


def _sample(mime_type: str) -> str:
    return base64.b64encode(_MAGIC[mime_type] + b"brokercert synthetic document\n" * 8).decode()


def _path(profile: Profile, operation: str, account_id: str) -> str:
    return profile.operation(operation).path.format(**{profile.id_param: account_id})


def _upload(client: httpx.Client, profile: Profile, account_id: str, body: Any) -> httpx.Response:
    op = profile.operation("upload_documents")
    return client.request(op.method, _path(profile, "upload_documents", account_id), json=body)


def _expect_error(
    response: httpx.Response, profile: Profile, status: int, code: str, requirement: str
) -> None:
    """``status`` with ``code`` at the profile's error-envelope code path."""
    expect_status(response, status, requirement)
    node: Any = json_body(response, requirement)
    for key in profile.error_envelope.code_path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    check(
        node == code,
        requirement,
        f"error code {code} at `{profile.error_envelope.code_path}`",
        repr(node),
        response,
    )


def _create(client: httpx.Client, profile: Profile, run_data: RunData, dialect: str) -> str:
    """A fresh account's id; any 2xx counts here (the exact create status is another rule)."""
    op = profile.operation("create_account")
    response = client.request(op.method, op.path, json=run_data.create_body(dialect))
    body = response.json() if response.is_success else None
    assert isinstance(body, dict) and isinstance(body.get("id"), str), (
        f"precondition: creating a test account failed: HTTP {response.status_code} "
        f"{response.text[:300]}"
    )
    return body["id"]


@pytest.fixture(scope="module")
def account_id(
    _shared_client: httpx.Client, profile: Profile, run_data: RunData, dialect: str
) -> str:
    """One account shared by the upload checks that do not depend on each other."""
    return _create(_shared_client, profile, run_data, dialect)


# -- success --------------------------------------------------------------------------------


@pytest.mark.requirement("ALP-DOC-001", "BM-DOC-001")
def test_upload_answers_204_with_empty_body(
    client: httpx.Client,
    profile: Profile,
    catalog: Catalog,
    run_data: RunData,
    dialect: str,
    account_id: str,
) -> None:
    """Uploading one identity_verification document with base64 content answers 204 with an empty
    body."""
    rid = _rid(catalog, "ALP-DOC-001", "BM-DOC-001")
    doc = run_data.document(
        dialect, "identity_verification", content=_sample("image/jpeg"), mime_type="image/jpeg"
    )
    response = _upload(client, profile, account_id, run_data.upload_body(dialect, doc))
    expect_status(response, profile.operation("upload_documents").success, rid)
    check(
        response.content == b"",
        rid,
        "an empty body",
        f"{len(response.content)} bytes: {response.text[:200]!r}",
        response,
    )


@pytest.mark.requirement("ALP-DOC-001")
def test_upload_of_one_document_per_documented_type_answers_204(
    client: httpx.Client, profile: Profile, run_data: RunData, account_id: str
) -> None:
    """An array holding one document of each type in the seed's Document Type enum answers 204 with
    an empty body."""
    pdf = _sample("application/pdf")
    docs = [run_data.document("alpaca", t, content=pdf) for t in ALP_DOCUMENT_TYPES]
    response = _upload(client, profile, account_id, run_data.upload_body("alpaca", *docs))
    expect_status(response, profile.operation("upload_documents").success, "ALP-DOC-001")
    check(
        response.content == b"",
        "ALP-DOC-001",
        "an empty body",
        f"{len(response.content)} bytes: {response.text[:200]!r}",
        response,
    )


@pytest.mark.requirement("BM-DOC-002")
@pytest.mark.parametrize("document_type", BM_DOCUMENT_TYPES)
def test_each_documented_type_is_accepted(
    client: httpx.Client,
    profile: Profile,
    run_data: RunData,
    account_id: str,
    document_type: str,
) -> None:
    """Each of the 14 documented document types is accepted with 204 (w8ben with content_data, every
    other type with content)."""
    doc = run_data.document("buildmarkets", document_type)  # w8ben: content_data only
    response = _upload(client, profile, account_id, doc)
    expect_status(response, profile.operation("upload_documents").success, "BM-DOC-002")


@pytest.mark.requirement("BM-DOC-010")
@pytest.mark.parametrize("mime_type", BM_MIME_TYPES)
def test_each_allowed_mime_type_is_accepted(
    client: httpx.Client, profile: Profile, run_data: RunData, account_id: str, mime_type: str
) -> None:
    """Each allowed mime_type (image/png, image/jpeg, image/gif, image/webp, application/pdf) is
    accepted with 204."""
    doc = run_data.document("buildmarkets", content=_sample(mime_type), mime_type=mime_type)
    response = _upload(client, profile, account_id, doc)
    expect_status(response, profile.operation("upload_documents").success, "BM-DOC-010")


@pytest.mark.requirement("BM-DOC-006")
def test_w8ben_with_content_data_and_no_content_is_accepted(
    client: httpx.Client, profile: Profile, run_data: RunData, account_id: str
) -> None:
    """A w8ben document sent with content_data and no content answers 204."""
    doc = run_data.document("buildmarkets", "w8ben")
    assert "content" not in doc and "content_data" in doc
    response = _upload(client, profile, account_id, doc)
    expect_status(response, profile.operation("upload_documents").success, "BM-DOC-006")


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.requirement("ALP-DOC-005")
def test_empty_array_is_refused(client: httpx.Client, profile: Profile, account_id: str) -> None:
    """An upload of an empty array is refused with a 4xx."""
    expect_4xx(_upload(client, profile, account_id, []), "ALP-DOC-005")


@pytest.mark.requirement("ALP-DOC-006")
@pytest.mark.parametrize(
    "content",
    ["%%%%", "not base64 at all!", "data:application/pdf;base64,JVBERi0xLjQK"],
    ids=["symbols", "prose", "data-uri"],
)
def test_content_that_is_not_base64_is_refused(
    client: httpx.Client, profile: Profile, run_data: RunData, account_id: str, content: str
) -> None:
    """A document whose content is not valid base64 is refused with a 4xx."""
    doc = run_data.document("alpaca", content=content)
    expect_4xx(_upload(client, profile, account_id, [doc]), "ALP-DOC-006")


@pytest.mark.requirement("ALP-DOC-007", "BM-DOC-003")
@pytest.mark.parametrize("document_type", ["bank_statement", "passport"])
def test_unknown_document_type_is_refused(
    client: httpx.Client,
    profile: Profile,
    run_data: RunData,
    dialect: str,
    account_id: str,
    document_type: str,
) -> None:
    """A document_type outside the documented list is refused (alpaca: a 4xx; buildmarkets: 400
    INVALID_DOCUMENT_TYPE)."""
    doc = run_data.document(dialect, document_type, content=_sample("application/pdf"))
    response = _upload(client, profile, account_id, run_data.upload_body(dialect, doc))
    if dialect == "buildmarkets":
        _expect_error(response, profile, 400, "INVALID_DOCUMENT_TYPE", "BM-DOC-003")
    else:
        expect_4xx(response, "ALP-DOC-007")


@pytest.mark.requirement("BM-DOC-004")
@pytest.mark.parametrize("document_type", ["identity_verification", "w9"])
def test_document_without_content_is_refused(
    client: httpx.Client,
    profile: Profile,
    run_data: RunData,
    account_id: str,
    document_type: str,
) -> None:
    """A document of a type other than w8ben sent without content answers 400 CONTENT_REQUIRED."""
    doc = run_data.document("buildmarkets", document_type, content="")
    del doc["content"]
    response = _upload(client, profile, account_id, doc)
    _expect_error(response, profile, 400, "CONTENT_REQUIRED", "BM-DOC-004")


@pytest.mark.requirement("BM-DOC-005")
@pytest.mark.parametrize("with_content", [False, True], ids=["nothing", "base64-content"])
def test_w8ben_without_content_data_is_refused(
    client: httpx.Client,
    profile: Profile,
    run_data: RunData,
    account_id: str,
    with_content: bool,
) -> None:
    """A w8ben document sent without content_data answers 400 CONTENT_DATA_REQUIRED (base64 content
    does not replace it)."""
    doc: dict[str, Any] = {"document_type": "w8ben", "document_sub_type": "Form W-8BEN"}
    if with_content:
        doc.update(content=_sample("application/pdf"), mime_type="application/pdf")
    response = _upload(client, profile, account_id, doc)
    _expect_error(response, profile, 400, "CONTENT_DATA_REQUIRED", "BM-DOC-005")


@pytest.mark.requirement("BM-DOC-009")
@pytest.mark.parametrize("mime_type", ["text/plain", "image/tiff", "application/zip"])
def test_mime_type_outside_allowlist_is_refused(
    client: httpx.Client, profile: Profile, run_data: RunData, account_id: str, mime_type: str
) -> None:
    """A mime_type other than image/png, image/jpeg, image/gif, image/webp or application/pdf
    answers 400 INVALID_MIME_TYPE."""
    doc = run_data.document("buildmarkets", content=_sample("application/pdf"), mime_type=mime_type)
    response = _upload(client, profile, account_id, doc)
    _expect_error(response, profile, 400, "INVALID_MIME_TYPE", "BM-DOC-009")


# -- unknown accounts -------------------------------------------------------------------------


@pytest.mark.requirement("ALP-DOC-008", "BM-DOC-011")
def test_upload_to_unknown_account_is_not_found(
    client: httpx.Client, profile: Profile, run_data: RunData, dialect: str
) -> None:
    """Uploading to an account id that does not exist answers 404 ACCOUNT_NOT_FOUND (buildmarkets)
    or 404/401 (alpaca)."""
    response = _upload(client, profile, str(uuid.uuid4()), run_data.upload_body(dialect))
    if dialect == "buildmarkets":
        _expect_error(response, profile, 404, "ACCOUNT_NOT_FOUND", "BM-DOC-011")
    else:
        expect_status(response, profile.unknown_account_status, "ALP-DOC-008")


# -- documents held by the account (alpaca) -------------------------------------------------


@pytest.mark.requirement("ALP-DOC-009")
def test_uploaded_documents_appear_on_the_account(
    client: httpx.Client, profile: Profile, run_data: RunData
) -> None:
    """After an upload, the account lists the new documents, each with id, document_type and
    created_at."""
    acc_id = _create(client, profile, run_data, "alpaca")
    sent = ["address_verification", "tax_id_verification"]
    docs = [run_data.document("alpaca", t, content=_sample("application/pdf")) for t in sent]
    uploaded = _upload(client, profile, acc_id, docs)
    assert uploaded.is_success, f"the upload failed: HTTP {uploaded.status_code}"
    get = profile.operation("get_account")
    response = client.request(get.method, _path(profile, "get_account", acc_id))
    expect_status(response, get.success, "ALP-DOC-009")
    account = json_body(response, "ALP-DOC-009")
    held = account.get("documents") if isinstance(account, dict) else None
    check(isinstance(held, list), "ALP-DOC-009", "a documents array on the account", held, response)
    for document_type in sent:
        found = [d for d in held if isinstance(d, dict) and d.get("document_type") == document_type]
        check(
            bool(found),
            "ALP-DOC-009",
            f"a document of type {document_type}",
            [d.get("document_type") for d in held if isinstance(d, dict)],
            response,
        )
        missing = [k for k in ("id", "document_type", "created_at") if not found[0].get(k)]
        check(
            not missing,
            "ALP-DOC-009",
            "id, document_type and created_at on each document",
            f"{document_type} lacks {', '.join(missing)}: {found[0]}",
            response,
        )


@pytest.mark.requirement("ALP-DOC-010")
def test_list_documents_answers_json_array(
    client: httpx.Client, profile: Profile, account_id: str
) -> None:
    """Listing an account's documents answers 200 with a JSON array."""
    op = profile.operation("list_documents")
    response = client.request(op.method, _path(profile, "list_documents", account_id))
    expect_status(response, op.success, "ALP-DOC-010")
    data = json_body(response, "ALP-DOC-010")
    check(isinstance(data, list), "ALP-DOC-010", "a JSON array", type(data).__name__, response)


@pytest.mark.requirement("ALP-DOC-011")
def test_list_documents_of_unknown_account_is_not_found(
    client: httpx.Client, profile: Profile
) -> None:
    """Listing documents of an account id that does not exist answers 404 or 401."""
    op = profile.operation("list_documents")
    response = client.request(op.method, _path(profile, "list_documents", str(uuid.uuid4())))
    expect_status(response, profile.unknown_account_status, "ALP-DOC-011")
