import CLibBPF
import ClabSpec
import Foundation
import Glibc
import Testing

@testable import ClabTrace

/// The stage view (issue 12, item 5; issue 9: from clab-init's markers): each call under the
/// stage that does it, the PATH look-up under its own label, clab's side from its calls.
@Suite("trace · stage view labels")
struct TraceStageLabelTests {
    static func nr(_ name: String) -> Int32 { Int32(SyscallCatalog.number(name) ?? -1) }
    static func c(_ s: String?) -> [UInt8]? { s.map { Array(($0 + "\0").utf8) } }

    static func mount(_ source: String?, _ target: String, _ fstype: String?, flags: UInt64 = 0) -> Syscall {
        Syscall(nr: nr("mount"), args: [1, 2, 3, flags, 0], strings: [c(source), c(target), c(fstype), nil])
    }
    static func path(_ name: String, _ file: String, fd: UInt64 = UInt64(bitPattern: -100)) -> Syscall {
        Syscall(nr: nr(name), args: [fd, 1, 2, 0], strings: [c(file)])
    }

    /// clab-init's calls take its last marker (ClabSpec's StageMark, from ClabInit's `step`): the call
    /// itself says nothing about its stage any more.
    @Test func clabInitsCallsTakeItsLastMarker() {
        let phases = Phases(stage: 12, command: ["echo", "hi"])
        let initProcess = TracedProcess(pid: 11, comm: "clab-init", nsPid: 1, nsLevel: 1, fds: [:], phase: .initSetup)
        func label(_ call: Syscall) -> String? { phases.label(call, in: initProcess, path: { _ in nil })?.title }
        func stage(_ call: Syscall) -> Int? { phases.label(call, in: initProcess, path: { _ in nil })?.stage }
        func mark(_ m: StageMark) { phases.mark(m.value, tid: initProcess.pid, in: initProcess) }
        let root = "/tmp/r/run/containers/abc/rootfs"
        let hostname = Syscall(nr: Self.nr("sethostname"), args: [1, 3], strings: [Self.c("abc")])
        // Before the first marker: the Swift runtime's start-up and the spec, init's own.
        #expect(label(Self.path("openat", "/proc/self/maps")) == StageLabel.initStart.title)
        mark(.stage(2))
        #expect(stage(hostname) == 2)
        #expect(stage(Syscall(nr: Self.nr("getpid"))) == 2)  // whatever the call, until the next marker
        mark(.stage(4))
        #expect(stage(Self.mount(nil, "/", nil, flags: 0x44000)) == 4)  // MS_REC|MS_PRIVATE
        mark(.stage(9))
        #expect(stage(Self.mount("overlay", root, "overlay")) == 9)
        // No guessing from the call: a sethostname under stage 9's marker is stage 9's.
        #expect(stage(hostname) == 9)
        mark(.stage(4))
        #expect(stage(Self.path("openat", root)) == 4)
        mark(.stage(3))
        #expect(stage(Self.mount("proc", "/proc/self/fd/5", "proc")) == 3)
        mark(.stage(10))
        #expect(stage(Self.mount("/tmp/r/run/containers/abc/volumes/0", "/proc/self/fd/9", nil, flags: 4096)) == 10)
        mark(.stage(4))
        #expect(stage(Syscall(nr: Self.nr("pivot_root"), args: [1, 2], strings: [Self.c("."), Self.c(".")])) == 4)
        mark(.stage(12))
        #expect(label(Self.path("newfstatat", "/proc/kcore")) == "stage 12 · hardening")
        mark(.commandLookup)
        #expect(label(Self.path("newfstatat", "/bin/echo")) == "clab-init · finds the command in PATH")
        #expect(stage(Self.path("newfstatat", "/bin/echo")) == nil)
        mark(.stage(12))
        #expect(stage(Syscall(nr: Self.nr("prlimit64"), args: [0, 7, 0x1000, 0])) == 12)
        mark(.execute)
        #expect(label(Syscall(nr: Self.nr("execve"), ret: -2)) == StageLabel.execute.title)
        mark(.plumbing)
        #expect(label(Syscall(nr: Self.nr("sendto"))) == StageLabel.initStart.title)
        // A value no StageMark has changes nothing.
        phases.mark(555, tid: initProcess.pid, in: initProcess)
        #expect(label(Syscall(nr: Self.nr("sendto"))) == StageLabel.initStart.title)
    }

    /// clab's host side marks per thread: one thread's stage is not another's; plumbing ends
    /// it. The command's markers mean nothing.
    @Test func clabsMarkersArePerThread() {
        let phases = Phases(stage: 12, command: ["sh"])
        let clab = TracedProcess(pid: 10, comm: "clab", nsPid: 10, nsLevel: 0, fds: [:], phase: .clab)
        let command = TracedProcess(pid: 11, comm: "sh", nsPid: 1, nsLevel: 1, fds: [:], phase: .command)
        func label(_ tid: UInt32, _ p: TracedProcess) -> StageLabel? {
            phases.label(Syscall(nr: Self.nr("getpid"), pid: p.pid, tid: tid), in: p, path: { _ in nil })
        }
        #expect(label(10, clab) == StageLabel.clab)
        phases.mark(StageMark.stage(11).value, tid: 10, in: clab)
        phases.mark(StageMark.stage(8).value, tid: 12, in: clab)
        #expect(label(10, clab) == StageLabel.stage(11))
        #expect(label(12, clab) == StageLabel.stage(8))
        #expect(label(13, clab) == StageLabel.clab)
        phases.mark(StageMark.plumbing.value, tid: 10, in: clab)
        #expect(label(10, clab) == StageLabel.clab)
        #expect(label(12, clab) == StageLabel.stage(8))
        // The C child between clone3 and execve marks its id calls as stage 7.
        let child = TracedProcess(pid: 20, comm: "clab", nsPid: 1, nsLevel: 1, fds: [:], phase: .child)
        phases.mark(StageMark.stage(7).value, tid: 20, in: child)
        #expect(label(20, child) == StageLabel.stage(7))
        phases.mark(StageMark.plumbing.value, tid: 20, in: child)
        #expect(label(20, child) == StageLabel.child)
        phases.mark(StageMark.stage(4).value, tid: 11, in: command)
        #expect(label(11, command) == phases.commandLabel)
    }

    /// Without the uprobe, clab-init's calls all get one label: no stage is made up for them.
    @Test func withoutMarkersClabInitHasOneLabel() {
        var phases = Phases(stage: 12, command: ["sh"])
        phases.marked = false
        let initProcess = TracedProcess(pid: 11, comm: "clab-init", nsPid: 1, nsLevel: 1, fds: [:], phase: .initSetup)
        for call in [
            Syscall(nr: Self.nr("sethostname"), args: [1, 3], strings: [Self.c("abc")]),
            Self.mount("overlay", "/tmp/r/rootfs", "overlay"),
            Syscall(nr: Self.nr("pivot_root"), args: [1, 2], strings: [Self.c("."), Self.c(".")]),
        ] {
            #expect(phases.label(call, in: initProcess, path: { _ in nil }) == StageLabel.initUnmarked)
        }
    }

    /// The marker values are StageMark's, one place for clab-init and the tracer.
    @Test func markerValuesRoundTrip() {
        let marks: [StageMark] = [.plumbing, .stage(1), .stage(12), .stage(99), .commandLookup, .execute]
        #expect(Set(marks.map(\.value)).count == marks.count)
        for m in marks { #expect(StageMark(value: m.value) == m) }
        #expect(StageMark(value: -1) == nil)
        #expect(StageMark(value: 102) == nil)
    }

    /// A thread's marker ends with the thread, and no marker is carried past lost records (the
    /// closing one may be among them).
    @Test func threadMarksEndWithTheThreadAndAtAGap() {
        let session = TraceSession(
            outputs: SessionOutputs(json: nil, live: nil, summarize: false, filter: nil, focus: false),
            phases: Phases(stage: 12, command: ["sh"]))
        session.table.addRoot(pid: 10, comm: "clab", phase: .clab)
        func feed<T>(_ record: T) {
            withUnsafeBytes(of: record) { raw in raw.baseAddress.map { session.handle($0, raw.count) } }
        }
        func mark(tid: UInt32, _ m: StageMark) {
            var record = clab_mark_event()
            record.kind = UInt16(CLAB_EV_MARK.rawValue)
            record.pid = 10
            record.tid = tid
            record.mark = m.value
            feed(record)
        }
        mark(tid: 10, .stage(11))
        mark(tid: 12, .stage(8))
        #expect(session.table.process(10).threadStages == [10: 11, 12: 8])
        var exit = clab_proc_event()
        exit.kind = UInt16(CLAB_EV_EXIT.rawValue)
        exit.flags = UInt16(CLAB_F_THREAD.rawValue)
        exit.pid = 10
        exit.tid = 12
        feed(exit)
        #expect(session.table.process(10).threadStages == [10: 11])
        session.lost(3, firstTs: 1, lastTs: 2)
        #expect(session.table.process(10).threadStages.isEmpty)
    }

    /// A CLAB_EV_MARK record, as the BPF program writes it, reaches the process's label; an
    /// execve starts the new program without one.
    @Test func markRecordsAreParsedAndApplied() {
        let session = TraceSession(
            outputs: SessionOutputs(json: nil, live: nil, summarize: false, filter: nil, focus: false),
            phases: Phases(stage: 12, command: ["sh"]))
        session.table.addRoot(pid: 11, comm: "clab", phase: .child)
        session.handle(.exec(ts: 1, pid: 11, oldTid: 11, nsPid: 1, nsLevel: 1, comm: "clab-init"))
        var record = clab_mark_event()
        record.kind = UInt16(CLAB_EV_MARK.rawValue)
        record.pid = 11
        record.tid = 11
        record.mark = StageMark.stage(9).value
        withUnsafeBytes(of: record) { raw in
            guard let base = raw.baseAddress else { return }
            guard case .mark(let pid, let tid, let mark) = RecordParser.parse(base, raw.count) else {
                Issue.record("not a mark record")
                return
            }
            #expect(pid == 11 && tid == 11 && mark == 9)
            session.handle(base, raw.count)
        }
        #expect(session.table.process(11).label == StageLabel.stage(9))
        session.handle(.exec(ts: 2, pid: 11, oldTid: 11, nsPid: 1, nsLevel: 1, comm: "sh"))
        #expect(session.table.process(11).label == nil)
        #expect(session.table.process(11).phase == .command)
    }
}
