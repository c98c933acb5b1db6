"""Connection: a workspace's link to one social account or destination; once connected it is an account.

Credentials reach the domain only sealed (ciphertext made outside it), and an OAuth state only as
its hash: events never hold a secret in clear. The state is single-use and expires after
STATE_LIFETIME, and since it is stored as an event, any replica can complete the callback.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Literal, cast
from uuid import UUID

from domain.base import WorkspaceAggregate
from domain.errors import InvalidState, MissingCredentials, OAuthStateExpired, OAuthStateInvalid

Status = Literal["pending", "connected", "reconnect_required", "disconnected", "failed"]
Auth = Literal["oauth", "manual"]
STATE_LIFETIME = timedelta(minutes=10)


class Connection(WorkspaceAggregate):
    FAMILY = "connections"
    EVENT_PREFIX = "connection"

    class Requested(WorkspaceAggregate.Created):
        """A connection was asked for: an OAuth one waits for its callback, a manual one connects at once."""

        provider: str
        auth: str
        state_hash: str | None
        state_expires_at: datetime | None
        redirect_uri: str | None
        flow_sealed: str | None

    def __init__(
        self,
        workspace_id: UUID,
        provider: str,
        auth: str,
        state_hash: str | None,
        state_expires_at: datetime | None,
        redirect_uri: str | None,
        flow_sealed: str | None,
    ) -> None:
        self.workspace_id = workspace_id
        self.provider = provider
        self.auth = cast(Auth, auth)
        self.status: Status = "pending"
        self.state_hash = state_hash
        self.state_expires_at = state_expires_at
        self.redirect_uri = redirect_uri
        # What the OAuth flow keeps until its callback (a PKCE verifier, the authorize URL), sealed.
        self.flow_sealed = flow_sealed
        self.handle: str | None = None
        self.display_name: str | None = None
        self.credentials_sealed: str | None = None
        self.token_expires_at: datetime | None = None
        self.connected_at: datetime | None = None
        self.error: str | None = None

    @classmethod
    def request_oauth(
        cls,
        connection_id: UUID,
        workspace_id: UUID,
        provider: str,
        *,
        state_hash: str,
        now: datetime,
        redirect_uri: str,
        flow_sealed: str | None = None,
    ) -> Connection:
        """A pending connection whose authorization must come back with the state hashed to `state_hash`
        within STATE_LIFETIME."""
        return cls._create(
            cls.Requested,
            id=connection_id,
            workspace_id=workspace_id,
            provider=provider,
            auth="oauth",
            state_hash=state_hash,
            state_expires_at=now + STATE_LIFETIME,
            redirect_uri=redirect_uri,
            flow_sealed=flow_sealed,
        )

    @classmethod
    def connect_manual(
        cls,
        connection_id: UUID,
        workspace_id: UUID,
        provider: str,
        *,
        name: str,
        display_name: str,
        credentials_sealed: str,
        token_expires_at: datetime | None = None,
    ) -> Connection:
        """A connection made from credentials the client gave (a webhook URL, a bot token): connected at once."""
        _check_credentials(credentials_sealed)
        connection = cls._create(
            cls.Requested,
            id=connection_id,
            workspace_id=workspace_id,
            provider=provider,
            auth="manual",
            state_hash=None,
            state_expires_at=None,
            redirect_uri=None,
            flow_sealed=None,
        )
        connection._connect(name, display_name, credentials_sealed, token_expires_at)
        return connection

    @property
    def is_connected(self) -> bool:
        return self.status == "connected"

    def needs_refresh(self, now: datetime, margin: timedelta) -> bool:
        """Whether a connected account's token runs out within `margin` of `now`."""
        return self.is_connected and self.token_expires_at is not None and self.token_expires_at - margin <= now

    def check_state(self, state_hash: str, now: datetime) -> None:
        """Refuses a callback that is not this pending connection's, or came too late; check before exchanging its code."""
        if self.status != "pending" or self.auth != "oauth":
            raise InvalidState(f"Connection {self.id} is {self.status}; it is not waiting for an authorization.")
        if self.state_hash is None or not hmac.compare_digest(state_hash, self.state_hash):
            raise OAuthStateInvalid("The authorization's state does not match the one it was started with.")
        if self.state_expires_at is None or now >= self.state_expires_at:
            raise OAuthStateExpired(f"The authorization was started more than {STATE_LIFETIME} ago; start again.")

    class Connected(WorkspaceAggregate.Event):
        handle: str
        display_name: str
        credentials_sealed: str
        token_expires_at: datetime | None

        def apply(self, connection: Connection) -> None:
            connection.status = "connected"
            connection.handle = self.handle
            connection.display_name = self.display_name
            connection.credentials_sealed = self.credentials_sealed
            connection.token_expires_at = self.token_expires_at
            connection.connected_at = self.timestamp
            connection.error = None
            _forget_flow(connection)

    def complete(
        self,
        state_hash: str,
        now: datetime,
        *,
        name: str,
        display_name: str,
        credentials_sealed: str,
        token_expires_at: datetime | None,
    ) -> None:
        """Connects the account an OAuth callback authorized; `name` is its name at the provider."""
        self.check_state(state_hash, now)
        _check_credentials(credentials_sealed)
        self._connect(name, display_name, credentials_sealed, token_expires_at)

    def _connect(self, name: str, display_name: str, credentials_sealed: str, token_expires_at: datetime | None) -> None:
        self._record(
            self.Connected,
            handle=f"{self.provider}:{name}",
            display_name=display_name,
            credentials_sealed=credentials_sealed,
            token_expires_at=token_expires_at,
        )

    class AuthorizationFailed(WorkspaceAggregate.Event):
        error: str

        def apply(self, connection: Connection) -> None:
            connection.status = "failed"
            connection.error = self.error
            _forget_flow(connection)

    def fail_authorization(self, error: str) -> None:
        """The provider refused the authorization, or the code could not be exchanged."""
        if self.status != "pending":
            raise InvalidState(f"Connection {self.id} is {self.status}; only a pending one can fail its authorization.")
        self._record(self.AuthorizationFailed, error=error)

    class TokensRefreshed(WorkspaceAggregate.Event):
        credentials_sealed: str
        token_expires_at: datetime | None

        def apply(self, connection: Connection) -> None:
            connection.credentials_sealed = self.credentials_sealed
            connection.token_expires_at = self.token_expires_at

    def refresh(self, credentials_sealed: str, token_expires_at: datetime | None) -> None:
        """Stores refreshed credentials. The caller keeps the old refresh token when the provider sent no new one."""
        if not self.is_connected:
            raise InvalidState(f"Connection {self.id} is {self.status}; only a connected account is refreshed.")
        _check_credentials(credentials_sealed)
        self._record(self.TokensRefreshed, credentials_sealed=credentials_sealed, token_expires_at=token_expires_at)

    class ReconnectRequired(WorkspaceAggregate.Event):
        reason: str

        def apply(self, connection: Connection) -> None:
            connection.status = "reconnect_required"
            connection.error = self.reason

    def require_reconnect(self, reason: str) -> None:
        """The account's credentials stopped working (a failed refresh, a revoked token)."""
        if self.status == "reconnect_required":
            return
        if not self.is_connected:
            raise InvalidState(f"Connection {self.id} is {self.status}; only a connected account can need reconnecting.")
        self._record(self.ReconnectRequired, reason=reason)

    class Disconnected(WorkspaceAggregate.Event):
        def apply(self, connection: Connection) -> None:
            connection.status = "disconnected"
            connection.credentials_sealed = None
            connection.token_expires_at = None
            _forget_flow(connection)

    def disconnect(self) -> None:
        if self.status == "disconnected":
            raise InvalidState(f"Connection {self.id} is already disconnected.")
        self._record(self.Disconnected)


def _forget_flow(connection: Connection) -> None:
    """An OAuth state is used once: whatever ends the flow forgets it."""
    connection.state_hash = None
    connection.state_expires_at = None
    connection.flow_sealed = None


def _check_credentials(credentials_sealed: str) -> None:
    if not credentials_sealed:
        raise MissingCredentials("A connection cannot be stored without its credentials.")
