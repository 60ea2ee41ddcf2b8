"""Users, passwords and roles of the API.

Passwords are stored as argon2id. Users imported from DLRN keep their passlib sha512_crypt
(`$6$rounds=656000$`) hashes until their first successful login, which rehashes them to
argon2id; `!` (a locked account) never matches. A slow hash on every request is what makes an
authenticated DLRN call cost ~340 ms, so successful checks are remembered for a few minutes,
keyed by a keyed BLAKE2 digest of user and password under a per-process random key (the
password itself is never kept).
"""

from __future__ import annotations

import base64
import binascii
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
from conveyor.store.models import CIVote, CIVoteAggregate, Promotion, User


class Role(StrEnum):
    VOTER = "voter"  # report results, take repos for testing
    PROMOTER = "promoter"  # move promotion labels
    ADMIN = "admin"  # everything, including imports and rechecks


ALL_ROLES = frozenset(Role)
CACHE_TTL = 300.0
LOCKED = "!"
_hasher = PasswordHasher()


class UserError(Exception):
    """A user cannot be created, changed or deleted as asked."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


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
    return False, None  # "!" (locked), empty, or a scheme we do not know


@dataclass(frozen=True)
class Identity:
    username: str
    roles: frozenset[Role]

    def may(self, role: Role) -> bool:
        return Role.ADMIN in self.roles or role in self.roles


class CredentialCache:
    """Successful checks for `ttl` seconds, in this process only."""

    def __init__(self, ttl: float = CACHE_TTL, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._key = secrets.token_bytes(32)
        self._entries: dict[bytes, tuple[float, Identity]] = {}
        self._lock = threading.Lock()

    def _digest(self, username: str, password: str) -> bytes:
        data = username.encode() + b"\0" + password.encode()
        return hashlib.blake2b(data, key=self._key, digest_size=32).digest()

    def get(self, username: str, password: str) -> Identity | None:
        digest = self._digest(username, password)
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if entry[0] < time.monotonic():
                del self._entries[digest]
                return None
            return entry[1]

    def put(self, username: str, password: str, identity: Identity) -> None:
        digest = self._digest(username, password)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                now = time.monotonic()
                self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
            self._entries[digest] = (time.monotonic() + self.ttl, identity)

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

    def check(self, username: str, password: str) -> Identity | None:
        if (cached := self.cache.get(username, password)) is not None:
            return cached
        with _VERIFYING:
            # Another thread may have verified the same credentials while this one waited.
            if (cached := self.cache.get(username, password)) is not None:
                return cached
            return self._verify(username, password)

    def _verify(self, username: str, password: str) -> Identity | None:
        with self.db.reader() as session:
            user = session.get(User, username)
            if user is None:
                return None
            stored, roles = user.password, user.roles
        ok, rehashed = verify_password(stored, password)
        if not ok:
            return None
        if rehashed is not None:
            with self.db.transaction() as session:
                row = session.get(User, username)
                if row is not None and row.password == stored:
                    row.password = rehashed
        identity = Identity(username, parse_roles(roles))
        self.cache.put(username, password, identity)
        return identity


# -- user management (`conveyor user ...`) ---------------------------------------------------


def create_user(db: Database, username: str, password: str, roles: Iterable[Role | str]) -> None:
    if not username or len(username) > 255 or ":" in username:
        raise UserError(f"invalid user name {username!r}")
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
            for model in (CIVote, CIVoteAggregate, Promotion)
        )
        if referenced:
            user.password = LOCKED
            return True
        session.delete(user)
        return False
