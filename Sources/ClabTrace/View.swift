import ClabSys
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
    var stageNumber: Int?
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
        return StageLabel(title: stage, lesson: lesson, stage: stageNumber)
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

/// The HTML view: one self-contained page (no network): a lane per thread along a time axis,
/// named by the programs it ran (clab → clab-init → the command), the stage bands above them and
/// behind them, exec and exit/signal markers, and the decoded call under the pointer or the click.
enum HTMLPage {
    /// Beyond this many syscalls the page keeps the first ones (and says so): a browser lays
    /// out tens of thousands of marks, not millions.
    static let maxCalls = 50_000

    static func render(_ lines: [TraceLine], title: String) -> String {
        let calls = Array(lines.filter { $0.type == "syscall" }.prefix(maxCalls))
        let total = lines.filter { $0.type == "syscall" }.count
        let others = lines.filter { ["oom", "cgroup", "exec", "exit", "fork"].contains($0.type) }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = (try? encoder.encode(calls + others)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
        let start = lines.first
        let heading =
            (start?.mode == "step" ? "clab trace --step \(start?.step.map(String.init) ?? "?")" : "clab trace --host")
            + " -- " + (start?.command ?? []).joined(separator: " ")
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
        h1 { font-size: 16px; margin: 0 0 4px; font-family: ui-monospace, monospace; }
        .note { color: #666; margin-bottom: 8px; }
        #legend { margin-bottom: 8px; } .key { display: inline-block; margin: 0 10px 4px 0; white-space: nowrap; }
        .swatch { display: inline-block; width: 12px; height: 12px; vertical-align: -2px; margin-right: 4px; }
        #chart { position: relative; border: 1px solid #ccc; margin-left: 210px; }
        .row { position: relative; height: 26px; border-top: 1px solid #eee; }
        #stages { height: 22px; border-top: none; }
        .stage { position: absolute; top: 2px; height: 18px; overflow: hidden; white-space: nowrap; font-size: 11px;
          color: #fff; padding: 0 3px; box-sizing: border-box; border-right: 1px solid #fff; }
        .band { position: absolute; top: 22px; bottom: 24px; opacity: .10; pointer-events: none; }
        .lanename { position: absolute; left: -208px; width: 200px; top: 4px; font-size: 11px; color: #333;
          overflow: hidden; white-space: nowrap; text-overflow: ellipsis; text-align: right; }
        .call { position: absolute; top: 4px; width: 2px; height: 18px; background: #357; cursor: pointer; }
        .call.err { background: #c22; } .call.sel { background: #f90; width: 4px; }
        .kernel { position: absolute; top: 0; width: 3px; height: 26px; background: #a0a; }
        .marker { position: absolute; top: 1px; font-size: 10px; padding: 0 2px; white-space: nowrap; border-radius: 2px; }
        .marker.exec { background: #dde; color: #224; } .marker.exit { background: #ded; color: #242; }
        .marker.signal { background: #c22; color: #fff; font-weight: bold; }
        #axis { height: 24px; } .tick { position: absolute; top: 0; height: 6px; border-left: 1px solid #888; }
        .ticklabel { position: absolute; top: 7px; font-size: 10px; color: #555; transform: translateX(-50%); }
        #detail { margin-top: 12px; font-family: ui-monospace, monospace; white-space: pre-wrap;
          border: 1px solid #ddd; padding: 8px; min-height: 3em; }
        </style></head>
        <body data-rendered="no">
        <h1 id="title">@TITLE@</h1><div class="note">@NOTE@ · click a mark for its decoded call</div>
        <div id="legend"></div>
        <div id="chart"><div class="row" id="stages"></div></div><div id="detail">Select a syscall.</div>
        <script>
        const events = @DATA@;
        const colors = ["#1b9e77","#d95f02","#7570b3","#e7298a","#66a61e","#e6ab02","#a6761d","#666","#1f78b4","#b15928","#6a3d9a","#b2182b"];
        const calls = events.filter(e => e.type === "syscall");
        const chart = document.getElementById("chart"), detail = document.getElementById("detail");
        const stagesRow = document.getElementById("stages"), legend = document.getElementById("legend");
        const times = events.map(e => e.ts_ns).concat(calls.map(c => c.ts_ns + (c.dur_ns || 0)));
        const t0 = Math.min(...times, Infinity), t1 = Math.max(...times, -Infinity);
        const span = Math.max(1, t1 - t0), pct = t => 100 * (t - t0) / span, x = t => pct(t).toFixed(4) + "%";
        // Stage bands: runs of calls (in time) with the same stage; a call without a stage (an
        // unrelated thread's) does not cut a run, so a stage reads as one band, not slivers.
        const sorted = calls.slice().sort((a, b) => a.ts_ns - b.ts_ns);
        const stageColor = {}; let next = 0; const bands = [];
        for (const c of sorted) {
          const s = c.stage; if (!s) continue;
          const last = bands[bands.length - 1];
          if (last && last.stage === s) { last.to = c.ts_ns + (c.dur_ns || 0); continue; }
          if (!(s in stageColor)) {
            stageColor[s] = colors[next++ % colors.length];
            const key = document.createElement("span"); key.className = "key";
            const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = stageColor[s];
            key.appendChild(sw); key.appendChild(document.createTextNode(s)); legend.appendChild(key);
          }
          if (last) last.to = c.ts_ns;
          bands.push({ stage: s, from: c.ts_ns, to: c.ts_ns + (c.dur_ns || 0) });
        }
        for (const b of bands) {
          const w = "max(2px, calc(" + x(b.to) + " - " + x(b.from) + "))";
          const el = document.createElement("div"); el.className = "stage"; el.style.left = x(b.from); el.style.width = w;
          el.style.background = stageColor[b.stage]; el.title = b.stage; el.textContent = b.stage; stagesRow.appendChild(el);
          const bg = document.createElement("div"); bg.className = "band"; bg.style.left = x(b.from); bg.style.width = w;
          bg.style.background = stageColor[b.stage]; chart.appendChild(bg);
        }
        // A lane per thread, in order of appearance, named by what it ran: its comm at each exec.
        const lanes = new Map(), names = new Map();
        function lane(tid) {
          if (!lanes.has(tid)) {
            const row = document.createElement("div"); row.className = "row lane";
            const name = document.createElement("div"); name.className = "lanename"; row.appendChild(name);
            chart.appendChild(row); lanes.set(tid, row); names.set(tid, { comms: [], pid: tid, ns: null, el: name });
          }
          return lanes.get(tid);
        }
        function named(tid, comm, pid, ns) {
          const n = (lane(tid), names.get(tid));
          if (comm && n.comms[n.comms.length - 1] !== comm) n.comms.push(comm);
          n.pid = pid; if (ns != null && ns !== tid) n.ns = ns;
          n.el.textContent = n.comms.join(" → ") + " " + (tid === pid ? tid : pid + "/" + tid) + (n.ns ? " (" + n.ns + " inside)" : "");
          n.el.title = n.el.textContent;
        }
        const timeline = events.slice().sort((a, b) => a.ts_ns - b.ts_ns);
        for (const e of timeline) {
          if (e.type === "syscall") named(e.tid, e.comm, e.pid, e.ns_tid);
          else if (e.type === "exec") named(e.pid, e.comm, e.pid, e.ns_pid);
        }
        function marker(row, t, cls, text) {
          const m = document.createElement("div"); m.className = "marker " + cls; m.style.left = x(t);
          m.textContent = text; m.title = text; row.appendChild(m); return m;
        }
        let exits = 0;
        for (const e of timeline) {
          if (e.type === "exec" && lanes.has(e.pid)) marker(lanes.get(e.pid), e.ts_ns, "exec", "exec " + e.comm);
          if (e.type === "exit" && lanes.has(e.pid)) {
            exits++;
            if (e.signal) marker(lanes.get(e.pid), e.ts_ns, "signal", "killed by " + e.signal);
            else marker(lanes.get(e.pid), e.ts_ns, "exit", "exit " + e.exit_code);
          }
        }
        let selected = null;
        calls.forEach(c => {
          const m = document.createElement("div"); m.className = "call" + (c.errno ? " err" : "");
          m.style.left = x(c.ts_ns); m.title = c.syscall;
          m.onclick = () => { if (selected) selected.classList.remove("sel"); m.classList.add("sel"); selected = m; show(c); };
          lanes.get(c.tid).appendChild(m);
        });
        for (const k of events.filter(e => e.type === "oom" || e.type === "cgroup")) {
          const row = lanes.get(k.tid || k.pid) || lanes.get(k.pid); if (!row) continue;
          const m = document.createElement("div"); m.className = "kernel"; m.style.left = x(k.ts_ns);
          m.title = k.type === "oom" ? "oom:mark_victim " + k.comm : "cgroup_attach_task " + k.path; row.appendChild(m);
        }
        // The time axis: about eight ticks at 1, 2 or 5 × a power of ten, in ms since the start.
        const axis = document.createElement("div"); axis.className = "row"; axis.id = "axis"; chart.appendChild(axis);
        const raw = span / 8, p10 = Math.pow(10, Math.floor(Math.log10(raw)));
        const step = [1, 2, 5, 10].map(m => m * p10).find(s => s >= raw);
        let ticks = 0;
        for (let t = 0; t <= span; t += step) {
          const tick = document.createElement("div"); tick.className = "tick"; tick.style.left = x(t0 + t); axis.appendChild(tick);
          const label = document.createElement("div"); label.className = "ticklabel"; label.style.left = x(t0 + t);
          label.textContent = (t / 1e6).toFixed(step < 1e6 ? 2 : 0) + " ms"; axis.appendChild(label); ticks++;
        }
        function show(c) {
          const result = c.unfinished ? "? <unfinished>" : c.ret === null ? "?" : c.errno ? "-1 " + c.errno : String(c.ret);
          detail.textContent = c.syscall + "(" + (c.args || []).join(", ") + ") = " + result +
            "\n\n" + (c.stage || "no stage") + (c.lesson ? "  ·  " + c.lesson : "") +
            "\npid " + c.pid + " tid " + c.tid + (c.ns_pid !== c.pid ? " (inside: " + c.ns_pid + "/" + c.ns_tid + ")" : "") +
            "  ·  " + c.comm + "  ·  at " + ((c.ts_ns - t0) / 1e6).toFixed(3) + " ms, took " + (c.dur_ns / 1e3).toFixed(1) + " µs";
        }
        Object.assign(document.body.dataset, {
          rendered: "yes", lanes: String(lanes.size), calls: String(calls.length), bands: String(bands.length),
          stages: String(Object.keys(stageColor).length), ticks: String(ticks), exits: String(exits),
        });
        </script></body></html>
        """#
}
