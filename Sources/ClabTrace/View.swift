import ClabCore
import FoundationEssentials
import Glibc

/// One line of a saved trace (`--json FILE`), every type's fields optional (schema: Output.swift).
struct TraceLine: Codable, Sendable {
    var type: String
    var tsNs: Int64?
    var durNs: UInt64?
    var pid: UInt32?
    var tid: UInt32?
    var nsPid: UInt32?
    var nsTid: UInt32?
    var comm: String?
    var syscall: String?
    var nr: Int?
    var args: [String]?
    var ret: Int64?
    var errno: String?
    var unfinished: Bool?
    var stage: String?
    var lesson: String?
    var mode: String?
    var step: Int?
    var command: [String]?
    var childPid: UInt32?
    var childNsPid: UInt32?
    var thread: Bool?
    var exitCode: Int?
    var signal: String?
    var path: String?
    var hierarchy: UInt32?
    var events: UInt64?
    var lost: UInt64?
    var count: UInt64?

    var label: StageLabel? {
        guard let stage else { return nil }
        // "stage 4 · mount namespace + pivot_root" -> 4
        let number = stage.hasPrefix("stage ") ? Int(stage.dropFirst(6).prefix { $0.isNumber }) : nil
        return StageLabel(title: stage, lesson: lesson, stage: number)
    }

    /// strace's notation of the return value, from what the JSON kept.
    var result: String {
        if unfinished == true { return "? <unfinished>" }
        guard let ret else { return "?" }
        if let errno {
            let number = SyscallTable.errnoNames.first { $0.value == errno }?.key
            return "-1 " + errno + " (" + (number.map(Decoder.errnoMessage) ?? "?") + ")"
        }
        if let nr, SyscallCatalog.entry(nr)?.returnsAddress == true { return Flags.hex(UInt64(bitPattern: ret)) }
        return String(ret)
    }
}

/// `clab trace view FILE`: a saved trace, re-rendered: the live view, a summary, or an HTML page.
public enum TraceView {
    public struct Options: Sendable {
        public var filter: [String]?
        public var summary = false
        public var all = false
        public var htmlPath: String?
        public var outputFD: Int32 = 1

        public init() {}
    }

    static func load(_ path: String) throws -> [TraceLine] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ClabError("trace view: \(path): \(errnoDescription(errno))") }
        defer { close(fd) }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data.append(contentsOf: buffer[0..<n])
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var lines: [TraceLine] = []
        for (i, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            do {
                lines.append(try decoder.decode(TraceLine.self, from: Data(line)))
            } catch {
                throw ClabError("trace view: \(path):\(i + 1) is not a line of a clab trace (--json)")
            }
        }
        guard lines.first?.type == "start" else {
            throw ClabError("trace view: \(path) is not a clab trace: make one with `clab trace ... --json FILE`")
        }
        return lines
    }

    public static func run(path: String, options: Options) throws {
        var lines = try load(path)
        if let names = options.filter {
            let wanted = Set(names)
            lines = lines.filter { $0.type != "syscall" || wanted.contains($0.syscall ?? "") }
        }
        if let html = options.htmlPath {
            let page = HTMLPage.render(lines, title: path)
            let fd = open(html, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw ClabError("trace view: --html \(html): \(errnoDescription(errno))") }
            defer { close(fd) }
            let out = OutputBuffer(fd: fd)
            out.append(page)
            out.flush()
            return
        }
        let calls = lines.filter { $0.type == "syscall" }
        // The live view keeps the places where records were lost.
        let shown = lines.filter { $0.type == "syscall" || $0.type == "lost" }
        if options.summary {
            var stats: [String: SyscallStat] = [:]
            for c in calls {
                var s = stats[c.syscall ?? "?", default: SyscallStat()]
                s.count += 1
                s.nanoseconds += c.durNs ?? 0
                if c.errno != nil { s.errors += 1 }
                stats[c.syscall ?? "?"] = s
            }
            let text = SummaryTable.render(stats)
            _ = Array(text.utf8).withUnsafeBytes { write(options.outputFD, $0.baseAddress, $0.count) }
            return
        }
        let focus = lines.first?.mode == "step" && !options.all
        var live = LiveWriter(fd: options.outputFD, color: isatty(options.outputFD) != 0)
        var hidden = 0
        for c in shown {
            if c.type == "lost" {
                live.lost(c.count ?? 0)
                continue
            }
            let label = c.label
            let errno = c.errno.flatMap { name in SyscallTable.errnoNames.first { $0.value == name }?.key }
            if focus && !Phases.inFocus(name: c.syscall ?? "", errno: errno, label: label) {
                hidden += 1
                continue
            }
            let nsTid = c.nsTid.flatMap { $0 != c.tid ? $0 : nil }
            live.line(
                comm: c.comm ?? "?", tid: c.tid ?? 0, nsTid: nsTid, name: c.syscall ?? "?", args: c.args ?? [],
                result: c.result, label: label)
        }
        if hidden > 0 { live.out.append("clab trace view: \(hidden) not shown (--all shows them)\n") }
        live.out.flush()
    }
}

/// The HTML view: one self-contained page (no network) with a lane per process along time,
/// the stage bands behind them, and the decoded call under the pointer or the click.
enum HTMLPage {
    /// Beyond this many syscalls the page keeps the first ones (and says so): a browser lays
    /// out tens of thousands of marks, not millions.
    static let maxCalls = 50_000

    static func render(_ lines: [TraceLine], title: String) -> String {
        let calls = Array(lines.filter { $0.type == "syscall" }.prefix(maxCalls))
        let total = lines.filter { $0.type == "syscall" }.count
        let kernel = lines.filter { $0.type == "oom" || $0.type == "cgroup" }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = (try? encoder.encode(calls + kernel)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
        let start = lines.first
        let heading =
            (start?.mode == "step" ? "clab trace --step" : "clab trace --host") + " -- "
            + (start?.command ?? []).joined(separator: " ")
        let note = total > calls.count ? "first \(calls.count) of \(total) syscalls shown" : "\(total) syscalls"
        return
            template
            .replacing("@TITLE@", with: escapeHTML(heading))
            .replacing("@NOTE@", with: escapeHTML(note + " · " + title))
            // Inside <script>: no "<" at all, so neither "</script" nor "<!--" (which changes
            // how the HTML parser reads the rest of the script) can come from traced data. In
            // JSON a "<" can only be inside a string, where \u003c means the same.
            .replacing("@DATA@", with: data.replacing("<", with: "\\u003c"))
    }

    static func escapeHTML(_ s: String) -> String {
        s.replacing("&", with: "&amp;").replacing("<", with: "&lt;").replacing(">", with: "&gt;")
    }

    static let template = #"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>@TITLE@</title>
        <style>
        body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
        h1 { font-size: 16px; margin: 0 0 4px; } .note { color: #666; margin-bottom: 12px; }
        #chart { position: relative; border: 1px solid #ccc; overflow: hidden; }
        .band { position: absolute; top: 0; bottom: 0; opacity: .18; }
        .bandlabel { position: absolute; top: 0; font-size: 11px; white-space: nowrap; padding: 1px 3px; }
        .lane { position: relative; height: 26px; border-top: 1px solid #eee; }
        .lanename { position: absolute; left: 4px; top: 5px; font-size: 11px; color: #444; z-index: 2;
          background: rgba(255,255,255,.8); padding: 0 3px; }
        .call { position: absolute; top: 4px; width: 2px; height: 18px; background: #357; cursor: pointer; }
        .call.err { background: #c22; } .call.sel { background: #f90; width: 4px; }
        .kernel { position: absolute; top: 0; width: 3px; height: 26px; background: #a0a; }
        #detail { margin-top: 12px; font-family: ui-monospace, monospace; white-space: pre-wrap;
          border: 1px solid #ddd; padding: 8px; min-height: 3em; }
        </style></head>
        <body data-rendered="no">
        <h1>@TITLE@</h1><div class="note">@NOTE@ · click a mark for its decoded call</div>
        <div id="chart"></div><div id="detail">Select a syscall.</div>
        <script>
        const events = @DATA@;
        const colors = ["#1b9e77","#d95f02","#7570b3","#e7298a","#66a61e","#e6ab02","#a6761d","#666","#1f78b4","#b2df8a"];
        const calls = events.filter(e => e.type === "syscall");
        const chart = document.getElementById("chart"), detail = document.getElementById("detail");
        const t0 = Math.min(...calls.map(c => c.ts_ns), Infinity), t1 = Math.max(...calls.map(c => c.ts_ns), -Infinity);
        const span = Math.max(1, t1 - t0), x = t => (100 * (t - t0) / span).toFixed(4) + "%";
        // Stage bands: runs of consecutive calls (in time) with the same stage.
        const sorted = calls.slice().sort((a, b) => a.ts_ns - b.ts_ns);
        const stageColor = {}; let next = 0, band = null;
        for (const c of sorted) {
          const s = c.stage || "";
          if (!band || band.stage !== s) { band = { stage: s, from: c.ts_ns, to: c.ts_ns }; if (s) addBand(band); }
          band.to = c.ts_ns; if (band.el) band.el.style.width = "calc(" + x(band.to) + " - " + x(band.from) + " + 2px)";
        }
        function addBand(b) {
          if (!(b.stage in stageColor)) stageColor[b.stage] = colors[next++ % colors.length];
          const el = document.createElement("div"); el.className = "band"; el.style.left = x(b.from);
          el.style.background = stageColor[b.stage]; el.title = b.stage; chart.appendChild(el); b.el = el;
          const label = document.createElement("div"); label.className = "bandlabel"; label.style.left = x(b.from);
          label.style.color = stageColor[b.stage]; label.textContent = b.stage; chart.appendChild(label);
        }
        // A lane per process, in order of appearance.
        const lanes = new Map();
        for (const c of calls) {
          if (!lanes.has(c.pid)) {
            const lane = document.createElement("div"); lane.className = "lane";
            const name = document.createElement("div"); name.className = "lanename";
            name.textContent = c.comm + " " + c.pid + (c.ns_pid !== c.pid ? " (" + c.ns_pid + " inside)" : "");
            lane.appendChild(name); chart.appendChild(lane); lanes.set(c.pid, lane);
          }
        }
        chart.style.paddingTop = "16px";
        let selected = null;
        calls.forEach(c => {
          const m = document.createElement("div"); m.className = "call" + (c.errno ? " err" : "");
          m.style.left = x(c.ts_ns); m.title = c.syscall;
          m.onclick = () => { if (selected) selected.classList.remove("sel"); m.classList.add("sel"); selected = m; show(c); };
          lanes.get(c.pid).appendChild(m);
        });
        for (const k of events.filter(e => e.type !== "syscall")) {
          const lane = lanes.get(k.pid); if (!lane) continue;
          const m = document.createElement("div"); m.className = "kernel"; m.style.left = x(k.ts_ns);
          m.title = k.type === "oom" ? "oom:mark_victim " + k.comm : "cgroup_attach_task " + k.path; lane.appendChild(m);
        }
        function show(c) {
          const result = c.unfinished ? "? <unfinished>" : c.ret === null ? "?" : c.errno ? "-1 " + c.errno : String(c.ret);
          detail.textContent = c.syscall + "(" + (c.args || []).join(", ") + ") = " + result +
            "\n\n" + (c.stage || "no stage") + (c.lesson ? "  ·  " + c.lesson : "") +
            "\npid " + c.pid + " tid " + c.tid + (c.ns_pid !== c.pid ? " (inside: " + c.ns_pid + "/" + c.ns_tid + ")" : "") +
            "  ·  " + c.comm + "  ·  at " + (c.ts_ns / 1e6).toFixed(3) + " ms, took " + (c.dur_ns / 1e3).toFixed(1) + " µs";
        }
        document.body.dataset.rendered = "yes";
        document.body.dataset.lanes = String(lanes.size);
        document.body.dataset.calls = String(calls.length);
        </script></body></html>
        """#
}
