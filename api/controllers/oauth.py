"""The OAuth callback: where a provider sends the user back after they authorized (or denied) a connection.

Public (no API key): the single-use state is what authorizes the call.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from adapters.bootstrap import Container
from api.controllers.connections import connection_out
from api.errors import RequestInvalid
from api.schemas import ConnectionAnswer

Text = Annotated[str | None, Parameter(max_length=2048)]


class OAuthController(Controller):
    path = "/oauth"
    tags = ["connections"]  # noqa: RUF012

    @get(
        "/{provider:str}/callback",
        sync_to_thread=True,
        summary="Completes an OAuth connection",
        description="The provider redirects here with `code` and `state` (or `error`); answers the connection, connected or failed.",
    )
    def callback(
        self,
        provider: str,
        container: Container,
        oauth_state: Annotated[str | None, Parameter(query="state", max_length=2048)] = None,  # `state` is Litestar's
        code: Text = None,
        error: Annotated[str | None, Parameter(max_length=200)] = None,
        error_description: Text = None,
    ) -> ConnectionAnswer:
        if not oauth_state:
            raise RequestInvalid.at("state", "The callback has no state.")
        if error:
            return ConnectionAnswer(connection=connection_out(container.oauth.deny(provider, oauth_state, error, error_description)))
        if not code:
            raise RequestInvalid.at("code", "The callback has neither a code nor an error.")
        return ConnectionAnswer(connection=connection_out(container.oauth.complete(provider, oauth_state, code)))
