"""Credits: the balance, the ledger and the price list."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from adapters.bootstrap import Container
from api.schemas import Costs, CreditsOut, DailyCredits, PlanOut, PricingOut, TransactionList, TransactionOut, UsageOut
from application.pressroom import Principal
from domain.workspace import PLANS
from projections.credit_ledger import list_transactions
from projections.credit_usage import usage

Limit = Annotated[int, Parameter(ge=1, le=200, description="Page size (1–200)")]


class CreditsController(Controller):
    path = "/v1"
    tags = ["credits"]  # noqa: RUF012

    @get("/credits", sync_to_thread=True, summary="The workspace's balances and current period")
    def credits(self, principal: Principal, container: Container) -> CreditsOut:
        account = container.app.credit_account(principal.workspace_id)
        return CreditsOut(
            balance=account.balance,
            allowance_balance=account.allowance,
            topup_balance=account.topup,
            plan=account.plan,
            next_plan=account.next_plan,
            period_start=account.period_start,
            period_end=account.period_end,
            used_this_period=account.used_this_period,
        )

    @get("/credits/transactions", sync_to_thread=True, summary="Every credit movement, newest first")
    def transactions(self, principal: Principal, container: Container, limit: Limit = 50, cursor: str | None = None) -> TransactionList:
        page = list_transactions(container.pool, principal.workspace_id, limit=limit, cursor=cursor)
        return TransactionList(
            transactions=[
                TransactionOut(
                    id=t.id,
                    type=t.type,
                    amount=t.amount,
                    balance_after=t.balance_after,
                    job_id=t.job_id,
                    reference=t.reference,
                    reason=t.reason,
                    created_at=t.created_at,
                )
                for t in page.transactions
            ],
            next_cursor=page.next_cursor,
        )

    @get("/credits/usage", sync_to_thread=True, summary="Credits spent on jobs, net of refunds: by type, per day, and in all")
    def usage(
        self,
        principal: Principal,
        container: Container,
        days: Annotated[int, Parameter(ge=1, le=365, description="Days up to and including today (UTC)")] = 30,
    ) -> UsageOut:
        spent = usage(container.pool, principal.workspace_id, days=days, today=container.clock.now().date())
        return UsageOut(
            period_days=spent.period_days,
            total_credits=spent.total_credits,
            by_type=spent.by_type,
            daily=[DailyCredits(date=day.date, credits=day.credits) for day in spent.daily],
            lifetime=spent.lifetime,
        )

    @get("/pricing", sync_to_thread=False, summary="Credits per job type and each plan's monthly credits (no auth)")
    def pricing(self, container: Container) -> PricingOut:
        prices = container.app.pricing
        return PricingOut(
            costs=Costs(copy=prices.copy, image=prices.image, video=prices.video),
            plans={plan: PlanOut(monthly_credits=prices.monthly_credits(plan)) for plan in PLANS},
        )
