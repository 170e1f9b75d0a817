import FineGrain
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Same-host transport for large tensors: instead of carrying a `[B, R]` tensor in the body, a client on
/// the server's machine writes its little-endian bytes into a file under the server's shared-memory
/// directory (`finegrain serve --shm-dir /dev/shm/finegrain`) and sends only a reference,
///
///     {"dtype": "float32", "shape": [B, R], "shm": "<file name>", "offset": <byte offset>}
///
/// and can ask for the answer's tensors in the same way (`"answer_shm": {"name", "offset", "capacity"}`:
/// the server writes float32 tensors into that region of a file the client made, and answers with
/// references to them). The body then keeps only what is small (sparse rewards, row lengths: ~4.5 kB at
/// 256 x 1024), so the round trip costs the fixed per-request latency plus the compute, not the loopback
/// copies and base64 of ~3 MB.
/// The same idea as Ray's plasma store or vLLM's shared-memory broadcast, kept to plain files: `/dev/shm`
/// is a tmpfs, so the bytes never touch a disk, and a reused file costs no page faults after its first use.
///
/// Off unless the server is given a directory. Only plain names of regular files directly inside it are
/// accepted (no `/`, no `..`, no symbolic links: `O_NOFOLLOW`), and every region is checked against the
/// file's size, so a request can neither reach other files nor read or write past an end. The server
/// never creates, grows or deletes these files: their lifetime is the client's.
public struct SharedMemory: Sendable {
    /// The directory the file names are resolved in.
    public let directory: String

    public init(directory: String) { self.directory = directory }

    /// Bytes moved per `pread` / `pwrite` (a multiple of every dtype's size).
    static let chunkBytes = 1 << 18

    /// An open file of the directory, closed when the last reference goes.
    final class File {
        let fd: Int32
        let name: String
        init(fd: Int32, name: String) { (self.fd, self.name) = (fd, name) }
        deinit { close(fd) }

        /// Reads `[offset, offset + count)` in chunks: `body(chunk, firstByte)`. Throws when the file came
        /// out shorter than it was when checked (the client truncated it meanwhile).
        func read(offset: Int, count: Int, field: String, _ body: (UnsafeRawBufferPointer, Int) -> Void) throws {
            let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: min(count, chunkBytes), alignment: 16)
            defer { chunk.deallocate() }
            var done = 0
            while done < count {
                let n = pread(fd, chunk.baseAddress!, min(chunk.count, count - done), off_t(offset + done))
                guard n > 0 else { throw shortFile(field, offset + done) }
                var got = n
                // A read may stop short of the chunk; finish it so every chunk but the last is whole.
                while got < min(chunk.count, count - done) {
                    let m = pread(fd, chunk.baseAddress! + got, min(chunk.count, count - done) - got, off_t(offset + done + got))
                    guard m > 0 else { throw shortFile(field, offset + done + got) }
                    got += m
                }
                body(UnsafeRawBufferPointer(start: chunk.baseAddress, count: got), done)
                done += got
            }
        }

        /// Writes `bytes` at `offset` (all of them, or throws).
        func write(_ bytes: UnsafeRawBufferPointer, at offset: Int, field: String) throws {
            var done = 0
            while done < bytes.count {
                let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
                guard n > 0 else {
                    throw FineGrainError.invalidField(field: field, reason: "cannot write '\(name)' (\(String(cString: strerror(errno))))")
                }
                done += n
            }
        }

        private func shortFile(_ field: String, _ at: Int) -> FineGrainError {
            .invalidField(field: field, reason: "'\(name)' ended at byte \(at) while being read (truncated by its owner?)")
        }
    }

    /// Opens file `name` for `[offset, offset + count)`, checked (`openChecked`).
    func openFile(_ name: String, offset: Int, count: Int, writable: Bool, field: String) throws -> File {
        File(fd: try openChecked(name, offset: offset, count: count, writable: writable, field: field), name: name)
    }

    /// Opens file `name` after checking the name, that it is a regular file (not followed through a link)
    /// and that `[offset, offset + count)` lies inside it; the caller closes the descriptor.
    func openChecked(_ name: String, offset: Int, count: Int, writable: Bool, field: String) throws -> Int32 {
        // Letters, digits, '.', '_' and '-' only: no path separators, and nothing to escape in the answer.
        let plain = name.utf8.allSatisfy { c in
            (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 46 || c == 95 || c == 45
        }
        guard plain, !name.isEmpty, name.utf8.count <= 255, name != ".", name != ".." else {
            throw FineGrainError.invalidField(field: field, reason: "'\(name)' must be a plain file name (letters, digits, '.', '_', '-') inside the server's shared-memory directory")
        }
        guard offset >= 0, count >= 0 else {
            throw FineGrainError.invalidField(field: field, reason: "offset \(offset) and size \(count) must be non-negative")
        }
        let path = directory + "/" + name
        let fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)   // a FIFO must not block the open
        guard fd >= 0 else {
            throw FineGrainError.invalidField(field: field, reason: "cannot open '\(name)' in the shared-memory directory (\(String(cString: strerror(errno))))")
        }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw FineGrainError.invalidField(field: field, reason: "'\(name)' is not a regular file")
        }
        let size = Int(info.st_size)
        guard offset <= size, count <= size - offset else {
            close(fd)
            throw FineGrainError.invalidField(field: field, reason: "bytes [\(offset), \(offset + count)) are past the end of '\(name)' (\(size) bytes)")
        }
        return fd
    }

    /// A tensor reference `{"dtype", "shape", "shm", "offset"}` decoded to Doubles (C order).
    func decode(_ o: [String: JSONValue], field: String, rank: Int) throws -> WireTensor {
        let (dtype, size, shape, count) = try WireTensor.referenceHeader(o, field: field, rank: rank)
        guard let name = o["shm"]?.stringValue else { throw FineGrainError.invalidField(field: "\(field).shm", reason: "must be a file name") }
        let offset = try Self.integer(o["offset"], field: "\(field).offset")
        let file = try openFile(name, offset: offset, count: count * size, writable: false, field: "\(field).shm")
        // pread into a chunk, not mmap: a client that truncates its file mid-request then gets a 400, where a
        // mapping would take the server down with SIGBUS.
        var failure: (any Error)?
        let values = [Double](unsafeUninitializedCapacity: count) { out, n in
            n = 0
            do {
                try file.read(offset: offset, count: count * size, field: "\(field).shm") { b, first in
                    WireTensor.widen(b, dtype: dtype, into: out.baseAddress! + first / size)
                }
                n = count
            } catch { failure = error; out.baseAddress!.initialize(repeating: 0, count: count); n = count }
        }
        if let failure { throw failure }
        return WireTensor(shape: shape, values: values, wasCompact: true)
    }

    static func integer(_ v: JSONValue?, field: String) throws -> Int {
        guard let v, !v.isNull else { return 0 }
        guard let d = v.doubleValue, d >= 0, d == d.rounded(), d < 1e15 else {
            throw FineGrainError.invalidField(field: field, reason: "must be a non-negative integer")
        }
        return Int(d)
    }

    /// Where a request wants its answer's tensors: `"answer_shm": {"name", "offset", "capacity"}`, checked
    /// when the request is read. An outcome estimator's answer of per-row values never touches it.
    struct AnswerArea {
        let file: File
        let offset: Int
        let capacity: Int
        var used = 0

        /// Writes `values` as float32 at the next free place; returns its reference, or throws when the
        /// area is too small (naming what it needed).
        mutating func write(_ values: [Double], rows: Int, width: Int) throws -> String {
            let need = values.count * 4
            guard used + need <= capacity else {
                throw FineGrainError.invalidField(field: "answer_shm.capacity", reason: "is \(capacity) bytes; the answer needs at least \(used + need)")
            }
            let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: SharedMemory.chunkBytes, alignment: 16)
            defer { chunk.deallocate() }
            let perChunk = SharedMemory.chunkBytes / 4
            try values.withUnsafeBufferPointer { v in
                var first = 0
                while first < v.count {
                    let n = min(perChunk, v.count - first)
                    for k in 0 ..< n { chunk.storeBytes(of: Float(v[first &+ k]).bitPattern.littleEndian, toByteOffset: k &* 4, as: UInt32.self) }
                    try file.write(UnsafeRawBufferPointer(rebasing: chunk[0 ..< n * 4]), at: offset + used + first * 4, field: "answer_shm.name")
                    first += n
                }
            }
            defer { used += need }
            return #"{"dtype":"float32","offset":\#(offset + used),"shape":[\#(rows),\#(width)],"shm":"\#(file.name)"}"#
        }
    }

    func answerArea(_ v: JSONValue) throws -> AnswerArea {
        guard let o = v.objectValue, let name = o["name"]?.stringValue else {
            throw FineGrainError.invalidField(field: "answer_shm", reason: "must be {\"name\": file, \"offset\": bytes, \"capacity\": bytes}")
        }
        let offset = try Self.integer(o["offset"], field: "answer_shm.offset")
        guard o["capacity"] != nil else { throw FineGrainError.invalidField(field: "answer_shm.capacity", reason: "missing") }
        let capacity = try Self.integer(o["capacity"], field: "answer_shm.capacity")
        return AnswerArea(file: try openFile(name, offset: offset, count: capacity, writable: true, field: "answer_shm.name"),
                          offset: offset, capacity: capacity)
    }

    /// The error for a reference sent to a server without a directory.
    static let off = FineGrainError.invalidField(field: "shm", reason: "shared memory is off on this server (start it with --shm-dir DIR)")
}
