import ClabSys
import Foundation
import Glibc
import Testing

@testable import ClabCgroups
@testable import ClabImages
@testable import ClabRuntime

@Suite("images: build, commit, tag, rm", needsRoot)
struct ImageBuildTests {
    func context(_ clabfile: String) throws -> String {
        let dir = TestEnv.root + "/ctx-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir + "/site", withIntermediateDirectories: true)
        try "<h1>hi</h1>\n".write(toFile: dir + "/site/index.html", atomically: false, encoding: .utf8)
        try clabfile.write(toFile: dir + "/Clabfile", atomically: false, encoding: .utf8)
        return dir
    }

    @Test func buildRunCacheAndHistory() throws {
        try TestEnv.ensureImage()
        let name = "web-\(UUID().uuidString.prefix(6).lowercased())"
        let dir = try context(
            """
            FROM busybox
            ENV GREETING=hello
            WORKDIR /www
            COPY site /www/
            RUN echo built > /www/built.txt && rm /bin/vi
            CMD ["/bin/sh", "-c", "echo $GREETING; pwd; ls; ls /bin/vi 2>&1 | wc -l"]
            """)
        let first = try clab("image", "build", "-t", "\(name):1", dir)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("step 5/6: RUN echo built > /www/built.txt && rm /bin/vi\n"))
        let run = try clab("step", "9", "--quiet", "--image", "\(name):1")
        #expect(run.stdout == "hello\n/www\nbuilt.txt\nindex.html\n1\n", "\(run.stdout)\(run.stderr)")
        // Nothing changed: every step comes from the cache, and the id is the same.
        let second = try clab("image", "build", "-t", "\(name):2", dir)
        #expect(second.stderr.components(separatedBy: "(cached)").count - 1 == 5, "\(second.stderr)")
        let list = try clab("image", "ls").stdout
        let ids = list.split(separator: "\n").filter { $0.hasPrefix(name) }.map { $0.split(separator: " ")[1] }
        #expect(ids.count == 2 && ids[0] == ids[1], "\(list)")
        let history = try clab("image", "history", "\(name):1")
        #expect(history.stdout.contains("RUN echo built"))
        #expect(history.stdout.contains("COPY site /www/"))
        #expect(try clab("image", "rm", "\(name):1", "\(name):2").status == 0)
        #expect(try clab("step", "9", "--quiet", "--image", "\(name):1", "--", "true").stderr.contains("no image"))
    }

    @Test func failingRunAndEscapingCopyAreRefused() throws {
        try TestEnv.ensureImage()
        let bad = try context("FROM busybox\nRUN exit 3\n")
        let out = try clab("image", "build", "-t", "never:1", bad)
        #expect(out.status != 0)
        #expect(out.stderr.contains("line 2: RUN exit 3 failed with status 3"), "\(out.stderr)")
        let escape = try context("FROM busybox\nCOPY ../../etc /x\n")
        let out2 = try clab("image", "build", "-t", "never:1", escape)
        #expect(out2.stderr.contains("the source must be a path inside the build directory"), "\(out2.stderr)")
        #expect(
            try clab("image", "build", "-t", "never:1", "-f", "/nonexistent", bad).stderr.contains(
                "cannot read build file"))
        #expect(
            try clab("step", "9", "--image", "no-such-image", "--", "true").stderr
                == "clab: no image 'no-such-image:latest': `clab image ls` lists the images\n")
    }

    @Test func commitTagAndRmRefusal() throws {
        try TestEnv.ensureImage()
        let kept = "c-\(UUID().uuidString.prefix(6).lowercased())"
        let image = "committed-\(UUID().uuidString.prefix(6).lowercased())"
        #expect(
            try clab(
                "step", "9", "--quiet", "--name", kept, "--keep", "--", "sh", "-c",
                "echo mine > /root/file; rm /etc/hosts"
            ).status == 0)
        let commit = try clab("commit", kept, image)
        #expect(commit.status == 0, "\(commit.stderr)")
        let run = try clab(
            "step", "9", "--quiet", "--image", image, "--", "sh", "-c", "cat /root/file; ls /etc/hosts 2>&1 | wc -l")
        #expect(run.stdout == "mine\n1\n")
        #expect(try clab("image", "tag", image, "\(image):v2").status == 0)
        let ids = try clab("image", "ls").stdout.split(separator: "\n").filter { $0.hasPrefix(image) }
        #expect(ids.count == 2)
        // The base image is in use by the kept container.
        let refused = try clab("image", "rm", "busybox")
        #expect(refused.stderr.contains("is used by kept container"), "\(refused.stderr)")
        #expect(try clab("rm", kept).status == 0)
        #expect(try clab("image", "rm", image, "\(image):v2").status == 0)
        // Every layer still hashes to its digest.
        let store = LayerStore(layout: TestEnv.layout)
        for digest in try ImageStore(layout: TestEnv.layout).layers("busybox") { #expect(try store.verify(digest)) }
    }
}

/// Found in review: what must never escape or be lost.
@Suite("images and state: safety", needsRoot)
struct ImageSafetyTests {
    func context(_ clabfile: String) throws -> String {
        let dir = TestEnv.root + "/ctx-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "x\n".write(toFile: dir + "/f", atomically: false, encoding: .utf8)
        try clabfile.write(toFile: dir + "/Clabfile", atomically: false, encoding: .utf8)
        return dir
    }

    @Test func copyDestinationStaysInTheImage() throws {
        try TestEnv.ensureImage()
        let marker = "clab-escape-\(UUID().uuidString.prefix(8))"
        let dir = try context(
            "FROM busybox\nWORKDIR ../../..\nCOPY f /../../../../tmp/\(marker)\nCMD cat /tmp/\(marker)\n")
        let name = "safe-\(UUID().uuidString.prefix(6).lowercased())"
        #expect(try clab("image", "build", "-t", name, dir).status == 0)
        #expect(!FileManager.default.fileExists(atPath: "/tmp/\(marker)"))
        #expect(try clab("step", "9", "--quiet", "--image", name).stdout == "x\n")
        #expect(try clab("image", "rm", name).status == 0)
    }

    @Test func copySourceCannotFollowASymlinkOut() throws {
        try TestEnv.ensureImage()
        let dir = try context("FROM busybox\nCOPY secrets/hostname /leak\n")
        try FileManager.default.createSymbolicLink(atPath: dir + "/secrets", withDestinationPath: "/etc")
        let out = try clab("image", "build", "-t", "never:1", dir)
        #expect(out.status != 0)
        #expect(out.stderr.contains("it leads outside the build directory"), "\(out.stderr)")
    }

    @Test func cacheSeesBytesAndModes() throws {
        try TestEnv.ensureImage()
        let dir = try context("FROM busybox\nCOPY f /f\nCMD ls -l /f\n")
        let name = "cache-\(UUID().uuidString.prefix(6).lowercased())"
        try Data([0xff]).write(to: URL(fileURLWithPath: dir + "/f"))
        #expect(try clab("image", "build", "-t", "\(name):1", dir).status == 0)
        try Data([0xfe]).write(to: URL(fileURLWithPath: dir + "/f"))
        #expect(!(try clab("image", "build", "-t", "\(name):2", dir).stderr.contains("COPY f /f  (cached)")))
        chmod(dir + "/f", 0o755)
        #expect(!(try clab("image", "build", "-t", "\(name):3", dir).stderr.contains("COPY f /f  (cached)")))
        #expect(try clab("step", "9", "--quiet", "--image", "\(name):3").stdout.hasPrefix("-rwxr-xr-x"))
        #expect(try clab("image", "rm", "\(name):1", "\(name):2", "\(name):3").status == 0)
    }

    @Test func gcKeepsVolumesThatLookLikeScratch() throws {
        let root = TestEnv.root + "/gc-names"
        try TestEnv.ensureImage(root: root)
        #expect(try clab("volume", "create", "db.tmp-2024", env: ["CLAB_ROOT": root]).status == 0)
        #expect(try clab("gc", env: ["CLAB_ROOT": root]).stdout == "nothing to remove\n")
        #expect(FileManager.default.fileExists(atPath: root + "/volumes/db.tmp-2024/_data"))
        #expect(GarbageCollector.isScratch(".tmp-busybox-123"))
        #expect(GarbageCollector.isScratch(String(repeating: "a", count: 64) + ".tmp-77"))
        #expect(!GarbageCollector.isScratch("db.tmp-2024"))
        #expect(!GarbageCollector.isScratch("v.tmp-1"))
        #expect(throws: ClabError.self) { try ImageRef.parse("web:.tmp-1") }
    }

    @Test func aCgroupParentThatExistedStays() throws {
        try TestEnv.ensureImage()
        let parent = "clab-test-parent-\(UUID().uuidString.prefix(6).lowercased())"
        let driver = try CgroupDriver.detect()
        let placement = try driver.place(id: "x", parent: parent)
        for dir in placement.parents {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        }
        defer { for dir in placement.parents { rmdir(dir) } }
        let out = try clab("step", "8", "--quiet", "--cgroup-parent", parent, "--", "true")
        #expect(out.status == 0, "\(out.stderr)")
        for dir in placement.parents { #expect(FileManager.default.fileExists(atPath: dir), "\(dir) was removed") }
    }
}
