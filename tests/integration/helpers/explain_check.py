"""Reads explain's --json output for tests/integration/direct.sh.

    explain_check.py RESPONSE            prints job=STATE|EXIT|SIGNAL|REASON|STDOUT|EXPECTED_START|SOURCE
    explain_check.py RESPONSE1 RESPONSE2 also prints same_error=yes|no (both not ok with the same code and message)

The contract (README, docs/PROTOCOL.md): "job" holds exactly these seven
keys, null for what Slurm does not know.
"""
import json
import sys

KEYS = ("state", "exit_code", "signal", "reason", "stdout", "expected_start", "source")


def job_line(response):
    job = response.get("job")
    if not isinstance(job, dict):
        return "job=(no job object)"
    if set(job) != set(KEYS):
        return "job=(keys %s)" % sorted(job)
    return "job=" + "|".join(str(job[k]) for k in KEYS)


def main(argv):
    first = json.loads(argv[1])
    print(job_line(first))
    if len(argv) > 2:
        second = json.loads(argv[2])
        same = (not first["ok"] and not second["ok"] and first["error"]["code"] == second["error"]["code"]
                # the messages name the job id asked about; all else must match
                and first["error"]["message"].replace(first["job_id"], "ID")
                == second["error"]["message"].replace(second["job_id"], "ID"))
        print("same_error=" + ("yes" if same else "no"))
        if not same:
            print("first: %s\nsecond: %s" % (first.get("error"), second.get("error")), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
