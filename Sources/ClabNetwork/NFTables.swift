import CShims
import ClabSys
import Glibc
import Synchronization

/// A thin wrapper over Debian's libnftables (loaded on first use, see CShims/nftables.c): the nft
/// command's own parser and netlink code, in process (no `nft` spawned, ~1 ms a call). A script is one batch: the kernel applies all of it
/// or none of it.
///
/// libnftables talks to the network namespace of the calling thread (its netlink socket is opened
/// in `nft_ctx_new`), so tests run it on a thread that has entered a namespace of their own.
public struct NFTables {
    /// libnftables keeps per-context state only, but its thread safety is not documented: one
    /// call at a time per process costs nothing next to the netlink round trip.
    private static let serial = Mutex(())

    /// Runs an nft script (one command per line, nft's syntax) and returns its output. On failure
    /// throws nft's own error: "nft: Could not process rule: No such file or directory: <command>".
    public static func run(_ script: String) throws -> String {
        try run(script, handles: false)
    }

    /// `handles` is `nft -a`: listings end each rule with "# handle N", which `delete rule` needs.
    static func run(_ script: String, handles: Bool) throws -> String {
        try serial.withLock { _ in
            var output: UnsafeMutablePointer<CChar>?
            var error: UnsafeMutablePointer<CChar>?
            let status = clab_nft_run(script, handles ? 1 : 0, &output, &error)
            defer {
                free(output)
                free(error)
            }
            let text = output.map { String(cString: $0) } ?? ""
            guard status == 0 else {
                let message = error.map { String(cString: $0) } ?? ""
                throw ClabError(status == -2 ? "nft: \(message)" : errorLine(message))
            }
            return text
        }
    }

    /// nft's error is "Error: what\n<the command>\n   ^^^^": one line with the command named.
    static func errorLine(_ text: String) -> String {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard let first = lines.first else { return "nft: failed without an error message" }
        var message = first.hasPrefix("Error: ") ? first.dropFirst("Error: ".count) : first[...]
        if lines.count > 1, !lines[1].allSatisfy({ $0 == " " || $0 == "^" || $0 == "~" }) {
            message += ": " + lines[1].drop(while: { $0 == " " || $0 == "\t" })
        }
        return "nft: " + message
    }

    /// One rule of a `-a` listing.
    struct Rule: Equatable {
        var chain: String
        var handle: Int
        var text: String  // without the "# handle N" suffix
        var comment: String?
    }

    /// The rules of `list table ... -a`, in order; nil when the table does not exist.
    static func rules(table: String) throws -> [Rule]? {
        let listing: String
        do {
            listing = try run("list table \(table)", handles: true)
        } catch let error as ClabError where error.message.contains("No such file or directory") {
            return nil
        }
        return parseRules(listing)
    }

    static func parseRules(_ listing: String) -> [Rule] {
        var rules: [Rule] = []
        var chain: String?
        for raw in listing.split(separator: "\n") {
            let line = raw.drop(while: { $0 == " " || $0 == "\t" })
            if line.hasPrefix("chain ") {
                chain = line.split(separator: " ").dropFirst().first.map(String.init)
                continue
            }
            if line.hasPrefix("}") || line.hasPrefix("table ") || line.hasPrefix("type ") { continue }
            guard let chain, let marker = line.firstRange(of: " # handle "),
                let handle = Int(line[marker.upperBound...])
            else { continue }
            let text = String(line[..<marker.lowerBound])
            rules.append(Rule(chain: chain, handle: handle, text: text, comment: comment(in: text)))
        }
        return rules
    }

    /// The value of `comment "..."` (clab's comments never contain a quote).
    static func comment(in rule: String) -> String? {
        guard let start = rule.firstRange(of: "comment \"") else { return nil }
        let rest = rule[start.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }

    /// The base chains hooked at `forward` whose policy is drop, in tables other than `excluding`
    /// (ip and inet families: the ones IPv4 forwarding passes), as "table ip filter, chain FORWARD".
    static func forwardDropChains(excluding table: String) throws -> [String] {
        var found: [String] = []
        var currentTable: String?
        var currentChain: String?
        for raw in try run("list chains").split(separator: "\n") {
            let line = raw.drop(while: { $0 == " " || $0 == "\t" })
            if line.hasPrefix("table ") {
                let words = line.split(separator: " ")
                currentTable = words.count >= 3 ? "\(words[1]) \(words[2])" : nil
            } else if line.hasPrefix("chain ") {
                currentChain = line.split(separator: " ").dropFirst().first.map(String.init)
            } else if line.hasPrefix("type "), line.contains(" hook forward "), line.contains("policy drop;"),
                let t = currentTable, let c = currentChain, t != table,
                t.hasPrefix("ip ") || t.hasPrefix("inet ")
            {
                found.append("table \(t), chain \(c)")
            }
        }
        return found
    }
}
