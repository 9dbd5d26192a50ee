import Glibc

/// rtnetlink from Swift: links, addresses and routes (stage 11). Foundation-free.
public enum ClabNetlinkModule {}
