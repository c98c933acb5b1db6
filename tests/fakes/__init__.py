"""Real HTTP fakes of outside services, started on loopback by the tests that use them."""

from tests.fakes.bluesky import FakeBluesky
from tests.fakes.discord import FakeDiscord
from tests.fakes.fal import FakeFal
from tests.fakes.heygen import FakeHeyGen
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.oauth import FakeLinkedIn, FakeUser, FakeX
from tests.fakes.openai import FakeOpenAI
from tests.fakes.product_site import ProductSite, Streamed
from tests.fakes.servers import FakeServer, Part, Reply, Seen, tiny_mp4, tiny_png
from tests.fakes.telegram import FakeTelegram
from tests.fakes.webhook_receiver import FakeWebhookReceiver

__all__ = ["FakeFal", "FakeHeyGen", "FakeOpenAI", "FakeServer", "Reply", "Seen", "tiny_mp4", "tiny_png"]
__all__ += ["FakeLinkedIn", "FakeUser", "FakeX"]
__all__ += ["ProductSite", "Streamed"]
__all__ += ["FakeBluesky", "FakeDiscord", "FakeMastodon", "FakeTelegram", "FakeWebhookReceiver", "Part"]
