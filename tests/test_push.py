"""Pushing a trained run to the (stand-in) Hub: ``gandemo.hub.push_folder`` and the app's
``/push_to_hub`` endpoint. The pushed repo must load like the local folder, visibility must be
honoured, and the user's token must go to the Hub's write endpoints and nowhere else: not into
files, logs, error messages or other requests."""

from __future__ import annotations

import json
import logging
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from app_harness import AppProcess, app  # noqa: F401 - `app` is the shared server fixture
from factories import unique_repo_id
from gradio_client.exceptions import AppError
from hub_server import StandInHub
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from test_train import coloured_shapes, tiny_config

from gandemo import load_generator
from gandemo.errors import SourceError
from gandemo.gan.train import Trainer
from gandemo.hub import push_folder

OWNER = "pusher"
WRITE_ENDPOINTS = ("/api/repos/create", "/api/validate-yaml", "/api/models/")


@pytest.fixture(scope="module")
def token(hub: StandInHub) -> str:
    """A write token for the namespace OWNER, unique to this module (so a grep for it means something)."""
    return hub.add_write_token(f"hf_pushtest_{secrets.token_hex(12)}", user=OWNER)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real training checkpoint: 3 tiny steps, written by Trainer.save()."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("push-runs") / "shapes-run"
        trainer = Trainer(coloured_shapes(12), tiny_config(steps=3), out, device="cpu")
        for _ in trainer.train():
            pass
    finally:
        torch.set_num_threads(before)
    yield out


def z(latent_dim: int = 16) -> torch.Tensor:
    return torch.randn(4, latent_dim, generator=torch.Generator().manual_seed(3))


def files_containing(root: Path, needle: str) -> list[Path]:
    data = needle.encode()
    hits = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and data in path.read_bytes():
                hits.append(path)
        except OSError:
            continue
    return hits


def assert_token_only_in_auth_headers(hub: StandInHub, token: str, since: int) -> None:
    carried = hub.requests_with_token(token, since)
    assert carried, "the token never reached the Hub"
    for method, path in carried:
        assert path.startswith(WRITE_ENDPOINTS), f"the token was sent to {method} {path}"
    for req in hub.request_log(since):
        if token in str(req.headers) or token.encode() in req.body or token in str(req.query):
            assert req.headers.get("authorization") == f"Bearer {token}", (req.method, req.path)
            assert token not in str({k: v for k, v in req.headers.items() if k != "authorization"})
            assert token.encode() not in req.body and token not in str(req.query), (req.method, req.path)


# ------------------------------------------------------------------------------------- the stand-in
def post(hub: StandInHub, path: str, body: bytes, token: str | None) -> int:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(f"{hub.url}{path}", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_standin_write_endpoints_check_tokens_and_commit_like_the_hub(hub: StandInHub, token: str) -> None:
    repo = unique_repo_id("standin-write", owner=OWNER)
    create = json.dumps({"name": repo.split("/")[1], "organization": OWNER, "type": "model"}).encode()
    assert post(hub, "/api/repos/create", create, None) == 401
    assert post(hub, "/api/repos/create", create, "hf_not_a_known_token") == 401
    assert post(hub, "/api/repos/create", create, hub.VALID_TOKEN) == 403  # read-only
    assert post(hub, "/api/repos/create", create, token) == 200
    assert post(hub, "/api/repos/create", create, token) == 409
    assert set(hub.files(repo)) == {".gitattributes"} and not hub.is_private(repo)
    preupload = json.dumps({"files": [{"path": "a.txt", "sample": "", "size": 1}]}).encode()
    for path in (f"/api/models/{repo}/preupload/main", f"/api/models/{repo}/commit/main"):
        assert post(hub, path, preupload, None) == 401
        assert post(hub, path, preupload, hub.VALID_TOKEN) == 403

    api = HfApi(token=token)
    api.create_commit(repo, [CommitOperationAdd("a/x.txt", b"x"), CommitOperationAdd("a/y.bin", b"y" * 10),
                             CommitOperationAdd("keep.txt", b"k")], commit_message="add")
    assert hub.files(repo) == {".gitattributes": hub.files(repo)[".gitattributes"], "a/x.txt": b"x",
                               "a/y.bin": b"y" * 10, "keep.txt": b"k"}
    api.create_commit(repo, [CommitOperationDelete("a/"), CommitOperationAdd("keep.txt", b"k2")], commit_message="rm")
    assert {k: v for k, v in hub.files(repo).items() if k != ".gitattributes"} == {"keep.txt": b"k2"}
    assert HfApi().list_repo_files(repo) == [".gitattributes", "keep.txt"]

    missing = b"\n".join(json.dumps(line).encode() for line in (
        {"key": "header", "value": {"summary": "lfs"}},
        {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": "0" * 64, "size": 3}},
    ))
    assert post(hub, f"/api/models/{repo}/commit/main", missing, token) == 422


# ------------------------------------------------------------------------------------- core
def test_push_then_load_from_the_hub_gives_the_same_generator(hub: StandInHub, token: str, run_dir: Path,
                                                              tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                              capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.INFO)
    repo = unique_repo_id("pushed", owner=OWNER)
    mark = hub.mark()
    url = push_folder(run_dir, repo, token, private=False)
    assert url == f"{hub.url}/{repo}"
    assert not hub.is_private(repo)

    remote = hub.files(repo)
    local = {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert {"config.json", "model.safetensors", "README.md", "training/state.json"} <= set(local)
    assert {k: v for k, v in remote.items() if k != ".gitattributes"} == local
    assert_token_only_in_auth_headers(hub, token, mark)

    from_hub = load_generator(repo, device="cpu")
    from_disk = load_generator(str(run_dir), device="cpu")
    assert from_hub.source == f"Hub: {repo}"
    assert torch.equal(from_hub(z()), from_disk(z()))
    assert "model.safetensors" in hub.files_fetched(repo, since=mark)

    # pushing again (a newer checkpoint into the same repo) works: exist_ok
    assert push_folder(run_dir, repo, token, private=False) == url

    out, err = capfd.readouterr()
    leaks = [where for where, text in (("stdout", out), ("stderr", err), ("logs", caplog.text)) if token in text]
    assert not leaks, f"the token was printed to {leaks}"
    for root in (run_dir, tmp_path, Path(os.environ["HF_HOME"])):
        assert files_containing(root, token) == [], f"the token was written under {root}"


def test_a_private_push_is_private(hub: StandInHub, token: str, run_dir: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    repo = unique_repo_id("private", owner=OWNER)
    push_folder(run_dir, repo, token)  # private is the default
    assert hub.is_private(repo)
    with pytest.raises(SourceError, match="No model repo") as info:
        load_generator(repo, device="cpu")
    assert token not in str(info.value)
    monkeypatch.setenv("HF_TOKEN", token)
    gen = load_generator(repo, device="cpu")
    assert torch.equal(gen(z()), load_generator(str(run_dir), device="cpu")(z()))


@pytest.mark.parametrize("who", ["unknown-token", "read-only-token", "other-namespace", "no-token"])
def test_refused_pushes_are_source_errors_without_the_token(who: str, hub: StandInHub, token: str,
                                                            run_dir: Path) -> None:
    secret = {
        "unknown-token": f"hf_unknown_{secrets.token_hex(12)}",
        "read-only-token": hub.VALID_TOKEN,
        "other-namespace": token,
        "no-token": "  ",
    }[who]
    repo = unique_repo_id("refused", owner="someone-else" if who == "other-namespace" else OWNER)
    mark = hub.mark()
    with pytest.raises(SourceError) as info:
        push_folder(run_dir, repo, secret)
    message = str(info.value)
    if who == "no-token":
        assert "access token with write permission" in message
        assert [r for r in hub.requests_since(mark) if repo in r[1]] == [], "nothing should be sent without a token"
    else:
        assert secret not in message, message
        expected = "HTTP 401" if who == "unknown-token" else "HTTP 403"
        assert expected in message and repo in message and "write access" in message, message
    assert repo not in hub.repo_ids(), "a refused push must not create the repo"


def test_push_refuses_a_folder_that_is_not_a_checkpoint(tmp_path: Path, token: str) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SourceError, match="not a gandemo checkpoint"):
        push_folder(tmp_path, unique_repo_id(owner=OWNER), token)
    with pytest.raises(SourceError, match="without '@revision'"):
        push_folder(tmp_path, f"{OWNER}/x@dev", token)


# ------------------------------------------------------------------------------------- the app
@pytest.mark.app
@pytest.mark.timeout(300)
def test_push_through_the_app_keeps_the_token_out_of_its_logs(app: AppProcess, hub: StandInHub,  # noqa: F811
                                                              token: str, run_dir: Path,
                                                              tmp_path: Path) -> None:
    client = app.client(tmp_path / "downloads")
    repo = unique_repo_id("from-app", owner=OWNER)
    mark = hub.mark()
    result = client.predict(str(run_dir), repo, token, True, api_name="/push_to_hub")
    assert result.startswith("✅ Pushed to") and f"{hub.url}/{repo}" in result, result
    assert hub.is_private(repo)
    assert {"config.json", "model.safetensors"} <= set(hub.files(repo))
    assert_token_only_in_auth_headers(hub, token, mark)

    wrong = f"hf_wrong_{secrets.token_hex(12)}"
    with pytest.raises(AppError) as info:
        client.predict(str(run_dir), unique_repo_id("nope", owner=OWNER), wrong, True, api_name="/push_to_hub")
    assert "refused the token" in str(info.value) and wrong not in str(info.value), str(info.value)

    with pytest.raises(AppError, match="no checkpoint to push"):
        client.predict("", repo, token, True, api_name="/push_to_hub")

    app.assert_alive()
    log = app.log_text()
    for secret in (token, wrong):
        assert secret not in log, f"the app logged a token:\n{app.log_tail()}"
        assert files_containing(app.workdir, secret) == [], "the app wrote a token to disk"
        assert files_containing(tmp_path, secret) == [], "the client wrote a token to disk"
    assert app.unexpected_errors() == [], app.log_tail()
