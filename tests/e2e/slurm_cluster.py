"""A real single-node Slurm cluster for the end-to-end tests.

SlurmCluster().start() creates a temporary directory with a fresh munge key,
starts munged on its own socket, writes a slurm.conf (this machine's hostname
as both controller and node, linuxproc process tracking, no task plugin,
cons_tres, no accounting, state and spool directories in the temp dir, free
ports), starts slurmctld and slurmd, and waits until sinfo reports the node
idle. stop() stops everything start() started (also after a failed start).
Every Slurm command run through env() talks to this cluster (SLURM_CONF).

The daemons must run as root; unavailable() says, in words, why a cluster
cannot be started here (not root, a program missing), so that tests can
skip with a visible reason instead of silently.

Run as a script, it starts a cluster, prints its SLURM_CONF and waits for
Enter (handy for trying commands by hand)."""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel")
SLOW = float(os.environ.get("SPOOLRUN_TEST_SLOW", "1"))


def unavailable():
    """None when a cluster can be started here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "Slurm tests need root to start munged/slurmctld/slurmd"
    missing = [p for p in PROGRAMS if not shutil.which(p, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")]
    if missing:
        return "Slurm tests need " + ", ".join(missing) + " (Debian packages slurm-wlm, munge: scripts/install-deps.sh)"
    return None


def _which(p):
    return shutil.which(p, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def _die_with_parent():
    """Popen preexec_fn: the daemon gets SIGTERM when the test process dies,
    however it dies (a killed test run must not leave a cluster behind)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _free_ports(n):
    """n distinct TCP ports free right now (bound then released)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _machine():
    """(cpus, real_memory_mb) as slurmd itself sees this node."""
    out = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, timeout=30).stdout
    fields = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
    return int(fields.get("CPUs", os.cpu_count() or 1)), int(fields.get("RealMemory", 1024))


class SlurmCluster:
    def __init__(self, oversubscribe=8):
        self.dir = None
        self.conf = None
        self.procs = {}
        self.oversubscribe = oversubscribe
        self.hostname = socket.gethostname().split(".")[0]

    # -- environment for clients -------------------------------------------
    def env(self, base=None):
        e = dict(os.environ if base is None else base)
        e["SLURM_CONF"] = self.conf
        return e

    def run(self, *args, check=True, timeout=30):
        """Runs a Slurm client command against this cluster."""
        r = subprocess.run(list(args), capture_output=True, text=True, env=self.env(),
                           timeout=timeout * SLOW)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
        return r

    # -- life -----------------------------------------------------------------
    def start(self):
        reason = unavailable()
        if reason:
            raise RuntimeError(reason)
        try:
            self._start()
        except BaseException:
            log = self.logs()
            self.stop()
            raise RuntimeError("the test Slurm cluster did not start:\n" + log)
        return self

    def _start(self):
        self.dir = tempfile.mkdtemp(prefix="spoolrun-slurm-")
        os.chmod(self.dir, 0o755)
        d = self.dir
        for sub in ("munge", "state", "spool", "log"):
            os.mkdir(os.path.join(d, sub), 0o700)
        key = os.path.join(d, "munge", "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        self.munge_socket = os.path.join(d, "munge", "munge.socket")
        self.procs["munged"] = subprocess.Popen(
            [_which("munged"), "--foreground", "--force", "--socket", self.munge_socket,
             "--key-file", key, "--log-file", os.path.join(d, "log", "munged.log"),
             "--pid-file", os.path.join(d, "munge", "munged.pid"),
             "--seed-file", os.path.join(d, "munge", "munged.seed")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        self._wait(lambda: os.path.exists(self.munge_socket), 20, "munged's socket")
        self.ctld_port, self.slurmd_port = _free_ports(2)
        self.conf = os.path.join(d, "slurm.conf")
        self.write_conf()
        self.start_ctld()
        self.start_slurmd()
        self.wait_idle()

    def write_conf(self):
        d = self.dir
        cpus, mem = _machine()
        h = self.hostname
        with open(self.conf, "w") as f:
            f.write(f"""# written by tests/e2e/slurm_cluster.py
ClusterName=spoolruntest
SlurmctldHost={h}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
SlurmctldPort={self.ctld_port}
SlurmdPort={self.slurmd_port}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
MessageTimeout=10
NodeName={h} CPUs={cpus} RealMemory={mem} State=UNKNOWN
PartitionName=debug Nodes={h} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:{self.oversubscribe}
""")

    def start_ctld(self):
        """Starts slurmctld (again, after stop_ctld(): it recovers its state)."""
        self.procs["slurmctld"] = subprocess.Popen(
            [_which("slurmctld"), "-D", "-f", self.conf], env=self.env(),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        self._wait(lambda: self.run("scontrol", "ping", check=False).returncode == 0
                   and "UP" in self.run("scontrol", "ping", check=False).stdout, 30, "slurmctld to answer")

    def stop_ctld(self):
        """Stops slurmctld (the node and its jobs go on)."""
        self._stop("slurmctld")

    def start_slurmd(self):
        self.procs["slurmd"] = subprocess.Popen(
            [_which("slurmd"), "-D", "-f", self.conf], env=self.env(),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)

    def wait_idle(self, timeout=60):
        def idle():
            r = self.run("sinfo", "--noheader", "--Node", "--format=%t", check=False)
            return r.returncode == 0 and r.stdout.strip() in ("idle", "mix", "alloc")
        self._wait(idle, timeout, "the node to become idle")

    def jobs(self, states="all"):
        """[(job_id, state)] of every job the controller knows."""
        r = self.run("squeue", "--noheader", f"--states={states}", "--format=%i|%T")
        return [tuple(line.split("|", 1)) for line in r.stdout.split()]

    def _wait(self, cond, timeout, what):
        deadline = time.monotonic() + timeout * SLOW
        while not cond():
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited {p.returncode} while waiting for {what}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def _stop(self, name):
        p = self.procs.pop(name, None)
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def stop(self):
        """Cancels every job, stops every daemon start() started, removes
        the temp dir. Safe to call more than once and after a failed start."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            try:
                self.run("scancel", "--full", "--user=root", check=False, timeout=10)
            except Exception:
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            self._stop(name)
        # Batch steps outlive slurmd for a moment; they run in their own
        # sessions under slurmstepd, which exits once its step is gone.
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def logs(self):
        """The daemons' logs (tail), for a failure message."""
        out = []
        if self.dir:
            logdir = os.path.join(self.dir, "log")
            for name in sorted(os.listdir(logdir)) if os.path.isdir(logdir) else []:
                with open(os.path.join(logdir, name), errors="replace") as f:
                    out.append(f"== {name}\n" + "".join(f.readlines()[-30:]))
        return "\n".join(out)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    with SlurmCluster() as c:
        print(f"SLURM_CONF={c.conf}", flush=True)
        try:
            input("cluster up; Enter stops it\n")
        except EOFError:
            pass
