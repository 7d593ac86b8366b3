"""Portier's settings: environment variables (also read from `.env`), read once and typed.

The names are the contract in SPEC §3. Secrets are `SecretStr`, so they never show in `repr`,
logs or error messages; `load_settings` turns pydantic's errors into one line per bad value.
"""

import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DB_URL = re.compile(r"^(sqlite|postgresql)(\+\w+)?://")
SECRET_SHAPES = {  # matched in full
    "stripe_secret_key": re.compile(r"[sr]k_(test|live)_\S+"),
    "stripe_webhook_secret": re.compile(r"whsec_\S+"),
    "telegram_bot_token": re.compile(r"\d+:[A-Za-z0-9_-]+"),
    "slack_bot_token": re.compile(r"xoxb-[A-Za-z0-9-]+"),
    # A Fernet key: 32 bytes in URL-safe base64 (cryptography's Fernet.generate_key()).
    "data_key": re.compile(r"[A-Za-z0-9_-]{43}="),
    # Telegram's rule for setWebhook's secret_token.
    "telegram_webhook_secret": re.compile(r"[A-Za-z0-9_-]{1,256}"),
}
MIN_LINK_SECRET = 16

# What each setting should look like, for error messages (keyed by environment variable).
EXPECTED = {
    "DATABASE_URL": "a sqlite:// or postgresql:// URL",
    "STRIPE_SECRET_KEY": "a key starting with sk_test_, sk_live_, rk_test_ or rk_live_",
    "STRIPE_WEBHOOK_SECRET": "a secret starting with whsec_",
    "STRIPE_API_BASE": "an http(s) URL",
    "TELEGRAM_BOT_TOKEN": "a bot token like 123456:ABC-DEF (from @BotFather)",
    "TELEGRAM_API_BASE": "an http(s) URL",
    "TELEGRAM_WEBHOOK_URL": "an http(s) URL",
    "TELEGRAM_WEBHOOK_SECRET": "1-256 characters of A-Z, a-z, 0-9, _ and -",
    "TELEGRAM_ADMIN_IDS": "comma-separated Telegram user ids (integers)",
    "SLACK_BOT_TOKEN": "a Slack bot token starting with xoxb-",
    "SLACK_SIGNING_SECRET": "a Slack signing secret",
    "SLACK_API_BASE": "an http(s) URL",
    "SLACK_CLIENT_ID": "the app's client id, like 1111111111.2222222222",
    "SLACK_CLIENT_SECRET": "the app's client secret",
    "SLACK_OAUTH_BASE": "an http(s) URL",
    "PORTIER_DATA_KEY": "a Fernet key (32 bytes in URL-safe base64, 44 characters)",
    "PORTIER_HOST": "a host name or IP address",
    "PORTIER_PORT": "an integer 1-65535",
    "PORTIER_PUBLIC_URL": "an http(s) URL",
    "PORTIER_CATALOG": "a file path",
    "PORTIER_LINK_SECRET": f"at least {MIN_LINK_SECRET} characters",
    "PORTIER_API_KEY": "a bearer key",
    "PORTIER_LOCALE": "en or de",
    "PORTIER_SEND_RATE": "a positive integer (messages per second)",
    "PORTIER_LOG_FORMAT": "console or json",
}


class SettingsError(Exception):
    """A setting is missing or malformed; the message has one line per problem."""


def _env(name: str, default: Any = None, **kwargs: Any) -> Any:
    return Field(default, validation_alias=name, **kwargs)


class Settings(BaseSettings):
    """Every setting Portier reads, validated; build it with `load_settings`."""

    model_config = SettingsConfigDict(
        env_file=".env",
        extra="ignore",
        env_ignore_empty=True,  # `KEY=` in .env means unset
        hide_input_in_errors=True,
        frozen=True,
    )

    database_url: str = _env("DATABASE_URL", "sqlite:///portier.db", repr=False)
    stripe_secret_key: SecretStr | None = _env("STRIPE_SECRET_KEY")
    stripe_webhook_secret: SecretStr | None = _env("STRIPE_WEBHOOK_SECRET")
    stripe_api_base: str = _env("STRIPE_API_BASE", "https://api.stripe.com")
    telegram_bot_token: SecretStr | None = _env("TELEGRAM_BOT_TOKEN")
    telegram_api_base: str = _env("TELEGRAM_API_BASE", "https://api.telegram.org/bot")
    telegram_webhook_url: str | None = _env("TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret: SecretStr | None = _env("TELEGRAM_WEBHOOK_SECRET")
    telegram_admin_ids: Annotated[frozenset[int], NoDecode] = _env(
        "TELEGRAM_ADMIN_IDS", frozenset()
    )
    slack_bot_token: SecretStr | None = _env("SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = _env("SLACK_SIGNING_SECRET")
    slack_api_base: str = _env("SLACK_API_BASE", "https://slack.com/api/")
    slack_client_id: str | None = _env("SLACK_CLIENT_ID", pattern=r"^\d+\.\d+$")
    slack_client_secret: SecretStr | None = _env("SLACK_CLIENT_SECRET")
    slack_oauth_base: str = _env("SLACK_OAUTH_BASE", "https://slack.com/oauth/v2/authorize")
    data_key: SecretStr | None = _env("PORTIER_DATA_KEY")
    host: str = _env("PORTIER_HOST", "127.0.0.1", min_length=1)
    port: int = _env("PORTIER_PORT", 8080, ge=1, le=65535)
    public_url: str = _env("PORTIER_PUBLIC_URL", "http://localhost:8080")
    catalog_path: Path = _env("PORTIER_CATALOG", Path("catalog.toml"))
    link_secret: SecretStr | None = _env("PORTIER_LINK_SECRET")
    api_key: SecretStr | None = _env("PORTIER_API_KEY")
    locale: Literal["en", "de"] = _env("PORTIER_LOCALE", "en")
    send_rate: int = _env("PORTIER_SEND_RATE", 30, gt=0)
    # Seconds between two edits of a broadcast's progress message: Telegram takes an edit of
    # one message about every few seconds (tests use less).
    progress_every: float = _env("PORTIER_PROGRESS_EVERY", 4.0, gt=0, le=60)
    log_format: Literal["console", "json"] = _env("PORTIER_LOG_FORMAT", "console")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not DB_URL.match(value):
            raise ValueError("unsupported database URL")
        return value

    @field_validator(
        "stripe_api_base", "telegram_api_base", "telegram_webhook_url", "slack_api_base",
        "slack_oauth_base",
    )
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        # Without the trailing slash, callers can append paths.
        return _http_url(value).rstrip("/")

    @field_validator(*SECRET_SHAPES)
    @classmethod
    def _secret_shape(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        shape = SECRET_SHAPES[str(info.field_name)]
        if value is not None and not shape.fullmatch(value.get_secret_value()):
            raise ValueError("malformed secret")
        return value

    @field_validator("telegram_admin_ids", mode="before")
    @classmethod
    def _admin_ids(cls, value: Any) -> Any:
        """Parse `1, 2,3` into ints (pydantic-settings would expect JSON)."""
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            if not all(re.fullmatch(r"-?\d+", part) for part in parts):
                raise ValueError("not comma-separated integers")
            return frozenset(int(part) for part in parts)
        return value

    @property
    def telegram_enabled(self) -> bool:
        """Whether the Telegram channel is on (a bot token is set)."""
        return self.telegram_bot_token is not None

    @property
    def slack_enabled(self) -> bool:
        """Whether the Slack channel is on: a signing secret with a bot token (one
        workspace) or with OAuth's client id and secret (many)."""
        return self.slack_signing_secret is not None and (
            self.slack_bot_token is not None or self.slack_oauth)

    @property
    def slack_oauth(self) -> bool:
        """Whether workspaces install the app by OAuth (client id and secret are set)."""
        return self.slack_client_id is not None and self.slack_client_secret is not None

    @property
    def telegram_webhook_mode(self) -> bool:
        """Whether Telegram updates arrive by webhook rather than long polling."""
        return self.telegram_webhook_url is not None

    def require_for_run(self) -> None:
        """Raise SettingsError listing everything `portier run` needs but lacks."""
        link_secret = self.link_secret.get_secret_value() if self.link_secret else ""
        checks = [
            (self.stripe_secret_key is None, "STRIPE_SECRET_KEY", ""),
            # Refuse to start rather than accept webhooks nobody can verify.
            (self.stripe_webhook_secret is None, "STRIPE_WEBHOOK_SECRET", " to verify webhooks"),
            (len(link_secret) < MIN_LINK_SECRET, "PORTIER_LINK_SECRET", ""),
            (
                self.telegram_webhook_url is not None and self.telegram_webhook_secret is None,
                "TELEGRAM_WEBHOOK_SECRET",
                " when TELEGRAM_WEBHOOK_URL is set",
            ),
            (
                self.slack_bot_token is not None and self.slack_signing_secret is None,
                "SLACK_SIGNING_SECRET",
                " when SLACK_BOT_TOKEN is set",
            ),
            (
                self.slack_signing_secret is not None and self.slack_bot_token is None
                and self.slack_client_id is None and self.slack_client_secret is None,
                "SLACK_BOT_TOKEN",
                " when SLACK_SIGNING_SECRET is set (or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET)",
            ),
            (
                self.slack_client_id is not None and self.slack_client_secret is None,
                "SLACK_CLIENT_SECRET",
                " when SLACK_CLIENT_ID is set",
            ),
            (
                self.slack_client_secret is not None and self.slack_client_id is None,
                "SLACK_CLIENT_ID",
                " when SLACK_CLIENT_SECRET is set",
            ),
            (
                self.slack_oauth and self.slack_signing_secret is None,
                "SLACK_SIGNING_SECRET",
                " when SLACK_CLIENT_ID is set",
            ),
            (
                self.slack_oauth and self.data_key is None,
                "PORTIER_DATA_KEY",
                " with SLACK_CLIENT_ID (installations' tokens are stored encrypted)",
            ),
        ]
        problems = [
            f"{env}: required{why}, expected {EXPECTED[env]}" for bad, env, why in checks if bad
        ]
        if problems:
            raise SettingsError("\n".join(problems))

    def secrets(self) -> list[str]:
        """Return every secret value that is set, for log redaction."""
        values = [
            value.get_secret_value()
            for value in self.__dict__.values()
            if isinstance(value, SecretStr)
        ]
        password = urlsplit(self.database_url).password
        return values + ([password] if password else [])


SECRET_ENV = {
    str(info.validation_alias)
    for info in Settings.model_fields.values()
    if SecretStr in get_args(info.annotation)
}
ENV_NAMES = {name: str(info.validation_alias) for name, info in Settings.model_fields.items()}


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and `.env`; keyword overrides use attribute names."""
    unknown = set(overrides) - set(ENV_NAMES)
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    try:
        return Settings(**{ENV_NAMES[name]: value for name, value in overrides.items()})
    except ValidationError as exc:
        # `from None`: the chained ValidationError would carry the raw values.
        raise SettingsError(_describe(exc)) from None


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("not an http(s) URL")
    return value


def _describe(exc: ValidationError) -> str:
    """Turn pydantic's errors into one line per bad setting, never echoing a secret."""
    lines: dict[str, str] = {}
    for error in exc.errors():
        env = str(error["loc"][0])
        line = f"{env}: expected {EXPECTED.get(env, 'a valid value')}"
        if env not in SECRET_ENV:
            line += f", got {_hide_password(error['input'])!r}"
        lines.setdefault(env, line)
    return "\n".join(lines.values())


def _hide_password(value: Any) -> Any:
    """Mask the password of a URL such as postgresql://user:pw@host/db."""
    if isinstance(value, str):
        return re.sub(r"(//[^/:@]*):[^@]*@", r"\1:***@", value)
    return value
