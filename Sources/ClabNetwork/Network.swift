import ClabNetlink

/// Stage 11's host side: IPAM, networks, the firewall (nftables). Placeholder until filled.
public enum ClabNetworkModule {}
