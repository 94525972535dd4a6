"""SIGKILL from outside, then resume, with the shipped configs: ``fit --config configs/tiny.yaml`` and
``generate --config configs/generate/tiny.yaml``. Nothing of the killed run survives it, the
resumed run ends where an uninterrupted one does."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.scale_helpers import REPO, run_env

PYTHON = [sys.executable, str(REPO / "run.py")]
# tiny.yaml with short steps: a checkpoint at step 6 (the one the resume starts from), the end at 12
SHORT_FIT = ["--trainer.max_steps", "12", "--trainer.callbacks.init_args.every_n_train_steps", "6",
             "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
             "--data.init_args.num_workers", "2"]


def children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        kids = [child for child, parent in parents.items() if parent in frontier]
        found += kids
        frontier = kids
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def run(args: list[str], cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run(PYTHON + args, cwd=cwd, env=run_env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout + done.stderr


def kill_when(args: list[str], cwd: Path, ready, timeout: float = 240) -> tuple[int, list[int]]:
    """Start ``run.py args`` in ``cwd``, SIGKILL it once ``ready()`` holds; returns its pid and the
    pids of its descendants just before the kill."""
    child = subprocess.Popen(PYTHON + args, cwd=cwd, env=run_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while not ready():
        assert child.poll() is None, f"{args} ended before it could be killed"
        assert time.time() < deadline, f"{args}: never ready to be killed"
        time.sleep(0.02)
    descendants = children(child.pid)
    child.send_signal(signal.SIGKILL)
    child.wait()
    return child.pid, descendants


def final_loss_and_weights(root: Path) -> tuple[int, float, dict[str, torch.Tensor]]:
    ckpt = torch.load(root / "runs/tiny/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    losses: dict[int, float] = {}
    for version in sorted((root / "runs/tiny").glob("version_*")):
        events = EventAccumulator(str(version))
        events.Reload()
        if "train/loss" in events.Tags()["scalars"]:
            losses.update({e.step: e.value for e in events.Scalars("train/loss")})
    last = max(losses)
    return ckpt["global_step"], losses[last], ckpt["state_dict"]


def resume_and_compare(config: list[str], killed: Path, whole: Path) -> None:
    """Resume the killed fit with ``--ckpt_path latest``: it ends at step 12 with the uninterrupted
    run's final loss and weights."""
    log = run(config + ["--ckpt_path", "latest"], killed)
    assert f"resuming from {killed / 'runs/tiny/checkpoints/last.ckpt'}" in log
    step, loss, weights = final_loss_and_weights(killed)
    whole_step, whole_loss, whole_weights = final_loss_and_weights(whole)
    assert step == whole_step == 12
    assert loss == pytest.approx(whole_loss, rel=1e-5), (loss, whole_loss)
    assert max(float((weights[k] - whole_weights[k]).abs().max()) for k in weights) < 1e-5


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """What ``run.py synthesize --model janus-tiny`` writes, smaller: 256 train, 16 val samples."""
    from unigen.data.synthesize import write_synthetic_shards
    from unigen.models.loading import load_spec

    data = tmp_path_factory.mktemp("tiny") / "data" / "synthetic"
    spec = load_spec("janus-tiny")
    write_synthetic_shards(data, spec.image.num_tokens, spec.image.codebook_size, 256, 64, prefix="train")
    write_synthetic_shards(data, spec.image.num_tokens, spec.image.codebook_size, 16, 64, seed=1, prefix="val")
    return data


def workdir(tmp_path: Path, name: str, data: Path) -> Path:
    """A folder to run tiny.yaml from (its paths are relative): ``data/synthetic`` links to the shared set."""
    root = tmp_path / name
    (root / "data").mkdir(parents=True)
    (root / "data" / "synthetic").symlink_to(data)
    return root


def test_sigkilled_tiny_fit_resumes_with_latest_to_the_same_final_loss_and_leaves_no_process(tmp_path, tiny_data):
    config = ["fit", "--config", str(REPO / "configs/tiny.yaml"), *SHORT_FIT]
    whole = workdir(tmp_path, "whole", tiny_data)
    run(config, whole)

    killed = workdir(tmp_path, "killed", tiny_data)
    ckpt = killed / "runs/tiny/checkpoints/last.ckpt"
    pid, descendants = kill_when(config + ["--ckpt_path", "latest"], killed, ckpt.exists)
    assert len(descendants) >= 2  # the two DataLoader workers
    deadline = time.time() + 10
    while any(map(alive, descendants)) and time.time() < deadline:
        time.sleep(0.1)
    assert not [p for p in descendants if alive(p)], "processes of the killed fit survived it by 10 s"

    resume_and_compare(config, killed, whole)

    with pytest.raises(AssertionError, match="fit would start from step 0, but the experiment holds earlier "
                                             "checkpoints: .*runs/tiny/checkpoints"):
        run(config, killed)  # a plain fit beside those checkpoints: refused, not a silent restart


def expected_error(err: pytest.ExceptionInfo) -> str:
    """The message of an expected user error, checked to carry no chained traceback."""
    assert err.value.__cause__ is None and (err.value.__context__ is None or err.value.__suppress_context__)
    return str(err.value)


def test_latest_beside_only_old_layout_checkpoints_is_refused_and_fresh_moves_them_aside(tmp_path, tiny_data,
                                                                                        monkeypatch):
    from unigen.cli import main
    from unigen.scale.resume import ResumeError

    root = workdir(tmp_path, "old", tiny_data)
    monkeypatch.chdir(root)
    old = root / "runs/tiny/version_0/checkpoints/last.ckpt"  # where tiny.yaml's checkpoints went before
    old.parent.mkdir(parents=True)
    torch.save({"global_step": 3}, old)
    config = ["fit", "--config", str(REPO / "configs/tiny.yaml"), *SHORT_FIT, "--trainer.max_steps", "1",
              "--data.init_args.num_workers", "0"]
    with pytest.raises(ResumeError) as err:
        main(config + ["--ckpt_path", "latest"])
    message = expected_error(err)
    assert message.startswith("--ckpt_path latest found no checkpoint where this config writes "
                              f"({root / 'runs/tiny/checkpoints'})")
    assert "'runs/tiny/version_0/checkpoints/last.ckpt'" in message and "--fresh" in message

    main(config + ["--fresh", "true"])
    (moved,) = (root / "runs/tiny").glob("replaced-*/version_0/checkpoints/last.ckpt")
    assert torch.load(moved)["global_step"] == 3 and not old.exists()
    assert torch.load(root / "runs/tiny/checkpoints/last.ckpt", weights_only=False)["global_step"] == 1


def test_a_truncated_checkpoint_is_named_by_fit_and_generate(tmp_path, tiny_data, monkeypatch):
    from unigen.cli import main

    whole, bad = tmp_path / "whole.ckpt", tmp_path / "cut.ckpt"
    torch.save({"global_step": 1, "w": torch.zeros(1000)}, whole)
    bad.write_bytes(whole.read_bytes()[:3000])
    monkeypatch.chdir(workdir(tmp_path, "run", tiny_data))
    Path("p.jsonl").write_text(json.dumps({"id": "a", "prompt": "a red circle"}) + "\n")
    for option, args in (("--ckpt_path", ["fit", "--config", str(REPO / "configs/tiny.yaml"), "--ckpt_path", str(bad)]),
                         ("model", ["generate", "--config", str(REPO / "configs/generate/tiny.yaml"),
                                    "--prompts", "[p.jsonl]", "--out_dir", "out", "--model", str(bad)])):
        with pytest.raises(ValueError) as err:
            main(args)
        assert expected_error(err).startswith(f"{option} '{bad}' is not a readable torch checkpoint (truncated")


GENERATE = ["generate", "--config", str(REPO / "configs/generate/tiny.yaml"), "--prompts", "[prompts.jsonl]",
            "--threads", "1", "--sampling.max_reasoning_tokens", "8"]


def test_sigkilled_generate_resumes_to_byte_identical_shards(tmp_path):
    """configs/generate/tiny.yaml draws from the janus-tiny preset: its random weights must be the
    same in the resumed process, or the resume would mix two models."""
    prompts = "".join(json.dumps({"id": f"p{i}", "prompt": f"{i % 4 + 1} red circles"}) + "\n" for i in range(16))
    (tmp_path / "prompts.jsonl").write_text(prompts)
    run(GENERATE + ["--out_dir", "whole"], tmp_path)
    index = tmp_path / "killed" / "traj-index.json"
    kill_when(GENERATE + ["--out_dir", "killed"], tmp_path, index.exists)  # after shard 0 of 2
    assert len(json.loads(index.read_text())["shards"]) == 1
    log = run(GENERATE + ["--out_dir", "killed"], tmp_path)
    assert "2 shards (1 already done)" in log
    shards = sorted(p.name for p in (tmp_path / "whole").glob("traj-*.tar"))
    assert len(shards) == 2
    for name in shards:
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    assert not list((tmp_path / "killed").glob("*.tmp"))
    assert (tmp_path / "killed" / "traj-model.json").read_text() == (tmp_path / "whole" / "traj-model.json").read_text()
