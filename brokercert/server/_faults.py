"""Deliberate deviations the reference server can be started with (``--fault NAME``).

Each one breaks one rule in a way a single request (after at most a create) shows, and
names the catalogue requirements that must catch it; ``brokercert selftest`` checks that
the suite fails exactly there. tests/test_server_faults.py checks every name below
against the catalogue and observes every fault over HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    name: str
    dialect: str
    description: str
    requirements: tuple[str, ...]


_ALPACA = [
    Fault("alp_create_answers_201", "alpaca", "create answers 201 instead of 200",
          ("ALP-ACC-001", "GEN-SCHEMA-001")),
    Fault("alp_duplicate_email_accepted", "alpaca",
          "a second create with a registered email opens another account",
          ("ALP-ACC-012", "ALP-ACC-013")),
    Fault("alp_no_32mb_limit", "alpaca",
          "document content longer than 32 MB of base64 text is accepted",
          ("ALP-DOC-003",)),
    Fault("alp_upload_answers_200", "alpaca",
          "document upload answers 200 with a JSON body instead of 204",
          ("ALP-DOC-001", "GEN-SCHEMA-001")),
    Fault("alp_missing_account_number", "alpaca",
          "account responses leave out the required account_number",
          ("ALP-ACC-002", "GEN-SCHEMA-003")),
    Fault("alp_last_equity_number", "alpaca",
          "last_equity is a JSON number instead of a decimal string",
          ("GEN-SCHEMA-003",)),
    Fault("alp_tax_id_echoed", "alpaca", "account responses echo identity.tax_id",
          ("ALP-SCHEMA-004", "GEN-SCHEMA-003")),
    Fault("alp_auth_not_checked", "alpaca",
          "requests without or with wrong credentials are served",
          ("ALP-AUTH-001", "ALP-AUTH-002", "ALP-AUTH-003", "GEN-AUTH-001")),
    Fault("alp_status_goes_backward", "alpaca",
          "an account created without a sandbox fixture reports ACTIVE, then SUBMITTED on"
          " the next read", ("ALP-STATE-002",)),
    Fault("alp_close_answers_200", "alpaca",
          "closing answers 200 with the account instead of 204",
          ("ALP-ACC-022", "ALP-ACC-024", "GEN-SCHEMA-001")),
    Fault("alp_close_twice_accepted", "alpaca",
          "closing an account that is already closed answers 204",
          ("ALP-ACC-025",)),
    Fault("alp_patch_accepts_tax_id", "alpaca",
          "an update may change identity.tax_id", ("ALP-ACC-018",)),
    Fault("alp_list_oldest_first", "alpaca",
          "without a sort parameter the list is oldest first", ("ALP-LIST-002",)),
    Fault("alp_5xx_on_query", "alpaca",
          "listing with a query parameter answers 500",
          ("GEN-SRV-001", "ALP-LIST-006")),
]

_BUILDMARKETS = [
    Fault("bm_create_answers_200", "buildmarkets", "create answers 200 instead of 201",
          ("BM-ACC-001", "GEN-SCHEMA-001")),
    Fault("bm_no_10mb_limit", "buildmarkets",
          "a document over 10 MB decoded is accepted", ("BM-DOC-008",)),
    Fault("bm_upload_answers_200", "buildmarkets",
          "document upload answers 200 with a JSON body instead of 204",
          ("BM-DOC-001", "BM-DOC-002", "BM-DOC-006", "BM-DOC-007", "BM-DOC-010",
           "GEN-SCHEMA-001")),
    Fault("bm_missing_kyc_status", "buildmarkets",
          "account responses leave out the required kyc_status",
          ("BM-ACC-001", "BM-STATE-001", "BM-STATE-003", "BM-STATE-004", "BM-STATE-005",
           "GEN-SCHEMA-003")),
    Fault("bm_auth_not_checked", "buildmarkets",
          "requests without or with wrong X-API-Key/X-API-Secret are served",
          ("BM-AUTH-001", "BM-AUTH-002", "BM-AUTH-003", "GEN-AUTH-001")),
    Fault("bm_flat_error_envelope", "buildmarkets",
          'errors are a flat {"code", "message"} without the "error" envelope, so every check'
          " of an error code fails",
          ("BM-ERR-001", "BM-ERR-002", "BM-ERR-003", "BM-ERR-004", "BM-AUTH-001", "BM-AUTH-002",
           "BM-AUTH-003", "BM-ACC-022", "BM-DOC-003", "GEN-SCHEMA-003")),
    Fault("bm_wrong_document_type_code", "buildmarkets",
          "an unknown document_type answers VALIDATION_ERROR instead of INVALID_DOCUMENT_TYPE",
          ("BM-DOC-003",)),
    Fault("bm_mime_type_not_checked", "buildmarkets",
          "a mime_type outside the allowlist is accepted", ("BM-DOC-009",)),
    Fault("bm_rejected_then_active", "buildmarkets",
          "an account with tax id ending 0002 goes REJECTED, then ACTIVE",
          ("BM-STATE-002",)),
    Fault("bm_close_twice_accepted", "buildmarkets",
          "closing an account that is already closed answers 204", ("BM-ACC-028",)),
    Fault("bm_patch_accepts_tax_id", "buildmarkets",
          "an update may change identity.tax_id", ("BM-ACC-025",)),
    Fault("bm_margin_agreement_optional", "buildmarkets",
          "margin_enabled true is accepted without a margin_agreement", ("BM-ACC-017",)),
    Fault("bm_page_repeats_item", "buildmarkets",
          "the next page starts with the last item of the previous one", ("BM-LIST-004",)),
    Fault("bm_page_drops_item", "buildmarkets",
          "the next page skips the item after the last one served", ("BM-LIST-004",)),
    Fault("bm_limit_ignored", "buildmarkets",
          "the limit parameter is ignored and pages hold up to 100 accounts",
          ("BM-LIST-002",)),
]

FAULTS: dict[str, Fault] = {f.name: f for f in (*_ALPACA, *_BUILDMARKETS)}
