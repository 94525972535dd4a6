"""A real Slurm cluster on this host for the tests: munged, slurmctld and two slurmd nodes, every
file in one temporary folder, every daemon in the foreground and stopped by its PID.

Debian's ``slurm-wlm`` and ``munge`` packages (``.ci/run`` installs them as root); the settings
that work in a container and requeue within seconds are in docs/cluster.md. The two nodes are
named after the host (``<host>`` and ``<host>b``, both reached at 127.0.0.1 on their own port), so
the first node of an allocation, Lightning's ``MASTER_ADDR``, resolves.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "srun")


def missing() -> str | None:
    """Why a cluster cannot start here (None: it can)."""
    if os.geteuid() != 0:
        return "Slurm's daemons need root (install: apt-get install -y slurm-wlm munge)"
    absent = [name for name in DAEMONS + CLIENTS if shutil.which(name, path=os.environ["PATH"] + ":/usr/sbin") is None]
    if absent:
        return f"Slurm is not installed ({', '.join(absent)} missing; apt-get install -y slurm-wlm munge)"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no 'munge' user (apt-get install -y munge)"
    return None


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


CONFIG = """ClusterName=unigen-test
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket,cred_expire=5
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool-%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=sched_interval=2,bf_interval=2
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
KillWait=5
MinJobAge=600
InactiveLimit=0
NodeName={host} NodeHostname={host} NodeAddr=127.0.0.1 Port={node_ports[0]} CPUs=2 State=UNKNOWN
NodeName={host}b NodeHostname={host} NodeAddr=127.0.0.1 Port={node_ports[1]} CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class Cluster:
    """A running localhost cluster; ``env`` is what a client (sbatch, squeue, ...) needs."""

    root: Path
    host: str = field(default_factory=socket.gethostname)
    daemons: list[subprocess.Popen] = field(default_factory=list)

    @property
    def nodes(self) -> list[str]:
        return [self.host, self.host + "b"]

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.root / "slurm.conf"), "PATH": os.environ["PATH"] + ":/usr/sbin"}

    def start(self, timeout: float = 60) -> Cluster:
        self.root.chmod(0o755)  # munged (as user munge) must reach its folder: root's temp folders are 0700
        munge_dir = self.root / "munge"
        munge_dir.mkdir(parents=True)
        key = munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        user = pwd.getpwnam("munge")
        for path in (munge_dir, key):
            os.chown(path, user.pw_uid, user.pw_gid)
        munge_dir.chmod(0o755)  # its socket must be reachable by every user
        ctld_port, *node_ports = free_ports(3)
        (self.root / "slurm.conf").write_text(CONFIG.format(host=self.host, root=self.root, ctld_port=ctld_port,
                                                            node_ports=node_ports))
        self._spawn(["setpriv", "--reuid=munge", "--regid=munge", "--init-groups", "munged", "-F",
                     f"--socket={munge_dir}/munge.socket", f"--key-file={key}", f"--pid-file={munge_dir}/munged.pid",
                     f"--log-file={munge_dir}/munged.log",
                     f"--seed-file={munge_dir}/munged.seed"])
        self._wait(lambda: (munge_dir / "munge.socket").exists(), timeout, "munged's socket")
        self._spawn(["slurmctld", "-D", "-i"])
        for name in self.nodes:
            self._spawn(["slurmd", "-D", "-N", name])
        self._wait(self._idle, timeout, "two idle nodes")
        return self

    def _spawn(self, argv: list[str]) -> None:
        name = next(a for a in argv if a in DAEMONS)
        log = open(self.root / f"{name}-{len(self.daemons)}.out", "wb")
        self.daemons.append(subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def _idle(self) -> bool:
        for daemon in self.daemons:
            if daemon.poll() is not None:
                raise RuntimeError(f"{daemon.args[0]} exited ({daemon.returncode}); logs under {self.root}")
        done = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=self.env, capture_output=True, text=True)
        return done.returncode == 0 and done.stdout.split() == ["idle", "idle"]

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.time() + timeout
        while not ready():
            if time.time() > deadline:
                raise TimeoutError(f"Slurm test cluster: no {what} after {timeout:.0f} s; logs under {self.root}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop every daemon by its PID (SIGTERM, then SIGKILL)."""
        for daemon in reversed(self.daemons):
            daemon.terminate()
        for daemon in reversed(self.daemons):
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()

    def run(self, *argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        """A client command's stdout (raises with its stderr on failure)."""
        done = subprocess.run(list(argv), env={**self.env, **(env or {})}, cwd=cwd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def sbatch(self, script: str | Path, *args: str, cwd: Path, env: dict[str, str] | None = None,
               options: tuple[str, ...] = ()) -> int:
        """Submit ``script`` (with sbatch ``options`` before it and ``args`` after it); returns the job id."""
        out = self.run("sbatch", "--parsable", *options, str(script), *args, cwd=cwd, env=env)
        return int(out.strip().split(";")[0])

    def job(self, job_id: int) -> dict[str, str]:
        """``scontrol show job``'s fields of a job."""
        text = self.run("scontrol", "show", "job", "-o", str(job_id))
        return dict(item.split("=", 1) for item in text.split() if "=" in item)

    def wait(self, job_id: int, timeout: float = 300, states: tuple[str, ...] = ("COMPLETED",)) -> dict[str, str]:
        """Wait until the job ends; raises unless it ends in one of ``states``."""
        deadline = time.time() + timeout
        while True:
            info = self.job(job_id)
            state = info["JobState"]
            if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
                if state not in states:
                    raise RuntimeError(f"job {job_id} ended {state} (exit {info.get('ExitCode')}); "
                                       f"log {info.get('StdOut')}")
                return info
            if time.time() > deadline:
                self.run("scancel", str(job_id))
                raise TimeoutError(f"job {job_id} still {state} after {timeout:.0f} s; log {info.get('StdOut')}")
            time.sleep(0.5)
