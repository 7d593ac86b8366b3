"""Settings: read from the environment and `.env`, validated, secrets never shown."""

import traceback
from pathlib import Path

import pytest

from bot.settings import ENV_NAMES, Settings, SettingsError, load_settings

STRIPE_KEY = "sk_test_51SuperSecretKey"
WEBHOOK_SECRET = "whsec_SuperSecretWebhook"
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawZ"
TG_SECRET = "tg-secret_Value1"
SLACK_TOKEN = "xoxb-slack-secret-token"
SLACK_SIGNING = "slack-signing-secret-value"
LINK_SECRET = "link-secret-0123456789"
API_KEY = "api-key-secret-value"
DB_PASSWORD = "db-pass-word"

FULL_ENV = {
    "DATABASE_URL": f"postgresql+asyncpg://portier:{DB_PASSWORD}@db:5432/portier",
    "STRIPE_SECRET_KEY": STRIPE_KEY,
    "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "STRIPE_API_BASE": "http://127.0.0.1:12111",
    "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
    "TELEGRAM_API_BASE": "http://127.0.0.1:8081/bot",
    "TELEGRAM_WEBHOOK_URL": "https://bot.example.com/telegram/webhook",
    "TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
    "TELEGRAM_ADMIN_IDS": "42, 7,1001",
    "SLACK_BOT_TOKEN": SLACK_TOKEN,
    "SLACK_SIGNING_SECRET": SLACK_SIGNING,
    "SLACK_API_BASE": "http://127.0.0.1:8082/api/",
    "PORTIER_HOST": "0.0.0.0",
    "PORTIER_PORT": "9000",
    "PORTIER_PUBLIC_URL": "https://billing.example.com/",
    "PORTIER_CATALOG": "/etc/portier/catalog.toml",
    "PORTIER_LINK_SECRET": LINK_SECRET,
    "PORTIER_API_KEY": API_KEY,
    "PORTIER_LOCALE": "de",
    "PORTIER_SEND_RATE": "10",
    "PORTIER_LOG_FORMAT": "json",
}
SECRETS = [
    STRIPE_KEY,
    WEBHOOK_SECRET,
    BOT_TOKEN,
    TG_SECRET,
    SLACK_TOKEN,
    SLACK_SIGNING,
    LINK_SECRET,
    API_KEY,
    DB_PASSWORD,
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Start each test with none of Portier's variables set and no `.env` around."""
    for name in ENV_NAMES.values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def error_for(**overrides: object) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(**overrides)
    return str(info.value)


def test_defaults() -> None:
    """It uses the documented defaults when nothing is set."""
    s = load_settings()
    assert s.database_url == "sqlite:///portier.db"
    assert s.stripe_secret_key is None and s.stripe_webhook_secret is None
    assert s.stripe_api_base == "https://api.stripe.com"
    assert s.telegram_api_base == "https://api.telegram.org/bot"
    assert s.telegram_webhook_url is None
    assert s.telegram_admin_ids == frozenset()
    assert s.slack_api_base == "https://slack.com/api/"
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.public_url == "http://localhost:8080"
    assert s.catalog_path == Path("catalog.toml")
    assert (s.locale, s.send_rate, s.log_format) == ("en", 30, "console")
    assert not s.telegram_enabled and not s.slack_enabled and not s.telegram_webhook_mode
    assert s.secrets() == []


def test_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """It reads every variable of SPEC §3 into typed attributes."""
    set_env(monkeypatch, FULL_ENV)
    s = load_settings()
    assert s.database_url == FULL_ENV["DATABASE_URL"]
    assert s.stripe_secret_key is not None
    assert s.stripe_secret_key.get_secret_value() == STRIPE_KEY
    assert s.telegram_bot_token is not None
    assert s.telegram_bot_token.get_secret_value() == BOT_TOKEN
    assert s.telegram_admin_ids == frozenset({42, 7, 1001})
    assert (s.host, s.port, s.send_rate) == ("0.0.0.0", 9000, 10)
    assert s.public_url == "https://billing.example.com"  # trailing slash dropped
    assert s.catalog_path == Path("/etc/portier/catalog.toml")
    assert (s.locale, s.log_format) == ("de", "json")
    assert s.telegram_enabled and s.slack_enabled and s.telegram_webhook_mode
    s.require_for_run()


def test_reads_dotenv_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """It reads `.env` in the working directory; real environment variables win."""
    (tmp_path / ".env").write_text(
        "PORTIER_PORT=9100\n"
        f"STRIPE_SECRET_KEY={STRIPE_KEY}\n"
        "TELEGRAM_ADMIN_IDS=5,6\n"
        "TELEGRAM_WEBHOOK_URL=\n"  # empty means unset
        "SOMETHING_ELSE=ignored\n"
    )
    monkeypatch.setenv("PORTIER_LOCALE", "de")
    monkeypatch.setenv("TELEGRAM_ADMIN_IDS", "9")
    s = load_settings()
    assert s.port == 9100
    assert s.stripe_secret_key is not None
    assert s.stripe_secret_key.get_secret_value() == STRIPE_KEY
    assert s.telegram_admin_ids == frozenset({9})
    assert s.telegram_webhook_url is None
    assert s.locale == "de"


def test_overrides_use_attribute_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyword overrides beat the environment and unknown names are refused."""
    monkeypatch.setenv("PORTIER_PORT", "9000")
    assert load_settings(port=9001, telegram_admin_ids="1,2").port == 9001
    with pytest.raises(TypeError, match="prot"):
        load_settings(prot=1)


def test_ignores_unprefixed_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """A platform's PORT or HOST does not leak into Portier's settings."""
    monkeypatch.setenv("PORT", "1")
    monkeypatch.setenv("HOST", "10.0.0.1")
    monkeypatch.setenv("port", "2")
    s = load_settings()
    assert (s.host, s.port) == ("127.0.0.1", 8080)


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("PORTIER_PORT", "abc", "PORTIER_PORT: expected an integer 1-65535, got 'abc'"),
        ("PORTIER_PORT", "0", "PORTIER_PORT: expected an integer 1-65535, got '0'"),
        ("PORTIER_PORT", "65536", "PORTIER_PORT: expected an integer 1-65535, got '65536'"),
        ("PORTIER_SEND_RATE", "0", "PORTIER_SEND_RATE: expected a positive integer"),
        ("PORTIER_LOCALE", "fr", "PORTIER_LOCALE: expected en or de, got 'fr'"),
        ("PORTIER_LOG_FORMAT", "xml", "PORTIER_LOG_FORMAT: expected console or json, got 'xml'"),
        ("TELEGRAM_ADMIN_IDS", "1,bob", "TELEGRAM_ADMIN_IDS: expected comma-separated"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL: expected a sqlite:// or postgresql://"),
        ("STRIPE_API_BASE", "ftp://stripe", "STRIPE_API_BASE: expected an http(s) URL"),
        ("TELEGRAM_API_BASE", "api.telegram.org", "TELEGRAM_API_BASE: expected an http(s) URL"),
        ("TELEGRAM_WEBHOOK_URL", "/telegram", "TELEGRAM_WEBHOOK_URL: expected an http(s) URL"),
        ("SLACK_API_BASE", "slack.com/api", "SLACK_API_BASE: expected an http(s) URL"),
        ("PORTIER_PUBLIC_URL", "localhost:8080", "PORTIER_PUBLIC_URL: expected an http(s) URL"),
    ],
)
def test_malformed_value_is_one_line(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, expected: str
) -> None:
    """A malformed setting gives one line naming it, what is expected and what was given."""
    monkeypatch.setenv(env, value)
    message = error_for()
    assert "\n" not in message
    assert message.startswith(expected)


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("STRIPE_SECRET_KEY", "pk_test_PublishableNotSecret1"),
        ("STRIPE_SECRET_KEY", "sk_prod_WrongModeSecret1"),
        ("STRIPE_WEBHOOK_SECRET", "wh_NotAWebhookSecret1"),
        ("TELEGRAM_BOT_TOKEN", "AAHdqTcvCH1vGWJxfSeofSAs0K5"),
        ("TELEGRAM_WEBHOOK_SECRET", "has spaces in the secret"),
        ("TELEGRAM_WEBHOOK_SECRET", "x" * 257),
    ],
)
def test_malformed_secret_is_not_echoed(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    """A malformed secret is named with what is expected, but its value never shows."""
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"{env}: expected ")
    assert "\n" not in message
    shown = "".join(traceback.format_exception(info.value))
    assert value not in shown and value[:12] not in shown


def test_one_line_per_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several bad settings give one line each, none of them echoing a secret."""
    set_env(
        monkeypatch,
        {"PORTIER_PORT": "x", "PORTIER_LOCALE": "fr", "STRIPE_WEBHOOK_SECRET": "nope-secret"},
    )
    lines = error_for(telegram_admin_ids="a,b,c").splitlines()
    assert sorted(line.split(":")[0] for line in lines) == [
        "PORTIER_LOCALE",
        "PORTIER_PORT",
        "STRIPE_WEBHOOK_SECRET",
        "TELEGRAM_ADMIN_IDS",
    ]
    assert not any("nope-secret" in line for line in lines)


def test_database_password_is_masked_in_errors() -> None:
    """A rejected database URL is shown with its password masked."""
    message = error_for(database_url=f"mysql://portier:{DB_PASSWORD}@db/portier")
    assert DB_PASSWORD not in message
    assert "mysql://portier:***@db/portier" in message


@pytest.mark.parametrize(
    "url", ["sqlite:///portier.db", "sqlite+aiosqlite:////data/p.db", "postgresql+asyncpg://h/d"]
)
def test_accepts_database_urls(url: str) -> None:
    """It accepts SQLite and PostgreSQL URLs, with or without a driver."""
    assert load_settings(database_url=url).database_url == url


@pytest.mark.parametrize("key", ["sk_test_a1", "sk_live_a1", "rk_test_a1", "rk_live_a1"])
def test_accepts_stripe_keys(key: str) -> None:
    """It accepts secret and restricted keys in test and live mode."""
    assert load_settings(stripe_secret_key=key).stripe_secret_key is not None


def test_repr_and_str_hide_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither repr nor str of the settings shows a secret."""
    set_env(monkeypatch, FULL_ENV)
    s = load_settings()
    for text in (repr(s), str(s), f"{s}"):
        for secret in SECRETS:
            assert secret not in text


def test_secrets_lists_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """secrets() returns every secret that is set, the database password included."""
    set_env(monkeypatch, FULL_ENV)
    assert sorted(load_settings().secrets()) == sorted(SECRETS)


def test_slack_needs_both_values() -> None:
    """Slack is on only with both the bot token and the signing secret."""
    assert not load_settings(slack_bot_token=SLACK_TOKEN).slack_enabled
    assert not load_settings(slack_signing_secret=SLACK_SIGNING).slack_enabled


def test_require_for_run_lists_everything_missing() -> None:
    """Without configuration, `portier run` is refused with one line per missing setting."""
    with pytest.raises(SettingsError) as info:
        load_settings().require_for_run()
    lines = str(info.value).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "PORTIER_LINK_SECRET",
    ]
    assert "at least 16 characters" in lines[2]


BASE = {
    "stripe_secret_key": STRIPE_KEY,
    "stripe_webhook_secret": WEBHOOK_SECRET,
    "link_secret": LINK_SECRET,
}


@pytest.mark.parametrize(
    ("extra", "missing"),
    [
        ({"link_secret": "short-secret"}, "PORTIER_LINK_SECRET: required"),
        ({"telegram_webhook_url": "https://x.example/tg"}, "TELEGRAM_WEBHOOK_SECRET: required"),
        ({"slack_bot_token": SLACK_TOKEN}, "SLACK_SIGNING_SECRET: required"),
        ({"slack_signing_secret": SLACK_SIGNING}, "SLACK_BOT_TOKEN: required"),
    ],
)
def test_require_for_run_names_the_problem(extra: dict[str, str], missing: str) -> None:
    """Each dependent setting that is missing is named on its own line."""
    with pytest.raises(SettingsError) as info:
        load_settings(**{**BASE, **extra}).require_for_run()
    assert str(info.value).startswith(missing)
    assert "\n" not in str(info.value)
    assert "short-secret" not in str(info.value)


def test_require_for_run_accepts_minimal_config() -> None:
    """Stripe keys and a link secret are enough: chat channels are optional."""
    load_settings(**BASE).require_for_run()
    load_settings(**BASE, telegram_bot_token=BOT_TOKEN).require_for_run()


def test_settings_are_frozen() -> None:
    """Settings are read once and cannot be changed afterwards."""
    s = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        s.port = 1  # type: ignore[misc]
    assert isinstance(s, Settings)
