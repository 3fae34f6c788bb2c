"""The API's JSON shapes and multipart bodies, for the OpenAPI document at /docs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Problem(BaseModel):
    detail: str = Field(description="What went wrong, in one sentence, and what to change.")


class StyleInfo(BaseModel):
    name: str = Field(description="The name to send as `style`.")
    full_name: str = Field(description="name.tag of the default tag.")
    aliases: list[str] = Field(description="Other names for it (`monet` for `monet-lite`).")
    tags: list[str] = Field(description="Every installed tag; `name.tag` picks one.")
    arch: str
    painting: str | None = None
    attribution: str | None = None
    license: str
    origin: str = Field(description="bundled or user")
    needs_style_image: bool = Field(
        description="Paints in the manner of any painting sent as `style_image` (AdaIN, SANet).")
    default_strength: float = Field(
        1.0, description="The strength used when a request gives none (1 but for a model "
                         "whose file recommends less).")
    video_style_scale: float | str = Field(
        1.0, description="The `style_scale` a video job or the live camera uses when the "
                         "request gives none (1 but for a style whose file recommends another).")
    image_url: str | None = Field(description="Gallery picture: photo · painting · output.")


class StyleList(BaseModel):
    styles: list[StyleInfo]
    arbitrary_style: bool = Field(
        description="A model that takes any painting (`style_image`) is installed.")


class ServerInfo(BaseModel):
    version: str
    device: str
    backend: str
    auth: bool
    limits: dict[str, float]


class JobStatus(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed"]
    progress: float = Field(ge=0.0, le=1.0, description="Frames written / frames in the input.")
    error: str | None = None
    style: str
    frames_written: int
    frames_total: int | None = None
    fps: float | None = None
    eta_s: float | None = None
    size: list[int] | None = Field(None, description="Output width, height.")
    input: str = Field(description="What the upload was found to be.")
    has_audio: bool
    result_url: str | None = Field(None, description="Set once the state is done.")


_OPTIONS = {
    "style": {"type": "string", "description": "A style name from GET /api/styles "
              "(`monet`, `monet-lite.v2`)."},
    "strength": {"type": "number", "minimum": 0, "maximum": 1,
                 "description": "0 = the input, 1 = the full style (a pixel blend); default: "
                                "the style's `default_strength` (1 for most)."},
    "size": {"type": "string", "description": "Fit inside WxH (e.g. 1280x720, 640x-1); "
             "default: the input's size."},
    "scale": {"type": "number", "exclusiveMinimum": 0, "description": "Scale factor."},
    "max_side": {"type": "integer", "minimum": 1, "description": "Longest side at most this."},
    "style_scale": {"type": "string",
                    "description": "Run the network on the picture scaled by this (0 < S <= 4) "
                    "or `auto` (its training size), upsampled back edge-aware: strokes 1/S "
                    "times larger. 1 = off (as `--style-scale`). Default: 1 for images, the "
                    "style's `video_style_scale` for videos (1 for most)."},
    "preserve_color": {"type": "string", "enum": ["off", "luminance", "histogram"],
                       "default": "off", "description": "Keep the photo's colours: take only "
                       "the style's lightness (luminance) or match the output's colour "
                       "statistics to the photo's (histogram); as `--preserve-color`."},
    "photoreal": {"type": "boolean", "default": False,
                  "description": "A locally affine recolouring of the input: the style's "
                  "colours, the photo's structure (as `--photoreal`)."},
    "style_image": {"type": "string", "format": "binary",
                    "description": "The painting, for a style with needs_style_image."},
}


def multipart_body(file_help: str, extra: dict | None = None) -> dict:
    properties = {"file": {"type": "string", "format": "binary", "description": file_help},
                  **_OPTIONS, **(extra or {})}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file", "style"], "properties": properties}}}}}


STYLIZE_BODY = multipart_body(
    "The image: JPEG, PNG, WebP, BMP, TIFF or GIF.",
    {"format": {"type": "string", "enum": ["same", "png", "jpeg", "webp"], "default": "same",
                "description": "Result format; `same` keeps JPEG, PNG and WebP, else PNG."}})
JOB_BODY = multipart_body(
    "The video: MP4, MOV, MKV, WebM or AVI.",
    {"smooth": {"type": "number", "minimum": 0, "maximum": 1,
                "description": "Temporal smoothing 0..1 (0 = off); default as `rtstyle video`."}})

IMAGE_RESPONSE = {"content": {t: {"schema": {"type": "string", "format": "binary"}}
                              for t in ("image/png", "image/jpeg", "image/webp")},
                  "description": "The stylized image, same size as the input unless "
                                 "size/scale/max_side say otherwise."}
VIDEO_RESPONSE = {"content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}},
                  "description": "H.264 MP4 with every frame, its timing and the audio."}


def problems(*codes: int) -> dict:
    text = {400: "Bad option or style name", 401: "Access token missing or wrong",
            403: "Request from another site", 404: "No such job (or it expired)",
            409: "Not finished", 413: "Over a size, pixel or duration limit",
            415: "Not an image / not a video", 503: "Queue full; try again later"}
    return {c: {"model": Problem, "description": text[c]} for c in codes}
