"""The buildmarkets dialect (Buildmarkets API 1.0.0) under ``/buildmarkets``.

Rules from shared/reference/buildmarkets.md section 10 and specs/buildmarkets/<version>/:
X-API-Key + X-API-Secret, create 201 with kyc_status, 400 validation codes with the
dotted field path, agreement rules, sandbox outcomes by tax-id suffix, cursor pages,
one document per upload (10 MB decoded, mime allowlist, w8ben content_data), close 204
then 409 ACCOUNT_ALREADY_CLOSED. Errors are ``{"error": {code, message, field, request_id}}``.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from brokercert.catalog import Catalog
from brokercert.server._common import decode_base64, decoded_size, is_uuid, moment_param, new_id
from brokercert.server._cursor import BadCursor, Cursors
from brokercert.server._errors import ApiError
from brokercert.server._http import Context, DialectApi, empty, json_response, single_header
from brokercert.server._lifecycle import Position, check_plan
from brokercert.server._storage import AccountRow, NewDocument, Step
from brokercert.server._validation import Invalid, Problem

ACCOUNTS = "/v1/accounts"
ACCOUNT = "/v1/accounts/{accountId}"
UPLOAD = ACCOUNT + "/documents/upload"
_DEFAULT_CODE = {
    400: "VALIDATION_ERROR", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "ACCOUNT_NOT_FOUND",
    405: "INVALID_REQUEST", 409: "ACCOUNT_ALREADY_CLOSED", 413: "FILE_TOO_LARGE",
    422: "ACCOUNT_NOT_ACTIVE", 500: "INTERNAL_ERROR",
}
_KIND_CODE = {"required": "MISSING_REQUIRED_FIELD", "enum": "INVALID_ENUM_VALUE"}
_UPLOAD_ENUM_CODE = {"document_type": "INVALID_DOCUMENT_TYPE", "mime_type": "INVALID_MIME_TYPE"}
_MERGED = ("contact", "identity", "disclosures", "investment_profile", "employment")


def _plans() -> dict[str, tuple[Step, ...]]:
    """Sandbox outcomes by the last four digits of identity.tax_id."""
    submitted = Step("SUBMITTED", "SUBMITTED")
    return {
        "0001": (submitted, Step("APPROVED", "APPROVED"), Step("ACTIVE", "APPROVED")),
        "0002": (submitted, Step("REJECTED", "REJECTED")),
        "0003": (submitted, Step("APPROVAL_PENDING", "MANUAL_REVIEW")),
        "": (submitted,),
    }


class BuildmarketsApi(DialectApi):
    name = "buildmarkets"

    def __init__(self, ctx: Context, catalog: Catalog) -> None:
        super().__init__(ctx, catalog)
        self.machine = self.profile.state_machine
        self.plans = {k: check_plan(self.machine, v) for k, v in _plans().items()}
        if self.fault("bm_rejected_then_active"):
            self.plans["0002"] = (*self.plans["0002"], Step("ACTIVE", "APPROVED"))
        self.file_limit = int(self.profile.limit("document_content").value * 1024 * 1024)
        self.pagination = self.profile.pagination
        self.cursors = Cursors(ctx.config.secret.encode())
        self._key = ctx.config.key.encode()
        self._secret = ctx.config.secret.encode()
        schemas = catalog.spec["components"]["schemas"]
        self.update_members = {
            part: frozenset(schemas[name]["properties"])
            for part, name in (("contact", "ContactUpdate"), ("identity", "IdentityUpdate"),
                               ("disclosures", "Disclosures"),
                               ("investment_profile", "InvestmentProfileUpdate"),
                               ("employment", "Employment"))
        }
        routes = [
            ("POST", ACCOUNTS, self.create), ("GET", ACCOUNTS, self.list),
            ("GET", ACCOUNT, self.get), ("PATCH", ACCOUNT, self.update),
            ("POST", ACCOUNT + "/actions/close", self.close), ("POST", UPLOAD, self.upload),
        ]
        for method, path, handler in routes:
            self.handle(method, path)(handler)

    # dialect hooks ---------------------------------------------------------------------------

    def authenticated(self, request: Request) -> bool:
        if self.fault("bm_auth_not_checked"):
            return True
        key = single_header(request, "x-api-key").encode("latin-1")
        secret = single_header(request, "x-api-secret").encode("latin-1")
        good_key = hmac.compare_digest(key, self._key)
        good_secret = hmac.compare_digest(secret, self._secret)
        return good_key and good_secret

    def render_error(self, err: ApiError) -> Response:
        code = err.code if isinstance(err.code, str) else _DEFAULT_CODE.get(err.status,
                                                                              "INVALID_REQUEST")
        if code == "MALFORMED":
            code = "INVALID_FORMAT"
        message = err.message
        if self.fault("bm_flat_error_envelope"):
            return json_response({"code": code, "message": message}, err.status, err.headers)
        error = {"code": code, "message": message, "field": err.field,
                 "request_id": f"req_{secrets.token_hex(10)}"}
        return json_response({"error": error}, err.status, err.headers)

    def problem_error(self, problem: Problem) -> ApiError:
        return self._error(_KIND_CODE.get(problem.kind, "VALIDATION_ERROR"), problem)

    @staticmethod
    def _error(code: str, problem: Problem) -> ApiError:
        field = problem.field or None
        return ApiError(400, f"{code}: {field}" if field else f"{code}: {problem.message}",
                        code=code, field=field)

    def not_found(self) -> ApiError:
        return ApiError(404, "no such route", code="INVALID_REQUEST")

    # helpers ----------------------------------------------------------------------------------

    def _row(self, request: Request) -> AccountRow:
        account_id = request.path_params["accountId"]
        row = self.ctx.storage.get_account(self.name, account_id) if is_uuid(account_id) else None
        if row is None:
            raise ApiError(404, "ACCOUNT_NOT_FOUND: accountId", code="ACCOUNT_NOT_FOUND",
                           field="accountId")
        return row

    def _position(self, row: AccountRow, *, reading: bool) -> Position:
        pos = self.ctx.clock.position(row, reading=reading)
        if pos.changed:
            self.ctx.storage.set_progress(row.id, pos.step, pos.stepped_at)
        return pos

    def _plan(self, tax_id: str) -> tuple[Step, ...]:
        digits = re.sub(r"[^0-9]", "", tax_id)
        return self.plans.get(digits[-4:], self.plans[""])

    def _missing(self, field: str) -> ApiError:
        return ApiError(400, f"MISSING_REQUIRED_FIELD: {field}", code="MISSING_REQUIRED_FIELD",
                        field=field)

    def _business_rules(self, data: dict[str, Any]) -> None:
        signed = {a.get("agreement") for a in data["agreements"]}
        config = data.get("trading_configurations") or {}
        needed = ["customer_agreement"]
        if config.get("margin_enabled") is True and not self.fault("bm_margin_agreement_optional"):
            needed.append("margin_agreement")
        if (config.get("options_level") or 0) > 0:
            needed.append("options_agreement")
        if any(n not in signed for n in needed):
            raise self._missing("agreements")
        if data.get("account_type") == "joint" and not data.get("joint_owner"):
            raise self._missing("joint_owner")

    def render(self, row: AccountRow, current: Step) -> dict[str, Any]:
        b = row.body
        out = {
            "id": row.id,
            "account_number": b["account_number"],
            "user_id": b["user_id"],
            "status": current.status,
            "kyc_status": current.kyc,
            "currency": "USD",
            "last_equity": "0.00",
            "created_at": row.created_at,
            "account_type": b["account_type"],
            "enabled_assets": ["us_equity"],
        }
        if self.fault("bm_missing_kyc_status"):
            del out["kyc_status"]
        identity = {k: v for k, v in b["identity"].items() if k != "tax_id"}
        out.update({k: v for k, v in b.items() if k not in ("identity", "account_number",
                                                             "user_id", "account_type")})
        out["identity"] = identity
        return out

    def summary(self, row: AccountRow, current: Step) -> dict[str, Any]:
        identity = row.body["identity"]
        return {
            "id": row.id, "account_number": row.body["account_number"],
            "status": current.status, "kyc_status": current.kyc, "currency": "USD",
            "last_equity": "0.00", "created_at": row.created_at,
            "account_type": row.body["account_type"], "enabled_assets": ["us_equity"],
            "given_name": identity["given_name"], "family_name": identity["family_name"],
        }

    # accounts ---------------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        data = await self.json_body(request, self.schema("POST", ACCOUNTS))
        self._business_rules(data)
        contact = {"country": "US", **data["contact"]}
        identity = {"tax_id_type": "US_SSN", "country_of_citizenship": "US",
                    "country_of_tax_residence": "US", **data["identity"]}
        flags = ("is_control_person", "is_affiliated_exchange_or_finra",
                 "is_spouse_affiliated_finra", "is_politically_exposed",
                 "immediate_family_exposed")
        body = {
            "account_number": f"4{secrets.randbelow(10**8):08d}",
            "user_id": new_id(),
            "account_type": data.get("account_type", "individual"),
            "contact": contact,
            "identity": identity,
            "disclosures": {**dict.fromkeys(flags, False), **data.get("disclosures", {})},
            "agreements": data["agreements"],
            "trading_configurations": {"options_level": 0, "margin_enabled": False,
                                       "short_selling_enabled": False,
                                       **data.get("trading_configurations", {})},
            "investment_profile": data["investment_profile"],
            "trusted_contact": data.get("trusted_contact"),
            "employment": data.get("employment"),
            "registered_rep_code": data.get("registered_rep_code"),
        }
        for extra in ("mailing_address", "joint_owner", "dividend_reinvestment",
                      "discretionary_account", "advisor_code", "corr_metadata"):
            if extra in data:
                body[extra] = data[extra]
        if isinstance(body.get("joint_owner"), dict):
            body["joint_owner"] = {k: v for k, v in body["joint_owner"].items() if k != "tax_id"}
        plan = self._plan(identity["tax_id"])
        row = self.ctx.storage.insert_account(id=new_id(), dialect=self.name, email=None,
                                              plan=plan, now=self.ctx.clock.now(), body=body)
        status = 200 if self.fault("bm_create_answers_200") else 201
        return json_response(self.render(row, plan[0]), status)

    async def get(self, request: Request) -> Response:
        row = self._row(request)
        return json_response(self.render(row, self._position(row, reading=True).current))

    async def update(self, request: Request) -> Response:
        row = self._row(request)
        op = self.schema("PATCH", ACCOUNT)
        data = await self.json_body(request, op, validate=False)
        smuggled = None
        if self.fault("bm_patch_accepts_tax_id") and isinstance(data, dict) and isinstance(
                data.get("identity"), dict):
            smuggled = data["identity"].pop("tax_id", None)
        op.validate_body(data)
        pos = self._position(row, reading=False)
        if pos.current.status == self.machine.closed:
            raise ApiError(409, "ACCOUNT_ALREADY_CLOSED: the account is closed",
                           code="ACCOUNT_ALREADY_CLOSED")
        body = dict(row.body)
        for part in _MERGED:
            if part in data:
                sent = {k: v for k, v in data[part].items() if k in self.update_members[part]}
                body[part] = {**(body.get(part) or {}), **sent}
        if smuggled is not None:
            body["identity"]["tax_id"] = smuggled
        for part in ("trusted_contact", "registered_rep_code"):
            if part in data:
                body[part] = data[part]
        self.ctx.storage.update_account(row.id, body)
        updated = AccountRow(row.seq, row.id, row.dialect, row.created_at, row.plan, pos.step,
                             pos.stepped_at, body)
        return json_response(self.render(updated, pos.current))

    async def close(self, request: Request) -> Response:
        row = self._row(request)
        current = self._position(row, reading=False).current
        closed = self.machine.closed
        if current.status == closed and not self.fault("bm_close_twice_accepted"):
            raise ApiError(409, "ACCOUNT_ALREADY_CLOSED: the account is already closed",
                           code="ACCOUNT_ALREADY_CLOSED")
        if current.status != closed and not self.machine.allows(current.status, closed):
            raise ApiError(422, f"KYC_REJECTED: an account in status {current.status} cannot"
                                " be closed", code="KYC_REJECTED")
        plan = (current, Step(closed, current.kyc))
        self.ctx.storage.update_account(row.id, row.body, plan=plan, step=1,
                                        stepped_at=self.ctx.clock.now())
        return empty(204)

    async def list(self, request: Request) -> Response:
        q = self.query(request, self.schema("GET", ACCOUNTS))
        # Above the documented maximum the page is clamped (the spec allows any limit >= 1).
        limit = min(q.get("limit", self.pagination.default_limit or 25),
                    self.pagination.max_limit)
        if self.fault("bm_limit_ignored"):
            limit = self.pagination.max_limit
        descending = q.get("sort", "created_at:desc") == "created_at:desc"
        after_seq = before_seq = None
        if q.get("cursor"):  # an empty cursor is the first page
            try:
                seq, descending = self.cursors.read(q["cursor"])
            except BadCursor:
                raise ApiError(400, "VALIDATION_ERROR: cursor", field="cursor") from None
            if descending:
                before_seq = seq
            else:
                after_seq = seq
        status = q.get("status")
        tokens = str(q.get("query", "")).lower().split()
        filtered = status is not None or bool(tokens)
        rows = self.ctx.storage.list_accounts(
            self.name, descending=descending,
            created_after=moment_param(q.get("created_after"), "created_after", 400),
            created_before=moment_param(q.get("created_before"), "created_before", 400),
            before_seq=before_seq, after_seq=after_seq,
            limit=None if filtered else limit + 1,
        )
        page: list[tuple[AccountRow, Step]] = []
        has_more = False
        skip = 1 if q.get("cursor") and self.fault("bm_page_drops_item") else 0
        for row in rows:
            current = self.ctx.clock.position(row, reading=False).current
            if status is not None and current.status != status:
                continue
            if tokens and not _matches(row, tokens):
                continue
            if skip:
                skip -= 1
                continue
            if len(page) == limit:
                has_more = True
                break
            page.append((row, current))
        next_cursor = None
        if has_more:
            last = page[-2] if self.fault("bm_page_repeats_item") and len(page) > 1 else page[-1]
            next_cursor = self.cursors.issue(last[0].seq, descending)
        return json_response({
            "data": [self.summary(row, current) for row, current in page],
            "pagination": {"next_cursor": next_cursor, "has_more": has_more},
        })

    # documents --------------------------------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        row = self._row(request)
        op = self.schema("POST", UPLOAD)
        data = await self.json_body(request, op, validate=False)
        if self.fault("bm_mime_type_not_checked") and isinstance(data, dict):
            data.pop("mime_type", None)
        try:
            op.validate_body(data)
        except Invalid as exc:
            p = exc.problem
            code = _UPLOAD_ENUM_CODE.get(p.field) if p.kind == "enum" else None
            if code == "INVALID_DOCUMENT_TYPE" and self.fault("bm_wrong_document_type_code"):
                code = "VALIDATION_ERROR"
            if code is None:
                raise
            raise self._error(code, p) from None
        doc_type = data["document_type"]
        size, digest, content_data = 0, None, None
        if doc_type == "w8ben":
            if data.get("content_data") is None:
                raise ApiError(400, "CONTENT_DATA_REQUIRED: content_data",
                               code="CONTENT_DATA_REQUIRED", field="content_data")
            content_data = data["content_data"]
        else:
            content = data.get("content")
            if not content:
                raise ApiError(400, "CONTENT_REQUIRED: content", code="CONTENT_REQUIRED",
                               field="content")
            if decoded_size(content) > self.file_limit and not self.fault("bm_no_10mb_limit"):
                raise ApiError(400, "FILE_TOO_LARGE: content", code="FILE_TOO_LARGE",
                               field="content")
            try:
                size, digest = decode_base64(content)
            except ValueError:
                raise ApiError(400, "VALIDATION_ERROR: content", field="content") from None
        doc = NewDocument(new_id(), doc_type, data.get("document_sub_type"),
                          data.get("mime_type"), size, digest, content_data)
        self.ctx.storage.add_documents(row.id, [doc])
        if self.fault("bm_upload_answers_200"):
            return json_response({"id": doc.id, "document_type": doc_type}, 200)
        return empty(204)


def _matches(row: AccountRow, tokens: list[str]) -> bool:
    """Every token matches the holder's name or the account number."""
    identity = row.body["identity"]
    haystack = " ".join(
        str(v or "") for v in (row.body["account_number"], identity.get("given_name"),
                               identity.get("middle_name"), identity.get("family_name"))
    ).lower()
    return all(t in haystack for t in tokens)
