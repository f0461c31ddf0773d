"""berthd's networks: bridges with NAT and published ports, as dockerd's libnetwork bridge
driver gives them.

One concern per module: netns.py makes and removes the named network namespaces berthd gives
containers (the runtime joins them by path, as containerd does with CNI); netlink.py holds every
pyroute2 call and sysctl write (the privileged kernel calls of this layer); ipam.py is the pure
address logic; firewall.py the iptables rules in berth's own chains; ports.py publishing;
bridge.py brings one network's bridge up and down; manager.py ties them to berthd's state.
"""
