"""One typed, frozen Settings object, read once. Nothing else reads os.environ."""

from __future__ import annotations

import ipaddress
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings from POMBO_* environment variables and an optional config file (POMBO_CONFIG)."""

    model_config = SettingsConfigDict(env_prefix="POMBO_", env_file=None, frozen=True, extra="ignore")

    database_url: str = Field(default="sqlite:///pombo.db")
    redis_url: str | None = None
    timezone: str = "America/Sao_Paulo"
    adm_customer_id: int = 2
    public_url: str | None = None  # for kannel dlr-url; defaults to the serve address
    log_level: str = "INFO"
    log_json: bool = True
    # trusted reverse proxies whose X-Forwarded-For is believed
    trusted_proxies: tuple[str, ...] = ()
    # delivery truth: how often waiting messages are reconciled, TWW is polled, callbacks go out
    reconcile_every: float = 10.0
    poll_every: float = 30.0
    callback_every: float = 1.0
    callback_max_tries: int = 8
    callback_base_delay: float = 2.0
    # customer callbacks and rurl may reach only public addresses; a private deployment names
    # the ranges its callbacks may reach besides (JSON list of CIDRs, e.g. ["10.0.0.0/8"]).
    # The cloud metadata addresses stay refused whatever is allowed.
    callback_allow: tuple[str, ...] = ()
    callback_concurrency: int = 4  # pushes in flight per customer (per worker)
    callback_timeout: float = 10.0  # one push, connect to answer
    # slow clients: the headers must arrive within header_timeout seconds of the connection
    # (or of the request's first byte on a kept-alive one), the body within body_timeout of its
    # start (else 408); limit_concurrency bounds connections + requests per worker (503 past it)
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    limit_concurrency: int = 1000
    not_found_after: float = 300.0
    # Kannel: seconds after a multi-part message's first final receipt before its parts are
    # counted (each part has a receipt of its own; fewer than charged is warned about)
    kannel_parts_settle: float = Field(default=60.0, ge=0)
    background_jobs: bool = True  # tests that drive the jobs by hand turn them off
    # PostgreSQL: false commits sends without waiting for the WAL flush (~25% more sends/s here);
    # a crash of the database server may then lose the last moments of accepted sends, each
    # together with its charge. Durable by default.
    pg_synchronous_commit: bool = True
    # GetUserID tsid=1: a user keeps at most this many live minted tokens (one more revokes its
    # oldest), and each expires this many seconds after it was minted (30 days). Tokens from
    # provisioning or `pombo token issue` are neither counted nor expired.
    minted_tokens_per_user: int = Field(default=20, ge=1)
    minted_token_ttl: float = Field(default=30 * 86_400.0, gt=0)
    # observability: /metrics answers 401 without `Authorization: Bearer <metrics_token>` when
    # it is set; access_log writes one structured line per HTTP request (tokens and passwords
    # in the query masked)
    metrics_token: SecretStr | None = None
    access_log: bool = False
    # rejected requests are counted in memory and written this often (seconds)
    rejections_flush_every: float = Field(default=5.0, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone: {value!r}") from exc
        return value

    @field_validator("callback_allow")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"callback_allow: not a network: {item!r}") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The timezone object for POMBO_TIMEZONE."""
        return ZoneInfo(self.timezone)


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and POMBO_CONFIG, a KEY=VALUE file, when set) once."""
    import os

    config_file = os.environ.get("POMBO_CONFIG")
    if config_file:
        return Settings(_env_file=config_file, **overrides)  # type: ignore[call-arg, arg-type]
    return Settings(**overrides)  # type: ignore[arg-type]  # pydantic validates the overrides
