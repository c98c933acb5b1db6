"""Assets: produced and uploaded media, and the signed URLs that serve the files themselves."""

from __future__ import annotations

import base64
import binascii
from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED

from adapters.bootstrap import Container
from api.errors import RequestInvalid
from api.schemas import AssetOut, UploadAsset
from application.pressroom import Principal
from domain.asset import Asset


def asset_out(asset: Asset, container: Container) -> AssetOut:
    return AssetOut(
        id=asset.id,
        job_id=asset.job_id,
        campaign_id=asset.campaign_id,
        type=asset.kind,  # type: ignore[arg-type]
        mime=asset.mime,
        url=container.signer.url(asset.id, asset.filename),
        width=asset.width,
        height=asset.height,
        bytes=asset.size,
        created_at=asset.created_on,
    )


def decoded(content_base64: str) -> bytes:
    try:
        return base64.b64decode(content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise RequestInvalid.at("contentBase64", "This is not valid base64.") from None


class AssetsController(Controller):
    path = "/v1/assets"
    tags = ["assets"]  # noqa: RUF012

    @get("/{asset_id:uuid}", sync_to_thread=True, summary="One asset, with a signed URL of its file")
    def asset(self, principal: Principal, asset_id: FromPath[UUID], container: Container) -> AssetOut:
        return asset_out(container.app.get_asset(principal.workspace_id, asset_id), container)

    @post(
        "/upload",
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        summary="Upload a PNG, JPEG, WebP image or MP4 video (≤ 10 MB), typed by its content, not its claimed mime",
    )
    def upload(self, principal: Principal, data: JSONBody[UploadAsset], container: Container) -> AssetOut:
        return asset_out(container.app.upload_asset(principal.workspace_id, data.filename, decoded(data.content_base64)), container)


class MediaController(Controller):
    path = "/media"
    tags = ["assets"]  # noqa: RUF012

    @get(
        "/{asset_id:uuid}/{token:str}/{filename:str}",
        sync_to_thread=True,
        security=[],
        summary="A media file (no key: the token is the signature)",
    )
    def media(self, asset_id: FromPath[UUID], token: FromPath[str], filename: FromPath[str], container: Container) -> Response[bytes]:
        if not container.signer.verify(asset_id, token):
            raise NotFoundException("No such media file.")
        asset = container.app.get_asset(None, asset_id)
        return Response(
            content=container.media_store.read(asset.storage_key),
            media_type=asset.mime,
            headers={"Content-Disposition": f'inline; filename="{asset.filename}"', "Cache-Control": "private, max-age=3600"},
        )
