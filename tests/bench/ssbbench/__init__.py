"""Benchmark: slurm-ssh-bridge against a fresh ssh per call and OpenSSH
ControlMaster, in one run, against a running sandbox (tests/sandbox/sandbox.sh).

Normally started by tests/bench/run.sh, which brings the sandbox up and down:

    /usr/bin/python3 tests/bench/bench.py --sandbox-env DIR/sandbox.env \
        --bridge build/slurm-ssh-bridge --work WORKDIR [--json-out FILE]

Five paths run the same three wrappers as the same user on the same job:

  floor          sudo -n -u USER WRAPPER, locally, as the service account
  ssh            ssh -i KEY jupyterspawner@127.0.0.1 '... exec sudo -n -u USER -- WRAPPER'
  ssh-mux        the same with ControlMaster=auto + ControlPersist=60
  bridge-direct  slurm-ssh-bridge --mode direct (one libssh connection per call)
  bridge-daemon  slurm-ssh-bridge --mode daemon, served by `slurm-ssh-bridge serve`

Two operations: `query` (a RUNNING job; the answer must be exactly
"RUNNING node1") and `pair` (submit, which must print a job id, then cancel
that job through the same path; both must succeed). Every call is one
process started by this harness, as batchspawner starts one per command.

Standard library only (Debian's /usr/bin/python3). Must run as root.


Modules:

  measure       clocks, CPU and sshd-log meters, percentiles, one timed call
  floor_helper  the process that runs the `floor` path as the service account
  floor_client  the harness's side of it
  daemon        the `slurm-ssh-bridge serve` a run starts: status, CPU, memory, stop
  workload      the paths, the operations and their phases (class Bench)
  report        ratios, targets and the Markdown table from the JSON report
  cli           options, the run's order, the JSON report

The thousand-user benchmark (tests/bench/thousand.py, run.sh --thousand-users):

  thousand         options, the run's order (setup, user counts x status modes, storm), JSON
  slurmctl         sdiag counters, the poll jobs (sbatch --uid), jobs by name, cancel
  polling          the simulated users (one CLI query process per poll) and the window's meter
  storm            the spawn storm and its checks against Slurm
  thousand_report  table, ratios, targets
  plot             the curve (matplotlib)
"""
