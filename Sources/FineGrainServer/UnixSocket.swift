#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Client side of `finegrain serve --unix PATH`, shared by the CLI (is a server already there?) and the
/// benchmark's blocking client.
public enum UnixSocket {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// A stream socket connected to the Unix domain socket at `path` (the caller closes it).
    public static func connect(path: String) throws -> Int32 {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw Failure(description: "socket path too long (\(bytes.count) bytes): \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in raw.copyBytes(from: bytes); raw[bytes.count] = 0 }
        #if canImport(Glibc)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw Failure(description: "socket() failed: errno \(errno)") }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                #if canImport(Glibc)
                Glibc.connect(fd, sa, socklen_t(MemoryLayout<sockaddr_un>.size))
                #else
                Darwin.connect(fd, sa, socklen_t(MemoryLayout<sockaddr_un>.size))
                #endif
            }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw Failure(description: "connect to \(path) failed: errno \(e)")
        }
        return fd
    }
}
