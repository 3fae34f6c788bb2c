"""Receiving multipart uploads: streamed to disk in the server's folder, never held in memory.

FastAPI's `UploadFile` reads the whole body before the route runs, into a spooled file in
the system temp dir. Here the route reads the stream itself (python-multipart's parser, as
Starlette does), so the size limit is applied while bytes arrive: a body declared too large is
refused before it is read, and one that grows too large is cut off at the limit. File parts
go to generated names in the given folder; the client's file name is kept only as a label.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fastapi import HTTPException, Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

MAX_FIELD_BYTES = 4096
MAX_FIELDS = 32


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"upload too large: the limit is {limit / 1024 / 1024:.0f} MB "
                              "(rtstyle serve --max-upload-mb)")


@dataclass
class UploadedFile:
    """One file part, saved under a generated name. `filename` is the client's, for labels
    (a download name) only; it never becomes a path."""

    field: str
    path: Path
    filename: str
    content_type: str
    size: int = 0


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)

    def discard(self) -> None:
        """Remove every saved file (rejected or finished uploads keep nothing)."""
        for upload in self.files.values():
            upload.path.unlink(missing_ok=True)


class _Receiver:
    """python-multipart callbacks that route each part to a field value or a file."""

    def __init__(self, folder: Path, file_fields: tuple[str, ...], form: Form):
        self.folder = folder
        self.file_fields = file_fields
        self.form = form
        self.header_name = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.value = bytearray()
        self.out: BinaryIO | None = None
        self.upload: UploadedFile | None = None
        self.error: HTTPException | None = None

    def fail(self, status: int, message: str) -> None:
        if self.error is None:
            self.error = HTTPException(status, message)

    def on_part_begin(self) -> None:
        self.headers, self.value, self.out, self.upload = {}, bytearray(), None, None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_name.lower()] = self.header_value
        self.header_name, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in options:
            if len(self.form.fields) >= MAX_FIELDS:
                self.fail(400, "too many form fields")
            return
        if self.name not in self.file_fields:
            self.fail(400, f"unexpected file field '{self.name}'; send the file as "
                           f"{' or '.join(repr(f) for f in self.file_fields)}")
            return
        if self.name in self.form.files:
            self.fail(400, f"only one file in '{self.name}'")
            return
        path = self.folder / f"{secrets.token_hex(12)}.upload"
        self.out = path.open("xb")
        self.upload = UploadedFile(
            self.name, path, options[b"filename"].decode("utf-8", "replace"),
            self.headers.get(b"content-type", b"").decode("latin-1"))
        self.form.files[self.name] = self.upload

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        if self.out is not None:
            self.out.write(data[start:end])
            self.upload.size += end - start
        elif len(self.value) + end - start > MAX_FIELD_BYTES:
            self.fail(400, f"form field '{self.name}' is too long")
        else:
            self.value += data[start:end]

    def on_part_end(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
        elif self.error is None and self.name:
            self.form.fields[self.name] = self.value.decode("utf-8", "replace")

    def close(self) -> None:
        if self.out is not None:
            self.out.close()


async def receive_form(request: Request, folder: Path, *, max_bytes: int,
                       file_fields: tuple[str, ...]) -> Form:
    """Read a multipart/form-data body into `folder`; 413 past `max_bytes`, 400/415 for a
    body that is not a form. On any failure nothing is left in `folder`."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise HTTPException(415, "send the upload as multipart/form-data, the file in a part "
                                 f"named '{file_fields[0]}' (curl -F {file_fields[0]}=@FILE)")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)
    form = Form()
    receiver = _Receiver(folder, file_fields, form)
    parser = MultipartParser(params[b"boundary"], {
        "on_part_begin": receiver.on_part_begin, "on_part_data": receiver.on_part_data,
        "on_part_end": receiver.on_part_end, "on_header_field": receiver.on_header_field,
        "on_header_value": receiver.on_header_value, "on_header_end": receiver.on_header_end,
        "on_headers_finished": receiver.on_headers_finished})
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise too_large(max_bytes)
            parser.write(chunk)
            if receiver.error is not None:
                raise receiver.error
        parser.finalize()
    except FormParserError:
        receiver.close()
        form.discard()
        raise HTTPException(400, "the multipart body is malformed") from None
    except BaseException:
        receiver.close()
        form.discard()
        raise
    with contextlib.suppress(OSError):
        receiver.close()
    return form
