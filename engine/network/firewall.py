"""iptables rules in berth's own chains. berthd makes BERTH (nat: the DNATs of published
ports), BERTH-POSTROUTING (nat: masquerade) and BERTH-FORWARD (filter: what may cross its
bridges); the only rules it puts elsewhere are one jump into each from the built-in chain, and
it removes chains and jumps when its last rule goes. Rules go in through one iptables-restore
--noflush per change (one process, not one per rule). The host's iptables picks the backend
(nf_tables on Debian 12), as dockerd's iptables calls do."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass

NAT, FILTER = "nat", "filter"
DNAT_CHAIN, POST_CHAIN, FORWARD_CHAIN = "BERTH", "BERTH-POSTROUTING", "BERTH-FORWARD"
CHAINS = ((NAT, DNAT_CHAIN), (NAT, POST_CHAIN), (FILTER, FORWARD_CHAIN))
# (table, built-in chain, match): the one jump per berth chain
JUMPS = (
    (NAT, "PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL"], DNAT_CHAIN),
    (NAT, "OUTPUT", ["-m", "addrtype", "--dst-type", "LOCAL"], DNAT_CHAIN),
    (NAT, "POSTROUTING", [], POST_CHAIN),
    (FILTER, "FORWARD", [], FORWARD_CHAIN),
)


@dataclass(frozen=True)
class Rule:
    table: str
    chain: str
    spec: tuple[str, ...]
    first: bool = False     # inserted at the top (an internal network's drops come first)

    def line(self, op: str) -> str:
        if op == "-A" and self.first:
            op = "-I"
        return " ".join([op, self.chain, *self.spec])


class FirewallError(Exception):
    pass


MISSING = ("{tool} is not installed: berth's bridge networks need it for their NAT and "
           "forwarding rules (apt-get install iptables); --network none and host work without")


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, **kwargs)
    except FileNotFoundError:
        raise FirewallError(MISSING.format(tool=argv[0])) from None


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = _run(["iptables", "-w", *args])
    if check and r.returncode != 0:
        raise FirewallError(f"iptables {' '.join(args)}: {r.stderr.strip()}")
    return r


def _chain_exists(table: str, chain: str) -> bool:
    return _iptables("-t", table, "-S", chain, check=False).returncode == 0


def ensure_chains() -> None:
    """berth's chains and the jumps into them, each made when missing."""
    for table, chain in CHAINS:
        if not _chain_exists(table, chain):
            _iptables("-t", table, "-N", chain)
    for table, builtin, match, target in JUMPS:
        rule = ["-t", table, builtin, *match, "-j", target]
        if _iptables(rule[0], rule[1], "-C", *rule[2:], check=False).returncode != 0:
            _iptables(rule[0], rule[1], "-I", *rule[2:])


def remove_chains_if_unused() -> None:
    """Jumps and chains go once no berth rule is left in any chain (another berthd may still
    have rules in them: then they stay)."""
    for table, chain in CHAINS:
        r = _iptables("-t", table, "-S", chain, check=False)
        if r.returncode == 0 and any(ln.startswith("-A") for ln in r.stdout.splitlines()):
            return
    for table, builtin, match, target in JUMPS:
        while _iptables("-t", table, "-D", builtin, *match, "-j", target,
                        check=False).returncode == 0:
            pass
    for table, chain in CHAINS:
        if _chain_exists(table, chain):
            _iptables("-t", table, "-X", chain, check=False)


def _restore(rules: list[Rule], op: str) -> None:
    text = ""
    for table in (NAT, FILTER):
        lines = [r.line(op) for r in rules if r.table == table]
        if lines:
            text += f"*{table}\n" + "\n".join(lines) + "\nCOMMIT\n"
    if not text:
        return
    r = _run(["iptables-restore", "-w", "--noflush"], input=text)
    if r.returncode != 0:
        raise FirewallError(f"iptables-restore: {r.stderr.strip()}")


def add(rules: list[Rule]) -> None:
    ensure_chains()
    _restore(rules, "-A")


def delete(rules: list[Rule]) -> None:
    """Each rule deleted on its own, so that one already gone does not keep the others."""
    for rule in rules:
        _iptables("-t", rule.table, "-D", rule.chain, *rule.spec, check=False)


def delete_all(rules: list[Rule]) -> None:
    """Many rules in one process; when that fails (one was gone), one by one."""
    try:
        _restore(rules, "-D")
    except FirewallError:
        delete(rules)


def network_rules(bridge: str, subnet: str, internal: bool) -> list[Rule]:
    """A bridge's rules: containers reach each other; unless internal, they get out
    (masqueraded) and replies come back; the host reaches them from its loopback (the DNAT of
    127.0.0.1 leaves with a loopback source, masqueraded to the bridge's address)."""
    rules = [Rule(FILTER, FORWARD_CHAIN, ("-i", bridge, "-o", bridge, "-j", "ACCEPT"))]
    if internal:
        # before every other network's accepts, so none lets traffic in or out of this one
        return [Rule(FILTER, FORWARD_CHAIN, ("-i", bridge, "!", "-o", bridge, "-j", "DROP"), True),
                Rule(FILTER, FORWARD_CHAIN, ("-o", bridge, "!", "-i", bridge, "-j", "DROP"), True),
                *rules]
    rules += [
        Rule(FILTER, FORWARD_CHAIN, ("-o", bridge, "-m", "conntrack", "--ctstate",
                                     "RELATED,ESTABLISHED", "-j", "ACCEPT")),
        Rule(FILTER, FORWARD_CHAIN, ("-i", bridge, "!", "-o", bridge, "-j", "ACCEPT")),
        Rule(NAT, POST_CHAIN, ("-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE")),
        Rule(NAT, POST_CHAIN, ("-o", bridge, "-m", "addrtype", "--src-type", "LOCAL",
                               "-j", "MASQUERADE")),
        # a container reaching a port published on the host that leads back into this bridge
        # (its own or a neighbour's): the reply would go straight back over the bridge, not
        # through the host's NAT, so the request leaves with the gateway's address
        Rule(NAT, POST_CHAIN, ("-o", bridge, "-s", subnet, "-m", "conntrack", "--ctstate",
                               "DNAT", "-j", "MASQUERADE")),
    ]
    return rules


def port_rules(bridge: str, proto: str, host_ip: str, host_port: int, container_ip: str,
               container_port: int) -> list[Rule]:
    """One published port: its DNAT (from outside and from the host itself) and the forward
    that lets it through to the container."""
    match = ("-d", f"{host_ip}/32") if host_ip not in ("", "0.0.0.0") else ()
    return [
        Rule(NAT, DNAT_CHAIN, (*match, "-p", proto, "-m", proto, "--dport", str(host_port),
                               "-j", "DNAT", "--to-destination",
                               f"{container_ip}:{container_port}")),
        Rule(FILTER, FORWARD_CHAIN, ("-d", f"{container_ip}/32", "!", "-i", bridge, "-o",
                                     bridge, "-p", proto, "-m", proto, "--dport",
                                     str(container_port), "-j", "ACCEPT")),
    ]
