// Kernel constants Swift's Glibc module does not import (it has no <linux/netlink.h>,
// <linux/rtnetlink.h> or <linux/if_link.h>). Values are the kernel's UAPI, which never changes
// them; each group names its header.

/// <linux/netlink.h>
public enum NL {
    public static let route: Int32 = 0  // NETLINK_ROUTE
    public static let solNetlink: Int32 = 270  // SOL_NETLINK
    public static let capAck: Int32 = 10  // NETLINK_CAP_ACK: errors do not echo the request
    public static let extAck: Int32 = 11  // NETLINK_EXT_ACK: errors carry the kernel's message

    // nlmsg_type of control messages
    public static let noop: UInt16 = 1  // NLMSG_NOOP
    public static let error: UInt16 = 2  // NLMSG_ERROR
    public static let done: UInt16 = 3  // NLMSG_DONE
    public static let overrun: UInt16 = 4  // NLMSG_OVERRUN

    // nlmsg_flags
    public static let request: UInt16 = 0x1  // NLM_F_REQUEST
    public static let multi: UInt16 = 0x2  // NLM_F_MULTI
    public static let ack: UInt16 = 0x4  // NLM_F_ACK
    public static let dumpInterrupted: UInt16 = 0x10  // NLM_F_DUMP_INTR
    public static let dump: UInt16 = 0x300  // NLM_F_DUMP (ROOT | MATCH)
    public static let excl: UInt16 = 0x200  // NLM_F_EXCL
    public static let create: UInt16 = 0x400  // NLM_F_CREATE
    // flags of an NLMSG_ERROR
    public static let capped: UInt16 = 0x100  // NLM_F_CAPPED: the echoed request is only its header
    public static let ackTLVs: UInt16 = 0x200  // NLM_F_ACK_TLVS: extended-ack attributes follow

    public static let errAttrMsg: UInt16 = 1  // NLMSGERR_ATTR_MSG

    public static let headerSize = 16  // sizeof(struct nlmsghdr)
    public static let nestedFlag: UInt16 = 0x8000  // NLA_F_NESTED
    public static let typeMask: UInt16 = 0x3fff  // NLA_TYPE_MASK
}

/// <linux/rtnetlink.h>
public enum RTM {
    public static let newLink: UInt16 = 16
    public static let delLink: UInt16 = 17
    public static let getLink: UInt16 = 18
    public static let setLink: UInt16 = 19
    public static let newAddr: UInt16 = 20
    public static let delAddr: UInt16 = 21
    public static let getAddr: UInt16 = 22
    public static let newRoute: UInt16 = 24
    public static let delRoute: UInt16 = 25
    public static let getRoute: UInt16 = 26

    public static func name(_ type: UInt16) -> String {
        switch type {
        case newLink: "RTM_NEWLINK"
        case delLink: "RTM_DELLINK"
        case getLink: "RTM_GETLINK"
        case setLink: "RTM_SETLINK"
        case newAddr: "RTM_NEWADDR"
        case delAddr: "RTM_DELADDR"
        case getAddr: "RTM_GETADDR"
        case newRoute: "RTM_NEWROUTE"
        case delRoute: "RTM_DELROUTE"
        case getRoute: "RTM_GETROUTE"
        default: "RTM_\(type)"
        }
    }

    // struct rtattr types of an rtmsg (enum rtattr_type_t)
    public static let dst: UInt16 = 1  // RTA_DST
    public static let oif: UInt16 = 4  // RTA_OIF
    public static let gateway: UInt16 = 5  // RTA_GATEWAY
    public static let table: UInt16 = 15  // RTA_TABLE

    public static let tableMain: UInt8 = 254  // RT_TABLE_MAIN
    public static let protoBoot: UInt8 = 3  // RTPROT_BOOT, what `ip route add` uses
    public static let scopeUniverse: UInt8 = 0  // RT_SCOPE_UNIVERSE
    public static let scopeLink: UInt8 = 253  // RT_SCOPE_LINK
    public static let unicast: UInt8 = 1  // RTN_UNICAST

    // ifaddrmsg attributes (<linux/if_addr.h>)
    public static let ifaAddress: UInt16 = 1  // IFA_ADDRESS
    public static let ifaLocal: UInt16 = 2  // IFA_LOCAL
    public static let ifaBroadcast: UInt16 = 4  // IFA_BROADCAST

    public static let ifinfomsgSize = 16
    public static let ifaddrmsgSize = 8
    public static let rtmsgSize = 12
}

/// <linux/if_link.h>, <linux/veth.h>, <linux/if.h>
public enum IFLA {
    public static let address: UInt16 = 1  // IFLA_ADDRESS (the link-layer address)
    public static let ifname: UInt16 = 3  // IFLA_IFNAME
    public static let mtu: UInt16 = 4  // IFLA_MTU
    public static let master: UInt16 = 10  // IFLA_MASTER
    public static let linkinfo: UInt16 = 18  // IFLA_LINKINFO
    public static let netNSFD: UInt16 = 28  // IFLA_NET_NS_FD
    public static let extMask: UInt16 = 29  // IFLA_EXT_MASK

    public static let infoKind: UInt16 = 1  // IFLA_INFO_KIND
    public static let infoData: UInt16 = 2  // IFLA_INFO_DATA

    public static let vethInfoPeer: UInt16 = 1  // VETH_INFO_PEER

    public static let vxlanID: UInt16 = 1  // IFLA_VXLAN_ID
    public static let vxlanGroup: UInt16 = 2  // IFLA_VXLAN_GROUP (the remote, unicast or multicast)
    public static let vxlanLink: UInt16 = 3  // IFLA_VXLAN_LINK
    public static let vxlanLocal: UInt16 = 4  // IFLA_VXLAN_LOCAL
    public static let vxlanLearning: UInt16 = 7  // IFLA_VXLAN_LEARNING (u8)
    public static let vxlanPort: UInt16 = 15  // IFLA_VXLAN_PORT (network byte order)

    // IFLA_EXT_MASK bits: no VF list, no statistics (replies shrink from ~1.5 KiB to ~0.6)
    public static let filterVF: UInt32 = 1  // RTEXT_FILTER_VF
    public static let filterSkipStats: UInt32 = 1 << 3  // RTEXT_FILTER_SKIP_STATS

    public static let up: UInt32 = 0x1  // IFF_UP
}
