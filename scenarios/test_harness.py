"""Rules about the suite itself: the production guard and the default pace for remote targets.

These build targets with brokercert.target.build_target and send nothing over the network.
Rules: specs/alpaca/1.1.1/requirements.yaml (reference sheet shared/reference/alpaca.md
section 9, Production; DESIGN.md, Safety with real targets) and
specs/buildmarkets/1.0.0/requirements.yaml (Buildmarkets llms.txt, base URLs and rate limits;
Error Codes page, 10 requests per second and 300 per minute per key).
"""

from __future__ import annotations

import time

import httpx
import pytest

from brokercert.errors import UserError
from brokercert.pytest_plugin import check
from brokercert.target import Credentials, build_target, parse_rate

# Placeholder credentials: nothing is ever sent with them.
_CREDENTIALS = Credentials("brokercert-harness-key", "brokercert-harness-secret")
_PACED_REQUESTS = 3


def _spellings(host: str) -> list[str]:
    """Ways a user may write a base URL on ``host``."""
    return [
        f"https://{host}",
        f"https://{host}/",
        f"https://{host.upper()}",
        f"https://{host}:443",
        f"https://{host}./v1-root",
        f"http://{host}",
    ]


@pytest.mark.requirement("ALP-AUTH-004", "BM-AUTH-004")
def test_production_host_is_refused_without_allow_production(profile, catalog):
    """The suite refuses every spelling of the dialect's production host unless
    --allow-production is given, and accepts it with that flag."""
    rid = next(i for i in ("ALP-AUTH-004", "BM-AUTH-004") if i in catalog.ids)
    check(bool(profile.production_hosts), rid, "the profile names the production host(s)", "none")
    for host in profile.production_hosts:
        for url in _spellings(host):
            try:
                target = build_target(url, profile, _CREDENTIALS)
            except UserError as exc:
                check(
                    "--allow-production" in str(exc),
                    rid,
                    "a refusal that names --allow-production",
                    str(exc),
                )
            else:
                check(
                    False,
                    rid,
                    f"{url} refused without --allow-production",
                    f"a target was built for {target.base_url}",
                )
            allowed = build_target(url, profile, _CREDENTIALS, allow_production=True)
            check(
                allowed.host.rstrip(".") == host and allowed.allow_production,
                rid,
                f"{url} accepted with --allow-production",
                allowed.describe(),
            )


def _non_loopback_hosts(profile) -> list[str]:
    return [*profile.sandbox_hosts, "staging.example.com", "203.0.113.20"]


@pytest.mark.requirement("BM-ERR-006")
def test_default_pace_for_remote_target_is_within_documented_rate(profile):
    """Against a target that is not on the loopback interface, the suite's default pace stays
    within the documented rate limit (and the pace is enforced, not only configured)."""
    rid = "BM-ERR-006"
    documented = profile.rate_limit.per_second  # 300 per minute = 5 per second
    limit_text = f"{profile.rate_limit.requests} per {profile.rate_limit.per_seconds:g} s"
    for host in _non_loopback_hosts(profile):
        target = build_target(f"https://{host}", profile, _CREDENTIALS)
        check(
            target.rate is not None and target.rate <= documented,
            rid,
            f"{host}: a default pace of at most {limit_text}",
            f"{target.rate} per second",
        )
        spec = target.rate_limit_spec()  # what the fuzzing stage is given
        check(
            spec is not None and parse_rate(spec) <= documented,
            rid,
            f"{host}: a fuzzing pace of at most {limit_text}",
            spec,
        )
    # The pace holds on the wire: N requests through the target's client take at least
    # N-1 intervals of the documented rate (an in-memory transport stands in for the host).
    target = build_target(f"https://{_non_loopback_hosts(profile)[0]}", profile, _CREDENTIALS)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=[]))
    with target.client(transport=transport) as client:
        started = time.monotonic()
        for _ in range(_PACED_REQUESTS):
            client.get("/v1/accounts")
        elapsed = time.monotonic() - started
    fastest = (_PACED_REQUESTS - 1) / documented
    check(
        elapsed >= fastest * 0.95,
        rid,
        f"{_PACED_REQUESTS} requests spread over at least {fastest:.2f} s",
        f"{elapsed:.3f} s",
    )
