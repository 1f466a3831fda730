"""A real local HTTP stand-in for the Hugging Face Hub, good enough for ``huggingface_hub`` 2.x.

Point ``HF_ENDPOINT`` at :attr:`StandInHub.url` *before* ``huggingface_hub`` is imported (it reads
the variable at import time) and ``HfApi``, ``hf_hub_download``, ``snapshot_download`` and
``list_repo_files`` talk to it like to huggingface.co::

    with StandInHub() as hub:
        sha = hub.add_repo("owner/name", {"config.json": b"{}", "model.safetensors": data})
        ...                               # code under test downloads from hub.url
        assert hub.files_fetched("owner/name") == ["model.safetensors"]

What it serves (model repos), with the headers and error codes ``huggingface_hub`` relies on:

- ``GET /api/models/{repo_id}`` and ``.../revision/{rev}``: model info with ``sha`` and ``siblings``.
- ``GET /api/models/{repo_id}/tree/{rev}[/{path}]?recursive=&expand=``: the paginated tree listing
  (a JSON list per page, the next page in a ``Link: <...>; rel="next"`` header).
- ``HEAD``/``GET /{repo_id}/resolve/{rev}/{path}``: small files answer 200 with ``ETag`` (git blob
  id), ``X-Repo-Commit`` and ``Content-Length``; LFS files (weights, by suffix like the Hub's default
  ``.gitattributes``, or over 10 MB) answer 302 with ``X-Linked-Etag`` (sha256), ``X-Linked-Size``
  and a ``Location`` on a second port that plays the CDN, exactly like the real Hub's redirect to
  ``cdn-lfs``. ``rev`` may be a branch or a (short) commit sha.
- Errors: unknown repo -> 404 ``X-Error-Code: RepoNotFound``; private repo without a valid token ->
  401 ``RepoNotFound`` (the Hub does not reveal that it exists); unknown revision -> 404
  ``RevisionNotFound``; unknown file -> 404 ``EntryNotFound`` (with ``X-Repo-Commit``); a token that
  is not in :attr:`StandInHub.tokens` -> 401 "Invalid credentials in Authorization header".
  Gated repos list and describe freely (like the Hub since 2024) but their files, except
  README.md and .gitattributes, answer 401 (no token) or 403 (token without access) ``GatedRepo``.

Writing (what ``HfApi.create_repo`` and ``HfApi.upload_folder`` / ``create_commit`` send):

- ``POST /api/repos/create``: a new model repo with an initial ``.gitattributes`` commit, public or
  ``"visibility": "private"``; 409 with the repo ``url`` when it exists (``exist_ok=True`` relies on it).
- ``POST /api/models/{repo_id}/preupload/{rev}``: every file's ``uploadMode`` is
  :attr:`StandInHub.upload_mode` (``"regular"``), so the client sends the content inline (base64) in
  the commit and never tries Xet or LFS storage; ``oid`` is the current blob id (unchanged files are
  skipped by the client).
- ``POST /api/models/{repo_id}/commit/{rev}``: the NDJSON commit (``header``, ``file``, ``lfsFile``
  for blobs the stand-in already holds, ``deletedFile``, ``deletedFolder``), stored through
  :meth:`StandInHub.add_commit`, so the files download through the GET endpoints right away.
- ``GET /api/whoami-v2`` and ``POST /api/validate-yaml`` (model-card check before uploads).
- Writes need ``Authorization: Bearer <token>``: none -> 401; a token the stand-in doesn't know ->
  401; a known token without write access to the repo's namespace (:attr:`StandInHub.VALID_TOKEN`
  is read-only) -> 403. Register writers with :meth:`StandInHub.add_write_token`.

Every request is also recorded in full (:meth:`StandInHub.request_log`: method, path, query, all
headers, body), so tests can check where a token was sent (:meth:`StandInHub.requests_with_token`).

The handler is a routing table (:attr:`StandInHub.ROUTES`, or :meth:`StandInHub.add_route` at run
time) of ``(method, path regex, handler name)``; handlers take a :class:`Request` and the regex
groups and return a :class:`Response` or raise :class:`HubError`. The write endpoints are built on
:meth:`StandInHub.add_commit`, the same state change tests use to publish repos directly.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

# The Hub's default .gitattributes sends these to LFS; larger files go there too.
LFS_SUFFIXES = (
    ".7z", ".arrow", ".bin", ".bz2", ".ckpt", ".ftz", ".gz", ".h5", ".joblib", ".mlmodel", ".model",
    ".msgpack", ".npy", ".npz", ".onnx", ".ot", ".parquet", ".pb", ".pickle", ".pkl", ".pt", ".pth",
    ".rar", ".safetensors", ".tar", ".tflite", ".tgz", ".wasm", ".xz", ".zip", ".zst",
)
LFS_THRESHOLD = 10 * 1024**2
ALWAYS_PUBLIC_IN_GATED_REPOS = ("README.md", ".gitattributes")
TIMESTAMP = "2024-01-01T00:00:00.000Z"
# What the Hub puts in a new repo's first commit (abridged: the suffixes above go to LFS).
GITATTRIBUTES = "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES).encode()
_REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_COMMIT_SHA = re.compile(r"^[0-9a-f]{7,40}$")


def git_blob_id(data: bytes) -> str:
    """The git object id of a file's content (what the Hub reports as a file's oid/ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Blob:
    data: bytes
    is_lfs: bool

    @property
    def oid(self) -> str:
        return git_blob_id(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Commit:
    sha: str
    files: dict[str, Blob]
    parent: str | None
    title: str


@dataclass
class Repo:
    repo_id: str
    private: bool = False
    gated: bool = False
    branches: dict[str, str] = field(default_factory=dict)  # branch or tag -> commit sha
    commits: dict[str, Commit] = field(default_factory=dict)
    granted: set[str] = field(default_factory=set)  # tokens that accepted a gated repo's conditions


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def token(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def flag(self, name: str, default: bool = False) -> bool:
        values = self.query.get(name)
        return default if not values else values[-1].lower() in ("1", "true", "yes")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)  # Content-Length is added when sending

    @classmethod
    def json(cls, obj: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})


class HubError(Exception):
    """Raised by a handler: becomes an error response with the Hub's X-Error-* headers."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}

    def response(self) -> Response:
        headers = {"X-Error-Message": self.message, **self.headers}
        if self.code:
            headers["X-Error-Code"] = self.code
        return Response.json({"error": self.message}, self.status, headers)


Handler = Callable[..., Response]
_REPO = r"(?P<repo_id>[^/]+/[^/]+)"


class StandInHub:
    """A local Hugging Face Hub on 127.0.0.1 (random ports): a Hub port and a "CDN" port for LFS files.

    Thread-safe: repos can be added while clients download. :attr:`requests` records every
    ``(method, path)`` that reached either port (paths percent-decoded, without query strings).
    """

    VALID_TOKEN = "hf_standin_valid_token"
    ROUTES: list[tuple[str, str, str]] = [
        ("GET", rf"^/api/models/{_REPO}$", "model_info"),
        ("GET", rf"^/api/models/{_REPO}/revision/(?P<rev>[^/]+)$", "model_info"),
        ("GET", rf"^/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$", "tree"),
        ("HEAD", rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$", "resolve"),
        ("GET", rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$", "resolve"),
        ("GET", r"^/api/agent-harnesses$", "agent_harnesses"),
        ("GET", r"^/api/whoami-v2$", "whoami"),
        ("POST", r"^/api/validate-yaml$", "validate_yaml"),
        ("POST", r"^/api/repos/create$", "create_repo"),
        ("POST", rf"^/api/models/{_REPO}/preupload/(?P<rev>[^/]+)$", "preupload"),
        ("POST", rf"^/api/models/{_REPO}/commit/(?P<rev>[^/]+)$", "commit"),
    ]
    CDN_ROUTES: list[tuple[str, str, str]] = [
        ("HEAD", r"^/lfs/(?P<sha256>[0-9a-f]{64})/(?P<path>.+)$", "cdn_blob"),
        ("GET", r"^/lfs/(?P<sha256>[0-9a-f]{64})/(?P<path>.+)$", "cdn_blob"),
    ]

    def __init__(self, tree_page_size: int = 1000) -> None:
        self.tree_page_size = tree_page_size
        self.tokens: set[str] = {self.VALID_TOKEN}
        self.users: dict[str, str] = {self.VALID_TOKEN: "standin-user"}  # token -> user name (whoami)
        self.write_access: dict[str, set[str]] = {}  # token -> namespaces it may write to ("*": all)
        self.upload_mode = "regular"  # what preupload answers for every file
        self._repos: dict[str, Repo] = {}
        self._blobs_by_sha256: dict[str, Blob] = {}
        self._lock = threading.RLock()
        self._requests: list[tuple[str, str]] = []
        self._request_log: list[Request] = []  # the same requests in full, index for index
        self._outage: int | str | None = None
        self._routes = self._compile(self.ROUTES)
        self._cdn_routes = self._compile(self.CDN_ROUTES)
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> StandInHub:
        if self._servers:
            return self
        for routes in (self._routes, self._cdn_routes):
            server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class(routes))
            server.daemon_threads = True
            server.block_on_close = False
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []

    def __enter__(self) -> StandInHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The Hub endpoint (what HF_ENDPOINT should be)."""
        return self._base(0)

    @property
    def cdn_url(self) -> str:
        return self._base(1)

    def _base(self, index: int) -> str:
        if not self._servers:
            raise RuntimeError("StandInHub is not running: call start() or use it as a context manager.")
        return f"http://127.0.0.1:{self._servers[index].server_address[1]}"

    # --------------------------------------------------------------------- state
    def add_repo(self, repo_id: str, files: dict[str, bytes], revision: str = "main", gated: bool = False,
                 private: bool = False) -> str:
        """Create ``repo_id`` (or add to it) with ``files`` as the whole content of ``revision``.

        ``revision`` is a branch (or tag) name; it then points to a new commit whose sha is
        returned (deterministic: 40 hex digits from repo, revision, parent and content). The
        ``gated``/``private`` flags of the repo are set to the values of the latest call.
        """
        with self._lock:
            repo = self._repos.setdefault(repo_id, Repo(repo_id))
            repo.gated, repo.private = gated, private
            return self.add_commit(repo_id, files, revision, replace=True)

    def add_commit(self, repo_id: str, files: dict[str, bytes], revision: str = "main", *, replace: bool = False,
                   deletions: tuple[str, ...] = (), title: str = "Upload files") -> str:
        """A new commit on branch ``revision`` of an existing repo: ``files`` on top of the branch's
        current files (or instead of them with ``replace``), minus ``deletions``. Returns its sha."""
        with self._lock:
            repo = self._repos.get(repo_id)
            if repo is None:
                raise KeyError(f"no repo {repo_id!r} on the stand-in Hub")
            parent = repo.branches.get(revision)
            content = {} if replace or parent is None else dict(repo.commits[parent].files)
            for path, data in files.items():
                if not isinstance(data, bytes | bytearray):
                    raise TypeError(f"{path}: file content must be bytes, got {type(data).__name__}")
                path = path.strip("/")
                data = bytes(data)
                blob = Blob(data, path.lower().endswith(LFS_SUFFIXES) or len(data) > LFS_THRESHOLD)
                content[path] = blob
                self._blobs_by_sha256[blob.sha256] = blob
            for path in deletions:
                content.pop(path.strip("/"), None)
            digest = hashlib.sha1(
                json.dumps([repo_id, revision, parent, title, sorted((p, b.oid) for p, b in content.items())]).encode()
            ).hexdigest()
            repo.commits[digest] = Commit(digest, content, parent, title)
            repo.branches[revision] = digest
            return digest

    def grant(self, repo_id: str, token: str = VALID_TOKEN) -> None:
        """Let ``token`` download the files of gated ``repo_id`` (as if its owner accepted the conditions)."""
        with self._lock:
            self._repos[repo_id].granted.add(token)

    def repo_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._repos)

    def add_write_token(self, token: str, user: str = "tester", namespaces: Iterable[str] | None = None) -> str:
        """Accept ``token`` as ``user``'s, with write access to ``namespaces`` (default: the user's own;
        ``"*"`` means every namespace). Returns the token."""
        with self._lock:
            self.tokens.add(token)
            self.users[token] = user
            self.write_access[token] = set(namespaces) if namespaces is not None else {user}
        return token

    def is_private(self, repo_id: str) -> bool:
        with self._lock:
            return self._repos[repo_id].private

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The content of ``revision`` of ``repo_id`` (path -> bytes)."""
        with self._lock:
            repo = self._repos[repo_id]
            commit = repo.commits[repo.branches.get(revision, revision)]
            return {path: blob.data for path, blob in commit.files.items()}

    # ------------------------------------------------------------------ requests
    @property
    def requests(self) -> list[tuple[str, str]]:
        """A snapshot of every (method, path) received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def mark(self) -> int:
        """A position in :attr:`requests`, for :meth:`requests_since`."""
        with self._lock:
            return len(self._requests)

    def requests_since(self, mark: int) -> list[tuple[str, str]]:
        with self._lock:
            return self._requests[mark:]

    def request_log(self, since: int = 0) -> list[Request]:
        """Every request since ``since`` (a :meth:`mark`) in full: method, path, query, headers
        (lower-case names, nothing removed) and body."""
        with self._lock:
            return self._request_log[since:]

    def requests_with_token(self, token: str, since: int = 0) -> list[tuple[str, str]]:
        """(method, path) of the requests that carried ``token`` anywhere: a header, the query or the body."""
        needle = token.encode()
        found = []
        for req in self.request_log(since):
            places = [*req.headers.values(), *(v for vs in req.query.values() for v in vs)]
            if any(token in place for place in places) or needle in req.body:
                found.append((req.method, req.path))
        return found

    def files_fetched(self, repo_id: str | None = None, since: int = 0, method: str | None = None) -> list[str]:
        """Paths of files asked for through ``/resolve/`` (HEAD or GET, or only ``method``), in order,
        without repeats; only those of ``repo_id`` when given."""
        seen: list[str] = []
        pattern = re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
        for req_method, path in self.requests_since(since):
            m = pattern.match(path)
            wanted = m and (repo_id is None or m["repo_id"] == repo_id) and (method is None or req_method == method)
            if wanted and m["path"] not in seen:
                seen.append(m["path"])
        return seen

    @contextlib.contextmanager
    def outage(self, status: int | None = None) -> Iterator[None]:
        """While active, every request is dropped without an answer (a network failure), or
        answered with ``status`` (e.g. 503) when given."""
        with self._lock:
            self._outage = status if status is not None else "drop"
        try:
            yield
        finally:
            with self._lock:
                self._outage = None

    def add_route(self, method: str, pattern: str, handler: Handler, cdn: bool = False) -> None:
        """Serve ``method pattern`` with ``handler(request, **groups) -> Response`` (before the built-in routes)."""
        (self._cdn_routes if cdn else self._routes).insert(0, (method.upper(), re.compile(pattern), handler))

    # ------------------------------------------------------------------ handlers
    def model_info(self, req: Request, repo_id: str, rev: str | None = None) -> Response:
        repo = self._visible_repo(repo_id, req)
        commit = self._commit(repo, rev or "main")
        blobs = req.flag("blobs")
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sibling: dict[str, object] = {"rfilename": path}
            if blobs:
                sibling.update(size=len(blob.data), blobId=blob.oid)
                if blob.is_lfs:
                    sibling["lfs"] = {"sha256": blob.sha256, "size": len(blob.data), "pointerSize": 134}
            siblings.append(sibling)
        owner = repo_id.split("/")[0]
        return Response.json({
            "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24], "id": repo_id, "modelId": repo_id,
            "author": owner, "sha": commit.sha, "lastModified": TIMESTAMP, "createdAt": TIMESTAMP,
            "private": repo.private, "gated": "auto" if repo.gated else False, "disabled": False,
            "downloads": 0, "likes": 0, "tags": [], "siblings": siblings,
        })

    def tree(self, req: Request, repo_id: str, rev: str, path: str | None = None) -> Response:
        repo = self._visible_repo(repo_id, req)
        commit = self._commit(repo, rev)
        prefix = (path or "").strip("/")
        under = prefix + "/" if prefix else ""
        names = sorted(p for p in commit.files if p.startswith(under))
        if prefix and not names:
            raise HubError(404, f"Entry not found: {prefix}", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        entries: dict[str, dict[str, object]] = {}
        for name in names:
            rest = name[len(under):]
            parts = rest.split("/")
            # every folder on the way is listed (recursive) or just the first one (non-recursive)
            depth = len(parts) - 1 if req.flag("recursive") else min(1, len(parts) - 1)
            for i in range(depth):
                folder = under + "/".join(parts[: i + 1])
                entries.setdefault(folder, {"type": "directory", "oid": git_blob_id(folder.encode()), "size": 0,
                                            "path": folder})
            if len(parts) == 1 or req.flag("recursive"):
                blob = commit.files[name]
                entry: dict[str, object] = {"type": "file", "oid": blob.oid, "size": len(blob.data), "path": name}
                if blob.is_lfs:
                    entry["lfs"] = {"oid": blob.sha256, "size": len(blob.data), "pointerSize": 134}
                entries[name] = entry
        if req.flag("expand"):
            for entry in entries.values():
                entry["lastCommit"] = {"id": commit.sha, "title": commit.title, "date": TIMESTAMP}
        listing = [entries[k] for k in sorted(entries)]
        page_size = max(1, min(self.tree_page_size, 50) if req.flag("expand") else self.tree_page_size)
        start = int((req.query.get("cursor") or ["0"])[-1])
        page = listing[start:start + page_size]
        headers = {}
        if start + page_size < len(listing):
            query = f"recursive={str(req.flag('recursive')).lower()}&expand={str(req.flag('expand')).lower()}"
            tail = "/" + quote(prefix, safe="") if prefix else ""
            next_url = f"{self.url}/api/models/{repo_id}/tree/{quote(rev, safe='')}{tail}?{query}&cursor={start + page_size}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return Response.json(page, headers=headers)

    def resolve(self, req: Request, repo_id: str, rev: str, path: str) -> Response:
        repo = self._visible_repo(repo_id, req)
        commit = self._commit(repo, rev)
        if repo.gated and path not in ALWAYS_PUBLIC_IN_GATED_REPOS and req.token not in repo.granted:
            message = (f"Access to model {repo_id} is restricted. You must have access to it and be "
                       "authenticated to access it. Please log in.")
            raise HubError(401 if req.token is None else 403, message, "GatedRepo")
        blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        headers = {"X-Repo-Commit": commit.sha, "Accept-Ranges": "bytes"}
        if blob.is_lfs:
            location = f"{self.cdn_url}/lfs/{blob.sha256}/{quote(path)}?X-Amz-Expires=3600"
            body = f"Found. Redirecting to {location}".encode()
            headers.update({"Location": location, "ETag": f'"{blob.oid}"', "X-Linked-Etag": f'"{blob.sha256}"',
                            "X-Linked-Size": str(len(blob.data)), "Content-Type": "text/plain; charset=utf-8"})
            return Response(302, body, headers)
        headers.update({"ETag": f'"{blob.oid}"', "Content-Type": "application/octet-stream"})
        return _ranged(req, blob.data, headers)

    def cdn_blob(self, req: Request, sha256: str, path: str) -> Response:
        with self._lock:
            blob = self._blobs_by_sha256.get(sha256)
        if blob is None:
            return Response(404, b"NoSuchKey", {"Content-Type": "text/plain"})
        headers = {"ETag": f'"{hashlib.md5(blob.data).hexdigest()}"', "Content-Type": "application/octet-stream",
                   "Content-Disposition": f'inline; filename="{path.rsplit("/", 1)[-1]}"', "Accept-Ranges": "bytes"}
        return _ranged(req, blob.data, headers)

    def agent_harnesses(self, req: Request) -> Response:
        # huggingface_hub fetches this registry once a day unless telemetry is disabled
        return Response.json({"standardEnvVars": [], "harnesses": {}})

    def whoami(self, req: Request) -> Response:
        if req.token is None:
            raise HubError(401, "Invalid username or password.")
        name = self.users.get(req.token, "standin-user")
        role = "write" if req.token in self.write_access else "read"
        return Response.json({
            "type": "user", "id": hashlib.md5(name.encode()).hexdigest()[:24], "name": name, "fullname": name,
            "orgs": [], "auth": {"type": "access_token", "accessToken": {"displayName": "stand-in", "role": role}},
        })

    def validate_yaml(self, req: Request) -> Response:
        return Response.json({"errors": [], "warnings": []})

    def create_repo(self, req: Request) -> Response:
        token = self._require_token(req)
        try:
            payload = json.loads(req.body or b"{}")
        except ValueError as e:
            raise HubError(400, f"Invalid JSON body: {e}") from None
        name, namespace = payload.get("name"), payload.get("organization") or self.users.get(token, "standin-user")
        if payload.get("type", "model") not in (None, "model"):
            raise HubError(400, "The stand-in Hub only hosts model repos.")
        if not isinstance(name, str) or not _REPO_NAME.match(name) or not _REPO_NAME.match(namespace):
            raise HubError(400, f"Invalid repo name: {namespace}/{name}")
        repo_id = f"{namespace}/{name}"
        self._require_write(token, repo_id, f'You don\'t have the rights to create a model under the namespace "{namespace}"')
        with self._lock:
            if repo_id in self._repos:
                return Response.json({"error": "You already created this model repo", "url": f"{self.url}/{repo_id}"}, 409,
                                     {"X-Error-Message": "You already created this model repo"})
            private = payload.get("visibility") == "private" or payload.get("private") is True
            self.add_repo(repo_id, {".gitattributes": GITATTRIBUTES}, private=private)
        return Response.json({"url": f"{self.url}/{repo_id}", "name": repo_id,
                              "id": hashlib.md5(repo_id.encode()).hexdigest()[:24]})

    def preupload(self, req: Request, repo_id: str, rev: str) -> Response:
        repo = self._visible_repo(repo_id, req)
        self._require_write(self._require_token(req), repo_id)
        try:
            wanted = json.loads(req.body)["files"]
        except (ValueError, KeyError, TypeError) as e:
            raise HubError(400, f"Invalid preupload body: {e!r}") from None
        with self._lock:
            head = repo.branches.get(rev)
            current = repo.commits[head].files if head else {}
        answer = []
        for item in wanted:
            blob = current.get(item["path"])
            mode = self.upload_mode if item.get("size", 0) > 0 else "regular"
            answer.append({"path": item["path"], "uploadMode": mode, "shouldIgnore": False,
                           "oid": blob.oid if blob is not None else None})
        return Response.json({"files": answer, "commitOid": head})

    def commit(self, req: Request, repo_id: str, rev: str) -> Response:
        repo = self._visible_repo(repo_id, req)
        self._require_write(self._require_token(req), repo_id)
        if req.flag("create_pr"):
            raise HubError(400, "The stand-in Hub does not do pull requests.")
        try:
            items = [json.loads(line) for line in req.body.splitlines() if line.strip()]
        except ValueError as e:
            raise HubError(400, f"Invalid NDJSON commit body: {e}") from None
        if not items or items[0].get("key") != "header":
            raise HubError(400, "The first line of a commit must be its header.")
        header = items[0]["value"]
        with self._lock:
            head = repo.branches.get(rev)
            if head is None:
                raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            current = repo.commits[head].files
            parent = header.get("parentCommit")
            if parent and not head.startswith(parent):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files: dict[str, bytes] = {}
            deletions: list[str] = []
            for item in items[1:]:
                key, value = item.get("key"), item.get("value") or {}
                path = str(value.get("path", "")).strip("/")
                if not path:
                    raise HubError(400, f"A {key!r} line without a path.")
                if key == "file":
                    content = value.get("content", "")
                    files[path] = base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
                elif key == "lfsFile":
                    blob = self._blobs_by_sha256.get(str(value.get("oid")))
                    if blob is None or len(blob.data) != value.get("size"):
                        raise HubError(422, f"Your push was rejected because an LFS pointer ({path}) points to a file "
                                            "that does not exist in the storage.")
                    files[path] = blob.data
                elif key == "deletedFile":
                    deletions.append(path)
                elif key == "deletedFolder":
                    deletions += [p for p in current if p.startswith(path + "/")]
                else:
                    raise HubError(400, f"Unknown commit operation {key!r}.")
            sha = self.add_commit(repo_id, files, rev, deletions=tuple(deletions), title=header.get("summary") or "Commit")
        return Response.json({"success": True, "commitOid": sha, "commitUrl": f"{self.url}/{repo_id}/commit/{sha}",
                              "pullRequestUrl": None})

    # ------------------------------------------------------------------- helpers
    @staticmethod
    def _require_token(req: Request) -> str:
        if req.token is None:
            raise HubError(401, "Invalid username or password.")
        return req.token

    def _require_write(self, token: str, repo_id: str, message: str | None = None) -> None:
        namespace = repo_id.split("/")[0]
        with self._lock:
            allowed = self.write_access.get(token, set())
        if "*" not in allowed and namespace not in allowed:
            raise HubError(403, message or f"You don't have the rights to write to {repo_id}: the token has no write "
                                           f"access to the namespace '{namespace}'")

    def _visible_repo(self, repo_id: str, req: Request) -> Repo:
        with self._lock:
            repo = self._repos.get(repo_id)
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        if repo.private and req.token not in self.tokens:
            raise HubError(401, "Repository not found", "RepoNotFound")
        return repo

    def _commit(self, repo: Repo, rev: str) -> Commit:
        with self._lock:
            sha = repo.branches.get(rev)
            if sha is None and _COMMIT_SHA.match(rev):
                matches = [s for s in repo.commits if s.startswith(rev)]
                sha = matches[0] if len(matches) == 1 else None
            if sha is None:
                raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            return repo.commits[sha]

    @staticmethod
    def _compile(routes: list[tuple[str, str, str]]) -> list[tuple[str, re.Pattern[str], str | Handler]]:
        return [(method, re.compile(pattern), name) for method, pattern, name in routes]

    def _dispatch(self, routes: list[tuple[str, re.Pattern[str], str | Handler]], req: Request, raw_path: str) -> Response:
        token = req.token
        if token is not None and token not in self.tokens:
            return HubError(401, "Invalid credentials in Authorization header").response()
        allowed = False
        for method, pattern, handler in routes:
            m = pattern.match(raw_path)
            if not m:
                continue
            allowed = True
            if method != req.method:
                continue
            fn = getattr(self, handler) if isinstance(handler, str) else handler
            groups = {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
            try:
                return fn(req, **groups)
            except HubError as e:
                return e.response()
        if allowed:
            return Response.json({"error": "Method not allowed"}, 405)
        return Response.json({"error": f"Sorry, we can't find the page you are looking for: {req.path}"}, 404)

    def _handler_class(self, routes: list[tuple[str, re.Pattern[str], str | Handler]]) -> type[BaseHTTPRequestHandler]:
        hub = self

        class HubRequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "StandInHub/1.0"
            timeout = 30  # idle keep-alive connections end after this

            def _handle(self) -> None:
                split = urlsplit(self.path)
                path = unquote(split.path)
                req = Request(self.command, path, parse_qs(split.query),
                              {k.lower(): v for k, v in self.headers.items()}, b"")
                with hub._lock:
                    hub._requests.append((self.command, path))
                    hub._request_log.append(req)
                    outage = hub._outage
                req.body = self._read_body()
                if outage == "drop":
                    self.close_connection = True
                    return
                if outage is not None:
                    resp = Response.json({"error": "Service unavailable"}, int(outage))
                else:
                    try:
                        resp = hub._dispatch(routes, req, split.path)
                    except Exception as e:  # a bug in the stand-in must show up as a 500, not a hang
                        resp = Response.json({"error": f"stand-in hub error: {e!r}"}, 500)
                self._send(resp)

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _send(self, resp: Response) -> None:
                self.send_response(resp.status)
                for name, value in resp.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(resp.body)))  # HEAD: what a GET would send
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(resp.body)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
                pass

        return HubRequestHandler


def _ranged(req: Request, data: bytes, headers: dict[str, str]) -> Response:
    """200 with the whole file, or 206 for a ``Range: bytes=a-[b]`` request (resumed downloads)."""
    m = re.fullmatch(r"bytes=(\d+)-(\d*)", req.headers.get("range", ""))
    if not m:
        return Response(200, data, headers)
    start = int(m[1])
    end = min(int(m[2]) if m[2] else len(data) - 1, len(data) - 1)
    if start >= len(data):
        return Response(416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"})
    return Response(206, data[start:end + 1], {**headers, "Content-Range": f"bytes {start}-{end}/{len(data)}"})
