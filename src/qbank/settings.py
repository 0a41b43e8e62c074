"""Settings from environment variables with the ``QBANK_`` prefix."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

if TYPE_CHECKING:
    from videoaudit import QualityConfig

_SECRET_FIELDS = {"s3_secret_key", "token_secret"}


class SettingsError(ValueError):
    """A setting has a value the service cannot use."""


class Settings(msgspec.Struct, kw_only=True):
    data_dir: Path
    database_url: str
    s3_endpoint: str  # empty: the service starts its own local S3 server
    s3_public_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_bucket: str
    s3_secure: bool
    token_secret: str
    timezone: str
    retention_years: int
    max_upload_bytes: int
    max_import_bytes: int
    log_level: str
    job_queue_url: str  # empty: jobs run inside the service; redis://…: through SAQ to `qbank worker`
    job_concurrency: int
    job_queue_name: str
    max_recording_bytes: int
    recording_start_slack_minutes: int
    probe_timeout_s: float
    gap_tolerance_s: float
    video_quality: dict[str, Any]  # overrides of videoaudit.QualityConfig's documented defaults
    centre_key_file: str = ""  # the centre's Ed25519 signing key (PEM); empty: generated once into the data dir
    # security (issue 15): trail anchors, rate limits, trusted proxies
    audit_anchor_entries: int = 1000  # anchor the trail's head after this many new entries ...
    audit_anchor_seconds: int = 600  # ... or this long after the last anchor, whichever comes first
    audit_anchoring: bool = True  # this instance anchors in the background (verify always anchors)
    auth_failure_limit: int = 30  # failed bearer-token authentications per client address ...
    auth_failure_window_s: int = 60  # ... in this many seconds, then 429 until the window has passed
    sign_in_failure_limit: int = 10  # failed review-page sign-ins per client address ...
    sign_in_failure_window_s: int = 600
    trusted_proxies: list[str] = msgspec.field(default_factory=list)  # X-Forwarded-* believed only from these
    s3_connect_timeout_s: float = 3.0  # one connect to S3; then the request answers 503
    s3_read_timeout_s: float = 30.0  # one read from S3 (a frozen server): then 503
    job_attempts: int = 3  # runs of a job whose runner died, before it is marked failed
    job_lease_s: int = 30  # a running job's runner renews its lease; past it, others take the job back
    leftover_age_s: int = 3600  # spool/scratch files and multipart uploads untouched this long are removed at start
    import_max_rows: int = 50_000  # questions one import file may hold (QBANK_IMPORT_MAX_ROWS)
    token_cache_s: float = 0.5  # an authenticated token is not looked up again for this long (at most 1 s)
    recording_part_size: int = 16 << 20  # parts of a recording sent straight to storage: 4 in flight at the site
    recording_part_url_s: int = 3600  # how long its presigned part URLs work (at most an hour)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def masked(self) -> dict[str, object]:
        """The effective settings with secrets masked, for the start-up log."""
        out: dict[str, object] = {}
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if name in _SECRET_FIELDS:
                value = "***" if value else ""
            elif name in ("database_url", "job_queue_url") and "@" in str(value):
                scheme, rest = str(value).split("://", 1)
                creds, host = rest.rsplit("@", 1)
                user = creds.split(":", 1)[0]
                value = f"{scheme}://{user}:***@{host}" if ":" in creds else value
            out[name] = str(value) if isinstance(value, Path) else value
        return out


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from exc
    if not value > 0:
        raise SettingsError(f"{name} must be more than 0 seconds, got {raw!r}")
    return value


def _json_object(env: dict[str, str], name: str) -> dict[str, Any]:
    raw = env.get(name, "")
    if not raw:
        return {}
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise SettingsError(f"{name} must be a JSON object: {exc}") from exc
    if not isinstance(value, dict):
        raise SettingsError(f"{name} must be a JSON object, e.g. {{\"min_width\": 640}}")
    return value


def _persistent_secret(data_dir: Path) -> str:
    """The embedded default keeps one random token secret in the data dir, so tokens survive restarts."""
    path = data_dir / "token_secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.write_text(value)
    path.chmod(0o600)
    return value


def default_data_dir(env: dict[str, str]) -> Path:
    """One place whatever the working directory: ``$XDG_DATA_HOME/qbank``, i.e. ``~/.local/share/qbank``."""
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "share")
    return Path(base) / "qbank"


def video_quality_for(video_quality: dict[str, Any], view: str | None) -> QualityConfig:
    """The picture thresholds for one camera view: QBANK_VIDEO_QUALITY's overrides, then those under
    ``"views": {VIEW: {...}}`` (e.g. the camera's own ``baseline_sharpness`` and ``baseline_edge``, from an
    earlier analysis of it); raises msgspec.ValidationError for an unknown field or a wrong value."""
    from videoaudit import QualityConfig

    common = {k: v for k, v in video_quality.items() if k != "views"}
    return msgspec.convert(common | video_quality.get("views", {}).get(view or "", {}), QualityConfig)


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("QBANK_DATA_DIR") or default_data_dir(env)).expanduser().resolve()
    database_url = env.get("QBANK_DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'qbank.db'}"
    timezone = env.get("QBANK_TIMEZONE", "Asia/Shanghai")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"QBANK_TIMEZONE: unknown time zone {timezone!r}") from exc
    retention_years = _int(env, "QBANK_RETENTION_YEARS", 5)
    if retention_years < 5:
        raise SettingsError("QBANK_RETENTION_YEARS must be at least 5 (regulation §22: electronic records ≥ 5 years)")
    endpoint = env.get("QBANK_S3_ENDPOINT", "")
    video_quality = _json_object(env, "QBANK_VIDEO_QUALITY")
    views = video_quality.get("views", {})
    if not isinstance(views, dict) or not all(isinstance(v, dict) for v in views.values()):
        raise SettingsError('QBANK_VIDEO_QUALITY: "views" must map a camera view to its overrides, e.g. '
                            '{"views": {"front": {"baseline_sharpness": 24.5}}}')
    for view in [None, *views]:
        try:
            video_quality_for(video_quality, view)
        except msgspec.ValidationError as exc:
            where = "" if view is None else f" (view {view!r})"
            raise SettingsError(f"QBANK_VIDEO_QUALITY{where}: {exc}") from exc
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        s3_endpoint=endpoint,
        s3_public_endpoint=env.get("QBANK_S3_PUBLIC_ENDPOINT", ""),
        s3_access_key=env.get("QBANK_S3_ACCESS_KEY", "qbank"),
        s3_secret_key=env.get("QBANK_S3_SECRET_KEY", "qbank-local-secret"),
        s3_bucket=env.get("QBANK_S3_BUCKET", "qbank-evidence"),
        s3_secure=env.get("QBANK_S3_SECURE", "false").lower() in {"1", "true", "yes"},
        token_secret=env.get("QBANK_TOKEN_SECRET") or _persistent_secret(data_dir),
        timezone=timezone,
        retention_years=retention_years,
        max_upload_bytes=_int(env, "QBANK_MAX_UPLOAD_BYTES", 20 * 1024 * 1024),
        max_import_bytes=_int(env, "QBANK_MAX_IMPORT_BYTES", 50 * 1024 * 1024),
        log_level=env.get("QBANK_LOG_LEVEL", "INFO").upper(),
        job_queue_url=env.get("QBANK_JOB_QUEUE_URL", ""),
        job_concurrency=_int(env, "QBANK_JOB_CONCURRENCY", 2),
        job_queue_name=env.get("QBANK_JOB_QUEUE_NAME", "qbank"),
        max_recording_bytes=_int(env, "QBANK_MAX_RECORDING_BYTES", 16 * 1024**3),
        recording_start_slack_minutes=_int(env, "QBANK_RECORDING_START_SLACK_MINUTES", 120),
        probe_timeout_s=float(_int(env, "QBANK_PROBE_TIMEOUT_S", 60)),
        gap_tolerance_s=float(_int(env, "QBANK_GAP_TOLERANCE_S", 2)),
        video_quality=video_quality,
        centre_key_file=env.get("QBANK_CENTRE_KEY_FILE", ""),
        **_security_settings(env),
        s3_connect_timeout_s=_seconds(env, "QBANK_S3_CONNECT_TIMEOUT_S", 3.0),
        s3_read_timeout_s=_seconds(env, "QBANK_S3_READ_TIMEOUT_S", 30.0),
        job_attempts=max(1, _int(env, "QBANK_JOB_ATTEMPTS", 3)),
        job_lease_s=max(3, _int(env, "QBANK_JOB_LEASE_S", 30)),
        leftover_age_s=max(0, _int(env, "QBANK_LEFTOVER_AGE_S", 3600)),
        import_max_rows=max(1, _int(env, "QBANK_IMPORT_MAX_ROWS", 50_000)),
        token_cache_s=min(1.0, _seconds(env, "QBANK_TOKEN_CACHE_S", 0.5)),
        recording_part_size=max(5 << 20, _int(env, "QBANK_RECORDING_PART_SIZE", 16 << 20)),  # S3 minimum 5 MiB
        recording_part_url_s=min(3600, max(1, _int(env, "QBANK_RECORDING_PART_URL_S", 3600))),
    )


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: list[str]) -> list[Network]:
    """``["10.0.0.5", "192.168.0.0/24", "::1"]`` as networks; raises ValueError naming a bad entry."""
    out: list[Network] = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network") from None
    return out


def _security_settings(env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "audit_anchor_entries": _int(env, "QBANK_AUDIT_ANCHOR_ENTRIES", 1000),
        "audit_anchor_seconds": _int(env, "QBANK_AUDIT_ANCHOR_SECONDS", 600),
        "audit_anchoring": env.get("QBANK_AUDIT_ANCHORING", "on").lower() not in {"off", "0", "false", "no"},
        "auth_failure_limit": _int(env, "QBANK_AUTH_FAILURE_LIMIT", 30),
        "auth_failure_window_s": _int(env, "QBANK_AUTH_FAILURE_WINDOW_S", 60),
        "sign_in_failure_limit": _int(env, "QBANK_SIGN_IN_FAILURE_LIMIT", 10),
        "sign_in_failure_window_s": _int(env, "QBANK_SIGN_IN_FAILURE_WINDOW_S", 600),
        "trusted_proxies": [p.strip() for p in env.get("QBANK_TRUSTED_PROXIES", "").split(",") if p.strip()],
    }
    try:
        parse_networks(out["trusted_proxies"])
    except ValueError as exc:
        raise SettingsError(f"QBANK_TRUSTED_PROXIES: {exc}") from exc
    for name, value in out.items():
        if type(value) is int and value < 1:
            raise SettingsError(f"QBANK_{name.upper()} must be at least 1")
    return out
