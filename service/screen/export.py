"""A population exported from a FHIR server into OUTDIR/.export, then screened as an export on disk.

``neckcheck screen https://ehr/fhir/Group/<id> --client-id ... --key ...`` asks the server for a Bulk Data
export (service/reader/bulk.py) of exactly the types screening reads, downloads its files here and hands
the screening engines a manifest of local files. The folder is neckcheck's own (places.DOWNLOAD):

.export/export.json      what was asked (endpoint, types, since, scope, client), the job's status URL once
                         kicked off, the server's manifest once complete, and each file downloaded whole
                         with its lines, bytes and SHA-256 (written atomically after the file is fsync'd)
.export/<Type>.NNN.ndjson  the files, named here (never by the server), in the manifest's order
.export/manifest.json    the local manifest screened, written once every file is down

**Resumable.** The same command after an interruption continues: a recorded file that reads back as
recorded is not fetched again, a partial one continues with a byte range when the server offers ranges,
a job still running is polled again. Ctrl-C while the server is still exporting cancels the job (DELETE);
the next run asks for a new one. A job the server no longer knows (expired) is asked for again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from service.codebook import load_codebook
from service.errors import InvalidInput, RemoteExportError
from service.reader.backend_auth import BackendToken, default_scope, load_key, token_endpoint
from service.reader.bulk import BulkClient, Watch
from service.reader.bulk_answers import ExportGone, printable
from service.reader.bulk_request import Endpoint, Request
from service.reader.searches import observation_codes
from service.screen.places import DOWNLOAD, prepare_out
from service.screen.records import ASSESSED, COMPARED
from service.screen.workdir import (
    Checksum,
    Damaged,
    Entry,
    read_ledger,
    sync_folder,
    verify,
    write_atomically,
)

TYPES = (*sorted(ASSESSED), COMPARED)  # what screening reads; nothing else is asked for
STATE, MANIFEST = "export.json", "manifest.json"
_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")


@dataclass(frozen=True)
class Remote:
    """The export INPUT names and how to authorise (no client: a server that asks for no token)."""

    endpoint: Endpoint
    client_id: str | None = None
    key: Path | None = None
    kid: str | None = None
    scope: str | None = None
    since: str | None = None
    timeout: float = 6 * 3600.0

    def asked(self) -> dict[str, Any]:
        """What must be the same for a later run to continue this export."""
        return {
            "endpoint": self.endpoint.kickoff,
            "types": list(TYPES),
            "since": self.since,
            "clientId": self.client_id,
            "scope": self.scope_asked,
        }

    @property
    def scope_asked(self) -> str:
        return self.scope or default_scope(TYPES)


def download(remote: Remote, out: Path, watch: Watch, force: bool) -> Path:
    """The local manifest of the export, downloaded whole into OUTDIR/.export (or found there from an
    earlier run). A finished OUTDIR is refused first, unless ``force``, which also starts the export
    again. Raises RemoteExportError, NotSupportedByServer or InvalidInput; on KeyboardInterrupt while the
    server is exporting, the job is cancelled first."""
    prepare_out(out, force)
    folder = out / DOWNLOAD
    if force:
        shutil.rmtree(folder, ignore_errors=True)
    state = _state(folder, remote.asked())
    if _whole(folder, state, watch) and state.get("done"):
        return folder / MANIFEST
    session = requests.Session()
    client = BulkClient(session, _request(remote), _token(session, remote), watch)
    client.check_offered()
    manifest = _manifest(client, folder, state, remote, watch)
    try:
        _download_all(client, folder, state, manifest, watch)
    except ExportGone as gone:  # its files expired (since an earlier run): once more, from the start
        watch.note(f"{gone}; asking for the export again")
        state.update(status=None, manifest=None, files={})
        manifest = _manifest(client, folder, state, remote, watch)
        _download_all(client, folder, state, manifest, watch)
    _check_errors(folder, state, watch)
    client.cancel(state["status"])  # done with the job: the server may remove its files
    outputs = [{"type": f["type"], "url": name} for name, f in state["files"].items() if not f.get("error")]
    if not outputs:
        since = f" changed since {remote.since}" if remote.since else ""
        raise RemoteExportError(f"the server exported nothing to screen (no {', '.join(TYPES)}{since})")
    local = {key: manifest.get(key) for key in ("transactionTime", "request")}
    local.update(requiresAccessToken=False, output=outputs, error=[])
    write_atomically(folder / MANIFEST, json.dumps(local, indent=1).encode("utf-8"))
    state["done"] = True
    _save(folder, state)
    return folder / MANIFEST


def _request(remote: Remote) -> Request:
    """All the types screening reads; Observations filtered to the codes intake reads where the server
    supports ``_typeFilter`` (the others are skipped by screening anyway)."""
    codes = ",".join(observation_codes(load_codebook()))
    return Request(remote.endpoint, TYPES, remote.since, (f"Observation?code={codes}",))


def _token(session: requests.Session, remote: Remote) -> BackendToken | None:
    if remote.client_id is None or remote.key is None:
        return None
    key = load_key(remote.key, remote.kid)
    endpoint = token_endpoint(session, remote.endpoint.base, key.alg)
    token = BackendToken(session, endpoint, remote.client_id, key, remote.scope_asked, TYPES)
    token.renew()  # now: a refused client or scope is said before the export is asked for
    return token


def _manifest(
    client: BulkClient, folder: Path, state: dict[str, Any], remote: Remote, watch: Watch
) -> dict[str, Any]:
    """The server's manifest: recorded, or polled for (kicking off first when no job is recorded)."""
    if state.get("manifest"):
        return dict(state["manifest"])
    deadline = time.monotonic() + remote.timeout
    while True:
        recorded = bool(state.get("status"))
        if not recorded:
            state["status"] = client.kick_off()
            _save(folder, state)
            watch.status(f"export asked of {remote.endpoint.kickoff}; waiting for the server")
        try:
            manifest = client.wait(state["status"], deadline)
        except ExportGone as gone:
            if not recorded:  # the job just asked for: not a matter of age
                raise
            watch.note(f"{gone}; asking for the export again")  # an earlier run's job, expired since
            state["status"] = None
            continue
        except (KeyboardInterrupt, RemoteExportError) as stopped:
            # Ctrl-C, a failed job or the deadline: the job is of no more use (a next run asks anew)
            cancelled = client.cancel(state["status"])
            state["status"] = None
            _save(folder, state)
            if isinstance(stopped, KeyboardInterrupt):
                watch.note(
                    "the export job was cancelled on the server" if cancelled else "could not cancel it"
                )
            raise
        state["manifest"] = manifest
        _save(folder, state)
        return manifest


def _download_all(
    client: BulkClient, folder: Path, state: dict[str, Any], manifest: dict[str, Any], watch: Watch
) -> None:
    """Each output and error file not yet down whole: streamed to a ``.part``, fsync'd, renamed and
    recorded. ``requiresAccessToken`` is the manifest's; absent, the token is sent (IG 2.0 requires it)."""
    token = manifest.get("requiresAccessToken") is not False
    failed: list[RemoteExportError] = []
    for name, item in _local_names(manifest).items():
        if name in state["files"]:
            continue
        part = folder / f"{name}.part"
        try:
            client.fetch(item["url"], part, token)
        except ExportGone:
            raise
        except RemoteExportError as error:  # the others are fetched still: the next run needs only this
            failed.append(error)
            continue
        entry = _entry(part)
        part.replace(folder / name)
        sync_folder(folder)
        state["files"][name] = {**item, **entry.to_json()}
        _save(folder, state)
    if failed:
        more = f" (and {len(failed) - 1} more files)" if len(failed) > 1 else ""
        raise RemoteExportError(f"{failed[0]}{more}; run the same command again to fetch what is missing")


def _local_names(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``Observation.000.ndjson``... for the outputs, ``OperationOutcome.error.000.ndjson`` for the
    errors: names of neckcheck's making, so nothing the server says becomes a path."""
    names: dict[str, dict[str, Any]] = {}
    count: dict[str, int] = {}
    for kind in ("output", "error"):
        for item in manifest.get(kind) or []:
            rtype = str(item.get("type", ""))
            if not _TYPE.fullmatch(rtype) or not isinstance(item.get("url"), str):
                raise RemoteExportError(f"the export's manifest names a file of type {rtype[:40]!r}")
            stem = rtype if kind == "output" else f"{rtype}.error"
            n = count[stem] = count.get(stem, -1) + 1
            names[f"{stem}.{n:03d}.ndjson"] = {"type": rtype, "url": item["url"], "error": kind == "error"}
    return names


def _entry(path: Path) -> Entry:
    seen = Checksum()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            seen.add(block)
        os.fsync(stream.fileno())
    return seen.entry()


def _whole(folder: Path, state: dict[str, Any], watch: Watch) -> bool:
    """Whether every recorded file reads back as recorded; one that does not is forgotten (and
    removed), to be downloaded again."""
    whole = True
    for name, item in list(state["files"].items()):
        try:
            verify(folder / name, Entry.from_json(item))
        except (Damaged, ValueError) as damaged:
            watch.note(f"{damaged}; downloaded again")
            (folder / name).unlink(missing_ok=True)
            del state["files"][name]
            state["done"] = False
            whole = False
    return whole


def _check_errors(folder: Path, state: dict[str, Any], watch: Watch) -> None:
    """The server's error files: the first warnings are said; an error or fatal issue means resources
    the server could not export, so the population is not screened as if whole (RemoteExportError)."""
    errors, first, warnings = 0, "", 0
    for name, item in state["files"].items():
        if not item.get("error"):
            continue
        with (folder / name).open(encoding="utf-8", errors="replace") as lines:
            for issue in (i for line in lines for i in _issues(line)):
                said = printable(str(issue.get("diagnostics") or issue.get("code") or "no diagnostics"))
                if issue.get("severity") in ("error", "fatal"):
                    errors, first = errors + 1, first or said
                elif warnings < 5:
                    watch.note(f"the server says of the export: {said}")
                    warnings += 1
    if errors:
        raise RemoteExportError(
            f"the server could not export everything ({errors} errors, the first: {first}): "
            "not screened as if whole"
        )


def _issues(line: str) -> list[dict[str, Any]]:
    """The issues of one line of an error file (an OperationOutcome); none for anything else."""
    try:
        outcome = json.loads(line)
    except ValueError:
        return []
    issues = outcome.get("issue") if isinstance(outcome, dict) else None
    return [i for i in issues if isinstance(i, dict)] if isinstance(issues, list) else []


def _state(folder: Path, asked: dict[str, Any]) -> dict[str, Any]:
    """What an earlier run recorded of this export, or a fresh record; InvalidInput when OUTDIR holds
    another export (other endpoint, types, since, client or scope)."""
    path = folder / STATE
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        return {"asked": asked, "status": None, "manifest": None, "files": {}}
    try:
        state = read_ledger(path)
    except Damaged as damaged:
        raise InvalidInput(f"{damaged}: use --force to export again") from damaged
    if state.get("asked") != asked:
        recorded = state["asked"] if isinstance(state.get("asked"), dict) else {}
        differ = sorted(k for k in asked if asked[k] != recorded.get(k))
        raise InvalidInput(
            f"{folder} holds another export ({', '.join(differ)} differ): run the same command to "
            "continue it, --force to export again, or another --out"
        )
    state.setdefault("files", {})
    return state


def _save(folder: Path, state: dict[str, Any]) -> None:
    write_atomically(folder / STATE, json.dumps(state, indent=1).encode("utf-8"))


def discard(out: Path) -> None:
    """Remove the downloaded export (after a successful run, unless --keep-export)."""
    shutil.rmtree(out / DOWNLOAD, ignore_errors=True)
