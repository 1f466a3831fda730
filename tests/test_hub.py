"""Loading generators from the (stand-in) Hugging Face Hub, the HF cache and bundled folders.

The first tests check the stand-in itself against ``huggingface_hub``'s own client, so the
gandemo tests below them exercise the real download code paths (tree listing, HEAD metadata,
LFS redirects to a CDN, the cache layout and its refs).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import torch
from factories import (
    cryptopunks,
    huggan,
    latents,
    malicious_checkpoint_bytes,
    native_files,
    pytorch_examples,
    replica_output,
    state_dict_bytes,
    tiny_native,
    unique_repo_id,
    write_files,
)
from hub_server import StandInHub
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from gandemo import generator as generator_module
from gandemo import load_generator
from gandemo.errors import SourceError, UnsafeCheckpointError, UnsupportedCheckpointError
from gandemo.generator import GeneratorCache


def outputs(gen, latent_dim: int, seed: int = 0) -> torch.Tensor:
    return gen(latents(3, latent_dim, seed))


class _NoSleep:
    """Stands in for the ``time`` module inside huggingface_hub's retry loop: retries without waiting."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def __getattr__(self, name: str):
        return getattr(time, name)


@pytest.fixture
def no_retry_wait(monkeypatch: pytest.MonkeyPatch) -> _NoSleep:
    from huggingface_hub.utils import _http

    fake = _NoSleep()
    monkeypatch.setattr(_http, "time", fake)
    return fake


# ------------------------------------------------------------------------- the stand-in itself
def test_standin_model_info_tree_and_pagination(hub: StandInHub, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = unique_repo_id("standin")
    files = {f"data/part-{i:02d}.txt": str(i).encode() for i in range(7)}
    files.update({"README.md": b"# hi\n", "model.safetensors": b"\0" * 64, "sub/dir/deep.bin": b"xyz"})
    sha = hub.add_repo(repo, files)
    assert len(sha) == 40 and int(sha, 16) >= 0
    assert sha == StandInHub().add_repo(repo, files)  # deterministic: same calls, same commit sha
    latest = hub.add_repo(repo, files)
    assert latest != sha  # a new commit (its parent is the previous one)
    api = HfApi()
    info = api.model_info(repo)
    assert info.sha == latest
    assert sorted(s.rfilename for s in info.siblings) == sorted(files)
    assert api.model_info(repo, revision=sha).sha == sha  # older commits stay reachable

    monkeypatch.setattr(hub, "tree_page_size", 3)
    mark = hub.mark()
    assert sorted(api.list_repo_files(repo)) == sorted(files)
    assert len(hub.requests_since(mark)) > 3  # it really paginated
    top = {entry.path: type(entry).__name__ for entry in api.list_repo_tree(repo)}
    assert top == {"README.md": "RepoFile", "model.safetensors": "RepoFile", "data": "RepoFolder", "sub": "RepoFolder"}
    deep = [entry.path for entry in api.list_repo_tree(repo, "sub", recursive=True)]
    assert deep == ["sub/dir", "sub/dir/deep.bin"]
    lfs = {e.path: e.lfs for e in api.list_repo_tree(repo, recursive=True, expand=True) if hasattr(e, "lfs")}
    assert lfs["model.safetensors"] is not None and lfs["model.safetensors"].size == 64
    assert lfs["README.md"] is None


def test_standin_file_metadata_and_lfs_redirect(hub: StandInHub) -> None:
    repo = unique_repo_id("standin")
    weights = bytes(range(256)) * 4
    sha = hub.add_repo(repo, {"README.md": b"# card\n", "model.safetensors": weights})
    small = get_hf_file_metadata(hf_hub_url(repo, "README.md"))
    assert small.commit_hash == sha and small.size == 7 and small.location.startswith(hub.url)
    big = get_hf_file_metadata(hf_hub_url(repo, "model.safetensors"))
    assert big.commit_hash == sha and big.size == len(weights)
    assert big.location.startswith(hub.cdn_url)  # LFS files live on the "CDN" port
    mark = hub.mark()
    path = hf_hub_download(repo, "model.safetensors", revision=sha[:10])
    assert Path(path).read_bytes() == weights
    assert any(p.startswith("/lfs/") for _, p in hub.requests_since(mark))
    assert hub.files_fetched(repo, since=mark) == ["model.safetensors"]


def test_standin_errors_map_to_huggingface_hub_exceptions(hub: StandInHub) -> None:
    api = HfApi()
    repo = unique_repo_id("standin")
    hub.add_repo(repo, {"README.md": b"x"})
    with pytest.raises(RepositoryNotFoundError):
        api.list_repo_files(unique_repo_id("missing"))
    with pytest.raises(RevisionNotFoundError):
        api.list_repo_files(repo, revision="no-such-branch")
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(repo, "nope.bin")
    with pytest.raises(HfHubHTTPError, match="401"):
        api.list_repo_files(repo, token="hf_wrong_token")

    private = unique_repo_id("private")
    hub.add_repo(private, {"README.md": b"secret"}, private=True)
    with pytest.raises(RepositoryNotFoundError, match="401"):
        api.list_repo_files(private)
    assert api.list_repo_files(private, token=hub.VALID_TOKEN) == ["README.md"]

    gated = unique_repo_id("gated")
    hub.add_repo(gated, {"README.md": b"conditions", "model.safetensors": b"w"}, gated=True)
    assert sorted(api.list_repo_files(gated)) == ["README.md", "model.safetensors"]  # listing is public
    assert Path(hf_hub_download(gated, "README.md")).read_bytes() == b"conditions"  # so is the card
    with pytest.raises(GatedRepoError, match="401"):
        hf_hub_download(gated, "model.safetensors")
    with pytest.raises(GatedRepoError, match="403"):
        hf_hub_download(gated, "model.safetensors", token=hub.VALID_TOKEN)
    hub.grant(gated)
    assert Path(hf_hub_download(gated, "model.safetensors", token=hub.VALID_TOKEN)).read_bytes() == b"w"


# ------------------------------------------------------------------------------ gandemo + Hub
def test_native_repo_by_id_and_revision(hub: StandInHub) -> None:
    repo = unique_repo_id("native")
    first, second = tiny_native(seed=1), tiny_native(seed=2)
    main_sha = hub.add_repo(repo, native_files(first))
    hub.add_repo(repo, native_files(second), revision="v2")

    gen = load_generator(repo)
    assert gen.source == f"Hub: {repo}" and gen.layout == "gandemo"
    assert (gen.image_size, gen.channels, gen.latent_dim) == (32, 3, 8)
    assert torch.equal(outputs(gen, 8), first(latents(3, 8, 0)))
    assert "gandemo" in gen.card.metadata.get("tags", [])

    v2 = load_generator(f"{repo}@v2")
    assert v2.source == f"Hub: {repo}@v2"
    assert torch.equal(outputs(v2, 8), second(latents(3, 8, 0)))
    assert not torch.equal(outputs(v2, 8), outputs(gen, 8))
    assert torch.equal(outputs(load_generator(f"{repo}@{main_sha}"), 8), outputs(gen, 8))


@pytest.mark.parametrize("channels", [3, 4])
def test_huggan_repo_with_only_pytorch_model_bin(hub: StandInHub, channels: int) -> None:
    repo = unique_repo_id("huggan")
    replica = huggan(num_channels=channels)
    hub.add_repo(repo, {"pytorch_model.bin": state_dict_bytes(replica)})
    gen = load_generator(repo)
    assert gen.layout == "huggan-dcgan" and gen.channels == channels
    z = latents(2, replica.model[0].in_channels)
    assert torch.equal(gen(z), replica_output(replica, z))


def test_pytorch_examples_repo_downloads_only_the_newest_netg(hub: StandInHub) -> None:
    repo = unique_repo_id("dcgan-examples")
    replicas = {epoch: pytorch_examples(seed=epoch) for epoch in (2, 9, 10)}
    files = {f"netG_epoch_{epoch}.pth": state_dict_bytes(r) for epoch, r in replicas.items()}
    files["netD_epoch_10.pth"] = b"not downloaded"
    files["README.md"] = b"# pytorch/examples DCGAN\n\nTrained on LSUN.\n"
    hub.add_repo(repo, files)
    mark = hub.mark()
    gen = load_generator(repo)
    assert gen.layout == "pytorch-examples-dcgan"
    assert gen.card.summary == "Trained on LSUN."
    assert sorted(hub.files_fetched(repo, since=mark)) == ["README.md", "netG_epoch_10.pth"]  # 10 > 9 > 2
    z = latents(2, 12)
    assert torch.equal(gen(z), replica_output(replicas[10], z))


def test_cryptopunks_repo(hub: StandInHub) -> None:
    repo = unique_repo_id("cryptopunks-gan")
    replica = cryptopunks()
    hub.add_repo(repo, {"generator.pth": state_dict_bytes(replica), "README.md": b"# CryptoPunks GAN\n"})
    gen = load_generator(repo)
    assert (gen.layout, gen.image_size, gen.channels, gen.latent_dim) == ("cryptopunks-gan", 24, 4, 100)
    z = latents(2, 100)
    assert torch.equal(gen(z), replica_output(replica, z))


def test_missing_repo(hub: StandInHub) -> None:
    repo = unique_repo_id("does-not-exist")
    with pytest.raises(SourceError, match=repo):
        load_generator(repo)


def test_missing_revision(hub: StandInHub) -> None:
    repo = unique_repo_id("native")
    hub.add_repo(repo, native_files(tiny_native()))
    with pytest.raises(SourceError) as info:
        load_generator(f"{repo}@no-such-branch")
    assert repo in str(info.value) and "no-such-branch" in str(info.value)


def test_repo_without_generator_files_lists_what_it_has(hub: StandInHub) -> None:
    repo = unique_repo_id("tokenizer")
    hub.add_repo(repo, {"README.md": b"# A tokenizer\n", "tokenizer.json": b"{}"})
    mark = hub.mark()
    with pytest.raises(UnsupportedCheckpointError) as info:
        load_generator(repo)
    message = str(info.value)
    assert repo in message and "README.md" in message and "tokenizer.json" in message
    assert hub.files_fetched(repo, since=mark) == []  # decided from the listing, nothing downloaded


def test_gated_repo_says_it_is_gated_and_how_to_get_access(hub: StandInHub) -> None:
    """Like the real Hub, the stand-in lists a gated repo's files and refuses only the downloads."""
    repo = unique_repo_id("gated")
    hub.add_repo(repo, {"pytorch_model.bin": state_dict_bytes(huggan())}, gated=True)
    with pytest.raises(SourceError) as info:
        load_generator(repo)
    message = str(info.value)
    assert "gated" in message.lower()
    assert "HF_TOKEN" in message or "log in" in message  # tells the person how to get access


def test_gated_repo_with_access_loads(hub: StandInHub, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = unique_repo_id("gated")
    replica = huggan()
    hub.add_repo(repo, {"pytorch_model.bin": state_dict_bytes(replica)}, gated=True)
    hub.grant(repo)
    monkeypatch.setenv("HF_TOKEN", hub.VALID_TOKEN)
    z = latents(2, 16)
    assert torch.equal(load_generator(repo)(z), replica_output(replica, z))


def test_private_repo_needs_a_token(hub: StandInHub, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = unique_repo_id("private")
    hub.add_repo(repo, native_files(tiny_native()), private=True)
    with pytest.raises(SourceError, match="HF_TOKEN"):
        load_generator(repo)
    monkeypatch.setenv("HF_TOKEN", hub.VALID_TOKEN)
    assert load_generator(repo).layout == "gandemo"


@pytest.mark.parametrize("source", ["not a repo", "a/b/c", "../no-such-gandemo-model", "a@", "owner/name@",
                                    "owner/na me", "-owner/name", "owner/name.", "owner//name", ""])
def test_malformed_sources_fail_without_network(hub: StandInHub, source: str) -> None:
    mark = hub.mark()
    with pytest.raises(SourceError):
        load_generator(source)
    assert hub.requests_since(mark) == []


def test_malicious_pickle_repo_is_refused(hub: StandInHub, tmp_path: Path) -> None:
    repo = unique_repo_id("evil")
    marker = tmp_path / "pwned"
    hub.add_repo(repo, {"pytorch_model.bin": malicious_checkpoint_bytes(marker)})
    with pytest.raises(UnsafeCheckpointError, match="nothing was executed"):
        load_generator(repo)
    assert not marker.exists()


def test_offline_mode_uses_the_cache_and_never_the_network(hub: StandInHub, run_python) -> None:
    repo, missing = unique_repo_id("offline"), unique_repo_id("never-downloaded")
    first, second = tiny_native(seed=11), tiny_native(seed=12)
    hub.add_repo(repo, native_files(first))
    hub.add_repo(repo, native_files(second), revision="v2")
    expected = {source: load_generator(source)(latents(2, 8)).flatten().tolist() for source in (repo, f"{repo}@v2")}
    mark = hub.mark()
    code = f"""
import json, torch
from gandemo import load_generator
from gandemo.errors import SourceError
z = torch.randn(2, 8, generator=torch.Generator().manual_seed(123))
result = {{}}
for source in {[repo, f"{repo}@v2"]!r}:
    gen = load_generator(source)
    result[source] = {{"label": gen.source, "out": gen(z).flatten().tolist()}}
try:
    load_generator({missing!r})
except SourceError as e:
    result["missing"] = str(e)
print(json.dumps(result))
"""
    proc = run_python(code, env={"HF_HUB_OFFLINE": "1"})
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for source in (repo, f"{repo}@v2"):
        assert result[source]["out"] == expected[source]
        assert "cached" in result[source]["label"]
    assert "cache" in result["missing"] and "HF_HUB_OFFLINE" in result["missing"]
    assert hub.requests_since(mark) == []


def test_unreachable_hub_falls_back_to_the_cache(hub: StandInHub, no_retry_wait: _NoSleep) -> None:
    repo = unique_repo_id("outage")
    gen = tiny_native(seed=5)
    hub.add_repo(repo, native_files(gen))
    load_generator(repo)
    for status in (None, 503):  # connection dropped, then a server error
        with hub.outage(status):
            cached = load_generator(repo)
        assert "cached" in cached.source
        assert torch.equal(outputs(cached, 8), gen(latents(3, 8, 0)))
    with hub.outage(), pytest.raises(SourceError, match="cache") as info:
        load_generator(unique_repo_id("never-downloaded"))
    assert "could not be reached" in str(info.value)


def test_a_revision_never_names_a_server_path(hub: StandInHub, tmp_path: Path) -> None:
    """'owner/name@REV' reads the cache's refs/REV and opens snapshots/<its content>: a revision with '..'
    (or a ref file that holds a path) must not make the server open a folder of its choosing."""
    import os

    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    repo = unique_repo_id("refs")
    gen = tiny_native(seed=7)
    hub.add_repo(repo, native_files(gen))
    load_generator(repo)  # in the cache now, with refs/main
    storage = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo, repo_type="model")
    elsewhere = write_files(tmp_path / "someone-elses-model", native_files(tiny_native(seed=8)))
    into_elsewhere = os.path.relpath(elsewhere, storage / "snapshots")
    # a file that holds a path, as a visitor's upload could, reached from refs/ by '..'
    (tmp_path / "ref.txt").write_text(into_elsewhere)
    via_file = os.path.relpath(tmp_path / "ref.txt", storage / "refs")
    # and a ref inside the cache whose content is a path rather than a commit hash
    (storage / "refs" / "planted").write_text(into_elsewhere)
    with hub.outage():  # the Hub is down, so the cache decides
        for revision in (via_file, "refs/../" + via_file, "main/../" + via_file):
            with pytest.raises(SourceError, match="revision after '@'"):
                load_generator(f"{repo}@{revision}")
        with pytest.raises(SourceError, match="not in the local Hugging Face cache"):
            load_generator(f"{repo}@planted")
        cached = load_generator(repo)  # the real ref still works
    assert "cached" in cached.source
    assert torch.equal(outputs(cached, 8), gen(latents(3, 8, 0)))


@pytest.mark.parametrize("revision", ["v2", "refs/pr/1", "0123456789abcdef0123456789abcdef01234567", "feature/x-1.2"])
def test_ordinary_revisions_are_accepted(revision: str) -> None:
    from gandemo.hub import parse_repo_id
    assert parse_repo_id(f"owner/name@{revision}") == ("owner/name", revision)


@pytest.mark.parametrize("revision", ["../x", ".hidden", "a//b", "/abs", "a/", "x.lock", "a/./b", "a b", "a\\b", "v" * 129])
def test_malformed_revisions_are_refused(revision: str) -> None:
    from gandemo.hub import parse_repo_id
    with pytest.raises(SourceError, match="revision after '@'"):
        parse_repo_id(f"owner/name@{revision}")


def test_bundled_models_never_touch_the_network(hub: StandInHub, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    gen = tiny_native(seed=21)
    write_files(tmp_path / "weights" / "tiny-faces", native_files(gen))
    write_files(tmp_path / "weights" / "not-a-model", {"notes.txt": b"no config.json here"})
    monkeypatch.setenv("GANDEMO_WEIGHTS_DIR", str(tmp_path / "weights"))
    mark = hub.mark()
    loaded = load_generator("tiny-faces")
    assert loaded.source == "bundled: tiny-faces"
    assert torch.equal(outputs(loaded, 8), gen(latents(3, 8, 0)))
    with pytest.raises(SourceError, match="tiny-faces"):  # the error lists what is bundled
        load_generator("no-such-bundled-model")
    assert hub.requests_since(mark) == []


def test_generator_cache_is_an_lru_of_loaded_generators(hub: StandInHub) -> None:
    repos = [unique_repo_id(f"cache{i}") for i in range(3)]
    for i, repo in enumerate(repos):
        hub.add_repo(repo, native_files(tiny_native(seed=30 + i)))
    a, b, c = repos
    cache = GeneratorCache(capacity=2)
    gen_a = cache.get(a)
    mark = hub.mark()
    assert cache.get(a) is gen_a and cache.get(f"  {a} ") is gen_a
    assert hub.requests_since(mark) == []  # served from memory
    gen_b = cache.get(b)
    assert cache.get(a) is gen_a  # a is now the most recently used
    cache.get(c)  # evicts b
    assert cache.keys() == [a, c]
    assert b not in cache and a in cache
    assert cache.get(b) is not gen_b
    assert cache.keys() == [c, b]


def test_generator_cache_loads_a_model_once_for_concurrent_visitors(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_files(tmp_path / "model", native_files(tiny_native()))
    calls: list[str] = []
    real_load = generator_module.load_generator

    def slow_load(source: str, **kwargs: object):
        calls.append(source)
        time.sleep(0.2)
        return real_load(source, **kwargs)

    monkeypatch.setattr(generator_module, "load_generator", slow_load)
    cache = GeneratorCache(capacity=2)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(str(folder)))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(results) == 4 and all(r is results[0] for r in results)
