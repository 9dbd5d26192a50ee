import CLibBPF
import ClabSpec
import Foundation
import Glibc
import Testing

@testable import ClabTrace

/// Bytes from a hex dump ("38 00 00 00 10 00 ..."), as `strace -e write=FD` prints them.
private func hexBytes(_ dump: String) -> [UInt8] {
    dump.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt8($0, radix: 16) }
}

/// Netlink messages `ip` and `nft` really sent and received (captured with strace in a
/// throwaway network namespace), decoded.
@Suite("trace · netlink decoding")
struct TraceNetlinkDecoderTests {
    static func nr(_ name: String) -> Int32 { Int32(SyscallCatalog.number(name) ?? -1) }

    /// `ip link add br0 type bridge`.
    static let newBridge = hexBytes(
        """
        38 00 00 00 10 00 05 06 4c 7b 0f 6b 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        08 00 03 00 62 72 30 00 10 00 12 00 0a 00 01 00 62 72 69 64 67 65 00 00
        """)

    /// `ip link add v0 type veth peer name v1`.
    static let newVeth = hexBytes(
        """
        54 00 00 00 10 00 05 06 4c 7b 0f 6b 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        07 00 03 00 76 30 00 00 2c 00 12 00 08 00 01 00 76 65 74 68 20 00 02 00 1c 00 01 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 07 00 03 00 76 31 00 00
        """)

    /// `ip addr add 198.51.100.1/24 dev br0` (br0 is index 2).
    static let newAddress = hexBytes(
        """
        28 00 00 00 14 00 05 06 4c 7b 0f 6b 00 00 00 00 02 18 00 00 02 00 00 00 08 00 02 00 c6 33 64 01
        08 00 01 00 c6 33 64 01
        """)

    /// `ip route add default via 198.51.100.2`.
    static let defaultRoute = hexBytes(
        """
        24 00 00 00 18 00 05 06 54 7c 0f 6b 00 00 00 00 02 00 00 00 fe 03 00 01 00 00 00 00 08 00 05 00
        c6 33 64 02
        """)

    /// `ip link add x0 type vxlan id 42 remote 203.0.113.9 dstport 4789 dev br0`.
    static let newVXLAN = hexBytes(
        """
        64 00 00 00 10 00 05 06 54 7c 0f 6b 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        07 00 03 00 78 30 00 00 3c 00 12 00 09 00 01 00 76 78 6c 61 6e 00 00 00 2c 00 02 00 08 00 03 00
        02 00 00 00 08 00 01 00 2a 00 00 00 08 00 02 00 cb 00 71 09 05 00 07 00 01 00 00 00 06 00 0f 00
        12 b5 00 00
        """)

    /// The kernel's ACK of the new address: NLMSG_ERROR with error 0, the request capped.
    static let ack = hexBytes(
        """
        24 00 00 00 02 00 00 01 4c 7b 0f 6b 89 63 00 00 00 00 00 00 28 00 00 00 14 00 05 06 4c 7b 0f 6b
        00 00 00 00
        """)

    /// `ip link add y0 type nosuchkind`: EOPNOTSUPP, the request echoed, and the kernel's words.
    static let refusal = hexBytes(
        """
        68 00 00 00 02 00 00 02 54 7c 0f 6b 4f 03 00 00 a1 ff ff ff 3c 00 00 00 10 00 05 06 54 7c 0f 6b
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 07 00 03 00 79 30 00 00 14 00 12 00
        0e 00 01 00 6e 6f 73 75 63 68 6b 69 6e 64 00 00 18 00 01 00 55 6e 6b 6e 6f 77 6e 20 64 65 76 69
        63 65 20 74 79 70 65 00
        """)

    /// `nft -f` of `table ip clab { chain postrouting { type nat hook postrouting priority 100;
    /// ip saddr 198.51.100.0/24 oifname != "clab0" masquerade } }`: one batch.
    static let nftBatch = hexBytes(
        """
        14 00 00 00 10 00 01 00 00 00 00 00 00 00 00 00 00 00 00 0a 28 00 00 00 00 0a 01 00 01 00 00 00
        00 00 00 00 02 00 00 00 09 00 01 00 63 6c 61 62 00 00 00 00 08 00 02 00 00 00 00 00 4c 00 00 00
        03 0a 01 04 02 00 00 00 00 00 00 00 02 00 00 00 09 00 01 00 63 6c 61 62 00 00 00 00 10 00 03 00
        70 6f 73 74 72 6f 75 74 69 6e 67 00 08 00 07 00 6e 61 74 00 14 00 04 80 08 00 01 00 00 00 00 04
        08 00 02 00 00 00 00 64 04 01 00 00 06 0a 01 0c 03 00 00 00 00 00 00 00 02 00 00 00 09 00 01 00
        63 6c 61 62 00 00 00 00 10 00 02 00 70 6f 73 74 72 6f 75 74 69 6e 67 00 d4 00 04 80 34 00 01 80
        0c 00 01 00 70 61 79 6c 6f 61 64 00 24 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00 00 00 00 01
        08 00 03 00 00 00 00 0c 08 00 04 00 00 00 00 03 2c 00 01 80 08 00 01 00 63 6d 70 00 20 00 02 80
        08 00 01 00 00 00 00 01 08 00 02 00 00 00 00 00 0c 00 03 80 07 00 01 00 c6 33 64 00 24 00 01 80
        09 00 01 00 6d 65 74 61 00 00 00 00 14 00 02 80 08 00 02 00 00 00 00 07 08 00 01 00 00 00 00 01
        38 00 01 80 08 00 01 00 63 6d 70 00 2c 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00 00 00 00 01
        18 00 03 80 14 00 01 00 63 6c 61 62 30 00 00 00 00 00 00 00 00 00 00 00 14 00 01 80 09 00 01 00
        6d 61 73 71 00 00 00 00 04 00 02 80 14 00 00 00 11 00 01 00 04 00 00 00 00 00 00 00 00 00 00 0a
        """)

    static func route(_ bytes: [UInt8]) -> String {
        NetlinkDecoder.messages(bytes, proto: 0, expected: UInt64(bytes.count))
    }

    @Test func linksByKind() {
        #expect(Self.newBridge.count == 56 && Self.newVeth.count == 84)
        #expect(
            Self.route(Self.newBridge)
                == #"[RTM_NEWLINK{flags=NLM_F_REQUEST|NLM_F_ACK|NLM_F_EXCL|NLM_F_CREATE, ifname="br0", kind="bridge"}]"#
        )
        #expect(
            Self.route(Self.newVeth)
                == #"[RTM_NEWLINK{flags=NLM_F_REQUEST|NLM_F_ACK|NLM_F_EXCL|NLM_F_CREATE, ifname="v0", kind="veth", peer={ifname="v1"}}]"#
        )
        #expect(
            Self.route(Self.newVXLAN)
                == #"[RTM_NEWLINK{flags=NLM_F_REQUEST|NLM_F_ACK|NLM_F_EXCL|NLM_F_CREATE, ifname="x0", kind="vxlan", dev=2, id=42, group=203.0.113.9, dstport=4789}]"#
        )
    }

    @Test func addressesAndRoutes() {
        #expect(
            Self.route(Self.newAddress)
                == "[RTM_NEWADDR{flags=NLM_F_REQUEST|NLM_F_ACK|NLM_F_EXCL|NLM_F_CREATE, family=AF_INET, index=2, local=198.51.100.1/24}]"
        )
        #expect(
            Self.route(Self.defaultRoute)
                == "[RTM_NEWROUTE{flags=NLM_F_REQUEST|NLM_F_ACK|NLM_F_EXCL|NLM_F_CREATE, family=AF_INET, dst=default, gateway=198.51.100.2}]"
        )
    }

    @Test func acksAndRefusals() {
        #expect(Self.route(Self.ack) == "[NLMSG_ERROR{flags=NLM_F_CAPPED, error=0, msg=RTM_NEWADDR}]")
        #expect(
            Self.route(Self.refusal)
                == #"[NLMSG_ERROR{flags=NLM_F_ACK_TLVS, error=-EOPNOTSUPP, msg=RTM_NEWLINK, ext_ack="Unknown device type"}]"#
        )
    }

    @Test func severalMessagesInOneBufferAndCutOnes() {
        let two = Self.newBridge + Self.newAddress
        let text = Self.route(two)
        #expect(text.hasPrefix("[RTM_NEWLINK{") && text.contains(#"kind="bridge"}, RTM_NEWADDR{"#))
        // Cut inside the second message's attributes (the kernel side reads CLAB_NL_MAX bytes).
        let cut = NetlinkDecoder.messages(Array(two.prefix(56 + 28)), proto: 0, expected: UInt64(two.count))
        #expect(cut.hasSuffix(", family=AF_INET, index=2, prefixlen=24, ...}]"), "\(cut)")
        // Cut between messages: the list says there was more.
        let between = NetlinkDecoder.messages(Array(two.prefix(56)), proto: 0, expected: UInt64(two.count))
        #expect(between.hasSuffix(#"kind="bridge"}, ...]"#), "\(between)")
        // Garbage never traps: every prefix of every fixture decodes to something.
        for fixture in [Self.newVeth, Self.refusal, Self.nftBatch] {
            for n in 0...fixture.count {
                _ = NetlinkDecoder.messages(Array(fixture.prefix(n)), proto: 0, expected: UInt64(fixture.count))
                _ = NetlinkDecoder.messages(Array(fixture.prefix(n)), proto: 12, expected: UInt64(fixture.count))
            }
        }
        #expect(
            NetlinkDecoder.messages([8, 0, 0, 0] + [UInt8](repeating: 0, count: 12), proto: 0, expected: 16)
                == "[{nlmsg_len=8}]")
    }

    @Test func nftablesBatch() {
        #expect(Self.nftBatch.count == 416)
        let text = NetlinkDecoder.messages(Self.nftBatch, proto: 12, expected: UInt64(Self.nftBatch.count))
        #expect(
            text == "[NFNL_MSG_BATCH_BEGIN{flags=NLM_F_REQUEST, res_id=NFNL_SUBSYS_NFTABLES}, "
                + #"NFT_MSG_NEWTABLE{flags=NLM_F_REQUEST, family=ip, name="clab"}, "#
                + #"NFT_MSG_NEWCHAIN{flags=NLM_F_REQUEST|NLM_F_CREATE, family=ip, table="clab", name="postrouting", type="nat", hook=postrouting, priority=100}, "#
                + #"NFT_MSG_NEWRULE{flags=NLM_F_REQUEST|NLM_F_CREATE|NLM_F_APPEND, family=ip, table="clab", chain="postrouting", exprs=[payload, cmp, meta, cmp, masq]}, "#
                + "NFNL_MSG_BATCH_END{flags=NLM_F_REQUEST, res_id=NFNL_SUBSYS_NFTABLES}]")
    }

    /// The whole line, for each call that carries netlink: sendto's buffer and address,
    /// sendmsg's iovec, what recvmsg received.
    @Test func syscallLines() {
        let nlAddress: [UInt8] = [16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        let sendto = Syscall(
            nr: Self.nr("sendto"), ret: 56, args: [3, 0x5000, 56, 0, 0x6000, 12],
            netlink: NetlinkCapture(proto: 0, bytes: Self.newBridge, address: nlAddress))
        #expect(
            Decoder.line(sendto, fdPath: { _ in "socket:AF_NETLINK" })
                == #"sendto(3<socket:AF_NETLINK>, [RTM_NEWLINK{flags=NLM_F_REQUEST|NLM_F_ACK|NLM_F_EXCL|NLM_F_CREATE, ifname="br0", kind="bridge"}], 56, 0, {sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12) = 56"#
        )
        let sendmsg = Syscall(
            nr: Self.nr("sendmsg"), ret: 40, args: [3, 0x7000, 0],
            netlink: NetlinkCapture(proto: 0, bytes: Self.newAddress, base: 0x5000))
        #expect(
            Decoder.line(sendmsg)
                == "sendmsg(3, {msg_iov=[{iov_base=[RTM_NEWADDR{flags=NLM_F_REQUEST|NLM_F_ACK|NLM_F_EXCL|NLM_F_CREATE, family=AF_INET, index=2, local=198.51.100.1/24}], iov_len=40}], msg_iovlen=1}, 0) = 40"
        )
        // A peek with no buffer, then the real read of a 32 KiB buffer.
        let peek = Syscall(
            nr: Self.nr("recvmsg"), ret: 36, args: [3, 0x7000, 0x22],
            netlink: NetlinkCapture(proto: 0, bytes: [], bufferLength: 0, base: 0))
        #expect(Decoder.args(peek)[1] == "{msg_iov=[{iov_base=NULL, iov_len=0}], msg_iovlen=1}")
        #expect(Decoder.args(peek)[2] == "MSG_PEEK|MSG_TRUNC")
        let recv = Syscall(
            nr: Self.nr("recvmsg"), ret: 36, args: [3, 0x7000, 0],
            netlink: NetlinkCapture(proto: 0, bytes: Self.ack, bufferLength: 32768))
        #expect(
            Decoder.args(recv)[1]
                == "{msg_iov=[{iov_base=[NLMSG_ERROR{flags=NLM_F_CAPPED, error=0, msg=RTM_NEWADDR}], iov_len=32768}], msg_iovlen=1}"
        )
        // Nothing received: the buffer's address.
        let again = Syscall(
            nr: Self.nr("recvmsg"), ret: -11, args: [3, 0x7000, 0],
            netlink: NetlinkCapture(proto: 0, bytes: [], bufferLength: 32768, base: 0x5000))
        #expect(Decoder.args(again)[1] == "{msg_iov=[{iov_base=0x5000, iov_len=32768}], msg_iovlen=1}")
        // Not a netlink socket: sendto's buffer as before, sendmsg's msghdr a pointer.
        let plain = Syscall(
            nr: Self.nr("sendto"), ret: 2, args: [3, 0x5000, 2, 0x4000, 0, 0], strings: [[0x68, 0x69]])
        #expect(Decoder.line(plain) == #"sendto(3, "hi", 2, MSG_NOSIGNAL, NULL, 0) = 2"#)
        #expect(
            Decoder.line(Syscall(nr: Self.nr("sendmsg"), ret: 2, args: [3, 0x7000, 0])) == "sendmsg(3, 0x7000, 0) = 2")
        let socket = Syscall(nr: Self.nr("socket"), ret: 3, args: [16, 3, 12])
        #expect(Decoder.line(socket) == "socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER) = 3")
        #expect(
            Decoder.line(Syscall(nr: Self.nr("socket"), ret: 3, args: [2, 2, 17]))
                == "socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP) = 3")
    }

    /// The record as the BPF program writes it parses into the capture.
    @Test func netlinkRecordsParseFromTheSharedLayout() {
        var event = clab_syscall_netlink_event()
        event.ev.kind = UInt16(CLAB_EV_SYSCALL.rawValue)
        event.ev.flags = UInt16(CLAB_F_NETLINK.rawValue)
        event.ev.nr = Self.nr("sendmsg")
        event.ev.ret = 40
        event.ev.args = (3, 0x7000, 0, 0, 0, 0)
        event.nl.len = UInt32(Self.newAddress.count)
        event.nl.buf_len = 40
        event.nl.base = 0x5000
        event.nl.iovlen = 1
        event.nl.protocol = 0
        withUnsafeMutableBytes(of: &event.nl.data) { $0.copyBytes(from: Self.newAddress) }
        let call = withUnsafeBytes(of: event) { raw -> Syscall? in
            guard let base = raw.baseAddress else { return nil }
            if case .syscall(let call) = RecordParser.parse(base, raw.count) { return call }
            return nil
        }
        #expect(call?.netlink?.bytes == Self.newAddress)
        #expect(call?.netlink?.iovlen == 1 && call?.netlink?.base == 0x5000)
        #expect(call.map { Decoder.args($0)[1].contains("local=198.51.100.1/24") } == true)
        // The data area holds a whole nftables batch of a few rules.
        #expect(Int(CLAB_NL_MAX) >= Self.nftBatch.count)
    }

    /// A stage's label comes from its marker, not from the call: clab's netlink traffic is
    /// stage 11's only inside `StageMark.host(11)`, and clab-init's netlink socket is stage 6's.
    @Test func stage11Labels() {
        let phases = Phases(stage: 11, command: ["sh"])
        let clab = TracedProcess(pid: 10, comm: "clab", nsPid: 10, nsLevel: 0, fds: [:], phase: .clab)
        let fds: [Int64: String] = [5: "socket:AF_NETLINK", 6: "/proc/42/ns/net", 7: "/proc/sys/net/ipv4/ip_forward"]
        func label(_ call: Syscall, _ p: TracedProcess) -> StageLabel? { phases.label(call, in: p, path: { fds[$0] }) }
        let send = Syscall(
            nr: Self.nr("sendmsg"), pid: 10, tid: 10, ret: 56, args: [5, 0x7000, 0],
            netlink: NetlinkCapture(proto: 0, bytes: Self.newBridge))
        #expect(label(send, clab) == StageLabel.clab)
        phases.mark(StageMark.stage(11).value, tid: 10, in: clab)
        #expect(label(send, clab)?.stage == 11)
        #expect(label(send, clab)?.title.hasPrefix("stage 11 · ") == true)
        #expect(label(send, clab)?.lesson == "clab lesson 11")
        // clab-init's are its markers': lo's socket is stage 6's, whatever its family.
        let initProcess = TracedProcess(pid: 11, comm: "clab-init", nsPid: 1, nsLevel: 1, fds: [:], phase: .initSetup)
        phases.mark(StageMark.stage(6).value, tid: initProcess.pid, in: initProcess)
        #expect(label(Syscall(nr: Self.nr("socket"), ret: 3, args: [2, 2, 0]), initProcess)?.stage == 6)
        #expect(label(Syscall(nr: Self.nr("socket"), ret: 4, args: [16, 3, 0]), initProcess)?.stage == 6)
        // The title comes from the stage catalogue once it has stage 11.
        #expect(StageLabel.stage(11).title.hasPrefix("stage 11 · "))
        #expect(StageLabel.stage(4).title == "stage 4 · mount namespace + pivot_root")
    }
}

/// Real `ip` and `nft` under `clab trace --host`, each inside a network namespace that
/// `unshare -n` makes and that goes away with it: nothing on the host changes.
@Suite("trace · netlink from real commands", tracerAvailable)
struct TraceNetlinkTests {
    func trace(_ command: [String]) throws -> (Output, JSONTrace) {
        let file = TestEnv.root + "/trace-nl-\(UUID().uuidString.prefix(8)).jsonl"
        let out = try runProcess([TestEnv.clab, "trace", "--host", "--json", file, "--"] + command)
        return (out, try JSONTrace(path: file))
    }

    /// The decoded netlink argument of each send (sendto's buffer, sendmsg's msghdr), in order.
    func sends(_ trace: JSONTrace) -> [String] {
        trace.syscalls.compactMap { call in
            guard let name = call["syscall"] as? String, name == "sendto" || name == "sendmsg",
                let args = call["args"] as? [String], args.count > 1
            else { return nil }
            return args[1]
        }
    }

    @Test func ipPlumbingDecodesInOrder() throws {
        let (out, trace) = try trace([
            "unshare", "-n", "sh", "-c",
            "ip link add br0 type bridge && ip link add v0 type veth peer name v1"
                + " && ip addr add 198.51.100.1/24 dev br0 && ip link set br0 up",
        ])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(trace.lost == 0)
        let sent = sends(trace)
        let create = "flags=NLM_F_REQUEST|NLM_F_ACK|NLM_F_EXCL|NLM_F_CREATE"
        let expected = [
            "RTM_NEWLINK{\(create), ifname=\"br0\", kind=\"bridge\"}",
            "RTM_NEWLINK{\(create), ifname=\"v0\", kind=\"veth\", peer={ifname=\"v1\"}}",
            "RTM_NEWADDR{\(create), family=AF_INET, index=",
            "local=198.51.100.1/24}",
            "ifi_flags=IFF_UP, ifi_change=IFF_UP}",
        ]
        var at = 0
        for want in expected {
            guard let hit = sent[at...].firstIndex(where: { $0.contains(want) }) else {
                Issue.record("not sent after #\(at): \(want)\nsent: \(sent.joined(separator: "\n"))")
                return
            }
            at = hit
        }
        // The kernel's answers are decoded too: the address was acknowledged.
        let received = trace.syscalls.filter { $0["syscall"] as? String == "recvmsg" }.compactMap {
            ($0["args"] as? [String])?[1]
        }
        #expect(received.contains { $0.contains("NLMSG_ERROR{flags=NLM_F_CAPPED, error=0, msg=RTM_NEWADDR}") })
        #expect(
            trace.syscalls.contains {
                $0["syscall"] as? String == "socket" && ($0["args"] as? [String])?.last == "NETLINK_ROUTE"
            })
        // All of it happened in the throwaway namespace.
        #expect(try runProcess(["/usr/sbin/ip", "link", "show", "v0"]).status != 0)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft")))
    func nftablesBatchDecodes() throws {
        let rules = TestEnv.root + "/trace-nft-\(UUID().uuidString.prefix(8)).nft"
        try """
        table ip clabtest {
          chain postrouting {
            type nat hook postrouting priority 100;
            ip saddr 198.51.100.0/24 masquerade
          }
        }

        """.write(toFile: rules, atomically: true, encoding: .utf8)
        let (out, trace) = try trace(["unshare", "-n", "nft", "-f", rules])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(trace.lost == 0)
        let batch = sends(trace).first { $0.contains("NFNL_MSG_BATCH_BEGIN") }
        let parts = [
            "NFNL_MSG_BATCH_BEGIN{flags=NLM_F_REQUEST, res_id=NFNL_SUBSYS_NFTABLES}",
            "NFT_MSG_NEWTABLE{flags=NLM_F_REQUEST, family=ip, name=\"clabtest\"}",
            "NFT_MSG_NEWCHAIN{flags=NLM_F_REQUEST|NLM_F_CREATE, family=ip, table=\"clabtest\", name=\"postrouting\", type=\"nat\", hook=postrouting, priority=100}",
            "NFT_MSG_NEWRULE{flags=NLM_F_REQUEST|NLM_F_CREATE|NLM_F_APPEND, family=ip, table=\"clabtest\", chain=\"postrouting\", exprs=[payload, cmp, masq]}",
            "NFNL_MSG_BATCH_END",
        ]
        var from = batch?.startIndex
        for part in parts {
            guard let batch, let start = from, let range = batch.range(of: part, range: start..<batch.endIndex) else {
                Issue.record("batch lacks \(part): \(batch ?? "no batch sent")")
                return
            }
            from = range.upperBound
        }
    }

    /// The kernel side asks the fd table, not a record of socket() calls: a netlink socket
    /// dup'ed to another number and used by a forked child (another process, which never made a
    /// socket) is decoded too.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")))
    func aDupedNetlinkSocketInAChildIsDecoded() throws {
        let script = """
            import os, socket, struct
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            t = socket.socket(fileno=os.dup(s.fileno()))
            request = struct.pack('=LHHLL', 32, 18, 0x301, 7, 0) + bytes(16)  # RTM_GETLINK, dump
            pid = os.fork()
            if pid == 0:
                t.send(request)
                os._exit(0)
            os.waitpid(pid, 0)
            """
        let (out, trace) = try trace(["unshare", "-n", "/usr/bin/python3", "-c", script])
        #expect(out.status == 0, "\(out.stderr)")
        let parent = trace.syscalls.first { $0["syscall"] as? String == "socket" }?["pid"] as? Int
        let send = trace.syscalls.first { $0["syscall"] as? String == "sendto" && $0["ret"] as? Int == 32 }
        #expect((send?["args"] as? [String])?[1] == "[RTM_GETLINK{flags=NLM_F_REQUEST|NLM_F_DUMP}]")
        #expect(send?["pid"] as? Int != parent)
    }

    /// A unix socket's sends are not netlink: sendto's buffer quoted, sendmsg's msghdr with its
    /// iovec's bytes quoted. Only netlink sockets get the netlink record.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")))
    func otherSocketsAreNotNetlink() throws {
        let (out, trace) = try trace([
            "/usr/bin/python3", "-c",
            "import socket; a, b = socket.socketpair(); a.send(b'hello'); a.sendmsg([b'world']); b.recv(10)",
        ])
        #expect(out.status == 0, "\(out.stderr)")
        let sendto = trace.syscalls.first { $0["syscall"] as? String == "sendto" && $0["ret"] as? Int == 5 }
        #expect((sendto?["args"] as? [String])?[1] == "\"hello\"")
        let sendmsg = trace.syscalls.first { $0["syscall"] as? String == "sendmsg" }
        #expect(
            (sendmsg?["args"] as? [String])?[1]
                == #"{msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="world", iov_len=5}], msg_iovlen=1, msg_controllen=0, msg_flags=0}"#
        )
    }
}
