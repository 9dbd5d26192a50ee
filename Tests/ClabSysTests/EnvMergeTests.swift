import ClabSys
import Testing

/// Env.setting: the one merge of environments (an image's ENV over the stage's, `-e` over
/// both, a Dockerfile's ENV over the image it starts from).
@Suite("Env.setting: later entries win, and go last")
struct EnvMergeTests {
    @Test func laterEntriesReplaceAndMoveLast() {
        let base = ["PATH=/bin", "HOME=/root", "TERM=xterm"]
        #expect(
            Env.setting(["HOME=/home/u", "LANG=C"], in: base) == ["PATH=/bin", "TERM=xterm", "HOME=/home/u", "LANG=C"])
        // A name is matched whole: PATHX is not PATH, and a value holding '=' keeps it.
        #expect(
            Env.setting(["PATHX=1", "PATH=/a=b"], in: base) == ["HOME=/root", "TERM=xterm", "PATHX=1", "PATH=/a=b"])
        #expect(Env.setting(["A=1", "A=2"], in: []) == ["A=2"])
    }
}
