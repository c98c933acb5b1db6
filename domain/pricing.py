"""What things cost: credits per job type and each plan's monthly allowance."""

from __future__ import annotations

from typing import Literal, get_args

import msgspec

JobType = Literal["copy", "image", "video"]
JOB_TYPES: tuple[JobType, ...] = get_args(JobType)


class Pricing(msgspec.Struct, frozen=True, kw_only=True):
    copy: int = 1
    image: int = 3
    video: int = 40
    free: int = 50
    pro: int = 500
    business: int = 2500

    def monthly_credits(self, plan: str) -> int:
        return {"free": self.free, "pro": self.pro, "business": self.business}[plan]

    def cost_of(self, job_type: str, outputs: int) -> int:
        """Copy costs per job (all its variants); images per image; video per video."""
        if job_type == "copy":
            return self.copy
        return {"image": self.image, "video": self.video}[job_type] * outputs
