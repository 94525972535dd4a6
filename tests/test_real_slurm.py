"""A real Slurm (tests/slurm_cluster.py: controller + two nodes on this host) running the shipped
sbatch files with tiny CPU configs (gloo): a 2-node fit against one process, a preempted fit that
requeues itself and resumes, and the data-parallel stages over 2 tasks against 1, also after a
task is killed mid-stage and the job requeued. Skipped, with the reason, where Slurm cannot start."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.scale_helpers import REPO, STALL_ENV, fit_config, run_env, run_fit, train_losses
from tests.slurm_cluster import Cluster, missing

CPU_JOB = ("--gpus-per-node=0", "--cpus-per-task=1", "--time=15", "--ntasks-per-node=1")
SHAPES_BASE = str(REPO / "unigen/worlds/shapes/assets/base")


@pytest.fixture(scope="module")
def slurm():
    reason = missing()
    if reason:
        pytest.skip(reason)
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="unigen-slurm-"))).start()
    yield cluster
    cluster.stop()


def job_env(**extra: str) -> dict[str, str]:
    """What a submitted job sees: the project's python first on PATH, one thread, no outer Slurm."""
    return {**run_env(), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}:/usr/sbin", **extra}


def submit(slurm: Cluster, script: str, nodes: int, logs: Path, *args: str, **env: str) -> int:
    options = (f"--nodes={nodes}", *CPU_JOB, f"--output={logs}/%x-%j.out", "--job-name=unigen-test")
    return slurm.sbatch(REPO / "configs/slurm" / script, *args, cwd=REPO, env=job_env(**env), options=options)


# --- the fit: 2 nodes x 1 task (gloo) against one process, and preemption ---------------------------------------

FIT_STEPS = dict(max_steps=10, every_n_steps=10, train_samples=48)  # 6 steps an epoch: the run crosses one


def slurm_fit_config(root: Path) -> Path:
    """fit_config at batch 4 per rank, logging each (re)start of the job into its own CSV version."""
    path = fit_config(root, batch_size=4, **FIT_STEPS)
    config = yaml.safe_load(path.read_text())
    config["trainer"]["strategy"] = "ddp"
    config["trainer"]["logger"]["init_args"]["version"] = "${oc.env:SLURM_RESTART_COUNT,0}"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def fits(slurm, tmp_path_factory):
    """Submitted together: an uninterrupted 2-node fit and one preempted with USR1 at step 5; and one
    process at the same global batch (8) run here meanwhile."""
    root = tmp_path_factory.mktemp("fits")
    whole = submit(slurm, "fit.sbatch", 2, root, CONFIG=str(slurm_fit_config(root / "two")))
    stopped = submit(slurm, "fit.sbatch", 2, root, CONFIG=str(slurm_fit_config(root / "preempted")),
                     **{STALL_ENV: "5"})
    run_fit(fit_config(root / "one", batch_size=8, **FIT_STEPS), timeout=300)
    deadline = time.time() + 300
    while not (root / "preempted" / "stalled").exists():
        assert time.time() < deadline and slurm.job(stopped)["JobState"] in ("PENDING", "RUNNING")
        time.sleep(0.5)
    slurm.run("scancel", "--signal=USR1", str(stopped))  # what --signal=SIGUSR1@90 sends before the limit
    slurm.wait(whole, timeout=300)
    info = slurm.wait(stopped, timeout=300)
    return root, whole, stopped, info


def test_two_node_fit_matches_one_process_on_the_same_global_batch(fits):
    root, whole, _, info = fits
    one, two = train_losses(root / "one"), train_losses(root / "two")
    assert sorted(one) == sorted(two) == list(range(10)) and one[9] < one[0]
    diff = max(abs(one[s] - two[s]) for s in one)
    print(f"2-node fit (job {whole}) vs 1 process: max |loss diff| {diff:.2e} over {len(one)} steps")
    assert diff < 1e-3 * min(one.values()), (one, two)


def test_preempted_fit_checkpoints_requeues_itself_and_ends_with_the_uninterrupted_loss(fits):
    root, _, stopped, info = fits
    assert info["JobId"] == str(stopped) and info["Restarts"] == "1"
    log = Path(info["StdOut"]).read_text()
    assert f"job {stopped} restart 0:" in log and f"job {stopped} restart 1:" in log
    assert list((root / "preempted").glob("hpc_ckpt_*.ckpt"))
    before, after = train_losses(root / "preempted", 0), train_losses(root / "preempted", 1)
    whole = train_losses(root / "two")
    assert before and all(abs(before[s] - whole[s]) < 1e-4 * whole[s] for s in before)
    assert sorted(after) == list(range(min(after), 10)) and 4 <= min(after) <= 6  # stalled at step 5
    print(f"preempted job {stopped}: restarts {info['Restarts']}, resumed at step {min(after)}, final loss "
          f"{after[9]:.6f} vs uninterrupted {whole[9]:.6f}")
    assert abs(after[9] - whole[9]) < 1e-4 * whole[9]


# --- the data-parallel stages: 2 tasks against 1 ---------------------------------------------------------------

def stage_args(work: Path, prompts: Path) -> dict[str, list[str]]:
    """evaluate, generate, score, reflect on ShapesWorld with the committed base, tiny sizes."""
    sampling = ["--sampling.max_reasoning_tokens", "16", "--sampling.cfg", "2.0"]
    return {
        "evaluate": ["evaluate", "--benchmark", "shapes", "--model", SHAPES_BASE, "--reward", "shapes_strict",
                     "--samples_per_prompt", "2", "--max_prompts", "12", "--batch_prompts", "2", "--mode", "explicit",
                     "--outdir", str(work / "eval"), *sampling],
        "generate": ["generate", "--prompts", f"[{prompts}]", "--model", SHAPES_BASE, "--samples_per_prompt", "2",
                     "--prompts_per_shard", "1", "--out_dir", str(work / "generated"), *sampling,
                     "--sampling.mode", "explicit"],
        "score": ["score", "--rewards", "{shapes_strict: shapes_strict, shapes_plan: shapes_plan}",
                  "--input", str(work / "generated"), "--output", str(work / "scored")],
        "reflect": ["reflect", "--judge", "shapes_strict", "--input", str(work / "scored"),
                    "--output", str(work / "reflect")],
    }


def digest(run: Path, stage: str) -> dict[str, str]:
    """Every file under ``run/stage`` (relative path -> sha256), the run's own folder name (recorded in
    a stage's settings as its input path) read as ``<run>``."""
    folder = run / stage
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes().replace(str(run).encode(), b"<run>")).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def rank_pid(job: int, rank: int) -> int | None:
    """The pid of the python process of task ``rank`` of ``job`` (from /proc)."""
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            values = dict(v.split("=", 1) for v in environ.read_bytes().decode(errors="replace").split("\0") if "=" in v)
            cmdline = (environ.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if (values.get("SLURM_JOB_ID") == str(job) and values.get("SLURM_PROCID") == str(rank)
                and b"run.py" in cmdline and cmdline.startswith(sys.executable.encode())):
            return int(environ.parent.name)
    return None


@pytest.fixture(scope="module")
def stages(slurm, tmp_path_factory):
    """The four stages run by configs/slurm/stage.sbatch on 1 task and on 2 tasks (2 nodes), in turn;
    a third run on 2 tasks has task 1 killed in generate after its first shards, then is requeued."""
    root = tmp_path_factory.mktemp("stages")
    prompts = root / "prompts.jsonl"
    subprocess.run([sys.executable, "run.py", "target", "--strategy", "broad", "--prompts", "shapes", "--budget", "8",
                    "--out", str(prompts)], cwd=REPO, env=run_env(), check=True, capture_output=True)
    runs = {"one": 1, "two": 2, "killed": 2}
    seconds: dict[str, dict[str, float]] = {name: {} for name in runs}
    for stage in ("evaluate", "generate", "score", "reflect"):
        for name, tasks in runs.items():
            args = stage_args(root / name, prompts)[stage]
            start = time.time()
            job = submit(slurm, "stage.sbatch", tasks, root, *args)
            if name == "killed" and stage == "generate":
                kill_mid_stage(slurm, job, root / name / "generated")
            slurm.wait(job, timeout=600)
            seconds[name][stage] = time.time() - start
    return root, seconds


def kill_mid_stage(slurm: Cluster, job: int, out: Path) -> None:
    """SIGKILL task 1 once two shards are written, then requeue the failed job and let it finish."""
    deadline = time.time() + 300
    while len(list(out.glob("traj-*.tar"))) < 2:
        assert time.time() < deadline and slurm.job(job)["JobState"] in ("PENDING", "RUNNING")
        time.sleep(0.05)
    pid = rank_pid(job, 1)
    assert pid is not None, "task 1 of the stage is not running"
    os.kill(pid, signal.SIGKILL)
    slurm.wait(job, timeout=120, states=("FAILED", "COMPLETED"))
    assert len(list(out.glob("traj-*.tar"))) < 8, "the stage ended before the kill: nothing was interrupted"
    slurm.run("scontrol", "requeue", str(job))
    time.sleep(1)


@pytest.mark.parametrize("stage", ["eval", "generated", "scored", "reflect"])
def test_a_stage_over_two_tasks_writes_the_folder_of_one_task_also_after_a_kill_and_requeue(stages, stage):
    root, seconds = stages
    one = digest(root / "one", stage)
    assert len(one) > 5 and one == digest(root / "two", stage) == digest(root / "killed", stage)
    print(f"{stage}: {len(one)} files identical over 1 task, 2 tasks, 2 tasks killed+requeued; wall s {seconds}")
