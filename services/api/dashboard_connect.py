"""Mintgate's connect page: a federation connected by invite code (and the guardians' ws URLs
where it lists only iroh endpoints), the router's progress followed step by step with htmx, or
in one request without JavaScript. Sessions, forms, rendering and calls are the dashboard's
(dashboard.py)."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import falcon

from gwcore import constants as C
from gwcore.errors import GatewayError, NotFound
from gwcore.invites import parse_api_urls, parse_invite

from . import formatting as fmt

if TYPE_CHECKING:
    from .dashboard import Dashboard

log = logging.getLogger(__name__)
CONNECT_POLLS = 160  # x 0.75 s: how long the page follows a connect


class ConnectPages:
    public = True  # the dashboard's own session, not the API's Bearer check

    def __init__(self, ui: Dashboard) -> None:
        self.ui = ui

    def on_post_connect(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Connect by invite code, with the guardians' ws URLs if given (`PEER=URL` items, for a
        federation that lists only iroh endpoints). With htmx: the invite is checked at once (a
        bad one is an error in place), the connect runs on (the router does the work and keeps
        its progress) and the page follows its steps (`on_get_connect_progress`). Without
        JavaScript: one request that answers when connected, or with the error."""
        form = self.ui._form(req, self.ui._session(req))
        rid = req.context.request_id
        try:
            body: dict = {"invite_code": str(form.get("invite_code", "")).strip()}
            api_urls = parse_api_urls(str(form.get("api_urls", "")))
            if api_urls:
                body["api_urls"] = api_urls
            if req.get_header("HX-Request") == "true":
                fed_id = parse_invite(body["invite_code"], api_urls).federation_id
                since = int(time.time() * 1000)  # what the router says of older connects is old
                threading.Thread(
                    target=self._connect_in_background, args=(body, rid), daemon=True
                ).start()
                self.ui._render(
                    resp,
                    "connect_status.html",
                    error=None,
                    progress=None,
                    fed_id=fed_id,
                    n=0,
                    since=since,
                )
                return
            self.ui._call("/connect-fed", body, rid)
        except GatewayError as exc:
            if req.get_header("HX-Request") == "true":
                self.ui._render(resp, "connect_status.html", error=exc.message)
                return
            resp.status = falcon.code_to_http_status(exc.http_status)
            self.ui._render(resp, "message.html", title="Could not connect", message=exc.message)
            return
        raise falcon.HTTPSeeOther("/ui/")

    def _connect_in_background(self, body: dict, rid: str) -> None:
        try:
            self.ui._call("/connect-fed", body, rid)
        except GatewayError:
            pass  # the router keeps the failure for the progress poll to show
        except Exception:
            log.exception("connect from the dashboard failed")

    def on_get_connect_progress(self, req: falcon.Request, resp: falcon.Response, fed: str) -> None:
        """One step of a connect's progress, from the router (whichever worker asks): polled by
        htmx until running (then the overview) or failed (then the error, in place). `since`
        (ms): when this connect was sent; the router's word on an earlier connect of the same
        federation (running before it was left, or failed) is not this one's."""
        self.ui._session(req)
        raw_n, raw_since = req.get_param("n") or "0", req.get_param("since") or "0"
        n = int(raw_n) if fmt.whole(raw_n) else 0
        since = int(raw_since) if fmt.whole(raw_since) else 0
        note = None
        try:
            progress = self.ui.gw.call(
                C.GATEWAY_SERVICE,
                C.METHOD_CONNECT_STATUS,
                {"federation_id": fed},
                request_id=req.context.request_id,
                timeout=5,
            )
        except NotFound:
            progress = None  # the connect has not reached the router yet
        except GatewayError as exc:  # a slow answer is not the connect's end: ask again
            progress, note = None, exc.message
        if progress is not None and progress.get("updated", 0) * 1000 < since:
            progress = None  # an earlier connect's: this one has not reached the router yet
        if progress is not None and progress["step"] == "failed":
            self.ui._render(resp, "connect_status.html", error=progress["error"])
            return
        if progress is not None and progress["step"] == "running":
            resp.set_header("HX-Redirect", "/ui/")
            self.ui._render(resp, "connect_status.html", error=None, progress=progress, done=True)
            return
        if n >= CONNECT_POLLS:
            self.ui._render(resp, "connect_status.html", error="no progress for two minutes")
            return
        self.ui._render(
            resp,
            "connect_status.html",
            error=None,
            progress=progress,
            fed_id=fed,
            n=n + 1,
            since=since,
            note=note,
        )
