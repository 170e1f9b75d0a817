import FineGrain
import NIOCore

/// Standard base64 (RFC 4648 §4, padded) fused with the number conversion of the compact wire form, so a
/// `[B, R]` column goes between JSON text and `[Double]` in one pass through a small stack chunk, with no
/// intermediate byte array:
///
/// - encode: Double -> float32 little-endian -> base64, written straight into the response buffer. Each 3
///   bytes (24 bits) become two 12-bit indices into a 4096-entry table of character pairs (the "double
///   lookup" variant: 2 table loads per 3 bytes instead of 4).
/// - decode: base64 -> bytes (four pre-shifted 256-entry tables OR-ed together; an invalid character sets
///   bit 24, checked once per chunk) -> Double.
///
/// `ExtrasBase64` stays the reference: `Base64ColumnsTests` checks both directions against it.
enum Base64Columns {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    /// 12-bit value -> its two characters (first character in the low byte).
    static let pairs: [UInt16] = (0 ..< 4096).map { UInt16(alphabet[$0 >> 6]) | UInt16(alphabet[$0 & 63]) << 8 }
    static let invalid: UInt32 = 1 << 24
    /// Character -> 6-bit value shifted to its place in a 24-bit quad (`shift` 18, 12, 6, 0); `invalid` if
    /// the character is not in the alphabet.
    static func table(shift: UInt32) -> [UInt32] {
        var t = [UInt32](repeating: invalid, count: 256)
        for (v, c) in alphabet.enumerated() { t[Int(c)] = UInt32(v) << shift }
        return t
    }
    static let d0 = table(shift: 18), d1 = table(shift: 12), d2 = table(shift: 6), d3 = table(shift: 0)

    /// Bytes per chunk: a multiple of 3 (whole quads) and of 8 (whole values of every dtype).
    static let chunkBytes = 3072

    // MARK: encode

    /// Appends `"` + base64 of `values` as little-endian float32 + `"` to `out`. `[count]` -> `4 ceil(4 count / 3) + 2` bytes.
    static func appendFloat32String(_ values: UnsafeBufferPointer<Double>, to out: inout ByteBuffer) {
        let totalBytes = values.count &* 4
        let textCount = (totalBytes &+ 2) / 3 &* 4
        out.writeInteger(UInt8(ascii: "\""))
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: textCount) { dst in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: chunkBytes) { chunk in
                let c = UnsafeMutableRawPointer(chunk.baseAddress!)
                var v = 0, w = 0
                while v < values.count {
                    let n = min(chunkBytes / 4, values.count &- v)
                    for k in 0 ..< n {
                        c.storeBytes(of: Float(values[v &+ k]).bitPattern.littleEndian, toByteOffset: k &* 4, as: UInt32.self)
                    }
                    w &+= encode(UnsafeRawBufferPointer(start: c, count: n &* 4), into: dst.baseAddress! + w)
                    v &+= n
                }
                return w
            }
        }
        out.writeInteger(UInt8(ascii: "\""))
    }

    /// Base64 of `bytes` (padded) at `dst`; returns the characters written. Only the last call of a
    /// sequence may pass a length that is not a multiple of 3.
    static func encode(_ bytes: UnsafeRawBufferPointer, into dst: UnsafeMutableRawPointer) -> Int {
        let n = bytes.count
        var i = 0, o = 0
        pairs.withUnsafeBufferPointer { pairs in
            let src = bytes.baseAddress!
            // Four bytes loaded per group of three (the fourth belongs to the next group), so stop one group
            // early; the byte swap puts the group's first byte on top: x = b0 << 16 | b1 << 8 | b2.
            while i &+ 4 <= n {
                let x = UInt32(bigEndian: src.loadUnaligned(fromByteOffset: i, as: UInt32.self)) >> 8
                let two = UInt32(pairs[Int(x >> 12)]) | UInt32(pairs[Int(x & 0xFFF)]) << 16
                dst.storeBytes(of: two, toByteOffset: o, as: UInt32.self)
                i &+= 3; o &+= 4
            }
            while i &+ 3 <= n {
                let x = UInt32(bytes[i]) << 16 | UInt32(bytes[i &+ 1]) << 8 | UInt32(bytes[i &+ 2])
                dst.storeBytes(of: pairs[Int(x >> 12)], toByteOffset: o, as: UInt16.self)
                dst.storeBytes(of: pairs[Int(x & 0xFFF)], toByteOffset: o &+ 2, as: UInt16.self)
                i &+= 3; o &+= 4
            }
        }
        let rest = n &- i
        if rest > 0 {
            let b0 = UInt32(bytes[i]), b1 = rest > 1 ? UInt32(bytes[i &+ 1]) : 0
            let x = b0 << 16 | b1 << 8
            dst.storeBytes(of: alphabet[Int(x >> 18)], toByteOffset: o, as: UInt8.self)
            dst.storeBytes(of: alphabet[Int((x >> 12) & 63)], toByteOffset: o &+ 1, as: UInt8.self)
            dst.storeBytes(of: rest > 1 ? alphabet[Int((x >> 6) & 63)] : UInt8(ascii: "="), toByteOffset: o &+ 2, as: UInt8.self)
            dst.storeBytes(of: UInt8(ascii: "="), toByteOffset: o &+ 3, as: UInt8.self)
            o &+= 4
        }
        return o
    }

    // MARK: decode

    /// The number of bytes `text` decodes to, or nil when it is not padded standard base64 by length.
    static func decodedCount(_ text: UnsafeBufferPointer<UInt8>) -> Int? {
        let n = text.count
        guard n % 4 == 0 else { return nil }
        guard n > 0 else { return 0 }
        let pad = text[n &- 1] == UInt8(ascii: "=") ? (text[n &- 2] == UInt8(ascii: "=") ? 2 : 1) : 0
        return n / 4 &* 3 &- pad
    }

    /// Decodes `text` chunk by chunk; `body(chunk, firstByte)` receives each run of decoded bytes (a multiple
    /// of `chunkBytes` except the last, which also holds the bytes of a padded final quad) and the offset
    /// of its first byte. Returns false on a character outside the alphabet or misplaced padding.
    static func decode(_ text: UnsafeBufferPointer<UInt8>, _ body: (UnsafeRawBufferPointer, Int) -> Void) -> Bool {
        guard let total = decodedCount(text) else { return false }
        let quads = text.count / 4
        let fullQuads = total % 3 == 0 ? quads : quads &- 1   // a padded quad is decoded on its own
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: chunkBytes &+ 8) { chunk in
            let c = UnsafeMutableRawPointer(chunk.baseAddress!)
            var q = 0, produced = 0
            repeat {
                let n = min(chunkBytes / 3, fullQuads &- q)
                var bad: UInt32 = 0
                if n > 0 {
                    let t = UnsafeRawPointer(text.baseAddress! + q &* 4)
                    d0.withUnsafeBufferPointer { d0 in d1.withUnsafeBufferPointer { d1 in
                        d2.withUnsafeBufferPointer { d2 in d3.withUnsafeBufferPointer { d3 in
                            // Two quads (48 bits) per step, stored as one 8-byte word whose top two bytes the
                            // next step overwrites (the chunk has 4 bytes of slack). A quad's 24 bits hold its
                            // bytes first-on-top, so byte-swapping them gives memory order.
                            var k = 0
                            while k &+ 2 <= n {
                                let s = k &* 4
                                let x = d0[Int(t.load(fromByteOffset: s, as: UInt8.self))] | d1[Int(t.load(fromByteOffset: s &+ 1, as: UInt8.self))]
                                    | d2[Int(t.load(fromByteOffset: s &+ 2, as: UInt8.self))] | d3[Int(t.load(fromByteOffset: s &+ 3, as: UInt8.self))]
                                let y = d0[Int(t.load(fromByteOffset: s &+ 4, as: UInt8.self))] | d1[Int(t.load(fromByteOffset: s &+ 5, as: UInt8.self))]
                                    | d2[Int(t.load(fromByteOffset: s &+ 6, as: UInt8.self))] | d3[Int(t.load(fromByteOffset: s &+ 7, as: UInt8.self))]
                                bad |= x | y
                                let word = UInt64((x << 8).byteSwapped) | UInt64((y << 8).byteSwapped) << 24
                                c.storeBytes(of: word.littleEndian, toByteOffset: k &* 3, as: UInt64.self)
                                k &+= 2
                            }
                            if k < n {
                                let s = k &* 4
                                let x = d0[Int(t.load(fromByteOffset: s, as: UInt8.self))] | d1[Int(t.load(fromByteOffset: s &+ 1, as: UInt8.self))]
                                    | d2[Int(t.load(fromByteOffset: s &+ 2, as: UInt8.self))] | d3[Int(t.load(fromByteOffset: s &+ 3, as: UInt8.self))]
                                bad |= x
                                c.storeBytes(of: UInt8(truncatingIfNeeded: x >> 16), toByteOffset: k &* 3, as: UInt8.self)
                                c.storeBytes(of: UInt8(truncatingIfNeeded: x >> 8), toByteOffset: k &* 3 &+ 1, as: UInt8.self)
                                c.storeBytes(of: UInt8(truncatingIfNeeded: x), toByteOffset: k &* 3 &+ 2, as: UInt8.self)
                            }
                        } }
                    } }
                }
                if bad & invalid != 0 { return false }
                var length = n &* 3
                if q &+ n == fullQuads, fullQuads < quads {   // the final "xx==" or "xxx="
                    let s = fullQuads &* 4
                    let keep = total % 3   // 1 or 2 bytes
                    let third = keep == 2 ? d2[Int(text[s &+ 2])] : (text[s &+ 2] == UInt8(ascii: "=") ? 0 : invalid)
                    let x = d0[Int(text[s])] | d1[Int(text[s &+ 1])] | third
                    guard x & invalid == 0, text[s &+ 3] == UInt8(ascii: "=") else { return false }
                    c.storeBytes(of: UInt8(truncatingIfNeeded: x >> 16), toByteOffset: length, as: UInt8.self)
                    c.storeBytes(of: UInt8(truncatingIfNeeded: x >> 8), toByteOffset: length &+ 1, as: UInt8.self)
                    length &+= keep
                }
                body(UnsafeRawBufferPointer(start: c, count: length), produced)
                produced &+= length; q &+= n
            } while q < fullQuads
            return true
        }
    }

    /// Decodes base64 `text` holding `count` little-endian values of `dtype` (bytes per value `size`) to
    /// Doubles. Nil when the text is not standard base64; the caller has checked the length.
    static func decodeDoubles(_ text: UnsafeBufferPointer<UInt8>, dtype: String, count: Int) -> [Double]? {
        var ok = true
        let out = [Double](unsafeUninitializedCapacity: count) { dst, initialized in
            let size = WireTensor.byteSize[dtype] ?? 1
            ok = decode(text) { bytes, first in
                let v0 = first / size, n = bytes.count / size
                guard v0 &+ n <= count else { ok = false; return }
                WireTensor.widen(UnsafeRawBufferPointer(rebasing: bytes[0 ..< n &* size]), dtype: dtype, into: dst.baseAddress! + v0)
            } && ok
            if ok { initialized = count } else { initialized = 0 }
        }
        return ok ? out : nil
    }
}
