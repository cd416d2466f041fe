"""Sellers' uploads over REST: a product image (the raw image as the body, with its Content-Type), checked and
stored by live/commerce/images.py and served back at /uploads/<name> (live/http/follows.py `upload`)."""
from __future__ import annotations

from pydantic import BaseModel, Field

from live.auth.policy import SELLERS
from live.commerce.images import ACCEPTED, MAX_BYTES, MAX_SIDE, media_type, store_product_image
from live.http.api import API, Api, Call, read_body
from live.uploads import IMAGE_TYPES

api = Api()


class UploadOut(BaseModel):
    url: str = Field(description="the file's same-site path, /uploads/<sha256>.<ext>: what image_urls takes")
    content_type: str
    size: int = Field(description="bytes")
    width: int = Field(description="pixels")
    height: int = Field(description="pixels")


_BODY = {"required": True,
         "description": f"the image's bytes, with its own Content-Type ({ACCEPTED}); the bytes must be that type; at "
                        f"most {MAX_BYTES} bytes (413 beyond) and {MAX_SIDE} x {MAX_SIDE} pixels",
         "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE_TYPES.values()}}


@api.route("POST", f"{API}/seller/uploads", summary="Upload a product image (the raw image as body); its url for "
           "image_urls", tag="catalog", auth="user", roles=SELLERS, status=201, response=UploadOut,
           errors=(408, 413, 415, 422), extra={"requestBody": _BODY})
async def upload_image(call: Call):
    declared = media_type(call.request.headers.get("Content-Type"))
    data = await read_body(call.request, MAX_BYTES)
    return await store_product_image(call.services.uploads, data, declared)
