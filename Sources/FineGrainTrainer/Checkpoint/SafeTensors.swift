import FineGrain
import Foundation

/// Element types of the safetensors format used here.
public enum SafeTensorDType: String, Sendable, CaseIterable {
    case F32, F64, I32, I64, U64
    public var byteSize: Int {
        switch self { case .F32, .I32: return 4; case .F64, .I64, .U64: return 8 }
    }
}

/// One named tensor: dtype, shape and its raw little-endian bytes.
public struct SafeTensor: Sendable, Equatable {
    public var name: String
    public var dtype: SafeTensorDType
    public var shape: [Int]
    public var data: [UInt8]

    public init(name: String, dtype: SafeTensorDType, shape: [Int], data: [UInt8]) {
        self.name = name; self.dtype = dtype; self.shape = shape; self.data = data
    }

    public static func float32(_ name: String, shape: [Int], _ values: [Float]) -> SafeTensor {
        SafeTensor(name: name, dtype: .F32, shape: shape, data: littleEndianBytes(values.map(\.bitPattern)))
    }
    public static func uint64(_ name: String, shape: [Int], _ values: [UInt64]) -> SafeTensor {
        SafeTensor(name: name, dtype: .U64, shape: shape, data: littleEndianBytes(values))
    }
    public static func int64(_ name: String, shape: [Int], _ values: [Int64]) -> SafeTensor {
        SafeTensor(name: name, dtype: .I64, shape: shape, data: littleEndianBytes(values.map { UInt64(bitPattern: $0) }))
    }

    public var elementCount: Int { shape.reduce(1, *) }

    /// The values as Float; throws unless the dtype is F32.
    public func floats() throws -> [Float] {
        try require(.F32)
        return SafeTensor.fromLittleEndian(data, as: UInt32.self).map(Float.init(bitPattern:))
    }
    public func uint64s() throws -> [UInt64] {
        try require(.U64)
        return SafeTensor.fromLittleEndian(data, as: UInt64.self)
    }
    public func int64s() throws -> [Int64] {
        try require(.I64)
        return SafeTensor.fromLittleEndian(data, as: UInt64.self).map { Int64(bitPattern: $0) }
    }

    func require(_ d: SafeTensorDType) throws {
        if dtype != d { throw FineGrainError.invalidField(field: "checkpoint tensor '\(name)'", reason: "expected dtype \(d.rawValue), found \(dtype.rawValue)") }
    }

    static func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: values.count * MemoryLayout<T>.size)
        out.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: i * MemoryLayout<T>.size, as: T.self) }
        }
        return out
    }

    static func fromLittleEndian<T: FixedWidthInteger>(_ bytes: [UInt8], as: T.Type) -> [T] {
        let n = bytes.count / MemoryLayout<T>.size
        return bytes.withUnsafeBytes { raw in
            (0 ..< n).map { T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) }
        }
    }
}

/// The safetensors file format (Hugging Face): an 8-byte little-endian header length `n`, an `n`-byte JSON
/// header `{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}`
/// (offsets relative to the data section, contiguous, in order), then the raw little-endian data. The
/// header is padded with spaces to a multiple of 8 bytes. Files written here load with Python's
/// `safetensors.numpy.load_file`.
public enum SafeTensors {
    /// Encodes tensors (in the given order) and a string metadata map.
    public static func encode(_ tensors: [SafeTensor], metadata: [String: String]) throws -> [UInt8] {
        var seen = Set<String>()
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(items.joined(separator: ","))}")
        }
        var offset = 0
        for t in tensors {
            let field = "checkpoint tensor '\(t.name)'"
            if t.name == "__metadata__" || t.name.isEmpty { throw FineGrainError.invalidField(field: field, reason: "reserved or empty name") }
            if !seen.insert(t.name).inserted { throw FineGrainError.invalidField(field: field, reason: "duplicate tensor name") }
            if t.shape.contains(where: { $0 < 0 }) { throw FineGrainError.invalidField(field: field, reason: "negative dimension in shape \(t.shape)") }
            if t.data.count != t.elementCount * t.dtype.byteSize {
                throw FineGrainError.invalidField(field: field, reason: "\(t.data.count) bytes for shape \(t.shape) of \(t.dtype.rawValue)")
            }
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append("\(jsonString(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.data.count)]}")
            offset += t.data.count
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + headerBytes.count + offset)
        out += SafeTensor.littleEndianBytes([UInt64(headerBytes.count)])
        out += headerBytes
        for t in tensors { out += t.data }
        return out
    }

    /// Decodes and validates a safetensors byte string. Errors name the tensor (or the header) at fault.
    public static func decode(_ bytes: [UInt8]) throws -> (tensors: [SafeTensor], metadata: [String: String]) {
        func bad(_ field: String, _ reason: String) -> FineGrainError { .invalidField(field: field, reason: reason) }
        if bytes.count < 8 { throw bad("checkpoint header", "file is \(bytes.count) bytes; too short for the 8-byte header length") }
        let n = SafeTensor.fromLittleEndian(Array(bytes[0 ..< 8]), as: UInt64.self)[0]
        if n > UInt64(bytes.count - 8) {
            throw bad("checkpoint header", "header length \(n) exceeds the file's remaining \(bytes.count - 8) bytes (truncated or not a safetensors file)")
        }
        let headerEnd = 8 + Int(n)
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: Data(bytes[8 ..< headerEnd])) } catch {
            throw bad("checkpoint header", "header is not valid JSON")
        }
        guard let obj = json as? [String: Any] else { throw bad("checkpoint header", "header is not a JSON object") }
        var metadata: [String: String] = [:]
        if let m = obj["__metadata__"] {
            guard let map = m as? [String: Any] else { throw bad("checkpoint header", "__metadata__ is not an object") }
            for (k, v) in map {
                guard let s = v as? String else { throw bad("checkpoint metadata '\(k)'", "value is not a string") }
                metadata[k] = s
            }
        }
        let dataSize = bytes.count - headerEnd
        var tensors: [(Int, SafeTensor)] = []
        for (name, value) in obj where name != "__metadata__" {
            let field = "checkpoint tensor '\(name)'"
            guard let t = value as? [String: Any] else { throw bad(field, "entry is not an object") }
            guard let ds = t["dtype"] as? String else { throw bad(field, "missing dtype") }
            guard let dtype = SafeTensorDType(rawValue: ds) else { throw bad(field, "unsupported dtype \(ds)") }
            guard let shapeAny = t["shape"] as? [Any], let shape = intArray(shapeAny), shape.allSatisfy({ $0 >= 0 }) else {
                throw bad(field, "shape is not a list of non-negative integers")
            }
            guard let offAny = t["data_offsets"] as? [Any], let off = intArray(offAny), off.count == 2 else {
                throw bad(field, "data_offsets is not [begin, end]")
            }
            let (begin, end) = (off[0], off[1])
            if begin < 0 || end < begin || end > dataSize {
                throw bad(field, "data_offsets [\(begin), \(end)] outside the \(dataSize)-byte data section (truncated file?)")
            }
            var count = 1
            for d in shape {
                let (r, o) = count.multipliedReportingOverflow(by: d)
                if o { throw bad(field, "shape \(shape) overflows") }
                count = r
            }
            if end - begin != count * dtype.byteSize {
                throw bad(field, "data_offsets span \(end - begin) bytes but shape \(shape) of \(ds) needs \(count * dtype.byteSize)")
            }
            let data = Array(bytes[(headerEnd + begin) ..< (headerEnd + end)])
            tensors.append((begin, SafeTensor(name: name, dtype: dtype, shape: shape, data: data)))
        }
        tensors.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1.name < $1.1.name) }
        return (tensors.map(\.1), metadata)
    }

    /// Writes atomically: to a temporary file in the same directory, then renamed over `url`.
    public static func write(_ tensors: [SafeTensor], metadata: [String: String], to url: URL) throws {
        let bytes = try encode(tensors, metadata: metadata)
        let dir = url.deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)-\(UInt64.random(in: 0 ... UInt64.max))")
        do {
            try Data(bytes).write(to: tmp)
            // POSIX rename(2) atomically replaces an existing file on the same file system.
            if rename(tmp.path, url.path) != 0 {
                throw FineGrainError.invalidField(field: "checkpoint path", reason: "cannot rename the temporary file onto \(url.path) (errno \(errno))")
            }
        } catch let e as FineGrainError {
            try? FileManager.default.removeItem(at: tmp)
            throw e
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw FineGrainError.invalidField(field: "checkpoint path", reason: "cannot write \(url.path): \(error.localizedDescription)")
        }
    }

    public static func read(from url: URL) throws -> (tensors: [SafeTensor], metadata: [String: String]) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw FineGrainError.invalidField(field: "checkpoint path", reason: "cannot read \(url.path): \(error.localizedDescription)")
        }
        return try decode([UInt8](data))
    }

    static func intArray(_ a: [Any]) -> [Int]? {
        var out: [Int] = []
        for x in a {
            guard let n = x as? NSNumber else { return nil }
            let d = n.doubleValue
            if d != d.rounded() || d < 0 || d > 9.0e15 { return nil }
            out.append(n.intValue)
        }
        return out
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
