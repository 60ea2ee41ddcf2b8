"""Users, passwords and roles of the API.

Passwords are stored as argon2id. Users imported from DLRN keep their passlib sha512_crypt
(`$6$rounds=656000$`) hashes until their first successful login, which rehashes them to
argon2id; `!` (a locked account) never matches. A slow hash on every request is what makes an
authenticated DLRN call cost ~340 ms, so successful checks are remembered for a few minutes,
keyed by a keyed BLAKE2 digest of user and password under a per-process random key (the
password itself is never kept).

A check that finds no usable hash (unknown user, locked account, unknown scheme) still verifies
the password against a dummy argon2id hash, so that its time does not tell which users exist.
New passwords need at least MIN_PASSWORD characters; stored hashes are never re-checked.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from conveyor.store.database import Database
from conveyor.store.models import CIVote, CIVoteAggregate, Promotion, TagVote, User


class Role(StrEnum):
    VOTER = "voter"  # report results, take repos for testing
    PROMOTER = "promoter"  # move promotion labels
    ADMIN = "admin"  # everything, including imports and rechecks


ALL_ROLES = frozenset(Role)
CACHE_TTL = 300.0
# How stale a remembered check may be before the user's row is read again (revocation delay).
REVALIDATE = 2.0
LOCKED = "!"
MIN_PASSWORD = 8
_hasher = PasswordHasher()


class UserError(Exception):
    """A user cannot be created, changed or deleted as asked."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password: str) -> None:
    """Refuse a password too short to resist guessing (an empty one authenticated before)."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password with the hasher's own parameters, made once per process:
    verifying against it costs what a real verification costs."""
    return _hasher.hash(secrets.token_urlsafe(32))


def _verify_dummy(password: str) -> None:
    """Spend a real verification's time on a check that is bound to fail, so that an unknown
    user (~1 ms otherwise) cannot be told from a wrong password (~100 ms of argon2)."""
    with contextlib.suppress(VerificationError, InvalidHashError):
        _hasher.verify(_dummy_hash(), password)


def parse_roles(text: str | None) -> frozenset[Role]:
    """Roles as stored; NULL (a user made by DLRN) may do everything, as in DLRN."""
    if text is None:
        return frozenset({Role.ADMIN})
    return frozenset(Role(part) for part in text.split(",") if part in ALL_ROLES)


def format_roles(roles: Iterable[Role | str]) -> str:
    values = sorted({Role(r).value for r in roles})
    if not values:
        raise UserError("a user needs at least one role (voter, promoter, admin)")
    return ",".join(values)


def _sha512_crypt_matches(stored: str, password: str) -> bool:
    from passlib.hash import sha512_crypt  # type: ignore[import-untyped]

    try:
        return bool(sha512_crypt.verify(password, stored))
    except (ValueError, TypeError):
        return False


def verify_password(stored: str, password: str) -> tuple[bool, str | None]:
    """Whether `password` matches `stored`, and the hash to store instead (or None)."""
    if stored.startswith("$argon2"):
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False, None
        return True, (hash_password(password) if _hasher.check_needs_rehash(stored) else None)
    if stored.startswith("$6$"):
        if _sha512_crypt_matches(stored, password):
            return True, hash_password(password)
        return False, None
    _verify_dummy(password)  # "!" (locked), empty, or a scheme we do not know: same time
    return False, None


@dataclass(frozen=True)
class Identity:
    username: str
    roles: frozenset[Role]

    def may(self, role: Role) -> bool:
        return Role.ADMIN in self.roles or role in self.roles


@dataclass(frozen=True)
class Remembered:
    """A successful check: who, the stored hash it matched, and when the row was last read."""

    expires: float
    identity: Identity
    stored: str
    checked: float


class CredentialCache:
    """Successful checks for `ttl` seconds, in this process only."""

    def __init__(self, ttl: float = CACHE_TTL, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._key = secrets.token_bytes(32)
        self._entries: dict[bytes, Remembered] = {}
        self._lock = threading.Lock()

    def _digest(self, username: str, password: str) -> bytes:
        data = username.encode() + b"\0" + password.encode()
        return hashlib.blake2b(data, key=self._key, digest_size=32).digest()

    def get(self, username: str, password: str) -> Remembered | None:
        digest = self._digest(username, password)
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if entry.expires < time.monotonic():
                del self._entries[digest]
                return None
            return entry

    def put(self, username: str, password: str, identity: Identity, stored: str) -> None:
        digest = self._digest(username, password)
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries = {k: v for k, v in self._entries.items() if v.expires >= now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
            self._entries[digest] = Remembered(now + self.ttl, identity, stored, now)

    def forget(self, username: str, password: str) -> None:
        with self._lock:
            self._entries.pop(self._digest(username, password), None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


# An argon2 verification holds 64 MiB for a tenth of a second. Unbounded, a burst of first
# requests (CI jobs voting after a restart) or of wrong passwords had the whole thread pool
# verify at once: 1.8 GB and seconds per request for 50 clients. A few at a time bound both,
# and the checks that waited then mostly find their credentials in the cache.
_VERIFYING = threading.BoundedSemaphore(max(2, min(4, os.cpu_count() or 2)))


class Authenticator:
    def __init__(self, db: Database, cache: CredentialCache | None = None) -> None:
        self.db = db
        self.cache = cache or CredentialCache()
        _dummy_hash()  # made now, at startup, rather than by the first unknown user's check

    def remembered(self, username: str, password: str) -> Identity | None:
        """A recent successful check of these credentials, if the user's row still holds the
        hash it matched. The row is read again every REVALIDATE seconds (one primary-key
        read): a password changed or a user deleted by `conveyor user` in another process
        stops working within seconds, not at the end of the cache's lifetime."""
        entry = self.cache.get(username, password)
        if entry is None:
            return None
        if time.monotonic() - entry.checked < REVALIDATE:
            return entry.identity
        stored, roles = self._stored(username)
        if stored != entry.stored:
            self.cache.forget(username, password)
            return None
        identity = Identity(username, parse_roles(roles))
        self.cache.put(username, password, identity, entry.stored)
        return identity

    def check(self, username: str, password: str) -> Identity | None:
        if (cached := self.remembered(username, password)) is not None:
            return cached
        with _VERIFYING:
            # Another thread may have verified the same credentials while this one waited.
            if (cached := self.remembered(username, password)) is not None:
                return cached
            return self._verify(username, password)

    def _stored(self, username: str) -> tuple[str | None, str | None]:
        with self.db.reader() as session:
            user = session.get(User, username)
            return (user.password, user.roles) if user is not None else (None, None)

    def _verify(self, username: str, password: str) -> Identity | None:
        stored, roles = self._stored(username)
        if stored is None:
            _verify_dummy(password)  # as long as a wrong password: no user enumeration by time
            return None
        ok, rehashed = verify_password(stored, password)
        if not ok:
            return None
        if rehashed is not None:
            with self.db.transaction() as session:
                row = session.get(User, username)
                if row is not None and row.password == stored:
                    row.password = rehashed
                    stored = rehashed
        identity = Identity(username, parse_roles(roles))
        self.cache.put(username, password, identity, stored)
        return identity


# -- user management (`conveyor user ...`) ---------------------------------------------------


def create_user(db: Database, username: str, password: str, roles: Iterable[Role | str]) -> None:
    if not username or len(username) > 255 or ":" in username:
        raise UserError(f"invalid user name {username!r}")
    check_password(password)
    stored_roles = format_roles(roles)
    with db.transaction() as session:
        if session.get(User, username) is not None:
            raise UserError(f"user {username} already exists")
        session.add(User(username=username, password=hash_password(password), roles=stored_roles))


def update_user(
    db: Database,
    username: str,
    password: str | None = None,
    roles: Iterable[Role | str] | None = None,
) -> None:
    if password is not None:
        check_password(password)
    with db.transaction() as session:
        user = session.get(User, username)
        if user is None:
            raise UserError(f"user {username} does not exist")
        if password is not None:
            user.password = hash_password(password)
        if roles is not None:
            user.roles = format_roles(roles)


def delete_user(db: Database, username: str) -> bool:
    """Delete the user; True when its votes or promotions keep the row, which is then locked
    (password `!`, as DLRN marks a locked account) instead."""
    with db.transaction() as session:
        user = session.get(User, username)
        if user is None:
            raise UserError(f"user {username} does not exist")
        referenced = any(
            session.scalar(select(model.id).where(model.user == username).limit(1)) is not None
            for model in (CIVote, CIVoteAggregate, Promotion, TagVote)
        )
        if referenced:
            user.password = LOCKED
            return True
        session.delete(user)
        return False
