"""The payment provider's webhook: signed notices of credit-pack orders and subscription changes."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK

from adapters.bootstrap import Container
from api.schemas import PaymentReceipt
from application.metadata import metadata


class BillingController(Controller):
    path = "/v1/billing"
    tags = ["billing"]  # noqa: RUF012

    @post(
        "/webhook",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        security=[],
        summary="LemonSqueezy webhook (no API key: the X-Signature HMAC of the body authenticates it)",
        description="`order_created` of a configured credit pack tops up once per order; subscription events change "
        "the plan. A bad signature is 401 and records nothing; an event that changes nothing here is 200 with "
        "`applied: false`.",
    )
    def webhook(
        self,
        body: bytes,
        container: Container,
        signature: Annotated[str | None, Parameter(header="X-Signature", required=False)] = None,
        event_name: Annotated[str | None, Parameter(header="X-Event-Name", required=False)] = None,
    ) -> PaymentReceipt:
        notice = container.payments.notice_from(body, signature, event_name)
        if notice is not None:
            with metadata(actor=f"billing:lemonsqueezy:{event_name}"):
                container.app.apply_payment(notice)
        return PaymentReceipt(received=True, applied=notice is not None)
