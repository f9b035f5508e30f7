"""The alpaca dialect (Alpaca Broker API 1.1.1) under ``/alpaca``.

Rules from shared/reference/alpaca.md section 9 and specs/alpaca/<version>/: HTTP Basic
auth, create 200, duplicate email 409, 422 for bad values, 400 for a body that is not
a JSON object, bare-array list (newest first, at most 1000), DELETE and actions/close
204, uploads of 1 to 10 documents with 32 MB of base64 text each, CIP stored and read
back. Errors are ``{"code": <8 digits>, "message": ...}``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response

from brokercert.catalog import Catalog
from brokercert.server._common import decode_base64, is_uuid, moment_param, new_id
from brokercert.server._errors import ApiError
from brokercert.server._http import Context, DialectApi, empty, json_response, single_header
from brokercert.server._lifecycle import Position, check_plan
from brokercert.server._storage import (
    AccountRow,
    CipRow,
    DocumentRow,
    DuplicateEmail,
    NewDocument,
    Step,
)
from brokercert.server._validation import Problem

ACCOUNTS = "/v1/accounts"
ACCOUNT = "/v1/accounts/{account_id}"
NESTED = ("contact", "identity", "disclosures", "agreements", "documents", "trusted_contact")
_FIXTURE = re.compile(r"/fixtures/status=([A-Z_]+)/fixtures/")
_BIG = 1 << 20  # documents larger than this are decoded off the event loop


class AlpacaApi(DialectApi):
    name = "alpaca"

    def __init__(self, ctx: Context, catalog: Catalog) -> None:
        super().__init__(ctx, catalog)
        self.machine = self.profile.state_machine
        limit = self.profile.limit("document_content")
        self.content_limit = int(limit.value * 1024 * 1024)  # the larger reading of "32 MB"
        schemas = catalog.spec["components"]["schemas"]
        self.known = {
            part: frozenset(schemas[name]["properties"])
            for part, name in (("contact", "Contact"), ("identity", "Identity"),
                               ("disclosures", "Disclosures"), ("agreement", "Agreement"),
                               ("trusted_contact", "TrustedContact"))
        }
        fixture = next(t for t in self.machine.triggers if t.match == "template")
        self.fixture_statuses = frozenset(fixture.statuses)
        self._key = ctx.config.key.encode()
        self._secret = ctx.config.secret.encode()
        self.default_plan = check_plan(self.machine, [Step("SUBMITTED"), Step("APPROVED"),
                                                      Step("ACTIVE")])
        routes = [
            ("POST", ACCOUNTS, self.create), ("GET", ACCOUNTS, self.list),
            ("GET", ACCOUNT, self.get), ("PATCH", ACCOUNT, self.update),
            ("DELETE", ACCOUNT, self.close), ("POST", ACCOUNT + "/actions/close", self.close),
            ("POST", ACCOUNT + "/documents/upload", self.upload),
            ("GET", ACCOUNT + "/documents", self.list_documents),
            ("POST", ACCOUNT + "/cip", self.submit_cip), ("GET", ACCOUNT + "/cip", self.get_cip),
        ]
        for method, path, handler in routes:
            self.handle(method, path)(handler)

    # dialect hooks ---------------------------------------------------------------------------

    def authenticated(self, request: Request) -> bool:
        if self.fault("alp_auth_not_checked"):
            return True
        scheme, _, value = single_header(request, "authorization").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        key, sep, secret = decoded.partition(b":")
        good_key = hmac.compare_digest(key, self._key)
        good_secret = hmac.compare_digest(secret, self._secret)
        return bool(sep) and good_key and good_secret

    def render_error(self, err: ApiError) -> Response:
        code = err.code if isinstance(err.code, int) else err.status * 100000 + 10000
        return json_response({"code": code, "message": err.message}, err.status, err.headers)

    def problem_error(self, problem: Problem) -> ApiError:
        where = f"{problem.field}: " if problem.field else ""
        if problem.location == "body" and not problem.path and problem.kind == "type":
            return ApiError(400, f"request body has the wrong type: {problem.message}")
        return ApiError(422, f"{where}{problem.message}")

    def not_found(self) -> ApiError:
        return ApiError(404, "resource not found")

    # helpers ----------------------------------------------------------------------------------

    def _row(self, request: Request) -> AccountRow:
        account_id = request.path_params["account_id"]
        row = self.ctx.storage.get_account(self.name, account_id) if is_uuid(account_id) else None
        if row is None:
            raise ApiError(404, "account not found")
        return row

    def _position(self, row: AccountRow, *, reading: bool) -> Position:
        pos = self.ctx.clock.position(row, reading=reading)
        if pos.changed:
            self.ctx.storage.set_progress(row.id, pos.step, pos.stepped_at)
        return pos

    def _plan(self, data: dict[str, Any]) -> tuple[Step, ...]:
        match = _FIXTURE.search(str(data.get("additional_information", "")))
        if match and match.group(1) in self.fixture_statuses:
            target = match.group(1)
            steps = [Step("SUBMITTED")] + ([Step(target)] if target != "SUBMITTED" else [])
            return check_plan(self.machine, steps)
        if self.fault("alp_status_goes_backward"):
            return (Step("ACTIVE"), Step("SUBMITTED"))
        return self.default_plan

    def _keep(self, part: str, value: Any) -> Any:
        """Only the keys the spec declares for ``part`` (create ignores unknown keys)."""
        if not isinstance(value, dict):
            return value
        return {k: v for k, v in value.items() if k in self.known[part]}

    async def _documents(self, docs: list[dict[str, Any]]) -> list[NewDocument]:
        out = []
        for doc in docs:
            size, digest, data = 0, None, None
            if "content" in doc:
                content = doc["content"]
                if len(content) > self.content_limit and not self.fault("alp_no_32mb_limit"):
                    raise ApiError(422, f"document content is longer than {self.content_limit}"
                                        " base64 characters (32 MB)")
                try:
                    if len(content) > _BIG:
                        size, digest = await to_thread.run_sync(decode_base64, content)
                    else:
                        size, digest = decode_base64(content)
                except ValueError as exc:
                    raise ApiError(422, str(exc)) from None
            else:
                data = doc.get("content_data")
            out.append(NewDocument(new_id(), doc["document_type"], doc.get("document_sub_type"),
                                   doc.get("mime_type"), size, digest, data))
        return out

    def render(self, row: AccountRow, current: Step, docs: list[DocumentRow] | None,
               entities: frozenset[str] | None = None) -> dict[str, Any]:
        """The account as the API answers: no tax_id, employment_status in upper case."""
        b = row.body
        out: dict[str, Any] = {
            "id": row.id,
            "account_number": b["account_number"],
            "status": current.status,
            "crypto_status": "INACTIVE",
            "currency": "USD",
            "last_equity": 0 if self.fault("alp_last_equity_number") else "0",
            "created_at": row.created_at,
            "account_type": b.get("account_type", "trading"),
            "account_sub_type": None,
            "enabled_assets": b.get("enabled_assets", ["us_equity"]),
            "kyc_results": None,
        }
        if self.fault("alp_missing_account_number"):
            del out["account_number"]
        identity = dict(b["identity"])
        if not self.fault("alp_tax_id_echoed"):
            identity.pop("tax_id", None)
        disclosures = dict(b["disclosures"], is_discretionary=False)
        if isinstance(disclosures.get("employment_status"), str):
            disclosures["employment_status"] = disclosures["employment_status"].upper()
        nested = {
            "contact": b["contact"],
            "identity": identity,
            "disclosures": disclosures,
            "agreements": b["agreements"],
            "trusted_contact": b.get("trusted_contact"),
        }
        for part, value in nested.items():
            # alpaca-py parses every nested key it finds: a null one breaks it, so leave it out.
            if value is not None and (entities is None or part in entities):
                out[part] = value
        if docs is not None:
            out["documents"] = [_document(d) for d in docs]
        return out

    # accounts ---------------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        data = await self.json_body(request, self.schema("POST", ACCOUNTS))
        docs = await self._documents(data.get("documents", []))
        plan = self._plan(data)
        body = {
            "account_number": f"9{secrets.randbelow(10**8):08d}",
            "account_type": data.get("account_type", "trading"),
            "enabled_assets": data.get("enabled_assets", ["us_equity"]),
            "contact": self._keep("contact", data["contact"]),
            "identity": self._keep("identity", data["identity"]),
            "disclosures": self._keep("disclosures", data["disclosures"]),
            "agreements": [self._keep("agreement", a) for a in data["agreements"]],
            "trusted_contact": self._keep("trusted_contact", data.get("trusted_contact")),
        }
        email = None
        if not self.fault("alp_duplicate_email_accepted"):
            email = data["contact"]["email_address"].lower()
        try:
            row = self.ctx.storage.insert_account(
                id=new_id(), dialect=self.name, email=email, plan=plan,
                now=self.ctx.clock.now(), body=body, documents=docs,
            )
        except DuplicateEmail:
            raise ApiError(409, "an account with this email address already exists") from None
        stored = self.ctx.storage.documents(row.id) if docs else []
        status = 201 if self.fault("alp_create_answers_201") else 200
        return json_response(self.render(row, plan[0], stored), status)

    async def list(self, request: Request) -> Response:
        q = self.query(request, self.schema("GET", ACCOUNTS))
        default = "asc" if self.fault("alp_list_oldest_first") else "desc"
        if self.fault("alp_5xx_on_query") and "query" in q:
            raise RuntimeError("deliberate fault: query parameter crashes the list")
        rows = self.ctx.storage.list_accounts(
            self.name,
            descending=q.get("sort", default) == "desc",
            created_after=moment_param(q.get("created_after"), "created_after", 422),
            created_before=moment_param(q.get("created_before"), "created_before", 422),
        )
        statuses = frozenset(q.get("status", ()))
        tokens = str(q.get("query", "")).lower().split()
        entities = frozenset(q.get("entities", ()))
        out: list[dict[str, Any]] = []
        for row in rows:
            current = self.ctx.clock.position(row, reading=False).current
            if statuses and current.status not in statuses:
                continue
            if tokens and not _matches(row, tokens):
                continue
            docs = self.ctx.storage.documents(row.id) if "documents" in entities else None
            out.append(self.render(row, current, docs, entities))
            if len(out) >= self.profile.pagination.max_limit:
                break
        return json_response(out)

    async def get(self, request: Request) -> Response:
        row = self._row(request)
        pos = self._position(row, reading=True)
        return json_response(self.render(row, pos.current, self.ctx.storage.documents(row.id)))

    async def update(self, request: Request) -> Response:
        row = self._row(request)
        op = self.schema("PATCH", ACCOUNT)
        data = await self.json_body(request, op, validate=False)
        smuggled = None
        if self.fault("alp_patch_accepts_tax_id") and isinstance(data.get("identity"), dict):
            smuggled = data["identity"].pop("tax_id", None)
        op.validate_body(data)
        if smuggled is not None:
            data["identity"]["tax_id"] = smuggled
        pos = self._position(row, reading=False)
        if pos.current.status == self.machine.closed:
            # A valid request in conflict with the account's state: 409, which the spec
            # documents, keeps schema-valid requests out of the 422 "invalid value" class.
            raise ApiError(409, "the account is closed and cannot be changed")
        body = dict(row.body)
        for part in ("contact", "identity", "disclosures"):
            if part in data:
                body[part] = {**body[part], **data[part]}
        for part in ("trusted_contact", "enabled_assets"):
            if part in data:
                body[part] = data[part]
        email = None
        if "email_address" in data.get("contact", {}) and not self.fault(
            "alp_duplicate_email_accepted"
        ):
            email = data["contact"]["email_address"].lower()
        try:
            self.ctx.storage.update_account(row.id, body, email=email)
        except DuplicateEmail:  # the spec documents no 409 for PATCH: a value not allowed
            raise ApiError(422, "contact.email_address: another account uses this email"
                           " address") from None
        updated = AccountRow(row.seq, row.id, row.dialect, row.created_at, row.plan, pos.step,
                             pos.stepped_at, body)
        return json_response(self.render(updated, pos.current,
                                         self.ctx.storage.documents(row.id)))

    async def close(self, request: Request) -> Response:
        row = self._row(request)
        current = self._position(row, reading=False).current
        closed = self.machine.closed
        if current.status == closed and not self.fault("alp_close_twice_accepted"):
            raise ApiError(409, "the account is already closed")
        if current.status != closed and not self.machine.allows(current.status, closed):
            raise ApiError(409, f"an account in status {current.status} cannot be closed")
        plan = (current, Step(closed))
        self.ctx.storage.update_account(row.id, row.body, plan=plan, step=1,
                                        stepped_at=self.ctx.clock.now())
        if self.fault("alp_close_answers_200"):
            updated = AccountRow(row.seq, row.id, row.dialect, row.created_at, plan, 1, 0, row.body)
            return json_response(self.render(updated, plan[1], None))
        return empty(204)

    # documents and CIP -----------------------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        row = self._row(request)
        data = await self.json_body(request, self.schema("POST", ACCOUNT + "/documents/upload"))
        docs = await self._documents(data)
        stored = self.ctx.storage.add_documents(row.id, docs)
        if self.fault("alp_upload_answers_200"):
            return json_response([{"id": d.id, "document_type": d.document_type} for d in stored])
        return empty(204)

    async def list_documents(self, request: Request) -> Response:
        row = self._row(request)
        return json_response([_document(d) for d in self.ctx.storage.documents(row.id)])

    async def submit_cip(self, request: Request) -> Response:
        row = self._row(request)
        data = await self.json_body(request, self.schema("POST", ACCOUNT + "/cip"))
        fields = {k: v for k, v in data.items()
                  if k not in ("id", "account_id", "created_at", "updated_at")}
        record = self.ctx.storage.put_cip(row.id, new_id(), fields)
        return json_response(_cip_json(record))

    async def get_cip(self, request: Request) -> Response:
        row = self._row(request)
        record = self.ctx.storage.get_cip(row.id)
        if record is None:
            # The contract's reading (spec, getCip): nothing submitted yet is an empty record,
            # so every operation linked from createAccount reaches a fresh account.
            return json_response({"account_id": row.id})
        return json_response(_cip_json(record))


def _cip_json(record: CipRow) -> dict[str, Any]:
    return {"id": record.id, "account_id": record.account_id, **record.body,
            "created_at": record.created_at, "updated_at": record.updated_at}


def _document(d: DocumentRow) -> dict[str, Any]:
    return {"id": d.id, "document_type": d.document_type, "document_sub_type": d.document_sub_type,
            "mime_type": d.mime_type, "created_at": d.created_at}


def _matches(row: AccountRow, tokens: list[str]) -> bool:
    """Every token matches the account number, a name, the email or the phone."""
    b = row.body
    contact, identity = b.get("contact", {}), b.get("identity", {})
    haystack = " ".join(
        str(v or "") for v in (b.get("account_number"), identity.get("given_name"),
                               identity.get("middle_name"), identity.get("family_name"),
                               contact.get("email_address"), contact.get("phone_number"))
    ).lower()
    return all(t in haystack for t in tokens)
