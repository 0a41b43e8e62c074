"""Retain-until rules (§22): how long a piece of evidence is kept, and the bucket's lifecycle that never ends a
retention early.

Every object gets COMPLIANCE retention until at least ``retention_years`` (≥ 5) after its exam date (end of
that day, UTC); permanent records (key-node scans) also get a legal hold. A retain-until is only ever extended.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec

from evidence.errors import RetentionTooShort

__all__ = [
    "MIN_RETENTION_YEARS",
    "Retention",
    "as_utc",
    "check_policy",
    "lifecycle_config",
    "lifecycle_rules",
    "noncurrent_days",
    "retain_until_for",
]

MIN_RETENTION_YEARS = 5


def check_policy(retention_years: int) -> None:
    """Refuse a retention policy below the legal minimum."""
    if retention_years < MIN_RETENTION_YEARS:
        raise RetentionTooShort(
            f"retention policy of {retention_years} years is below the minimum of {MIN_RETENTION_YEARS}"
        )


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February -> 1 March (the later day, on the safe side)
        return date(d.year + years, 3, 1)


def retain_until_for(exam_date: date, years: int = MIN_RETENTION_YEARS) -> datetime:
    """Minimum retain-until for evidence of an exam on ``exam_date``: end of that day ``years`` later, UTC."""
    end = _add_years(exam_date, years) + timedelta(days=1)
    return datetime(end.year, end.month, end.day, tzinfo=UTC)


def as_utc(dt: datetime) -> datetime:
    """``dt`` in UTC; a naive datetime is refused (its moment would be a guess)."""
    if dt.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return dt.astimezone(UTC)


class Retention(msgspec.Struct, frozen=True, kw_only=True):
    """How to retain one object: COMPLIANCE retention until ``retain_until`` or, by default, the end of the exam
    day ``retention_years`` later (without ``exam_date`` today counts as the exam date); ``legal_hold`` marks a
    permanent record. A ``retain_until`` shorter than that minimum is refused (:class:`RetentionTooShort`)."""

    exam_date: date | None = None
    retain_until: datetime | None = None
    legal_hold: bool = False

    def until(self, retention_years: int) -> datetime:
        """The retain-until date under a policy of ``retention_years``, whole seconds, UTC."""
        base = self.exam_date or datetime.now(UTC).date()
        minimum = retain_until_for(base, retention_years)
        if self.retain_until is None:
            return minimum
        until = as_utc(self.retain_until)
        if until < minimum:
            raise RetentionTooShort(
                f"retain-until {until.isoformat()} is shorter than {retention_years} years after the exam "
                f"of {base.isoformat()} (minimum {minimum.isoformat()})",
                minimum,
            )
        return until.replace(microsecond=0)


def noncurrent_days(retention_years: int) -> int:
    """Days after which a noncurrent version may expire: the whole retention (leap days included) + 2."""
    return (retain_until_for(date(2000, 1, 1), retention_years).date() - date(2000, 1, 1)).days + 2


def lifecycle_rules(retention_years: int) -> list[dict[str, Any]]:
    """The bucket's lifecycle rules as plain data: nothing current ever expires; a noncurrent version only after
    the whole retention period; incomplete multipart uploads are aborted after a day."""
    return [
        {"id": "noncurrent-after-retention", "prefix": "", "noncurrent_days": noncurrent_days(retention_years)},
        {"id": "abort-incomplete-uploads", "prefix": "", "abort_incomplete_multipart_days": 1},
    ]


def lifecycle_config(retention_years: int) -> Any:
    """:func:`lifecycle_rules` as the SDK's ``LifecycleConfig``."""
    from minio.commonconfig import ENABLED, Filter
    from minio.lifecycleconfig import (
        AbortIncompleteMultipartUpload,
        LifecycleConfig,
        NoncurrentVersionExpiration,
        Rule,
    )

    return LifecycleConfig(
        [
            Rule(
                ENABLED,
                rule_filter=Filter(prefix=""),
                rule_id="noncurrent-after-retention",
                noncurrent_version_expiration=NoncurrentVersionExpiration(
                    noncurrent_days=noncurrent_days(retention_years)
                ),
            ),
            Rule(
                ENABLED,
                rule_filter=Filter(prefix=""),
                rule_id="abort-incomplete-uploads",
                abort_incomplete_multipart_upload=AbortIncompleteMultipartUpload(days_after_initiation=1),
            ),
        ]
    )
