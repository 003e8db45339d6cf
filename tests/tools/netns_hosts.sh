#!/usr/bin/env bash
# SSH test hosts in network namespaces (no Docker here).
#   netns_hosts.sh up N WORKDIR    start N hosts ns1..nsN at 10.231.<i>.2, write WORKDIR/inventory.yml
#   netns_hosts.sh down WORKDIR    stop them and delete the namespaces
# The hosts share this machine's filesystem and Python, so modules run with the
# test venv's interpreter (PYTHON_FOR_HOSTS). Traffic stays on their own veths.
set -euo pipefail
cmd=${1:?up|down}
prefix=${NETNS_PREFIX:-mcns}

down() {
  local work=$1
  for pidfile in "$work"/sshd*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${prefix}[0-9]" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
  for sock in "$HOME"/.ansible/cp/*; do
    [ -S "$sock" ] && ssh -o ControlPath="$sock" -O exit x 2>/dev/null || true
  done
}

up() {
  local count=$1 work=$2 python=${PYTHON_FOR_HOSTS:-$(command -v python3)}
  [ -x /usr/sbin/sshd ] || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null; }
  mkdir -p "$work" /run/sshd
  down "$work"
  [ -f "$work/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$work/id_ed25519"
  cp "$work/id_ed25519.pub" "$work/authorized_keys"
  {
    echo "---"
    echo "netns_hosts:"
    echo "  hosts:"
  } > "$work/inventory.yml"
  for i in $(seq 1 "$count"); do
    local ns="${prefix}${i}" veth="${prefix}v${i}"
    ip link del "$veth" 2>/dev/null || true
    ip netns add "$ns"
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip addr add "10.231.$i.1/24" dev "$veth"; ip link set "$veth" up
    ip -n "$ns" addr add "10.231.$i.2/24" dev eth0
    ip -n "$ns" link set eth0 up; ip -n "$ns" link set lo up
    [ -f "$work/hostkey$i" ] || ssh-keygen -q -t ed25519 -N '' -f "$work/hostkey$i"
    printf '%s\n' "ListenAddress 10.231.$i.2" "HostKey $work/hostkey$i" "PidFile $work/sshd$i.pid" \
      "AuthorizedKeysFile $work/authorized_keys" "PermitRootLogin prohibit-password" \
      "PasswordAuthentication no" "UsePAM no" "StrictModes no" \
      "Subsystem sftp /usr/lib/openssh/sftp-server" > "$work/sshd$i.conf"
    ip netns exec "$ns" unshare --uts sh -c "hostname node$i; exec /usr/sbin/sshd -f $work/sshd$i.conf -E $work/sshd$i.log"
    cat >> "$work/inventory.yml" <<YAML
    ${ns}:
      ansible_host: 10.231.$i.2
      ansible_user: root
      ansible_connection: ssh
      ansible_ssh_private_key_file: $work/id_ed25519
      ansible_ssh_common_args: "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
      ansible_python_interpreter: $python
      ansible_ssh_pipelining: true
YAML
  done
  # wait until every sshd answers
  for i in $(seq 1 "$count"); do
    for _ in $(seq 1 50); do
      ssh -q -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=2 \
        -i "$work/id_ed25519" "root@10.231.$i.2" true 2>/dev/null && break
      sleep 0.1
    done
  done
}

case "$cmd" in
  up) up "${2:?N}" "${3:?WORKDIR}" ;;
  down) down "${2:?WORKDIR}" ;;
  *) echo "usage: $0 up N WORKDIR | down WORKDIR" >&2; exit 2 ;;
esac
