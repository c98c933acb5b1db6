"""A fake OpenAI API: /v1/chat/completions (JSON mode) and /v1/images/generations (b64_json PNGs)."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

from tests.fakes.servers import FakeServer, Reply, Seen, tiny_png

DALL_E_3_SIZES = frozenset({"1024x1024", "1024x1792", "1792x1024"})


def _error(message: str, status: int, code: str | None = None, param: str | None = None) -> Reply:
    return Reply.json({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}, status)


class FakeOpenAI(FakeServer):
    """Base URL for adapters: `fake.url + "/v1"`. Copy variants: `variant_count`, or the `count` asked for."""

    def __init__(self, api_key: str = "sk-test-123") -> None:
        super().__init__()
        self.api_key = api_key
        self.variant_count: int | None = None
        self.image_b64: str | None = None  # overrides the PNG the images endpoint answers

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def route(self, request: Seen) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(
                "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
                401,
                "invalid_api_key",
            )
        if (request.method, request.path) == ("POST", "/v1/chat/completions"):
            return self._chat(request.json())
        if (request.method, request.path) == ("POST", "/v1/images/generations"):
            return self._image(request.json())
        return _error(f"Invalid URL ({request.method} {request.path})", 404)

    def _chat(self, body: dict[str, Any]) -> Reply:
        if not body.get("model") or not body.get("messages"):
            return _error("you must provide a model parameter", 400)
        if body.get("response_format") != {"type": "json_object"}:
            return _error("this fake only answers JSON mode", 400, param="response_format")
        text = " ".join(m.get("content", "") for m in body["messages"])
        if "json" not in text.lower():
            return _error("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", 400)
        asked = re.search(r'"count":\s*(\d+)', body["messages"][-1]["content"])
        count = self.variant_count if self.variant_count is not None else int(asked.group(1)) if asked else 3
        variants = [
            {"hook": f"Hook {i + 1}", "body": f"Body of variant {i + 1}.", "cta": "Shop now", "hashtags": ["#fake", f"#v{i + 1}"]}
            for i in range(count)
        ]
        return Reply.json(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": json.dumps({"variants": variants}), "refusal": None},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
            }
        )

    def _image(self, body: dict[str, Any]) -> Reply:
        if not body.get("prompt"):
            return _error("'prompt' is a required property", 400, param="prompt")
        size = body.get("size", "1024x1024")
        if size not in DALL_E_3_SIZES:
            return _error(f"Invalid size: '{size}'. Supported values are: {sorted(DALL_E_3_SIZES)}.", 400, param="size")
        if body.get("n", 1) != 1:
            return _error("You must provide n=1 for this model.", 400, param="n")
        width, height = (int(x) for x in size.split("x"))
        b64 = self.image_b64 or base64.b64encode(tiny_png(width, height)).decode()
        return Reply.json({"created": int(time.time()), "data": [{"b64_json": b64, "revised_prompt": body["prompt"]}]})
