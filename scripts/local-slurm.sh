#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, from Debian's packages (slurmctld, slurmd, munge).
#
#   scripts/local-slurm.sh start    install if missing, configure, start; waits until the node is idle
#   scripts/local-slurm.sh stop     stop the daemons (the configuration stays)
#   scripts/local-slurm.sh status   sinfo
#
# It exists to run fl's Slurm path for real on one machine (tests/curate/test_slurm_cluster.py and
# `executor.kind: slurm` recipes): one partition, `local`, holding this machine with its own CPU
# and memory counts. Needs root (it writes /etc/slurm and starts daemons). No accounting database:
# jobs are followed through squeue, which is all fl needs.
set -euo pipefail

PARTITION=local
CONF=/etc/slurm/slurm.conf

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
        return
    fi
    echo "local-slurm: installing slurm-wlm and munge from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
}

configure() {
    local node
    node=$(hostname -s)
    # `slurmd -C` prints this machine's NodeName line (CPUs, sockets, cores, RealMemory)
    local hardware
    hardware=$(slurmd -C | head -n 1 | sed "s/^NodeName=[^ ]*/NodeName=$node/")
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
    cat >"$CONF" <<EOF
# written by frontload's scripts/local-slurm.sh: one node, no accounting database
ClusterName=fl-local
SlurmctldHost=$node
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
MinJobAge=600
$hardware State=UNKNOWN
PartitionName=$PARTITION Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    chmod 0700 /etc/munge
    chmod 0400 /etc/munge/munge.key
}

start() {
    if [ "$(id -u)" != 0 ]; then
        echo "local-slurm: needs root (it writes /etc/slurm and starts slurmctld, slurmd, munged)" >&2
        exit 1
    fi
    install
    configure
    pgrep -x munged >/dev/null || runuser -u munge -- munged
    pgrep -x slurmctld >/dev/null || slurmctld
    pgrep -x slurmd >/dev/null || slurmd
    for _ in $(seq 60); do
        if sinfo -h -p "$PARTITION" -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
            scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
            echo "local-slurm: partition $PARTITION is up on $(hostname -s)" >&2
            return
        fi
        sleep 1
    done
    echo "local-slurm: the node did not come up; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
    exit 1
}

stop() {
    pkill -x slurmd || true
    pkill -x slurmctld || true
    pkill -x munged || true
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
status) sinfo ;;
*)
    echo "usage: $0 [start|stop|status]" >&2
    exit 2
    ;;
esac
