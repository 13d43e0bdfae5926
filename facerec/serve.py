"""The HTTP service behind `facerec-serve`: one gallery, the model loaded once, routes -> Recognizer.

    GET    /health          {"status": "ok", "gallery", "people", "runtime", "model"}
    POST   /identify        multipart field `image` -> the `facerec-match --json` object of one photo
    POST   /enroll          fields `name` and one or more `image` -> the enrolment report
    GET    /people          {"people": {name: {"templates", "photos"}}}
    DELETE /people/{name}   {"removed": name, "templates": n}

Errors are {"error": "..."}: 400 bad image, name or form; 401 without `Authorization: Bearer TOKEN`
(when a token is set); 404 unknown person; 409 gallery unusable (missing, corrupt, other model);
413 body over the upload limit (refused from Content-Length, or counted while reading: never
read whole into memory). The recognizer (detector and network) is not thread-safe: a lock serialises
it, and the gallery file's own lock holds across processes.
"""

from __future__ import annotations

import hmac
import json
import threading

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from facerec.search.gallery import GalleryError
from facerec.images import BadInput, decode_image
from facerec.recognizer import Recognizer


class _TooLarge(Exception):
    pass


class _Limits:
    """ASGI middleware: the bearer token, and the upload size counted as the body arrives."""

    def __init__(self, app, max_bytes: int, token: str | None):
        self.app, self.max_bytes = app, max_bytes
        self.token = None if token is None else f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.token is not None and not hmac.compare_digest(headers.get(b"authorization", b""), self.token):
            return await _send(send, 401, "missing or wrong bearer token", {b"www-authenticate": b"Bearer"})
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            return await _send(send, 413, f"upload over {self.max_bytes} bytes")
        seen, over = 0, False

        async def counted():
            nonlocal seen, over
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                over = True
                raise _TooLarge  # stops the form parser; the app's answer to that is replaced below
            return message

        async def answer(message):
            if not over:
                await send(message)
            elif message["type"] == "http.response.start":
                await _send(send, 413, f"upload over {self.max_bytes} bytes")

        await self.app(scope, counted, answer)


async def _send(send, status: int, error: str, headers: dict | None = None) -> None:
    """A JSON error sent before the app (and its form parser) ever sees the request."""
    body = json.dumps({"error": error}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
           *(headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def create_app(recognizer: Recognizer, token: str | None = None, max_upload_mb: float = 20):
    """The ASGI app of the service over `recognizer`'s gallery; `token` set: every request needs it."""
    max_bytes = int(max_upload_mb * 1024 * 1024)
    app = FastAPI(title="facerec", docs_url=None, redoc_url=None, openapi_url=None)
    lock = threading.Lock()

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_form(request, exc):
        where = ", ".join(".".join(str(x) for x in e.get("loc", ())[1:]) or "body" for e in exc.errors())
        return error(400, f"bad request: missing or invalid {where}")

    @app.exception_handler(BadInput)
    async def bad_input(request, exc):
        return error(400, str(exc))

    @app.exception_handler(GalleryError)
    async def bad_gallery(request, exc):
        return error(409, str(exc))

    async def decoded(upload: UploadFile):
        return decode_image(await upload.read(), upload.filename or "upload")

    @app.get("/health")
    def health():
        with lock:
            people = len(recognizer.people()) if recognizer.gallery_path.exists() else 0
            emb = recognizer.embedder
        return {"status": "ok", "gallery": str(recognizer.gallery_path), "people": people, "runtime": emb.runtime,
                "model": emb.fingerprint[:12]}

    @app.post("/identify")
    async def identify(image: UploadFile = File(...), top_k: int = 5):
        pixels = await decoded(image)
        result = await _in_thread(lock, recognizer.identify, pixels, top_k)
        result["image"] = image.filename or "upload"
        return result

    @app.post("/enroll")
    async def enroll(name: str = Form(...), image: list[UploadFile] = File(...)):
        photos = []
        for i, upload in enumerate(image):
            data, source = await upload.read(), upload.filename or f"upload-{i + 1}"
            decode_image(data, source)  # a bad image is a 400 before any face work
            photos.append((source, data))
        try:
            report = await _in_thread(lock, recognizer.enroll, name, photos)
        except ValueError as e:  # an unacceptable name
            return error(400, str(e))
        return {"name": report.name, "photos": report.photos, "templates": report.templates,
                "problems": report.problems, "notes": report.notes, "already": report.already}

    @app.get("/people")
    def people():
        with lock:
            return {"people": recognizer.people() if recognizer.gallery_path.exists() else {}}

    @app.delete("/people/{name}")
    def remove(name: str):
        with lock:
            n = recognizer.remove(name) if recognizer.gallery_path.exists() else 0
        if not n:
            return error(404, f"{name}: not in the gallery")
        return {"removed": name, "templates": n}

    return _Limits(app, max_bytes, token)


async def _in_thread(lock: threading.Lock, fn, *args):
    """Run the (blocking, CPU-bound) recognizer call off the event loop, one at a time."""
    from starlette.concurrency import run_in_threadpool

    def locked():
        with lock:
            return fn(*args)

    return await run_in_threadpool(locked)
