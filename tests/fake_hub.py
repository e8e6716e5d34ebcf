"""A small Hugging Face hub on 127.0.0.1 for the download tests: the routes and headers the real
``huggingface_hub`` client uses to list, size and fetch a model repository.

- ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: the model info (``sha``, ``siblings`` with sizes, ``gated``);
- ``GET /api/models/{repo}/tree/{rev}``: the file listing ``snapshot_download`` reads;
- ``HEAD`` / ``GET /{repo}/resolve/{rev}/{file}``: the file, with ``ETag``, ``X-Repo-Commit``, ``Content-Length``
  and ``Accept-Ranges``; a ``Range: bytes=N-`` request gets ``206`` and the rest.

A gated repository answers 401 (no token) or 403 (a token without access) with ``X-Error-Code: GatedRepo``, as the
hub does. ``drop_once`` names files whose first GET sends half the body and closes the connection. Every request
is logged as (method, path, Range header).
"""
from __future__ import annotations

import hashlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


@dataclass
class Repo:
    files: dict[str, bytes]
    sha: str
    gated: bool = False

    @classmethod
    def from_folder(cls, folder: Path, gated: bool = False) -> "Repo":
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        sha = hashlib.sha1(b"".join(files.values())).hexdigest()
        return cls(files, sha, gated)


@dataclass
class FakeHub:
    repos: dict[str, Repo]
    drop_once: set[str] = field(default_factory=set)
    log: list[tuple[str, str, str | None]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    url: str = ""

    def start(self) -> "FakeHub":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

            def _json(self, status: int, obj, headers: dict | None = None) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _serve(self, body: bool) -> None:
                path = unquote(urlparse(self.path).path)
                hub.log.append((self.command, path, self.headers.get("Range")))
                parts = path.strip("/").split("/")
                if parts[:2] == ["api", "models"] and len(parts) >= 4:
                    repo_id, what = "/".join(parts[2:4]), (parts[4] if len(parts) > 4 else "revision")
                    repo = hub.repos.get(repo_id)
                    if repo is None:
                        return self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                    if what == "revision":
                        return self._json(200, {
                            "_id": repo_id, "id": repo_id, "modelId": repo_id, "sha": repo.sha, "private": False,
                            "gated": "manual" if repo.gated else False, "disabled": False, "downloads": 0,
                            "likes": 0, "tags": [], "siblings": [
                                {"rfilename": n, "size": len(b), "blobId": hashlib.sha1(b).hexdigest()}
                                for n, b in repo.files.items()]})
                    if what == "tree":
                        return self._json(200, [{"type": "file", "path": n, "size": len(b),
                                                 "oid": hashlib.sha1(b).hexdigest()} for n, b in repo.files.items()])
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo_id, filename = "/".join(parts[:2]), "/".join(parts[4:])
                    repo = hub.repos.get(repo_id)
                    if repo is None:
                        return self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                    if repo.gated:
                        status = 403 if self.headers.get("Authorization") else 401
                        return self._json(status, {"error": f"Access to model {repo_id} is restricted."},
                                          {"X-Error-Code": "GatedRepo", "X-Error-Message": "gated"})
                    if filename not in repo.files:
                        return self._json(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
                    return self._file(repo, filename, body)
                return self._json(404, {"error": "not found"})

            def _file(self, repo: Repo, filename: str, body: bool) -> None:
                data = repo.files[filename]
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[len("bytes="):].split("-")[0] or 0)
                self.send_response(206 if start else 200)
                self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
                self.send_header("X-Repo-Commit", repo.sha)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(data) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not body:
                    return
                if filename in hub.drop_once and filename not in hub.dropped and not start:
                    hub.dropped.append(filename)
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-file
                    self.close_connection = True
                    return
                self.wfile.write(data[start:])

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def gets(self, filename: str) -> list[str | None]:
        """The Range headers of the GETs of ``filename``, in order (None: the whole file)."""
        return [r for m, p, r in self.log if m == "GET" and "/resolve/" in p and p.endswith("/" + filename)]
