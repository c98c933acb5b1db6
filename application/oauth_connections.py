"""OAuth connections: the authorize URL, the provider's callback, and refreshing tokens before they run out.

The connection's id is derived from its state's hash, so whichever replica gets the callback finds the
connection from the state alone. Tokens are sealed with the connection id as context before they reach
an event. A refresh runs once at a time per connection: this process queues its callers on a lock, other
processes are kept out by the KeyedLock, and the aggregate's version check backs both (with rotating
refresh tokens, as X has, a second refresh would spend a token the first has just revoked).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

import structlog

from application.ports import Clock, KeyedLock, OAuthClientPort, OAuthTokens, Profile, ProviderError, Sealer
from application.pressroom import Pressroom, retry_on_conflict
from application.publishing import ProviderRefused, UnsupportedByProvider
from domain.connection import Connection
from domain.errors import DomainError, InvalidState, OAuthStateInvalid
from domain.providers import provider as provider_spec

log = structlog.get_logger()

REFRESH_MARGIN = timedelta(minutes=5)
STATE_NAMESPACE = uuid5(NAMESPACE_URL, "https://pressroom.dev/oauth/state")
LOCK_STRIPES = 64
MAX_REASON = 300  # of a provider's error text kept in an event


class OAuthNotConfigured(UnsupportedByProvider):
    """This server has no OAuth client for the provider (no client id, or no client for it at all)."""


class AuthorizationRefused(DomainError):
    """The provider refused the authorization: the user denied it, or its code could not be exchanged."""

    code = "authorization_refused"


class ProviderUnavailable(ProviderRefused):
    """The provider could not be reached or failed; a later try may succeed."""

    code = "provider_unavailable"


class OAuthConnections:
    def __init__(
        self,
        app: Pressroom,
        *,
        clients: Callable[[str], OAuthClientPort],
        sealer: Sealer,
        redirect_base: str,
        locks: KeyedLock | None = None,
    ) -> None:
        self.app = app
        self.clients = clients
        self.sealer = sealer
        self.redirect_base = redirect_base.rstrip("/")
        # Without `locks`, only this process is kept to one refresh per connection.
        self.locks = locks
        self._locks = [threading.RLock() for _ in range(LOCK_STRIPES)]

    @property
    def clock(self) -> Clock:
        return self.app.clock

    @staticmethod
    def connection_id_for(state_hash: str) -> UUID:
        return uuid5(STATE_NAMESPACE, state_hash)

    def redirect_uri(self, provider: str) -> str:
        return f"{self.redirect_base}/oauth/{provider}/callback"

    # The flow

    def start(self, workspace_id: UUID, provider: str) -> tuple[Connection, str]:
        """A pending connection and the URL where the user authorizes it, valid for STATE_LIFETIME."""
        client = self._client(provider)
        state, state_hash = new_state()
        verifier, challenge = new_pkce() if client.uses_pkce else (None, None)
        connection_id = self.connection_id_for(state_hash)
        redirect_uri = self.redirect_uri(provider)
        authorize_url = client.authorize_url(state, challenge, redirect_uri)
        flow = {"authorizeUrl": authorize_url} | ({"verifier": verifier} if verifier else {})
        connection = Connection.request_oauth(
            connection_id,
            workspace_id,
            provider,
            state_hash=state_hash,
            now=self.clock.now(),
            redirect_uri=redirect_uri,
            flow_sealed=self.sealer.seal(flow, context=str(connection_id)),
        )
        self.app.save(connection)
        return connection, authorize_url

    def authorize_url_of(self, connection: Connection) -> str | None:
        """Where the user authorizes a pending OAuth connection; None once its flow has ended."""
        if connection.status != "pending" or connection.flow_sealed is None:
            return None
        return self._flow(connection).get("authorizeUrl")

    def complete(self, provider: str, state: str, code: str) -> Connection:
        """Exchanges the callback's code and connects the account; the state works once, within its lifetime."""
        state_hash = hash_state(state)
        connection_id = self.connection_id_for(state_hash)
        with self._exclusively(connection_id):
            connection = self._awaiting(provider, connection_id, state_hash)
            client = self._client(provider)
            try:
                redirect_uri = connection.redirect_uri or self.redirect_uri(provider)  # the one the authorization was asked with
                tokens = client.exchange(code, self._flow(connection).get("verifier"), redirect_uri)
                profile = client.profile(tokens.access_token)
            except ProviderError as error:
                raise self._refused(connection_id, state_hash, error) from None
            return self._connect(connection_id, state_hash, tokens, profile)

    def deny(self, provider: str, state: str, error: str, description: str | None = None) -> Connection:
        """The provider sent the user back with an error (they denied access): the connection fails."""
        state_hash = hash_state(state)
        connection_id = self.connection_id_for(state_hash)
        with self._exclusively(connection_id):
            self._awaiting(provider, connection_id, state_hash)
            reason = f"{error}: {description}" if description else error
            return self._fail(connection_id, state_hash, reason[:MAX_REASON])

    def _awaiting(self, provider: str, connection_id: UUID, state_hash: str) -> Connection:
        connection = self.app._find(Connection, connection_id)
        if connection is None or connection.provider != provider:
            raise OAuthStateInvalid("This authorization's state is unknown; start the connection again.")
        connection.check_state(state_hash, self.clock.now())
        return connection

    @retry_on_conflict
    def _connect(self, connection_id: UUID, state_hash: str, tokens: OAuthTokens, profile: Profile) -> Connection:
        connection = self.app._get(Connection, connection_id)
        connection.complete(
            state_hash,
            self.clock.now(),
            name=profile.name,
            display_name=profile.display_name,
            credentials_sealed=self._seal_tokens(connection_id, tokens.access_token, tokens.refresh_token),
            token_expires_at=tokens.expires_at,
        )
        self.app.save(connection)
        return connection

    def _refused(self, connection_id: UUID, state_hash: str, error: ProviderError) -> DomainError:
        if error.retryable:
            # The code may still be good: the connection stays pending, and the callback can be tried again.
            return ProviderUnavailable(f"The provider could not complete the authorization now: {error.message}")
        self._fail(connection_id, state_hash, f"{error.code}: {error.message}"[:MAX_REASON])
        return AuthorizationRefused(f"The provider refused the authorization ({error.code}): {error.message}")

    @retry_on_conflict
    def _fail(self, connection_id: UUID, state_hash: str, reason: str) -> Connection:
        connection = self.app._get(Connection, connection_id)
        connection.check_state(state_hash, self.clock.now())
        connection.fail_authorization(reason)
        self.app.save(connection)
        return connection

    # Tokens

    def refresh_due(self, connection_id: UUID, margin: timedelta = REFRESH_MARGIN) -> bool:
        """Refreshes the account's tokens if they run out within `margin`; True when this call refreshed them.
        A refused refresh marks the account reconnect_required; a provider that failed raises ProviderUnavailable."""
        with self._exclusively(connection_id), self._held(connection_id) as alone:
            return alone and self._refresh(connection_id, margin)

    def _refresh(self, connection_id: UUID, margin: timedelta) -> bool:
        # Loaded under the locks: a refresh that finished meanwhile is seen here, and this one is skipped.
        connection = self.app._find(Connection, connection_id)
        if connection is None or connection.auth != "oauth" or not connection.needs_refresh(self.clock.now(), margin):
            return False
        refresh_token = self._credentials(connection).get("refreshToken", "")
        try:
            tokens = self._client(connection.provider).refresh(refresh_token)
        except ProviderError as error:
            if error.code != "refresh_rejected":
                failed = ProviderUnavailable if error.retryable else ProviderRefused
                raise failed(f"{connection.provider} did not refresh the tokens ({error.code}): {error.message}") from None
            self._require_reconnect(connection_id, connection.version, f"refresh_rejected: {error.message}"[:MAX_REASON])
            return False
        return self._store_refresh(connection_id, connection.version, tokens, refresh_token)

    @retry_on_conflict
    def _store_refresh(self, connection_id: UUID, seen_version: int, tokens: OAuthTokens, old_refresh_token: str) -> bool:
        connection = self.app._get(Connection, connection_id)
        if connection.version != seen_version:
            log.info("token_refresh_superseded", connection_id=str(connection_id))
            return False
        sealed = self._seal_tokens(connection_id, tokens.access_token, tokens.refresh_token or old_refresh_token)
        connection.refresh(sealed, tokens.expires_at)
        self.app.save(connection)
        return True

    @retry_on_conflict
    def _require_reconnect(self, connection_id: UUID, seen_version: int, reason: str) -> None:
        connection = self.app._get(Connection, connection_id)
        if connection.version != seen_version:
            # Changed since the refused refresh was read (refreshed by another, disconnected): that stands.
            return
        connection.require_reconnect(reason)
        self.app.save(connection)

    def access_token(self, connection: Connection) -> str:
        """The connected account's access token, for calling the provider's API."""
        if not connection.is_connected:
            raise InvalidState(f"Account {connection.id} is {connection.status}; it has no usable token.")
        return self._credentials(connection)["accessToken"]

    # Helpers

    def _client(self, provider: str) -> OAuthClientPort:
        spec = provider_spec(provider)
        if spec.auth != "oauth":
            raise UnsupportedByProvider(f"{spec.display_name} connects with credentials, not OAuth.")
        try:
            return self.clients(provider)
        except ProviderError:
            raise OAuthNotConfigured(
                f"{spec.display_name} connects through OAuth, which this server has not been configured for."
            ) from None

    def _seal_tokens(self, connection_id: UUID, access_token: str, refresh_token: str | None) -> str:
        # A missing refresh token is left out, never stored empty.
        credentials = {"accessToken": access_token} | ({"refreshToken": refresh_token} if refresh_token else {})
        return self.sealer.seal(credentials, context=str(connection_id))

    def _credentials(self, connection: Connection) -> dict[str, str]:
        if connection.credentials_sealed is None:
            raise InvalidState(f"Account {connection.id} is {connection.status}; it has no credentials.")
        return self.sealer.open(connection.credentials_sealed, context=str(connection.id))

    def _flow(self, connection: Connection) -> dict[str, str]:
        return self.sealer.open(connection.flow_sealed, context=str(connection.id)) if connection.flow_sealed else {}

    @contextmanager
    def _exclusively(self, connection_id: UUID) -> Iterator[None]:
        with self._locks[connection_id.int % LOCK_STRIPES]:
            yield

    def _held(self, connection_id: UUID) -> AbstractContextManager[bool]:
        return self.locks.hold(connection_id) if self.locks is not None else nullcontext(True)


def new_state() -> tuple[str, str]:
    """(state for the authorize URL, its hash to store): the state itself is never stored."""
    state = secrets.token_urlsafe(32)
    return state, hash_state(state)


def hash_state(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def new_pkce() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636: a 64-character verifier of 48 random bytes."""
    verifier = secrets.token_urlsafe(48)
    return verifier, pkce_challenge(verifier)


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
