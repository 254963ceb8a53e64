"""Settings: one frozen object built from the environment at start and passed down.

No other module reads ``os.environ``; everything below receives a :class:`Settings`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

SUPPORTED_ALGS: tuple[str, ...] = ("RS256", "ES256")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_DATABASE_URL = "sqlite:///var/idp.db"
KEY_FILE_SUFFIX = ".kek"
LEGACY_KEY_FILE = Path("keys") / "key-encryption-key"
"""Where earlier versions kept the SQLite store's key, relative to the working directory."""
DEFAULT_PASSWORD_MIN_LENGTH = 8
"""NIST SP 800-63B section 3.1.1.2: passwords chosen by a person are at least 8 characters."""
MAX_PASSWORD_LENGTH = 1024
DEFAULT_LEEWAY = 30
"""Seconds of clock skew allowed on a token's exp, nbf and iat (RFC 9068 section 4); what is
kept to answer for a token (revocations, refusals) lives this much past its expiry."""

DEFAULT_BRAND_NAME = "Sign-in"
"""What the pages call the service when IDP_BRAND_NAME is not set."""
LOGO_PATH = "/assets/logo"
"""Where the IdP serves a brand logo given as a local file."""
LOGO_MEDIA_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
}
MAX_LOGO_BYTES = 1024 * 1024
_SCOPE_NAME = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
"""A scope token (RFC 6749 section 3.3)."""

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(Exception):
    """A setting has a bad value; the message names the variable and what it expects."""


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with, resolved and validated."""

    issuer: str
    database_url: str
    key_encryption_key: bytes = field(repr=False)
    key_encryption_key_source: str
    key_encryption_key_file: Path | None = None
    """The SQLite store's key file when IDP_KEY_ENCRYPTION_KEY is not set (None otherwise).
    While the file does not exist yet, ``key_encryption_key`` is empty."""
    access_token_ttl: int = 600
    id_token_ttl: int = 3600
    jwks_max_age: int = 300
    key_rotation_interval: int = 30 * 86400
    key_prepublish: int = 600
    rsa_key_bits: int = 2048
    signing_algs: tuple[str, ...] = SUPPORTED_ALGS
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    key_ring_poll_interval: float = 1.0
    session_idle_timeout: int = 8 * 3600
    session_max_age: int = 7 * 86400
    password_hash_concurrency: int = field(default_factory=lambda: default_hash_concurrency())
    refresh_token_ttl: int = 30 * 86400
    refresh_reuse_grace: int = 3
    login_max_failures: int = 5
    login_max_failures_per_ip: int = 50
    login_failure_window: int = 900
    login_lock_duration: int = 900
    password_min_length: int = DEFAULT_PASSWORD_MIN_LENGTH
    housekeeping_interval: int = 60
    hsts_max_age: int = 365 * 86400
    body_read_timeout: int = 10
    batch_io_threads: bool = True
    """Whether the server's I/O threads run under SCHED_BATCH (idp.http.scheduling)."""
    allow_private_backchannel: bool = False
    metrics_dir: str | None = None
    """Where the worker processes of one server share their metrics (prometheus-client's
    multiprocess mode, PROMETHEUS_MULTIPROC_DIR); None: each process counts on its own."""
    reauth_max_age: int = 300
    """Seconds since a sign-in within which the account pages allow sensitive changes."""
    webauthn_rp_name: str = "Sign-in"
    issuer_configured: bool = True
    """Whether IDP_ISSUER was set; if not, ``idp serve`` derives it from the address served."""
    log_format: str = "plain"
    """``plain`` text lines, or ``json``: one JSON object per line (see ``idp.logs``)."""
    require_par: bool = False
    """Every client must push its authorization requests first (RFC 9126 section 5)."""
    dpop_proof_max_age: int = 60
    """Seconds a DPoP proof is accepted after its iat, plus the leeway (RFC 9449 section 11.1)."""
    dpop_require_nonce: bool = False
    """Whether the token endpoint requires a server nonce in DPoP proofs (RFC 9449 section 8)."""
    dpop_nonce_lifetime: int = 300
    """Seconds between DPoP nonce rotations; a nonce is accepted for one to two of them."""
    brand_name: str = DEFAULT_BRAND_NAME
    """The name the pages show at their top (IDP_BRAND_NAME)."""
    brand_logo_url: str | None = None
    """An https logo the pages show (IDP_BRAND_LOGO_URL as a URL)."""
    brand_logo_file: Path | None = None
    """A local logo file served at LOGO_PATH (IDP_BRAND_LOGO_URL as a path)."""
    templates_dir: Path | None = None
    """The operator's templates, each replacing the package's of the same name."""
    scope_descriptions: tuple[tuple[str, str], ...] = ()
    """Scope and what the consent page says of it, in place of any built-in words."""
    open_registration: bool = False
    """Whether /register accepts public native clients without an initial access token
    (RFC 7591 section 3; IDP_OPEN_REGISTRATION)."""
    registration_rate_limit: int = 20
    """Requests to /register and /register/{client_id} allowed per client address per
    ``registration_rate_window`` (IDP_REGISTRATION_RATE_LIMIT)."""
    registration_rate_window: int = 3600
    """The window of ``registration_rate_limit``, in seconds (IDP_REGISTRATION_RATE_WINDOW)."""

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    @property
    def issuer_is_https(self) -> bool:
        return self.issuer.startswith("https://")

    @property
    def hsts(self) -> bool:
        """Whether answers carry Strict-Transport-Security (RFC 6797): https issuers only."""
        return self.issuer_is_https and self.hsts_max_age > 0

    @property
    def key_encryption_key_missing(self) -> bool:
        """The key file is configured but does not exist yet (see ``idp.keyring.kek``)."""
        return not self.key_encryption_key


def default_hash_concurrency() -> int:
    """Password checks allowed at once by default: one per four cores, at least one.

    Each argon2id check runs on four threads (RFC 9106 parallelism p=4), so this many checks
    fill the cores and no more; the thread answering requests still gets a core.
    """
    return max(1, (os.cpu_count() or 1) // 4)


def parse_duration(name: str, raw: str, *, allow_zero: bool = False) -> int:
    """Parse ``90``, ``90s``, ``15m``, ``12h`` or ``30d`` into whole seconds (at least 1).

    With ``allow_zero`` a duration of ``0`` is accepted too (a feature turned off).
    """
    match = _DURATION.match(raw)
    if not match or int(match.group(1)) < (0 if allow_zero else 1):
        raise ConfigError(
            f"{name}: expected a duration such as 600, 90s, 15m, 12h or 30d, got {raw!r}"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_rp_name(raw: str) -> str:
    """The relying-party name authenticators show beside a passkey (WebAuthn Level 2 5.4.1)."""
    name = raw.strip()
    if not name or len(name) > 64 or not name.isprintable():
        raise ConfigError(
            f"IDP_WEBAUTHN_RP_NAME: expected 1 to 64 printable characters, got {raw!r}"
        )
    return name


def parse_brand_name(raw: str) -> str:
    """The brand the pages show: 1 to 64 printable characters."""
    name = raw.strip()
    if not name or len(name) > 64 or not name.isprintable():
        raise ConfigError(f"IDP_BRAND_NAME: expected 1 to 64 printable characters, got {raw!r}")
    return name


def logo_media_type(path: Path) -> str:
    """The content type a logo file is served with, from its name's suffix."""
    return LOGO_MEDIA_TYPES[path.suffix.lower()]


def parse_brand_logo(raw: str) -> tuple[str | None, Path | None]:
    """IDP_BRAND_LOGO_URL: an https URL (the browser loads it from there) or the path of a
    readable image file (PNG, SVG, JPEG, GIF, WebP or ICO, at most 1 MiB) we serve."""
    name = "IDP_BRAND_LOGO_URL"
    value = raw.strip()
    if not value:
        return None, None
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname or parts.fragment:
            raise ConfigError(f"{name}: expected an https URL or an image file, got {raw!r}")
        return value, None
    path = Path(value).expanduser().resolve()
    if path.suffix.lower() not in LOGO_MEDIA_TYPES:
        kinds = ", ".join(sorted(LOGO_MEDIA_TYPES))
        raise ConfigError(f"{name}: a logo file must end in one of {kinds}, got {raw!r}")
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ConfigError(f"{name}: {path} is not a readable file")
    if path.stat().st_size > MAX_LOGO_BYTES:
        raise ConfigError(f"{name}: {path} is over 1 MiB")
    return None, path


def parse_templates_dir(raw: str) -> Path | None:
    """IDP_TEMPLATES_DIR: an existing directory of template overrides, or unset."""
    if not raw.strip():
        return None
    path = Path(raw.strip()).expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(f"IDP_TEMPLATES_DIR: {path} is not a directory")
    return path


def parse_scope_descriptions(raw: str) -> tuple[tuple[str, str], ...]:
    """IDP_SCOPE_DESCRIPTIONS: a JSON object from scope to the words the consent page shows,
    such as ``{"orders:read": "see your orders"}``."""
    name = "IDP_SCOPE_DESCRIPTIONS"
    if not raw.strip():
        return ()
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ConfigError(f'{name}: expected a JSON object such as {{"scope": "words"}}')
    described = []
    for scope, text in parsed.items():
        if not _SCOPE_NAME.match(scope):
            raise ConfigError(f"{name}: {scope!r} is not a scope name")
        if not isinstance(text, str) or not 0 < len(text.strip()) <= 200:
            raise ConfigError(f"{name}: the words for {scope!r} must be 1 to 200 characters")
        described.append((scope, text.strip()))
    return tuple(described)


def parse_issuer(raw: str) -> str:
    """Validate the issuer identifier (OpenID Connect Discovery 1.0 section 3, RFC 8414 section 2).

    It is an https URL with no query or fragment; plain http is allowed only on a loopback host
    so that a developer can run the service on their own machine.
    """
    name = "IDP_ISSUER"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}: expected an absolute https URL, got {raw!r}")
    if parts.query or parts.fragment or "#" in raw or "?" in raw:
        raise ConfigError(f"{name}: must not contain a query or fragment, got {raw!r}")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"{name}: must use https unless the host is localhost, 127.0.0.1 or [::1], got {raw!r}"
        )
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(f"{name}: has an invalid port, got {raw!r}") from None
    return raw.rstrip("/")


WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104
"""A listen address on every interface, and the loopback address it is reached at."""


def served_issuer(host: str, port: int, tls: bool) -> str:
    """The issuer for a server listening on ``host:port`` when IDP_ISSUER is not set.

    A wildcard address is named by its loopback address. Plain http is only valid on a
    loopback host (see :func:`parse_issuer`), so any other host needs TLS or IDP_ISSUER.
    """
    scheme = "https" if tls else "http"
    name = WILDCARD_HOSTS.get(host, host)
    if scheme == "http" and name not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"IDP_ISSUER: required when serving plain http on {host} (set it to the URL "
            "clients use, https behind a proxy)"
        )
    default_port = 443 if tls else 80
    authority = f"[{name}]" if ":" in name else name
    return parse_issuer(f"{scheme}://{authority}" + ("" if port == default_port else f":{port}"))


def issuer_mismatch(issuer: str, host: str, port: int) -> str | None:
    """Why a loopback issuer does not reach a server on ``host:port``, or None.

    Only a loopback issuer can be compared: any other is reached through a proxy or a name
    this process cannot check.
    """
    parts = urlsplit(issuer)
    if parts.hostname not in LOOPBACK_HOSTS:
        return None
    issuer_port = parts.port or (443 if parts.scheme == "https" else 80)
    served = WILDCARD_HOSTS.get(host, host)
    same_host = "localhost" in (parts.hostname, served) or parts.hostname == served
    if issuer_port == port and same_host and served in LOOPBACK_HOSTS:
        return None
    authority = f"[{host}]" if ":" in host else host
    return (
        f"IDP_ISSUER {issuer} does not match the address served ({authority}:{port}): "
        "discovery and tokens name URLs that do not reach this server"
    )


def parse_database_url(raw: str) -> str:
    """Accept ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``postgresql://...``."""
    name = "IDP_DATABASE_URL"
    if raw.startswith("sqlite:///") and len(raw) > len("sqlite:///"):
        return raw
    if raw.startswith(("postgresql://", "postgres://")) and len(raw.split("://", 1)[1]) > 0:
        return raw
    raise ConfigError(
        f"{name}: expected sqlite:///relative/path.db, sqlite:////absolute/path.db "
        f"or postgresql://user@host:port/database, got {raw!r}"
    )


def sqlite_path(database_url: str) -> Path:
    """The file a ``sqlite:///`` URL names: three slashes relative, four absolute."""
    return Path(database_url[len("sqlite:///") :])


def default_key_file(database_url: str) -> Path:
    """The key file of a SQLite store: beside the database file, named after it.

    Tied to the store it protects, never to the directory a command runs from, so every
    command and server that opens one database finds the one key sealing its signing keys.
    """
    database = sqlite_path(database_url).resolve()
    return database.with_name(database.name + KEY_FILE_SUFFIX)


def decode_key_encryption_key(name: str, raw: str) -> bytes:
    """Decode a base64url key-encryption key and insist on exactly 32 bytes (AES-256)."""
    text = raw.strip()
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigError(f"{name}: expected 32 random bytes encoded as base64url (43 characters)")
    return key


def new_key_encryption_key() -> str:
    """A fresh key-encryption key in the form IDP_KEY_ENCRYPTION_KEY expects."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def create_key_file(path: Path) -> None:
    """Write a new key file (mode 0600) atomically; if another process got there first, keep
    theirs. Only for a store that holds no sealed keys yet (see ``idp.keyring.kek``)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"IDP_KEY_ENCRYPTION_KEY: not set and {path} cannot be created: {exc.strerror or exc}"
        ) from None
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(new_key_encryption_key() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        # link() fails if the name exists, so a concurrent creator never sees a partial file.
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)


def replace_key_file(path: Path, encoded_key: str) -> None:
    """Put a new key into the key file atomically (mode 0600): a reader sees old or new."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(encoded_key.strip() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_key_file(name: str, path: Path) -> bytes:
    """The key held in a key file; ConfigError (naming ``name`` and the file) if unreadable."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{name}: {path} cannot be read: {exc.strerror or exc}") from None
    return decode_key_encryption_key(f"{name} (read from {path})", text)


def _file_key_encryption_key(path: Path, may_be_missing: bool) -> bytes:
    if not path.exists() and not path.is_symlink():
        if may_be_missing:
            return b""
        raise ConfigError(
            f"IDP_KEY_ENCRYPTION_KEY: not set and {path} does not exist; "
            "run `idp migrate` (or any command that writes) to create it"
        )
    return read_key_file("IDP_KEY_ENCRYPTION_KEY", path)


def parse_algs(raw: str) -> tuple[str, ...]:
    algs = tuple(dict.fromkeys(a for a in re.split(r"[\s,]+", raw.strip()) if a))
    if not algs or any(a not in SUPPORTED_ALGS for a in algs):
        raise ConfigError(f"IDP_SIGNING_ALGS: expected one or more of RS256, ES256, got {raw!r}")
    return algs


def parse_trusted_proxies(
    raw: str,
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for item in (p for p in re.split(r"[\s,]+", raw.strip()) if p):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"IDP_TRUSTED_PROXIES: expected IP addresses or CIDR ranges, got {item!r}"
            ) from None
    return tuple(networks)


def parse_log_format(raw: str) -> str:
    value = raw.strip().lower() or "plain"
    if value not in ("plain", "json"):
        raise ConfigError(f"IDP_LOG_FORMAT: expected plain or json, got {raw!r}")
    return value


def parse_flag(name: str, raw: str) -> bool:
    """``1``, ``true``, ``yes``, ``on`` mean on; ``0``, ``false``, ``no``, ``off``, empty off."""
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: expected 1 or 0 (true or false), got {raw!r}")


def _int_in_range(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(f"{name}: expected a whole number from {low} to {high}, got {raw!r}")
    return value


def load_settings(env: Mapping[str, str], *, key_file_may_be_missing: bool = False) -> Settings:
    """Build and validate the settings from an environment mapping; never creates a file.

    Without IDP_KEY_ENCRYPTION_KEY a SQLite store's key is read from its key file beside the
    database (:func:`default_key_file`). With ``key_file_may_be_missing`` a file that does not
    exist yet leaves the key empty, for a command to create it once it has seen that the
    store holds no sealed keys (``idp.keyring.kek.provide_key_file``) or not need it at all.
    """
    issuer = parse_issuer(env.get("IDP_ISSUER") or "http://127.0.0.1:8000")
    database_url = parse_database_url(env.get("IDP_DATABASE_URL", DEFAULT_DATABASE_URL))
    raw_kek = env.get("IDP_KEY_ENCRYPTION_KEY", "")
    if raw_kek:
        kek = decode_key_encryption_key("IDP_KEY_ENCRYPTION_KEY", raw_kek)
        kek_source = "IDP_KEY_ENCRYPTION_KEY"
        kek_file = None
    elif database_url.startswith("sqlite:"):
        kek_file = default_key_file(database_url)
        kek = _file_key_encryption_key(kek_file, key_file_may_be_missing)
        kek_source = str(kek_file)
    else:
        raise ConfigError(
            "IDP_KEY_ENCRYPTION_KEY: required with PostgreSQL; expected 32 random bytes as "
            "base64url (generate one with: python -m idp generate-kek)"
        )
    jwks_max_age = parse_duration("IDP_JWKS_MAX_AGE", env.get("IDP_JWKS_MAX_AGE", "300"))
    logo_url, logo_file = parse_brand_logo(env.get("IDP_BRAND_LOGO_URL", ""))
    return Settings(
        issuer=issuer,
        database_url=database_url,
        key_encryption_key=kek,
        key_encryption_key_source=kek_source,
        key_encryption_key_file=kek_file,
        access_token_ttl=parse_duration(
            "IDP_ACCESS_TOKEN_TTL", env.get("IDP_ACCESS_TOKEN_TTL", "600")
        ),
        id_token_ttl=parse_duration("IDP_ID_TOKEN_TTL", env.get("IDP_ID_TOKEN_TTL", "3600")),
        jwks_max_age=jwks_max_age,
        key_rotation_interval=parse_duration(
            "IDP_KEY_ROTATION_INTERVAL", env.get("IDP_KEY_ROTATION_INTERVAL", "30d")
        ),
        key_prepublish=parse_duration(
            "IDP_KEY_PREPUBLISH", env.get("IDP_KEY_PREPUBLISH", str(2 * jwks_max_age))
        ),
        rsa_key_bits=_int_in_range(
            "IDP_RSA_KEY_BITS", env.get("IDP_RSA_KEY_BITS", "2048"), 2048, 8192
        ),
        signing_algs=parse_algs(env.get("IDP_SIGNING_ALGS", "RS256,ES256")),
        trusted_proxies=parse_trusted_proxies(env.get("IDP_TRUSTED_PROXIES", "")),
        session_idle_timeout=parse_duration(
            "IDP_SESSION_IDLE_TIMEOUT", env.get("IDP_SESSION_IDLE_TIMEOUT", "8h")
        ),
        session_max_age=parse_duration("IDP_SESSION_MAX_AGE", env.get("IDP_SESSION_MAX_AGE", "7d")),
        password_hash_concurrency=_int_in_range(
            "IDP_PASSWORD_HASH_CONCURRENCY",
            env.get("IDP_PASSWORD_HASH_CONCURRENCY", str(default_hash_concurrency())),
            1,
            256,
        ),
        refresh_token_ttl=parse_duration(
            "IDP_REFRESH_TOKEN_TTL", env.get("IDP_REFRESH_TOKEN_TTL", "30d")
        ),
        refresh_reuse_grace=parse_duration(
            "IDP_REFRESH_REUSE_GRACE", env.get("IDP_REFRESH_REUSE_GRACE", "3s"), allow_zero=True
        ),
        login_max_failures=_int_in_range(
            "IDP_LOGIN_MAX_FAILURES", env.get("IDP_LOGIN_MAX_FAILURES", "5"), 1, 1000
        ),
        login_max_failures_per_ip=_int_in_range(
            "IDP_LOGIN_MAX_FAILURES_PER_IP",
            env.get("IDP_LOGIN_MAX_FAILURES_PER_IP", "50"),
            1,
            100000,
        ),
        login_failure_window=parse_duration(
            "IDP_LOGIN_FAILURE_WINDOW", env.get("IDP_LOGIN_FAILURE_WINDOW", "15m")
        ),
        login_lock_duration=parse_duration(
            "IDP_LOGIN_LOCK_DURATION", env.get("IDP_LOGIN_LOCK_DURATION", "15m")
        ),
        password_min_length=_int_in_range(
            "IDP_PASSWORD_MIN_LENGTH",
            env.get("IDP_PASSWORD_MIN_LENGTH", str(DEFAULT_PASSWORD_MIN_LENGTH)),
            DEFAULT_PASSWORD_MIN_LENGTH,
            MAX_PASSWORD_LENGTH,
        ),
        housekeeping_interval=parse_duration(
            "IDP_HOUSEKEEPING_INTERVAL", env.get("IDP_HOUSEKEEPING_INTERVAL", "60s")
        ),
        hsts_max_age=parse_duration(
            "IDP_HSTS_MAX_AGE", env.get("IDP_HSTS_MAX_AGE", "365d"), allow_zero=True
        ),
        body_read_timeout=parse_duration(
            "IDP_BODY_READ_TIMEOUT", env.get("IDP_BODY_READ_TIMEOUT", "10s")
        ),
        batch_io_threads=parse_flag("IDP_BATCH_IO_THREADS", env.get("IDP_BATCH_IO_THREADS", "on")),
        allow_private_backchannel=parse_flag(
            "IDP_ALLOW_PRIVATE_BACKCHANNEL", env.get("IDP_ALLOW_PRIVATE_BACKCHANNEL", "")
        ),
        metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
        reauth_max_age=parse_duration("IDP_REAUTH_MAX_AGE", env.get("IDP_REAUTH_MAX_AGE", "300")),
        webauthn_rp_name=parse_rp_name(env.get("IDP_WEBAUTHN_RP_NAME", "Sign-in")),
        issuer_configured=bool(env.get("IDP_ISSUER")),
        log_format=parse_log_format(env.get("IDP_LOG_FORMAT", "plain")),
        require_par=parse_flag("IDP_REQUIRE_PAR", env.get("IDP_REQUIRE_PAR", "")),
        dpop_proof_max_age=parse_duration(
            "IDP_DPOP_PROOF_MAX_AGE", env.get("IDP_DPOP_PROOF_MAX_AGE", "60s")
        ),
        dpop_require_nonce=parse_flag(
            "IDP_DPOP_REQUIRE_NONCE", env.get("IDP_DPOP_REQUIRE_NONCE", "")
        ),
        dpop_nonce_lifetime=parse_duration(
            "IDP_DPOP_NONCE_LIFETIME", env.get("IDP_DPOP_NONCE_LIFETIME", "5m")
        ),
        brand_name=parse_brand_name(env.get("IDP_BRAND_NAME", DEFAULT_BRAND_NAME)),
        brand_logo_url=logo_url,
        brand_logo_file=logo_file,
        templates_dir=parse_templates_dir(env.get("IDP_TEMPLATES_DIR", "")),
        scope_descriptions=parse_scope_descriptions(env.get("IDP_SCOPE_DESCRIPTIONS", "")),
        open_registration=parse_flag("IDP_OPEN_REGISTRATION", env.get("IDP_OPEN_REGISTRATION", "")),
        registration_rate_limit=_int_in_range(
            "IDP_REGISTRATION_RATE_LIMIT", env.get("IDP_REGISTRATION_RATE_LIMIT", "20"), 1, 100000
        ),
        registration_rate_window=parse_duration(
            "IDP_REGISTRATION_RATE_WINDOW", env.get("IDP_REGISTRATION_RATE_WINDOW", "1h")
        ),
    )
