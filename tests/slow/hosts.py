"""Test hosts that share nothing but a network: one Linux network namespace per host.

Each host gets its own namespace (`ip netns add`), with loopback up and one end of a veth pair;
the other ends sit on a bridge in a switch namespace, so the hosts reach each other only by
address, on a private /24. The test process itself stays in the machine's namespace and joins
the same switch as a client (the operator's laptop), to ask the Prefect API and the store what
happened. Commands run on a host through `ip netns exec` and `unshare --uts`, so each one also
has its own hostname. Names carry a random token, so parallel sessions never collide, and
`Network.close()` deletes everything it made, also after a failure halfway through building.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.system_deps import require_root, require_system

IP = "/sbin/ip"


def _ip(*args: str) -> str:
    done = subprocess.run([IP, *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Host:
    name: str  # its hostname, e.g. "worker-a"
    namespace: str
    address: str

    def command(self, argv: list[str]) -> list[str]:
        """`argv` as run on this host: in its network namespace, under its own hostname."""
        set_name = 'hostname "$0" && exec "$@"'
        return [IP, "netns", "exec", self.namespace, "unshare", "--uts", "--",
                "sh", "-c", set_name, self.name, *argv]  # fmt: skip

    def pids(self) -> list[int]:
        """Every process that runs in this host's network namespace."""
        out = subprocess.run(
            [IP, "netns", "pids", self.namespace], capture_output=True, text=True, check=False
        ).stdout
        return [int(pid) for pid in out.split()]


@dataclass
class Network:
    """Hosts on one switch. Build with `network(...)`; `close()` undoes everything."""

    token: str = field(default_factory=lambda: secrets.token_hex(3))
    subnet: ipaddress.IPv4Network = field(default_factory=lambda: _free_subnet())
    hosts: dict[str, Host] = field(default_factory=dict)
    client_address: str = ""
    _namespaces: list[str] = field(default_factory=list)
    _links: list[str] = field(default_factory=list)

    @property
    def switch(self) -> str:
        return f"llms-{self.token}-switch"

    def _address(self, index: int) -> str:
        return str(self.subnet.network_address + index)

    def _link_names(self, index: int) -> tuple[str, str]:
        """The two ends of host `index`'s cable (kernel interface names: 15 characters)."""
        return f"lh{self.token}{index}", f"ls{self.token}{index}"

    def build(self, names: list[str]) -> None:
        _ip("netns", "add", self.switch)
        self._namespaces.append(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        # The client (this process, in the machine's namespace) gets .1, the hosts .2 onwards.
        client_end, switch_end = self._link_names(0)
        self._cable(client_end, switch_end, namespace=None)
        self.client_address = self._address(1)
        _ip("addr", "add", f"{self.client_address}/{self.subnet.prefixlen}", "dev", client_end)
        _ip("link", "set", client_end, "up")
        for index, name in enumerate(names, start=1):
            namespace = f"llms-{self.token}-{name}"
            _ip("netns", "add", namespace)
            self._namespaces.append(namespace)
            _ip("-n", namespace, "link", "set", "lo", "up")
            host_end, switch_end = self._link_names(index)
            self._cable(host_end, switch_end, namespace=namespace)
            address = self._address(index + 1)
            prefix = f"{address}/{self.subnet.prefixlen}"
            _ip("-n", namespace, "addr", "add", prefix, "dev", host_end)
            _ip("-n", namespace, "link", "set", host_end, "up")
            self.hosts[name] = Host(name, namespace, address)

    def _cable(self, host_end: str, switch_end: str, namespace: str | None) -> None:
        """A veth pair from a host (None: this machine's namespace) to the switch's bridge."""
        _ip("link", "add", host_end, "type", "veth", "peer", "name", switch_end)
        self._links.append(host_end)
        _ip("link", "set", switch_end, "netns", self.switch)
        if namespace is not None:
            _ip("link", "set", host_end, "netns", namespace)
        _ip("-n", self.switch, "link", "set", switch_end, "master", "br0")
        _ip("-n", self.switch, "link", "set", switch_end, "up")

    def close(self) -> None:
        """Kill what still runs on the hosts, then delete the namespaces and cables."""
        hosts = list(self.hosts.values())
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = [pid for host in hosts for pid in host.pids()]
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 10
            while pids and time.monotonic() < deadline and any(h.pids() for h in hosts):
                time.sleep(0.2)
        for namespace in reversed(self._namespaces):
            subprocess.run([IP, "netns", "del", namespace], capture_output=True, check=False)
        for link in self._links:  # gone with their peers already, unless building failed
            subprocess.run([IP, "link", "del", link], capture_output=True, check=False)
        self._namespaces.clear()
        self._links.clear()


def _free_subnet() -> ipaddress.IPv4Network:
    """A 10.x.y.0/24 that no interface of this machine uses."""
    used = [
        ipaddress.ip_interface(word).network
        for line in _ip("-o", "-4", "addr", "show").splitlines()
        for word in line.split()
        if "/" in word and word[0].isdigit()
    ]
    while True:
        candidate = ipaddress.IPv4Network(
            f"10.{secrets.randbelow(200) + 50}.{secrets.randbelow(256)}.0/24"
        )
        if not any(candidate.overlaps(net) for net in used):
            return candidate


@contextlib.contextmanager
def network(names: list[str]) -> Iterator[Network]:
    """Hosts called `names` on one switch, with this process as a client; removed on exit."""
    require_system("iproute2")
    require_root("network namespaces (ip netns add) for the test hosts")
    net = Network()
    try:
        net.build(names)
        yield net
    finally:
        net.close()
