"""Settings of one reference-server instance."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_data_dir

DEV_KEY = "brokercert-dev-key"
DEV_SECRET = "brokercert-dev-secret"
DIALECTS = ("alpaca", "buildmarkets")

# Largest accepted request body per dialect. Big enough that the documented document
# limit is judged by the handler (alpaca: one document just over 32 MiB of base64 text
# plus the JSON around it; buildmarkets: a file just over 10 MiB decoded, which is
# about 14 million base64 characters), small enough to bound memory.
DEFAULT_BODY_CAP = {
    "alpaca": 36 * 1024 * 1024,
    "buildmarkets": 16 * 1024 * 1024,
}


def default_db_path() -> Path:
    return Path(user_data_dir("brokercert", appauthor=False)) / "reference-server.sqlite3"


@dataclass(frozen=True)
class ServerConfig:
    """Everything a server instance needs; the defaults are a working dev setup.

    ``db=None`` means the per-user data folder; ``":memory:"`` keeps nothing.
    ``kyc_delay`` is the seconds an account spends in each planned status (0: every
    read of the account sees the next one). ``max_body_mb`` overrides both dialects'
    body caps.
    """

    key: str = DEV_KEY
    secret: str = DEV_SECRET
    db: Path | str | None = None
    kyc_delay: float = 1.0
    faults: frozenset[str] = field(default_factory=frozenset)
    max_body_mb: float | None = None
    host: str = "127.0.0.1"
    port: int = 8700

    def __post_init__(self) -> None:
        from brokercert.server._faults import FAULTS

        object.__setattr__(self, "faults", frozenset(self.faults))
        unknown = sorted(self.faults - set(FAULTS))
        if unknown:
            raise ValueError(
                f"unknown fault {unknown[0]!r}; `brokercert faults` lists the known ones"
            )
        if not self.key or not self.secret:
            raise ValueError("the API key and secret must not be empty")
        if ":" in self.key:
            raise ValueError("the API key must not contain ':' (HTTP Basic separates on it)")
        if self.kyc_delay < 0:
            raise ValueError("kyc_delay must be 0 or more seconds")
        if self.max_body_mb is not None and self.max_body_mb <= 0:
            raise ValueError("max_body_mb must be positive")

    @property
    def database(self) -> Path | str:
        return default_db_path() if self.db is None else self.db

    @property
    def dev_credentials(self) -> bool:
        return self.key == DEV_KEY and self.secret == DEV_SECRET

    def body_cap(self, dialect: str) -> int:
        if self.max_body_mb is not None:
            return int(self.max_body_mb * 1024 * 1024)
        return DEFAULT_BODY_CAP[dialect]
