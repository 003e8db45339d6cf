"""SSH hosts in network namespaces for the reliability suites (root only), like tests/tools/netns_hosts.sh but
on their own prefix and subnet (10.232.<i>.0/24) so they never collide with other suites' hosts.

The hosts reach the emulator (bound to 127.0.0.1) through two relays (tests/tools/tcp_relay.py, one
process for all the ports): one in the namespace on its own 127.0.0.1:<port>, one on the host side of the
veth. TLS passes through untouched, so the emulator's certificate (issued for 127.0.0.1) still matches.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

RELAY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "tcp_relay.py")


class NetnsHosts(object):
    def __init__(self, workdir, count, ports, prefix="mcrel", subnet="10.232"):
        self.workdir = workdir
        self.count = count
        self.ports = ports
        self.prefix = prefix
        self.subnet = subnet
        self.processes = []
        self.hosts = {}

    def _run(self, *argv):
        subprocess.run(argv, check=True, timeout=60, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _spawn(self, argv):
        self.processes.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL,  # pylint: disable=consider-using-with
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def up(self):
        os.makedirs(self.workdir, exist_ok=True)
        os.makedirs("/run/sshd", exist_ok=True)
        self.down()
        key = os.path.join(self.workdir, "id_ed25519")
        if not os.path.exists(key):
            self._run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
        shutil.copy(key + ".pub", os.path.join(self.workdir, "authorized_keys"))
        ready = []
        for index in range(1, self.count + 1):
            ns, veth = "%s%d" % (self.prefix, index), "%sv%d" % (self.prefix, index)
            outer, inner = "%s.%d.1" % (self.subnet, index), "%s.%d.2" % (self.subnet, index)
            self._run("ip", "netns", "add", ns)
            self._run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self._run("ip", "addr", "add", outer + "/24", "dev", veth)
            self._run("ip", "link", "set", veth, "up")
            self._run("ip", "-n", ns, "addr", "add", inner + "/24", "dev", "eth0")
            self._run("ip", "-n", ns, "link", "set", "eth0", "up")
            self._run("ip", "-n", ns, "link", "set", "lo", "up")
            hostkey = os.path.join(self.workdir, "hostkey%d" % index)
            if not os.path.exists(hostkey):
                self._run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostkey)
            conf = os.path.join(self.workdir, "sshd%d.conf" % index)
            with open(conf, "w", encoding="utf-8") as handle:
                handle.write("\n".join([
                    "ListenAddress " + inner, "HostKey " + hostkey,
                    "PidFile %s/sshd%d.pid" % (self.workdir, index),
                    "AuthorizedKeysFile %s/authorized_keys" % self.workdir, "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no", "UsePAM no", "StrictModes no",
                    "Subsystem sftp /usr/lib/openssh/sftp-server", ""]))
            self._run("ip", "netns", "exec", ns, "/usr/sbin/sshd", "-f", conf,
                      "-E", os.path.join(self.workdir, "sshd%d.log" % index))
            sides = (("outer", [sys.executable, RELAY], outer, "127.0.0.1"),
                     ("inner", ["ip", "netns", "exec", ns, sys.executable, RELAY], "127.0.0.1", outer))
            for side, argv, listen, target in sides:
                ready.append(os.path.join(self.workdir, "relay%d-%s.ready" % (index, side)))
                if os.path.exists(ready[-1]):
                    os.unlink(ready[-1])
                self._spawn(argv + ["--ready-file", ready[-1], listen, target] + [str(p) for p in self.ports])
            self.hosts["ssh%d" % index] = {
                "ansible_host": inner, "ansible_user": "root", "ansible_connection": "ssh",
                "ansible_ssh_private_key_file": key,
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                "ansible_python_interpreter": sys.executable, "ansible_ssh_pipelining": True}
        deadline = time.monotonic() + 30
        while not all(os.path.exists(r) for r in ready) and time.monotonic() < deadline:
            time.sleep(0.05)
        for host in self.hosts.values():
            while time.monotonic() < deadline:
                probe = subprocess.run(["ssh", "-q", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                                        "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=2", "-i", key,
                                        "root@" + host["ansible_host"], "true"], check=False, timeout=10)
                if probe.returncode == 0:
                    break
                time.sleep(0.2)
        return self.hosts

    def down(self):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.processes = []
        for index in range(1, self.count + 1):
            pidfile = os.path.join(self.workdir, "sshd%d.pid" % index)
            if os.path.exists(pidfile):
                with open(pidfile, encoding="ascii") as handle:
                    try:
                        os.kill(int(handle.read().strip()), signal.SIGTERM)
                    except (ValueError, ProcessLookupError):
                        pass
                try:
                    os.unlink(pidfile)
                except FileNotFoundError:
                    pass  # sshd removes its own pid file when it exits on SIGTERM
            subprocess.run(["ip", "netns", "del", "%s%d" % (self.prefix, index)], check=False, timeout=30,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._gone("%sv%d" % (self.prefix, index))

    @staticmethod
    def _gone(veth):
        """Delete a veth left from an earlier host of this prefix and wait until the kernel has removed it:
        `ip netns del` returns before the namespace (and the veth pair in it) is destroyed, so the next
        module's `ip link add` of the same name could fail with "File exists"."""
        quiet = {"timeout": 30, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        subprocess.run(["ip", "link", "del", veth], check=False, **quiet)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if subprocess.run(["ip", "link", "show", veth], check=False, **quiet).returncode != 0:
                return
            time.sleep(0.1)
