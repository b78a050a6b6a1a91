# shellcheck shell=bash disable=SC2154,SC2034
# daemon.sh case 7: submit and cancel, identical output on both paths, no libssh in a served call, protocol errors, the request log.
# Sourced by daemon.sh (its setup, helpers and variables are in effect);
# not a suite on its own.

# ------------------------------------------------------------------ 7
test_case "submit and cancel through the daemon; status counters reflect them"
if start_daemon c7 "$CONF"; then
    D7=$DAEMON_PID
    st0=$(bridge status 2>&1) || true
    cat >"$WORK/job7.sh" <<SCRIPT
#!/bin/bash
#SBATCH --output=/dev/null
#SBATCH --time=10
#SBATCH --job-name=ssb-daemon-7
echo "$MARKER" >/dev/null
env -0 > "$OUT/ssb-job-env.\$SLURM_JOB_ID"
sleep 600
SCRIPT
    expect_exit 0 env JUPYTERHUB_API_TOKEN="$TOKEN" JPY_API_TOKEN="$TOKEN" "$BRIDGE" --config "$CONF" --mode daemon --user "$U" submit <"$WORK/job7.sh"
    expect_match "$STDOUT" '^[0-9]+$' "submit prints the job id"
    expect_eq "$STDERR" "" "submit: stderr empty"
    J7=$STDOUT
    if [[ $J7 =~ ^[0-9]+$ ]]; then
        if wait_for 30 test -s "$OUT/ssb-job-env.$J7"; then
            got=$(tr '\0' '\n' <"$OUT/ssb-job-env.$J7" | grep '^JUPYTERHUB_API_TOKEN=' | head -n1)
            expect_eq "${got#JUPYTERHUB_API_TOKEN=}" "$TOKEN" "the token reached the job intact through the daemon"
        else
            fail "job $J7 did not start within 30 s"
        fi
        expect_exit 0 bridge --mode daemon --json --user "$U" query "$J7"
        expect_match "$STDOUT" '"path":"daemon"' "query --json: path daemon"
        expect_match "$STDOUT" '"job_id":"'"$J7"'"' "query --json: job_id"
        expect_exit 0 bridge --mode daemon --user "$U" cancel "$J7"
        wait_for 20 bash -c "[[ -z \$(squeue -h -j $J7 -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %T 2>/dev/null) ]]" ||
            fail "job $J7 still active 20 s after cancel through the daemon"
    fi
    # The same over the socket, with the token in the request's env.
    sub=$(printf '{"v":1,"id":"sub1","op":"submit","user":"bob.proj1","script":"#!/bin/bash\\n#SBATCH --output=/dev/null\\n#SBATCH --time=5\\necho %s >/dev/null\\nsleep 300\\n","env":{"JUPYTERHUB_API_TOKEN":"%s"}}' "$MARKER" "${TOKEN//\"/\\\"}")
    expect_exit 0 timeout -k 5 60 "$PY" "$HELPER" session "$SOCK" "sub=$sub"
    expect_eq "$(jget "${STDOUT#*"$TAB"}" '(d.get("id"), d["ok"])')" "('sub1', True)" "protocol submit: ok, same id"
    if [[ $STDOUT =~ \"job_id\":\"([0-9]+)\" ]]; then
        JS=${BASH_REMATCH[1]}
        expect_exit 0 timeout -k 5 60 "$PY" "$HELPER" session "$SOCK" "can={\"v\":1,\"id\":99,\"op\":\"cancel\",\"user\":\"bob.proj1\",\"job_id\":\"$JS\"}"
        expect_eq "$(jget "${STDOUT#*"$TAB"}" '(d.get("id"), d["ok"])')" "(99, True)" "protocol cancel: ok, same (numeric) id"
    else
        fail "protocol submit returned a job_id" "$STDOUT"
    fi
    st1=$(bridge status 2>&1) || true
    for op in submit cancel; do
        n0=$(jget "$st0" 'd["counters"].get("'"$op"'", {}).get("ok", 0)')
        n1=$(jget "$st1" 'd["counters"].get("'"$op"'", {}).get("ok", 0)')
        expect_eq "$n1" "$((n0 + 2))" "status: counters.$op.ok went up by 2 (CLI + socket)"
    done
    info "counters after: $(jget "$st1" 'd["counters"]')"
fi

test_case "output is identical whichever path served it"
if alive "${D7:-0}"; then
    expect_exit 0 bridge --mode daemon --user "$U" query "$JOB_ID"
    d_out=$STDOUT d_err=$STDERR
    expect_exit 0 bridge --mode direct --user "$U" query "$JOB_ID"
    expect_eq "$d_out|$d_err" "$STDOUT|$STDERR" "RUNNING job: same stdout and stderr"
    expect_exit 1 bridge --mode daemon --user "$U" query 999999
    d_out=$STDOUT d_err=$STDERR
    expect_exit 1 bridge --mode direct --user "$U" query 999999
    expect_eq "$d_out|$d_err" "$STDOUT|$STDERR" "unknown job: same exit status, stdout and stderr"
    expect_match "$d_err" 'slurm_load_jobs error: Invalid job id specified' "squeue's own error passes through the daemon"
    expect_exit 1 bridge --mode daemon --json --user "$U" query 999999
    expect_match "$STDOUT" '"code":"remote_failed"' "--json through the daemon: remote_failed"
    expect_match "$STDOUT" '"path":"daemon"' "--json through the daemon: path daemon"
    expect_exit 2 bridge --mode daemon --user 'a;b' query 1
    expect_match "$STDERR" '^slurm-ssh-bridge: invalid_user: ' "an invalid user is refused with exit 2"
else
    fail "the daemon of this case is not running"
fi

test_case "a call the daemon serves never loads libssh (CLI start-up); a direct call loads it"
if alive "${D7:-0}"; then
    # LD_DEBUG=files: the dynamic loader names every object it maps, and
    # whether it was a dependency or dlopen'd.
    expect_exit 0 env LD_DEBUG=files "$BRIDGE" --config "$CONF" --mode daemon --user "$U" query "$JOB_ID"
    expect_eq "$STDOUT" "RUNNING node1" "daemon: the answer"
    expect_no_match "$STDERR" 'file=libssh|file=libcrypto' "daemon: neither libssh nor libcrypto was mapped"
    expect_exit 0 env LD_DEBUG=files "$BRIDGE" --config "$CONF" --mode direct --user "$U" query "$JOB_ID"
    expect_eq "$STDOUT" "RUNNING node1" "direct: the answer"
    expect_match "$STDERR" 'file=libssh\.so\.[0-9]+ .*dynamically loaded by' "direct: libssh was dlopen'd"
else
    fail "the daemon of this case is not running"
fi

test_case "protocol errors get bad_request / invalid_user with the same id; the connection stays usable"
if alive "${D7:-0}"; then
    # shellcheck disable=SC2016 # $(id) is the hostile input
    expect_exit 0 timeout -k 5 90 "$PY" "$HELPER" session "$SOCK" \
        'malformed={"v":1,"id":"m1","op":"query",' \
        'notobject=[1,2,3]' \
        'unknown_op={"v":1,"id":"u1","op":"frobnicate","user":"alice.proj1","job_id":"1"}' \
        'bad_user={"v":1,"id":7,"op":"query","user":"a;b","job_id":"1"}' \
        'bad_user2={"v":1,"id":"u2","op":"query","user":"$(id)","job_id":"1"}' \
        'bad_job={"v":1,"id":"j1","op":"query","user":"alice.proj1","job_id":"1;$(id)"}' \
        'bad_job2={"v":1,"id":"j2","op":"cancel","user":"alice.proj1","job_id":"abc"}' \
        'bad_version={"v":99,"id":"v99","op":"query","user":"alice.proj1","job_id":"1"}' \
        "query={\"v\":1,\"id\":\"q1\",\"op\":\"query\",\"user\":\"alice.proj1\",\"job_id\":\"$JOB_ID\"}" \
        'status={"v":1,"id":"s1","op":"status"}'
    P=$STDOUT
    while IFS= read -r l; do info "$l"; done <<<"$P"
    pj() { local l; l=$(grep -m1 "^$1$TAB" <<<"$P") || true; echo "${l#*"$TAB"}"; }
    # expect_resp LABEL ID_REPR CODE: response to LABEL has that id and error code
    expect_resp() {
        local j
        j=$(pj "$1")
        expect_eq "$(jget "$j" 'repr(d.get("id"))') $(jget "$j" 'd["ok"]') $(jget "$j" 'd["error"]["code"]')" "$2 False $3" "$1: id $2, ok false, code $3"
    }
    expect_resp malformed None bad_request
    expect_resp notobject None bad_request
    expect_resp unknown_op "'u1'" bad_request
    expect_resp bad_user 7 invalid_user
    expect_resp bad_user2 "'u2'" invalid_user
    expect_resp bad_job "'j1'" invalid_job_id
    expect_resp bad_job2 "'j2'" invalid_job_id
    expect_resp bad_version "'v99'" bad_request
    j=$(pj query)
    expect_eq "$(jget "$j" '(d.get("id"), d["ok"], d.get("state"), d.get("host"), d.get("stdout"))')" "('q1', True, 'RUNNING', 'node1', 'RUNNING node1\\n')" "then a valid query on the same connection succeeds"
    j=$(pj status)
    expect_eq "$(jget "$j" '(d.get("id"), d["ok"], "connections" in d["status"])')" "('s1', True, True)" "status over the socket"
else
    fail "the daemon of this case is not running"
fi

test_case "the daemon logs one line per request and never a token or a script line"
if alive "${D7:-0}"; then
    stop_daemon "$D7"
    expect_eq "$DAEMON_RC" "0" "exit 0 on SIGTERM"
    expect_file_contains "$DAEMON_LOG" "op=submit .*user=$U.*path=daemon.*dur_ms=[0-9]+.*outcome=ok" "a submit line with op, user, path, duration, outcome"
    expect_file_contains "$DAEMON_LOG" "req=[^ ]+ peer_uid=0 op=cancel .*job=${J7:-x}( |$)" "a cancel line with request id, the client's uid and job id"
    expect_file_contains "$DAEMON_LOG" 'outcome=invalid_user' "refused requests are logged with their outcome"
else
    fail "the daemon of this case is not running"
fi
for log in "$WORK"/daemon-*.log; do
    expect_file_not_contains "$log" "$TOKEN_ID" "$(basename "$log") never holds the API token"
    expect_file_not_contains "$log" "$MARKER|#SBATCH|sleep 1200|sleep 600" "$(basename "$log") never holds a script line"
done
expect_file_not_contains "$SSHD_LOG" "$TOKEN_ID" "sshd's log never holds the API token"

