"""A small client of the gateway's HTTP API, shared by gateway-cli, tests and the dashboard's
tests. Errors are `ApiError(kind, code, message, status)` where kind is one of connection, auth,
invalid, not_found, pending (409/429: ask again later), server."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import httpx

from gwcore import constants as C


class ApiError(Exception):
    def __init__(self, kind: str, code: str, message: str, status: int = 0) -> None:
        super().__init__(f"{code}: {message}")
        self.kind, self.code, self.message, self.status = kind, code, message, status


def _answer(r: httpx.Response) -> Any:
    """The JSON of an answer, or its error as ApiError."""
    try:
        data = r.json()
    except ValueError:
        raise ApiError(
            "server", "bad_response", f"HTTP {r.status_code} without JSON", r.status_code
        ) from None
    if r.status_code >= 400:
        kind = {401: "auth", 404: "not_found", 409: "pending", 429: "pending"}.get(
            r.status_code, "invalid" if r.status_code < 500 else "server"
        )
        raise ApiError(
            kind, str(data.get("code", "error")), str(data.get("error", "")), r.status_code
        )
    return data


class GatewayApi:
    def __init__(
        self,
        address: str = C.DEFAULT_API_URL,
        password: str | None = None,
        *,
        timeout: float = 130.0,
    ) -> None:
        self.address = address.rstrip("/")
        headers = {"Authorization": f"Bearer {password}"} if password else {}
        self.http = httpx.Client(base_url=self.address, headers=headers, timeout=timeout)

    def _post(self, path: str, body: dict | None = None) -> Any:
        try:
            r = self.http.post(path, json=body or {})
        except httpx.HTTPError as exc:
            raise ApiError(
                "connection", "unreachable", f"cannot reach the gateway at {self.address}: {exc}"
            ) from None
        return _answer(r)

    def info(self) -> dict:
        return self._post(C.PATH_INFO)

    def balance(self, federation_id: str) -> dict:
        return self._post(C.PATH_BALANCE, {"federation_id": federation_id})

    def balances(self) -> dict:
        return self._post(C.PATH_BALANCES)

    def lightning(self) -> dict:
        return self._post(C.PATH_LIGHTNING)

    def address_for(self, federation_id: str) -> dict:
        return self._post(C.PATH_ADDRESS, {"federation_id": federation_id})

    def deposit(
        self,
        federation_id: str,
        operation_id: str | None = None,
        timeout_s: int = 30,
        *,
        txid: str | None = None,
        transaction: str | None = None,
        txout_proof: str | None = None,
    ) -> dict:
        """Claim a confirmed deposit: by `txid`, by raw `transaction` (the 2023 form), by the
        address's `operation_id`, or the newest address's."""
        body: dict = {"federation_id": federation_id, "timeout_s": timeout_s}
        for k, v in (
            ("operation_id", operation_id),
            ("txid", txid),
            ("transaction", transaction),
            ("txout_proof", txout_proof),
        ):
            if v:
                body[k] = v
        return self._post(C.PATH_DEPOSIT, body)

    def withdraw(
        self,
        federation_id: str,
        amount: int | str,
        address: str,
        *,
        preview: bool = False,
        idempotency_key: str | None = None,
    ) -> dict:
        body: dict = {"federation_id": federation_id, "amount": amount, "address": address}
        if preview:
            body["preview"] = True
        if idempotency_key:
            body["idempotency_key"] = idempotency_key
        return self._post(C.PATH_WITHDRAW, body)

    def receive_ecash(self, notes: str, federation_id: str | None = None) -> dict:
        body: dict = {"notes": notes}
        if federation_id:
            body["federation_id"] = federation_id
        return self._post(C.PATH_RECEIVE_ECASH, body)

    def spend_ecash(
        self, federation_id: str, amount_msat: int, idempotency_key: str | None = None
    ) -> dict:
        body: dict = {"federation_id": federation_id, "amount_msat": amount_msat}
        if idempotency_key:
            body["idempotency_key"] = idempotency_key
        return self._post(C.PATH_SPEND_ECASH, body)

    def connect_fed(
        self, invite_code: str, api_urls: dict[str, str] | None = None, recover: bool = False
    ) -> dict:
        body: dict = {"invite_code": invite_code}
        if api_urls:
            body["api_urls"] = api_urls
        if recover:
            body["recover"] = True
        return self._post(C.PATH_CONNECT_FED, body)

    def leave_fed(self, federation_id: str, force: bool = False) -> dict:
        return self._post(C.PATH_LEAVE_FED, {"federation_id": federation_id, "force": force})

    def set_fees(
        self, base_msat: int, proportional_millionths: int, federation_id: str | None = None
    ) -> dict:
        body: dict = {"base_msat": base_msat, "proportional_millionths": proportional_millionths}
        if federation_id:
            body["federation_id"] = federation_id
        return self._post(C.PATH_SET_FEES, body)

    def data_backup(self, to: Path) -> dict:
        """The whole data folder, encrypted, into the new file `to` (0600; never written over:
        the bytes go to a temporary file beside it, checked against the gateway's SHA-256, then
        linked into place)."""
        to = Path(to)
        if to.exists():
            raise ApiError(
                "invalid", "invalid_input", f"{to} already exists: a backup is never written over"
            )
        tmp = to.with_name(f".{to.name}.{os.getpid()}.part")
        digest, size = hashlib.sha256(), 0
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise ApiError(
                "invalid", "invalid_input", f"cannot write {to}: {exc.strerror}"
            ) from None
        try:
            with os.fdopen(fd, "wb") as out:
                with self.http.stream("POST", C.PATH_DATA_BACKUP, json={}) as r:
                    if r.status_code >= 400:
                        r.read()
                        _answer(r)
                    want, files = (
                        r.headers.get(C.BACKUP_SHA256_HEADER),
                        r.headers.get(C.BACKUP_FILES_HEADER),
                    )
                    for block in r.iter_bytes(1 << 20):
                        out.write(block)
                        digest.update(block)
                        size += len(block)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != want:
                raise ApiError(
                    "server",
                    "bad_response",
                    "the backup arrived damaged (its SHA-256 differs): nothing kept",
                )
            try:
                os.link(tmp, to)
            except FileExistsError:
                raise ApiError(
                    "invalid",
                    "invalid_input",
                    f"{to} already exists: a backup is never written over",
                ) from None
        except httpx.HTTPError as exc:
            raise ApiError(
                "connection", "unreachable", f"cannot reach the gateway at {self.address}: {exc}"
            ) from None
        finally:
            tmp.unlink(missing_ok=True)
        return {
            "file": str(to),
            "size": size,
            "sha256": digest.hexdigest(),
            "files": int(files or 0),
        }

    def seed(self) -> dict:
        return self._post(C.PATH_SEED)

    def payment_log(
        self,
        federation_id: str | None = None,
        limit: int = 50,
        kinds: list[str] | None = None,
        statuses: list[str] | None = None,
        since: float | None = None,
        before: float | None = None,
    ) -> dict:
        """Payments newest first; `before` (exclusive) pages back: pass the oldest `created`."""
        body: dict = {"limit": limit}
        for k, v in (("federation_id", federation_id), ("kinds", kinds), ("statuses", statuses)):
            if v:
                body[k] = v
        for k, t in (("since", since), ("before", before)):
            if t is not None:
                body[k] = t
        return self._post(C.PATH_PAYMENT_LOG, body)

    def payment_summary(self, start: float | None = None, end: float | None = None) -> dict:
        return self._post(
            C.PATH_PAYMENT_SUMMARY,
            {k: v for k, v in (("start", start), ("end", end)) if v is not None},
        )

    def config(self) -> dict:
        return self._post(C.PATH_CONFIG)
