"""A small lab of network namespaces: hosts on one bridge, with loss and partitions.

Layout: one "switch" namespace holds a bridge; each host is a namespace joined to it by a veth
pair and given an address from 192.0.2.0/24 (TEST-NET-1, reserved for documentation: never
routed anywhere). The namespaces have no route out, so nothing a test sends leaves them.
Faults are iptables rules inside a host's namespace: ``-m statistic`` drops for loss (this
kernel has no netem qdisc), a DROP of everything for a partition.

Every namespace is named with a prefix unique to the lab, and `NetLab.close` deletes them all
(which also removes their veths and rules) after killing the processes the lab started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

SUBNET = "192.0.2"


def unavailable_reason() -> str | None:
    """Why the lab cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (make test-netns installs iptables)"
    probe = f"mlprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    try:
        rule = _run_in(probe, ["iptables", "-L", "INPUT", "-n"], check=False)
        if rule.returncode != 0:
            return f"iptables does not work in a namespace: {rule.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _run(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=30)


def _run_in(
    namespace: str, argv: list[str], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return _run(["ip", "netns", "exec", namespace, *argv], check=check)


@dataclass(frozen=True, slots=True)
class Host:
    """One host of the lab: its namespace, interface and address."""

    name: str
    namespace: str
    interface: str
    address: str


class NetLab:
    """Creates hosts on a private bridge; `close` removes everything it made."""

    def __init__(self, hosts: int) -> None:
        self.prefix = f"ml{os.getpid()}"
        self.switch = f"{self.prefix}sw"
        self.hosts: list[Host] = []
        self._namespaces: list[str] = []
        try:
            self._add_namespace(self.switch)
            _run(["ip", "-n", self.switch, "link", "add", "br0", "type", "bridge"])
            _run(["ip", "-n", self.switch, "link", "set", "br0", "up"])
            for index in range(1, hosts + 1):
                self.hosts.append(self._add_host(index))
        except BaseException:
            self.close()
            raise

    def _add_namespace(self, name: str) -> None:
        _run(["ip", "netns", "add", name])
        self._namespaces.append(name)
        _run(["ip", "-n", name, "link", "set", "lo", "up"])

    def _add_host(self, index: int) -> Host:
        namespace = f"{self.prefix}h{index}"
        self._add_namespace(namespace)
        interface, port = f"veth{index}", f"port{index}"
        veth = ["veth", "peer", "name", port, "netns", self.switch]
        _run(["ip", "link", "add", interface, "netns", namespace, "type", *veth])
        address = f"{SUBNET}.{index}"
        _run(["ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", interface])
        _run(["ip", "-n", namespace, "link", "set", interface, "up"])
        _run(["ip", "-n", self.switch, "link", "set", port, "master", "br0"])
        _run(["ip", "-n", self.switch, "link", "set", port, "up"])
        return Host(f"h{index}", namespace, interface, address)

    def command(self, host: Host, argv: list[str]) -> list[str]:
        """The argv that runs ``argv`` inside ``host``'s namespace."""
        return ["ip", "netns", "exec", host.namespace, *argv]

    def loss(self, host: Host, probability: float) -> None:
        """Drop each packet in and out of ``host`` with ``probability``."""
        for chain in ("INPUT", "OUTPUT"):
            side = "-i" if chain == "INPUT" else "-o"
            sample = ["-m", "statistic", "--mode", "random", "--probability", str(probability)]
            _run_in(
                host.namespace,
                ["iptables", "-A", chain, side, host.interface, *sample, "-j", "DROP"],
            )

    def partition(self, host: Host) -> None:
        """Cut ``host`` off: every packet in and out of its interface is dropped."""
        _run_in(host.namespace, ["iptables", "-A", "INPUT", "-i", host.interface, "-j", "DROP"])
        _run_in(host.namespace, ["iptables", "-A", "OUTPUT", "-o", host.interface, "-j", "DROP"])

    def dropped(self, host: Host) -> int:
        """Packets the fault rules of ``host`` have dropped so far."""
        total = 0
        for chain in ("INPUT", "OUTPUT"):
            listing = _run_in(host.namespace, ["iptables", "-L", chain, "-v", "-n", "-x"]).stdout
            for line in listing.splitlines():
                fields = line.split()
                if len(fields) > 2 and fields[2] == "DROP":
                    total += int(fields[0])
        return total

    def heal(self, host: Host) -> None:
        """Remove every fault rule of ``host``."""
        _run_in(host.namespace, ["iptables", "-F", "INPUT"])
        _run_in(host.namespace, ["iptables", "-F", "OUTPUT"])

    def leftovers(self) -> list[str]:
        """Namespaces of this lab that still exist (empty after `close`)."""
        listed = _run(["ip", "netns", "list"]).stdout.split()
        return [name for name in listed if name.startswith(self.prefix)]

    def close(self) -> None:
        """Delete every namespace the lab made (their veths and rules go with them)."""
        for name in reversed(self._namespaces):
            # Processes still inside keep a namespace's interfaces alive: kill them first.
            pids = _run(["ip", "netns", "pids", name], check=False).stdout.split()
            for pid in pids:
                _run(["kill", "-9", pid], check=False)
            _run(["ip", "netns", "del", name], check=False)
        self._namespaces.clear()
