"""POST /data_backup (admin): the whole data folder, encrypted with the key of the gateway's
seed, as the reply's body (application/octet-stream; its SHA-256 in X-Backup-Sha256).

The router makes the backup (services/router/backups.py) into the private run folder; this
responder opens that file, removes its name at once (whatever happens next, it is handed out at
most once and never left behind) and streams it. `gateway-cli backup --to FILE` keeps it."""

from __future__ import annotations

import os

import falcon

from gwcore import constants as C
from gwcore.errors import InternalError, InvalidInput

from .gateway import Gateway, read_body


class DataBackup:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if read_body(req, self.gw.settings.max_body_bytes):
            raise InvalidInput("/data_backup takes no fields")
        made = self.gw.call(
            C.BACKUP_SERVICE,
            C.METHOD_DATA_BACKUP,
            {},
            request_id=req.context.request_id,
            timeout=self.gw.settings.long_timeout_s,
        )
        name = str(made.get("file", ""))
        if not name or "/" in name or name.startswith("."):
            raise InternalError(f"the router named an odd backup file {name!r}")
        path = self.gw.settings.run_dir / C.BACKUPS_DIR_NAME / name
        stream = path.open("rb")
        os.unlink(path)
        resp.content_type = "application/octet-stream"
        resp.downloadable_as = name
        resp.set_header(C.BACKUP_SHA256_HEADER, made["sha256"])
        resp.set_header(C.BACKUP_FILES_HEADER, str(made["files"]))
        resp.set_stream(stream, int(made["size"]))


def add_data_backup(app: falcon.App, gw: Gateway) -> None:
    app.add_route(C.PATH_DATA_BACKUP, DataBackup(gw))
