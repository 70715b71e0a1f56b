"""Sharing models on the Hugging Face Hub, through huggingface_hub's real client and cache.

Push and pull talk to a fake Hub on 127.0.0.1 (tests/helpers/fake_hub.py, reached through HF_ENDPOINT); offline pulls
read a cache laid out by hand exactly as huggingface_hub lays it out, with HF_HUB_OFFLINE=1. No test touches the
network or the user's own Hugging Face folders (HF_HOME is a temporary folder).
"""

import json
import os
import shutil
import tempfile

import pytest
import torch
import yaml
from typer.testing import CliRunner

import genzoo
from genzoo.core.errors import GenzooError
from genzoo.core.io import load_tensors
from genzoo.modelfile.folder import save_pretrained
from genzoo.modelfile.hub import load, parse_hub_source, push
from tests.helpers.cli import run_cli
from tests.helpers.fake_hub import FakeHub, git_blob_id

UPLOADED = {"README.md", "config.json", "model.safetensors", "recipe.yaml", "samples.png", "eval.json"}


@pytest.fixture(scope="module")
def run(tiny_run, tmp_path_factory):
    """The shared tiny MLP AAE (30 steps), copied and evaluated (eval.json with its protocol), as `genzoo push` finds
    it."""
    from genzoo.cli import app

    run_dir = tmp_path_factory.mktemp("hub") / "tiny"
    shutil.copytree(tiny_run("aae"), run_dir)
    result = CliRunner().invoke(app, ["eval", str(run_dir), "--limit", "64"])
    assert result.exit_code == 0, result.output
    return run_dir


def hub_env(tmp_path, hub=None, **extra):
    env = {"HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0"}
    if hub is not None:
        env.update(HF_ENDPOINT=hub.url, HF_TOKEN=hub.token)
    return {**env, **extra}


def one_line_error(proc, *words):
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def fill_cache(hf_home, repo_id, files: dict, commit="0123456789abcdef0123456789abcdef01234567", ref="main"):
    """Lay files out as huggingface_hub's cache does: blobs/<etag>, snapshots/<commit>/<name> -> blob, refs/<ref>."""
    storage = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / ref).write_text(commit)
    for name, data in files.items():
        blob = storage / "blobs" / git_blob_id(data)
        blob.parent.mkdir(exist_ok=True)
        blob.write_bytes(data)
        link = storage / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return storage


def tree_state(folder):
    return sorted((str(p.relative_to(folder)), p.lstat().st_mtime_ns) for p in folder.rglob("*"))


def test_save_load_round_trip_is_bit_exact(tmp_path):
    torch.manual_seed(0)
    model = genzoo.create_model(
        {"name": "mlp_aae", "latent_dim": 4, "hidden": 32}, {"name": "gaussian", "std": 2.0}, image_shape=(1, 8, 8)
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))  # not the init: every bit must survive
    save_pretrained(model, tmp_path / "m")
    back = load(tmp_path / "m")
    assert model.state_dict().keys() == back.state_dict().keys()
    for k, v in model.state_dict().items():
        assert v.dtype == back.state_dict()[k].dtype and torch.equal(v, back.state_dict()[k]), k
    model.eval()
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(model.sample(6, generator=g1), back.sample(6, generator=g2))
    save_pretrained(back, tmp_path / "again")
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == (
        tmp_path / "again" / "model.safetensors"
    ).read_bytes()


def test_model_sources_are_parsed_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "mine").mkdir(parents=True)
    assert parse_hub_source("hf://org/name") == ("org/name", None)
    assert parse_hub_source("hf://org/name@v1.0") == ("org/name", "v1.0")
    assert parse_hub_source("org/name@0123abc") == ("org/name", "0123abc")  # bare id: no such local folder
    assert parse_hub_source("runs/mine") is None  # a local folder wins
    assert parse_hub_source(tmp_path / "org" / "name") is None  # a Path is always local
    assert parse_hub_source(str(tmp_path / "nowhere")) is None and parse_hub_source("a/b/c") is None
    for bad in ("hf://org/na me", "hf://org/name@", "hf://"):
        with pytest.raises(GenzooError, match="not a Hub model id"):
            parse_hub_source(bad)


def test_dry_run_builds_the_upload_and_its_model_card(run, tmp_path):
    result = push(run, "hf://someone/tiny-aae", dry_run=tmp_path / "upload")
    assert set(result["files"]) == UPLOADED and result["url"] is None
    up = tmp_path / "upload"
    assert (up / "model.safetensors").read_bytes() == (run / "model" / "model.safetensors").read_bytes()
    assert (up / "config.json").read_bytes() == (run / "model" / "config.json").read_bytes()
    assert (up / "recipe.yaml").read_bytes() == (run / "recipe.yaml").read_bytes()
    assert (up / "samples.png").read_bytes() == sorted((run / "samples").glob("*.png"))[-1].read_bytes()
    card = (up / "README.md").read_text()
    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "genzoo" and "datasets" not in meta  # digits is no Hub dataset id
    assert meta["license"] == "bsd-3-clause"  # the training data's licence (scikit-learn's digits)
    assert body.startswith("\n# tiny-aae: mlp_aae + gaussian on digits") and "not on PyPI yet" in body
    assert meta["tags"] == ["genzoo", "generative-autoencoder", "mlp_aae", "gaussian"]
    (result_,) = meta["model-index"][0]["results"]
    assert result_["dataset"]["split"] == "test"
    metrics = {m["type"]: m for m in result_["metrics"]}
    evaluated = json.loads((run / "eval.json").read_text())["reconstruction"]
    assert metrics["mse"]["value"] == evaluated["mse"]
    assert metrics["mse"]["args"]["model_step"] == 30 and metrics["mse"]["args"]["limit"] == 64
    assert 'genzoo.load("someone/tiny-aae")' in body and "genzoo sample hf://someone/tiny-aae" in body
    assert "limit=64" in body and "## Training recipe" in body


def test_push_refuses_broken_weights_and_celeba(run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(run / "model", broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[:-10])
    with pytest.raises(GenzooError, match="truncated"):
        push(broken, "me/x", dry_run=tmp_path / "never")
    celeba = tmp_path / "celeba"
    shutil.copytree(run / "model", celeba)
    config = json.loads((celeba / "config.json").read_text())
    config["data"] = {"name": "image_folder", "root": "/data/celeba/img_align_celeba"}
    (celeba / "config.json").write_text(json.dumps(config))
    with pytest.raises(GenzooError, match="CelebA"):
        push(celeba, "me/x", dry_run=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_push_then_pull_through_a_fake_hub(run, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    with FakeHub() as hub:
        env = hub_env(tmp_path, hub)
        pushed = run_cli("push", run, "--repo", "me/tiny-aae", "--private", env=env)
        assert "pushed" in pushed.stdout and "genzoo sample hf://me/tiny-aae" in pushed.stdout
        assert hub.token not in pushed.stdout + pushed.stderr
        # the real client: repo created private with our token, files inline (base64) in one NDJSON commit
        assert hub.repos["me/tiny-aae"]["private"] is True
        writes = [r for r in hub.requests if r[0] == "POST" and "validate-yaml" not in r[1]]
        assert writes and all(h.get("authorization") == f"Bearer {hub.token}" for _, _, h in writes)
        (ops,) = hub.commit_payloads
        assert ops[0]["key"] == "header" and {o["key"] for o in ops[1:]} == {"file"}
        files = hub.files("me/tiny-aae")
        assert set(files) == UPLOADED | {".gitattributes"}
        assert files["model.safetensors"] == (run / "model" / "model.safetensors").read_bytes()
        assert files["recipe.yaml"] == (run / "recipe.yaml").read_bytes()
        assert files["README.md"].startswith(b"---\nlicense: bsd-3-clause\nlibrary_name: genzoo\n")

        pulled = run_cli("pull", "me/tiny-aae", "--to", tmp_path / "copy", env=env)
        assert "pulled me/tiny-aae" in pulled.stdout
        assert (tmp_path / "copy" / "model.safetensors").read_bytes() == files["model.safetensors"]
        assert not (tmp_path / "copy" / ".gitattributes").exists()  # only the model's files are fetched
        asked = len(hub.requests)

        # offline: the cache the real download path filled serves `hf://` sources; nothing reaches the Hub, the
        # output goes to the current folder and the cache is left exactly as it was
        cache = tmp_path / "hf-home" / "hub"
        before = tree_state(cache)
        sampled = run_cli(
            "sample",
            "hf://me/tiny-aae",
            "-n",
            "4",
            "--images-dir",
            "imgs",
            cwd=work,
            env={**env, "HF_HUB_OFFLINE": "1"},
        )
        assert "wrote samples.png" in sampled.stdout and (work / "samples.png").is_file()
        assert len(list((work / "imgs").glob("*.png"))) == 4
        assert tree_state(cache) == before and len(hub.requests) == asked


def test_pull_from_a_prepopulated_cache_offline(run, tmp_path, monkeypatch):
    from huggingface_hub import constants

    hf_home = tmp_path / "hf-home"
    files = {name: (run / "model" / name).read_bytes() for name in ("config.json", "model.safetensors")}
    storage = fill_cache(hf_home, "zoo/tiny", {**files, "README.md": b"---\nlibrary_name: genzoo\n---\n"})
    before = tree_state(storage)
    env = hub_env(tmp_path, HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")
    proc = run_cli("pull", "zoo/tiny", env=env)
    assert "pulled zoo/tiny (commit 0123456789)" in proc.stdout and str(storage / "snapshots") in proc.stdout
    one_line_error(
        run_cli("pull", "zoo/other", env=env, check=False), "not in the local Hugging Face cache", "HF_HUB_OFFLINE=1"
    )
    # in Python: genzoo.load("org/name") through the same resolver, weights bit for bit
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    reference = load_tensors(run / "model" / "model.safetensors")
    for source in ("zoo/tiny", "hf://zoo/tiny@main"):
        model = genzoo.load(source)
        assert all(torch.equal(model.state_dict()[k], v) for k, v in reference.items())
    with pytest.raises(GenzooError, match="'zoo/tiny@v2' is not in the local Hugging Face cache"):
        genzoo.load("hf://zoo/tiny@v2")
    with pytest.raises(
        GenzooError, match="'runs/tyop' is not a local folder, and as a Hub id: 'runs/tyop' is not in the local"
    ):
        genzoo.load("runs/tyop")
    assert tree_state(storage) == before


def test_pickle_only_and_truncated_repos_are_refused(run, tmp_path):
    weights = (run / "model" / "model.safetensors").read_bytes()
    config = (run / "model" / "config.json").read_bytes()
    with FakeHub() as hub:
        hub.seed("evil/pickled", {"config.json": config, "pytorch_model.bin": b"\x80\x04\x95" + b"\0" * 64})
        hub.seed("me/truncated", {"config.json": config, "model.safetensors": weights[: len(weights) // 2]})
        env = hub_env(tmp_path, hub)
        one_line_error(
            run_cli("pull", "evil/pickled", env=env, check=False),
            "only pickle weights",
            "pytorch_model.bin",
            "never loads pickle",
        )
        assert not list((tmp_path / "hf-home").rglob("*.bin"))  # never even downloaded
        one_line_error(
            run_cli("pull", "hf://me/truncated", env=env, check=False), "broken model.safetensors", "truncated"
        )


def test_hub_failures_are_one_line_without_the_token(run, tmp_path, monkeypatch):
    """Auth, permission and network failures of push and pull (in-process CLI, the real client)."""
    from huggingface_hub import constants

    from genzoo.cli import app

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token-file"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    before = tree_state(run)

    def fails(*args, words=()):
        result = CliRunner().invoke(app, list(map(str, args)))
        assert result.exit_code == 1, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        for w in words:
            assert w in lines[0], lines[0]
        for secret in ("hf_fakeTOKEN", "hf_wrongTOKEN"):
            assert secret not in result.output
        return lines[0]

    fails("push", run, "--repo", "me/x", words=("no Hugging Face token", "hf auth login"))
    with FakeHub() as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", "hf_wrongTOKENwrongTOKEN")
        fails("push", run, "--repo", "me/x", words=("rejected your token (401)",))
        monkeypatch.setenv("HF_TOKEN", hub.token)
        fails("push", run, "--repo", "not-yours/x", words=("403", "write access"))
        fails("push", run, "--repo", "me/x y", words=("not a Hub repo id",))
        fails("pull", "me/nothing", words=("the Hub has no model 'me/nothing'",))
        assert not hub.repos  # nothing was created by any failed push
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    fails("push", run, "--repo", "me/x", words=("could not reach the Hugging Face Hub at http://127.0.0.1:9",))
    fails("pull", "me/x", words=("could not reach", "not in the local cache"))
    assert not list((tmp_path / "cache").rglob("snapshots"))  # a failed pull leaves no snapshot behind
    assert not list(scratch.iterdir())  # the upload's temporary folder is gone
    assert tree_state(run) == before  # push never writes into the run


def test_list_pretrained(tmp_path):
    from genzoo.modelfile.published import pretrained

    proc = run_cli("list", "--pretrained")
    assert "No weights are published yet" in proc.stdout and "genzoo push runs/<recipe> --repo org/name" in proc.stdout
    table = tmp_path / "pretrained.json"
    table.write_text(
        json.dumps(
            {"weights": {"quickstart": {"repo": "genzoo/quickstart-aae", "revision": "abc", "notes": "digits"}}}
        )
    )
    assert pretrained(table)["quickstart"]["repo"] == "genzoo/quickstart-aae"
    table.write_text(json.dumps({"weights": {"quickstart": {"repo": "not an id"}}}))
    with pytest.raises(GenzooError, match="not a Hub repo id"):
        pretrained(table)


def test_cli_help_loads_neither_torch_nor_huggingface_hub():
    import subprocess
    import sys

    code = "import sys; from genzoo.cli import app; print('torch' in sys.modules, 'huggingface_hub' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == [
        "False",
        "False",
    ]
