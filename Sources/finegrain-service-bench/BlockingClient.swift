import FineGrainServer
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.1 client on one keep-alive TCP connection: `send` the whole request, `recv` until the
/// answer's `Content-Length` is in. This is how the Python client talks to the service (`http.client`
/// over a kept-alive socket), so the round trip it measures is the service's cost plus the kernel's
/// loopback copies, without an event-loop client's per-chunk overhead. (AsyncHTTPClient is measured
/// beside it; the load test uses it too.)
final class BlockingClient {
    let fd: Int32
    var buffer: [UInt8]

    init(host: String, port: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket() failed: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { throw BenchError("bad IPv4 address \(host)") }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw BenchError("connect to \(host):\(port) failed: errno \(errno)") }
        self.fd = fd
        buffer = [UInt8](repeating: 0, count: 1 << 20)
    }

    /// Connects to `http://host:port` or to the Unix socket of `unix:/path/to.sock`.
    convenience init(url: String) throws {
        if url.hasPrefix("unix:") { try self.init(unixPath: String(url.dropFirst("unix:".count))) } else {
            let (host, port) = try hostAndPort(url)
            try self.init(host: host, port: port)
        }
    }

    /// Connects to a server's Unix domain socket (`finegrain serve --unix PATH`).
    init(unixPath path: String) throws {
        do { fd = try UnixSocket.connect(path: path) } catch { throw BenchError("\(error)") }
        buffer = [UInt8](repeating: 0, count: 1 << 20)
    }

    deinit { close(fd) }

    /// POSTs `body` (JSON) to `path`; returns the status and the answer's body length.
    /// `headerLength`: send a framed body (`FramedBody`) with a JSON part this long.
    func post(_ path: String, body: [UInt8], headerLength: Int? = nil) throws -> (status: Int, bodyBytes: Int) {
        let type = headerLength.map { "application/x-finegrain-framed\r\nFineGrain-Header-Length: \($0)" } ?? "application/json"
        let head = Array("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
        // Head and body in one writev, as CPython's http.client joins a bytes body to its head in one
        // send(): two sends make the server wake twice for a small request (Nagle / delayed-ACK aside).
        try sendAll(head, body)
        // Read until the end of the header block, then until Content-Length body bytes are in.
        var have = 0
        var headerEnd = -1
        while headerEnd < 0 {
            have += try receive(at: have)
            headerEnd = Self.find(buffer, have)
        }
        let header = String(decoding: buffer[0 ..< headerEnd], as: UTF8.self)
        let status = Int(header.split(separator: " ").dropFirst().first ?? "") ?? 0
        guard let lengthLine = header.lowercased().split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
              let length = Int(lengthLine.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) else {
            throw BenchError("answer without Content-Length: \(header.prefix(200))")
        }
        let total = headerEnd + 4 + length
        if buffer.count < total { buffer += [UInt8](repeating: 0, count: total - buffer.count) }
        while have < total { have += try receive(at: have) }
        return (status, length)
    }

    private func sendAll(_ head: [UInt8], _ body: [UInt8]) throws {
        var sent = 0
        let total = head.count + body.count
        try head.withUnsafeBytes { h in
            try body.withUnsafeBytes { b in
                while sent < total {
                    // The parts not yet sent, as at most two iovecs; sendmsg for MSG_NOSIGNAL.
                    var parts: [iovec] = []
                    if sent < h.count { parts.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: h.baseAddress! + sent), iov_len: h.count - sent)) }
                    let inBody = max(0, sent - h.count)
                    if inBody < b.count { parts.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress! + inBody), iov_len: b.count - inBody)) }
                    let n = parts.withUnsafeMutableBufferPointer { p -> Int in
                        var msg = msghdr()
                        msg.msg_iov = p.baseAddress
                        msg.msg_iovlen = p.count
                        return sendmsg(fd, &msg, Int32(MSG_NOSIGNAL))
                    }
                    guard n > 0 else { throw BenchError("send failed: errno \(errno)") }
                    sent += n
                }
            }
        }
    }

    private func receive(at offset: Int) throws -> Int {
        if offset == buffer.count { buffer += [UInt8](repeating: 0, count: buffer.count) }
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + offset, $0.count - offset, 0) }
        guard n > 0 else { throw BenchError("connection closed by the server (recv \(n), errno \(errno))") }
        return n
    }

    /// Offset of "\r\n\r\n" in the first `count` bytes, or -1.
    static func find(_ b: [UInt8], _ count: Int) -> Int {
        guard count >= 4 else { return -1 }
        for i in 0 ... count - 4 where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return -1
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
