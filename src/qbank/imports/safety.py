"""Safe reading of uploaded files: size limits, zip bombs, path traversal, hostile XML.

Every parser goes through here; nothing is ever extracted to disk."""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
import zlib
from typing import Any
from xml.parsers.expat import ExpatError

import msgspec
from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml import ElementTree as SafeET

from qbank.lib.problems import ProblemError, bad_request

MiB = 1024 * 1024
# What reading a damaged archive or document raises, from zipfile, zlib, the XML parsers and openpyxl: a truncated
# or corrupt member (bad CRC, broken deflate stream), XML that is not well-formed or not in its declared encoding.
UNREADABLE: tuple[type[Exception], ...] = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
                                           ValueError, KeyError, IndexError, TypeError, AttributeError, SyntaxError,
                                           ExpatError, NotImplementedError)


class Limits(msgspec.Struct, kw_only=True, frozen=True):
    """What an import may weigh; ``max_bytes`` comes from ``settings.max_import_bytes``."""

    max_bytes: int = 50 * MiB
    max_entries: int = 20_000  # members in one archive
    max_unpacked: int = 512 * MiB  # total uncompressed size of the members
    max_member: int = 200 * MiB  # one member, uncompressed
    max_ratio: int = 200  # uncompressed / compressed, for members over 1 MiB
    max_rows: int = 50_000  # questions in one file (``settings.import_max_rows``)

    @classmethod
    def of(cls, settings: Any) -> Limits:
        """The limits the service's settings set (``qbank.settings.Settings``)."""
        return cls(max_bytes=settings.max_import_bytes, max_rows=settings.import_max_rows)


def too_many_rows(count: int, limits: Limits, word: str = "questions") -> ProblemError:
    return bad_request("file", f"the file holds more than {limits.max_rows} {word} ({count} read so far); an "
                               f"import takes at most {limits.max_rows} (QBANK_IMPORT_MAX_ROWS): split the file")


def check_size(data: bytes, limits: Limits) -> None:
    if len(data) > limits.max_bytes:
        raise ProblemError(413, f"file: the file has {len(data)} bytes; imports are limited to {limits.max_bytes} "
                                "bytes (QBANK_MAX_IMPORT_BYTES)")
    if not data:
        raise bad_request("file", "the file is empty")


_DRIVE = re.compile(r"^[A-Za-z]:")


def unsafe_member_name(name: str) -> bool:
    """Absolute paths, drive letters, backslashes, NUL and any ``..`` segment escape the package."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or _DRIVE.match(name):
        return True
    return ".." in name.split("/")


def open_zip(data: bytes, limits: Limits, what: str = "package") -> zipfile.ZipFile:
    """Open an archive after checking entry count, names, declared sizes and compression ratios."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError) as exc:
        raise bad_request("file", f"the {what} is not a readable zip archive ({exc})") from exc
    if len(members) > limits.max_entries:
        raise bad_request("file", f"the {what} has {len(members)} entries; at most {limits.max_entries} are accepted")
    total = 0
    for info in members:
        if unsafe_member_name(info.filename):
            raise bad_request("file", f"archive member {info.filename!r} has an unsafe path (absolute, or with '..'); "
                                      "the package is refused")
        if info.flag_bits & 0x1:
            raise bad_request("file", f"archive member {info.filename!r} is encrypted")
        total += info.file_size
        if info.file_size > limits.max_member:
            raise bad_request("file", f"archive member {info.filename!r} unpacks to {info.file_size} bytes, over the "
                                      f"limit of {limits.max_member}: refused as a possible zip bomb")
        if info.file_size > MiB and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            ratio = info.file_size // max(info.compress_size, 1)
            raise bad_request("file", f"archive member {info.filename!r} is compressed {ratio}:1, over "
                                      f"{limits.max_ratio}:1: refused as a possible zip bomb")
    if total > limits.max_unpacked:
        raise bad_request("file", f"the {what} unpacks to {total} bytes, over the limit of {limits.max_unpacked}: "
                                  "refused as a possible zip bomb")
    return archive


def read_member(archive: zipfile.ZipFile, name: str, limits: Limits) -> bytes:
    """A member's bytes, never more than its declared size (zipfile stops there and checks the CRC)."""
    try:
        info = archive.getinfo(name)
    except KeyError as exc:
        raise bad_request("file", f"the package has no member {name!r}") from exc
    try:
        with archive.open(info) as handle:
            content = handle.read(min(info.file_size, limits.max_member) + 1)
    except UNREADABLE as exc:
        raise bad_request("file", f"archive member {name!r} cannot be read ({type(exc).__name__}: {exc})") from exc
    if len(content) > info.file_size or len(content) > limits.max_member:
        raise bad_request("file", f"archive member {name!r} unpacks to more than it declares: refused")
    return content


def parse_xml(data: bytes, where: str) -> Any:
    """Parse XML with defusedxml: DTD entity declarations, external entities and references are refused."""
    try:
        return SafeET.fromstring(data)
    except EntitiesForbidden as exc:
        kind = "an external entity" if exc.sysid or exc.pubid else "an entity declaration (entity expansion)"
        raise bad_request("file", f"{where}: the XML declares {kind} ({exc.name!r}); entities are refused") from exc
    except ExternalReferenceForbidden as exc:
        raise bad_request("file", f"{where}: the XML refers to an external resource ({exc.sysid!r}); refused") from exc
    except DTDForbidden as exc:
        raise bad_request("file", f"{where}: the XML has a DOCTYPE; refused") from exc
    except DefusedXmlException as exc:
        raise bad_request("file", f"{where}: unsafe XML refused ({exc})") from exc
    except SafeET.ParseError as exc:
        raise bad_request("file", f"{where}: not well-formed XML ({exc})") from exc


def local(name: str) -> str:
    """A tag or attribute name without namespace, ``qti-`` prefix or dashes, lower-cased: one key for
    QTI 2.1 (``choiceInteraction``, ``responseIdentifier``) and QTI 3.0 (``qti-choice-interaction``)."""
    name = name.rsplit("}", 1)[-1]
    if name.startswith("qti-"):
        name = name[4:]
    return name.replace("-", "").lower()


def member_path(base: str, href: str) -> str | None:
    """The package member ``href`` names, relative to the directory of ``base``; None when it leaves the package
    (an absolute path, a drive letter, a backslash, NUL, a URL, or more ``..`` than there are directories)."""
    if not href or "://" in href or href.startswith("/") or "\\" in href or "\x00" in href or _DRIVE.match(href):
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(base), href))
    if unsafe_member_name(joined) or joined.startswith("."):
        return None
    return joined


def join_member(base: str, href: str) -> str:
    """:func:`member_path` for the manifest's own references: leaving the package refuses the package."""
    joined = member_path(base, href)
    if joined is None:
        raise bad_request("file", f"the manifest refers to {href!r}, outside the package; refused")
    return joined
