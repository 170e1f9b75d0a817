import Foundation

/// A byte-level JSON reader and writer for `JSONValue`.
///
/// Why not `JSONDecoder`: decoding `JSONValue` through `Codable` tries each case in turn for every value;
/// a 256 x 1024 verl batch in plain JSON (~10^6 numbers) took ~2 s to parse that way and this reader takes
/// a small fraction of it (`finegrain-service-bench roundtrip` measures both encodings). The grammar is RFC
/// 8259; numbers use Clinger's exact fast path (<= 15 significant digits, |exponent| <= 22: one correctly
/// rounded multiply or divide of two exact doubles) and fall back to `strtod` otherwise, so every number
/// reads as the correctly rounded Double, as before.
enum JSONText {
    struct ParseError: Error, CustomStringConvertible {
        let offset: Int
        let reason: String
        var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    static func parse(_ data: Data) throws -> JSONValue {
        try data.withUnsafeBytes { raw in try parse(bytes: raw) }
    }

    static func parse(bytes raw: UnsafeRawBufferPointer) throws -> JSONValue {
        var r = Reader(bytes: raw.bindMemory(to: UInt8.self))
        r.skipSpace()
        let v = try r.value(depth: 0)
        r.skipSpace()
        guard r.i == r.bytes.count else { throw ParseError(offset: r.i, reason: "trailing characters after the document") }
        return v
    }

    struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var i = 0

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i &+= 1 }
        }

        func fail(_ reason: String) -> ParseError { ParseError(offset: i, reason: reason) }

        mutating func value(depth: Int) throws -> JSONValue {
            guard depth < 512 else { throw fail("nesting deeper than 512") }
            guard i < bytes.count else { throw fail("unexpected end of input") }
            switch bytes[i] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default: return .number(try number())
            }
        }

        mutating func literal(_ word: StaticString) throws {
            let n = word.utf8CodeUnitCount
            guard i + n <= bytes.count else { throw fail("unexpected end of input") }
            for k in 0 ..< n where bytes[i &+ k] != word.utf8Start[k] { throw fail("invalid literal") }
            i &+= n
        }

        mutating func object(depth: Int) throws -> JSONValue {
            i &+= 1
            var out = [String: JSONValue]()
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i &+= 1; return .object(out) }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try string()
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                i &+= 1
                skipSpace()
                out[key] = try value(depth: depth + 1)
                skipSpace()
                guard i < bytes.count else { throw fail("unexpected end of input in an object") }
                if bytes[i] == UInt8(ascii: ",") { i &+= 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i &+= 1; return .object(out) }
                throw fail("expected ',' or '}'")
            }
        }

        mutating func array(depth: Int) throws -> JSONValue {
            i &+= 1
            var out = [JSONValue]()
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i &+= 1; return .array(out) }
            while true {
                skipSpace()
                out.append(try value(depth: depth + 1))
                skipSpace()
                guard i < bytes.count else { throw fail("unexpected end of input in an array") }
                if bytes[i] == UInt8(ascii: ",") { i &+= 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i &+= 1; return .array(out) }
                throw fail("expected ',' or ']'")
            }
        }

        mutating func string() throws -> String {
            i &+= 1
            let start = i
            // Fast path: find the closing quote with memchr, then check that the span has no backslash
            // (memchr again) and no control byte (8 bytes a step): base64 payloads, keys and most text take only
            // these passes.
            let base = bytes.baseAddress!
            if let q = memchr(base + start, 0x22, bytes.count - start) {
                let end = base.distance(to: q.assumingMemoryBound(to: UInt8.self))
                let span = UnsafeBufferPointer(rebasing: bytes[start ..< end])
                if memchr(base + start, 0x5C, end &- start) == nil, !JSONText.hasControlByte(span) {
                    i = end &+ 1
                    return String(decoding: span, as: UTF8.self)
                }
            }
            while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\"), bytes[i] >= 0x20 { i &+= 1 }
            guard i < bytes.count else { throw fail("unterminated string") }
            if bytes[i] == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: bytes[start ..< i]), as: UTF8.self)
                i &+= 1
                return s
            }
            var buf = Array(bytes[start ..< i])
            while true {
                guard i < bytes.count else { throw fail("unterminated string") }
                let c = bytes[i]
                if c == UInt8(ascii: "\"") { i &+= 1; return String(decoding: buf, as: UTF8.self) }
                guard c >= 0x20 else { throw fail("control character in a string") }
                if c != UInt8(ascii: "\\") { buf.append(c); i &+= 1; continue }
                i &+= 1
                guard i < bytes.count else { throw fail("unterminated escape") }
                let e = bytes[i]; i &+= 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buf.append(e)
                case UInt8(ascii: "b"): buf.append(0x08)
                case UInt8(ascii: "f"): buf.append(0x0C)
                case UInt8(ascii: "n"): buf.append(0x0A)
                case UInt8(ascii: "r"): buf.append(0x0D)
                case UInt8(ascii: "t"): buf.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800 ..< 0xDC00).contains(scalar) {   // a surrogate pair
                        guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                            throw fail("unpaired surrogate")
                        }
                        i &+= 2
                        let low = try hex4()
                        guard (0xDC00 ..< 0xE000).contains(low) else { throw fail("invalid low surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                    buf.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw fail("invalid escape")
                }
            }
        }

        mutating func hex4() throws -> UInt32 {
            guard i + 4 <= bytes.count else { throw fail("short \\u escape") }
            var v: UInt32 = 0
            for _ in 0 ..< 4 {
                let c = bytes[i]; i &+= 1
                let d: UInt32
                switch c {
                case 0x30 ... 0x39: d = UInt32(c - 0x30)
                case 0x41 ... 0x46: d = UInt32(c - 0x41 + 10)
                case 0x61 ... 0x66: d = UInt32(c - 0x61 + 10)
                default: throw fail("invalid hex digit")
                }
                v = v << 4 | d
            }
            return v
        }

        /// 10^0 ... 10^22, each exact in a Double (5^22 < 2^53).
        static let exactPowers: [Double] = { var p = [1.0]; for _ in 1 ... 22 { p.append(p[p.count - 1] * 10) }; return p }()

        mutating func number() throws -> Double {
            let start = i
            var negative = false
            if i < bytes.count, bytes[i] == UInt8(ascii: "-") { negative = true; i &+= 1 }
            var mantissa: UInt64 = 0, digits = 0, fractionDigits = 0
            let intStart = i
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                if digits < 19 { mantissa = mantissa &* 10 &+ UInt64(bytes[i] - 0x30) }
                if mantissa > 0 || digits > 0 { digits &+= 1 }
                i &+= 1
            }
            guard i > intStart else { throw fail("expected a value") }
            guard !(bytes[intStart] == 0x30 && i - intStart > 1) else { throw fail("leading zero in a number") }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                i &+= 1
                let fracStart = i
                while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                    if digits < 19 { mantissa = mantissa &* 10 &+ UInt64(bytes[i] - 0x30); fractionDigits &+= 1 }
                    if mantissa > 0 || digits > 0 { digits &+= 1 }
                    i &+= 1
                }
                guard i > fracStart else { throw fail("digits expected after '.'") }
            }
            var exponent = 0
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i &+= 1
                var expNegative = false
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { expNegative = bytes[i] == UInt8(ascii: "-"); i &+= 1 }
                let expStart = i
                while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                    if exponent < 100_000 { exponent = exponent * 10 + Int(bytes[i] - 0x30) }
                    i &+= 1
                }
                guard i > expStart else { throw fail("digits expected in the exponent") }
                if expNegative { exponent = -exponent }
            }
            let e10 = exponent - fractionDigits
            if digits <= 15, abs(e10) <= 22 {   // Clinger's fast path: exact operands, one rounding
                let m = Double(mantissa)
                let v = e10 >= 0 ? m * Self.exactPowers[e10] : m / Self.exactPowers[-e10]
                return negative ? -v : v
            }
            var text = Array(bytes[start ..< i]); text.append(0)
            return text.withUnsafeBufferPointer { p in p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: text.count) { strtod($0, nil) } }
        }
    }

    /// True when `u` holds a '"', a '\\' or a control byte (< 0x20), 8 bytes per step with the classic
    /// word-at-a-time tests ("Bit Twiddling Hacks": a word has a zero byte iff (x - 0x01..) & ~x & 0x80.. != 0,
    /// and a byte below n <= 128 iff (x - n*0x01..) & ~x & 0x80.. != 0). SIMD16 compares were scalarised by
    /// the compiler here (measured 5x slower).
    static func needsEscape(_ u: UnsafeBufferPointer<UInt8>) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        var k = 0
        let n = u.count
        if let p = u.baseAddress {
            let raw = UnsafeRawPointer(p)
            while k &+ 8 <= n {
                let x = raw.loadUnaligned(fromByteOffset: k, as: UInt64.self)
                let quote = x ^ (ones &* 0x22), slash = x ^ (ones &* 0x5C)
                let hit = ((x &- ones &* 0x20) & ~x) | ((quote &- ones) & ~quote) | ((slash &- ones) & ~slash)
                if hit & highs != 0 { return true }
                k &+= 8
            }
        }
        while k < n {
            let c = u[k]
            if c < 0x20 || c == 0x22 || c == 0x5C { return true }
            k &+= 1
        }
        return false
    }

    /// True when `u` holds a byte below 0x20 (the word-at-a-time test of `needsEscape`, alone).
    static func hasControlByte(_ u: UnsafeBufferPointer<UInt8>) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        var k = 0
        let n = u.count
        if let p = u.baseAddress {
            let raw = UnsafeRawPointer(p)
            var acc: UInt64 = 0
            while k &+ 32 <= n {   // four words per step, one branch
                for w in 0 ..< 4 {
                    let x = raw.loadUnaligned(fromByteOffset: k &+ w &* 8, as: UInt64.self)
                    acc |= (x &- ones &* 0x20) & ~x
                }
                if acc & highs != 0 { return true }
                k &+= 32
            }
        }
        while k < n {
            if u[k] < 0x20 { return true }
            k &+= 1
        }
        return false
    }

    // MARK: - writer

    /// Compact JSON with sorted keys; non-finite numbers as the strings "NaN", "Infinity", "-Infinity".
    static func serialize(_ v: JSONValue) -> Data {
        var out = [UInt8]()
        out.reserveCapacity(256)
        write(v, &out)
        return Data(out)
    }

    static func write(_ v: JSONValue, _ out: inout [UInt8]) {
        switch v {
        case .null: out.append(contentsOf: "null".utf8)
        case let .bool(b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case let .number(d): writeNumber(d, &out)
        case let .string(s): writeString(s, &out)
        case let .array(a):
            out.append(UInt8(ascii: "["))
            for (k, x) in a.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                write(x, &out)
            }
            out.append(UInt8(ascii: "]"))
        case let .object(o):
            out.append(UInt8(ascii: "{"))
            for (k, key) in o.keys.sorted().enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, &out)
                out.append(UInt8(ascii: ":"))
                write(o[key]!, &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func writeNumber(_ d: Double, _ out: inout [UInt8]) {
        if d.isNaN { out.append(contentsOf: "\"NaN\"".utf8); return }
        if d.isInfinite { out.append(contentsOf: (d > 0 ? "\"Infinity\"" : "\"-Infinity\"").utf8); return }
        if d == d.rounded(), abs(d) < 0x1p53 {
            if d == 0, d.sign == .minus { out.append(contentsOf: "-0".utf8); return }
            out.append(contentsOf: String(Int64(d)).utf8)
            return
        }
        out.append(contentsOf: d.description.utf8)   // shortest round-trip digits, e.g. 0.1, 1e-06
    }

    static func writeString(_ s: String, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Fast path (base64 payloads, keys): nothing to escape, one bulk copy.
        var s = s
        let copied: Bool = s.withUTF8 { u in
            if needsEscape(u) { return false }
            out.append(contentsOf: u)
            return true
        }
        if copied { out.append(UInt8(ascii: "\"")); return }
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
            case 0x0A: out.append(contentsOf: "\\n".utf8)
            case 0x0D: out.append(contentsOf: "\\r".utf8)
            case 0x09: out.append(contentsOf: "\\t".utf8)
            case 0 ..< 0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(c >> 4)]); out.append(hex[Int(c & 15)])
            default: out.append(c)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
