"""Allure labels and attachments for suite tests."""

from __future__ import annotations

import allure

from brokercert.catalog import Catalog
from brokercert.redact import Redactor
from brokercert.report import allure_labels


def apply_labels(catalog: Catalog, requirement_ids: list[str], operation: str | None) -> None:
    allure_labels(catalog, requirement_ids, operation).apply(allure.dynamic)
    if operation:
        # Without a distinct parameter every fuzzed operation shares one historyId.
        allure.dynamic.parameter("operation", operation)


def attach_failure(redactor: Redactor, text: str) -> None:
    allure.attach(
        redactor.text(text)[-20000:],
        name="failure (redacted)",
        attachment_type=allure.attachment_type.TEXT,
    )
