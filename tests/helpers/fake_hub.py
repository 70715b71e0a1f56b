"""A small fake Hugging Face Hub on 127.0.0.1, enough for huggingface_hub's real client to push and pull.

It speaks the HTTP endpoints huggingface_hub uses (create repo, create branch, validate-yaml, preupload, NDJSON
commit, repo info, tree listing, resolve HEAD/GET) and answers preupload with uploadMode "regular", so file
contents travel inline (base64) in the commit NDJSON. Each repo is a dict of branches -> commit -> {path: bytes}.
Writes need `Authorization: Bearer <token>`; reads of public repos need none. Every request is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    def __init__(self, token: str = "hf_fakeTOKENforTESTS0123456789"):
        self.token = token
        self.repos: dict[
            str, dict
        ] = {}  # repo_id -> {"private": bool, "branches": {name: sha}, "commits": {sha: files}}
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, lower-cased headers)
        self.commit_payloads: list[list[dict]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._server.shutdown()
        self._server.server_close()

    # -- repo state ------------------------------------------------------------------------------------------------
    def seed(self, repo_id: str, files: dict[str, bytes], private: bool = False) -> str:
        """Create a repo holding `files` on main (for tests of what genzoo refuses); returns the commit sha."""
        self.repos[repo_id] = {"private": private, "branches": {}, "commits": {}}
        return self._commit(repo_id, "main", files, "seed")

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo["commits"][repo["branches"].get(revision, revision)]

    def _commit(self, repo_id: str, branch: str, files: dict[str, bytes], summary: str) -> str:
        repo = self.repos[repo_id]
        sha = hashlib.sha1(f"{repo_id}{branch}{len(repo['commits'])}{summary}".encode()).hexdigest()
        repo["commits"][sha] = dict(files)
        repo["branches"][branch] = sha
        return sha

    # -- HTTP ------------------------------------------------------------------------------------------------------
    def _handler(hub):  # noqa: N805 (the handler class closes over the hub)
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status, body=b"", headers=None, head=False):
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode()
                    headers = {"Content-Type": "application/json", **(headers or {})}
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _error(self, status, code=None, message="error", head=False):
                headers = {"X-Error-Message": message}
                if code:
                    headers["X-Error-Code"] = code
                self._send(status, {"error": message}, headers, head=head)

            def _authorized(self):
                return self.headers.get("Authorization") == f"Bearer {hub.token}"

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _repo(self, repo_id, head=False):
                repo = hub.repos.get(repo_id)
                if repo is None or (repo["private"] and not self._authorized()):
                    self._error(404 if self._authorized() else 401, "RepoNotFound", "Repository not found", head=head)
                    return None
                return repo

            def _resolve(self, repo, revision, head=False):
                sha = repo["branches"].get(revision, revision if revision in repo["commits"] else None)
                if sha is None:
                    self._error(404, "RevisionNotFound", "Invalid rev id", head=head)
                return sha

            def _record(self):
                hub.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))

            def do_HEAD(self):
                self._record()
                self._get(head=True)

            def do_GET(self):
                self._record()
                self._get(head=False)

            def _get(self, head):
                path = unquote(urlsplit(self.path).path)
                m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/(.+))?", path)
                if m:
                    repo = self._repo(m.group(1), head)
                    if repo is None:
                        return
                    sha = self._resolve(repo, m.group(2) or "main", head)
                    if sha:
                        files = repo["commits"][sha]
                        self._send(
                            200,
                            {
                                "id": m.group(1),
                                "sha": sha,
                                "private": repo["private"],
                                "siblings": [{"rfilename": p} for p in sorted(files)],
                            },
                            head=head,
                        )
                    return
                m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)", path)
                if m:
                    repo = self._repo(m.group(1), head)
                    if repo is None:
                        return
                    sha = self._resolve(repo, m.group(2), head)
                    if sha:
                        files = repo["commits"][sha]
                        self._send(
                            200,
                            [
                                {"type": "file", "path": p, "size": len(d), "oid": git_blob_id(d)}
                                for p, d in sorted(files.items())
                            ],
                            head=head,
                        )
                    return
                m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
                if m:
                    repo = self._repo(m.group(1), head)
                    if repo is None:
                        return
                    sha = self._resolve(repo, m.group(2), head)
                    if not sha:
                        return
                    data = repo["commits"][sha].get(m.group(3))
                    if data is None:
                        self._send(
                            404,
                            {"error": "Entry not found"},
                            {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": sha},
                            head=head,
                        )
                        return
                    self._send(
                        200,
                        data,
                        {
                            "X-Repo-Commit": sha,
                            "ETag": f'"{git_blob_id(data)}"',
                            "Content-Type": "application/octet-stream",
                        },
                        head=head,
                    )
                    return
                self._error(404, None, f"fake hub: no route GET {path}", head=head)

            def do_POST(self):
                self._record()
                path = unquote(urlsplit(self.path).path)
                body = self._body()
                if path == "/api/validate-yaml":
                    return self._send(200, {"errors": [], "warnings": []})
                if not self._authorized():
                    return self._error(401, None, "Invalid credentials in Authorization header")
                if path == "/api/repos/create":
                    payload = json.loads(body)
                    repo_id = f"{payload['organization']}/{payload['name']}"
                    if payload["organization"] == "not-yours":
                        return self._error(
                            403, None, "You don't have the rights to create a model under this namespace"
                        )
                    if repo_id in hub.repos:  # the Hub's 409 also carries the url, which create_repo(exist_ok) reads
                        return self._send(
                            409,
                            {"error": "You already created this model repo", "url": f"{hub.url}/{repo_id}"},
                            {"X-Error-Message": "You already created this model repo"},
                        )
                    private = payload.get("private", payload.get("visibility") == "private")
                    hub.repos[repo_id] = {"private": bool(private), "branches": {}, "commits": {}}
                    hub._commit(
                        repo_id,
                        "main",
                        {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"},
                        "initial commit",
                    )
                    return self._send(200, {"url": f"{hub.url}/{repo_id}"})
                m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/branch/(.+)", path)
                if m:
                    repo = self._repo(m.group(1))
                    if repo is None:
                        return
                    if m.group(2) in repo["branches"]:
                        return self._error(409, None, "Branch already exists")
                    repo["branches"][m.group(2)] = repo["branches"]["main"]
                    return self._send(200, {})
                m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/preupload/(.+)", path)
                if m:
                    if self._repo(m.group(1)) is None:
                        return
                    files = json.loads(body)["files"]
                    return self._send(
                        200,
                        {
                            "files": [
                                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
                            ]
                        },
                    )
                m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/commit/(.+)", path)
                if m:
                    repo = self._repo(m.group(1))
                    if repo is None:
                        return
                    branch = m.group(2)
                    if branch not in repo["branches"]:
                        return self._error(404, "RevisionNotFound", "Invalid rev id")
                    lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
                    hub.commit_payloads.append(lines)
                    files = dict(repo["commits"][repo["branches"][branch]])
                    header = {}
                    for line in lines:
                        if line["key"] == "header":
                            header = line["value"]
                        elif line["key"] == "file":
                            assert line["value"]["encoding"] == "base64"
                            files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
                        else:
                            return self._error(400, None, f"fake hub: unsupported commit op {line['key']}")
                    sha = hub._commit(m.group(1), branch, files, header.get("summary", ""))
                    return self._send(
                        200,
                        {
                            "commitUrl": f"{hub.url}/{m.group(1)}/commit/{sha}",
                            "commitOid": sha,
                            "pullRequestUrl": None,
                        },
                    )
                self._error(404, None, f"fake hub: no route POST {path}")

        return Handler
