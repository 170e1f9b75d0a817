import FineGrain
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A framed body for `POST /v1/advantages` and `POST /v1/losses` (verl forms): the JSON request followed by raw tensor bytes, so
/// a large batch needs neither base64 nor a JSON parse of megabyte strings on either side.
///
///     Content-Type: application/x-finegrain-framed
///     FineGrain-Header-Length: N
///     <N bytes: the JSON request object> <the frame: little-endian C-order tensor bytes>
///
/// A tensor in the header may be `{"dtype", "shape", "frame_offset": k}`: bytes `[k, k + size)` of the
/// frame. Every other form (JSON lists, base64, short forms, `shm` references) still works inside the
/// header. The answer of a framed request is framed the same way: its header is the JSON answer, with each
/// dense tensor as `{"dtype": "float32", "shape", "frame_offset"}` into the answer's frame (per-row answers
/// stay inline). Errors stay plain JSON objects (`Content-Type: application/json`), so a client checks
/// the status first, as for every route.
///
/// Why, beside base64 and shared memory: from Python most of a 256 x 1024 GAE call with tensors in the
/// body was base64 and parsing the 2.8 MB answer, not the server; `np.frombuffer` on a frame is free, and
/// the bytes on the wire drop by a quarter. Shared memory (`SharedMemory`) stays the same-host option;
/// this one works across machines.
enum FramedBody {
    static let mediaType = "application/x-finegrain-framed"
    static let headerLength = HTTPField.Name("FineGrain-Header-Length")!

    /// Whether the request's body is framed (by its `Content-Type`).
    static func accepts(_ request: Request) -> Bool {
        guard let type = request.headers[.contentType] else { return false }
        return type.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } == mediaType
    }

    /// The header length from the request's `FineGrain-Header-Length`.
    static func headerLength(_ request: Request) throws -> Int {
        guard let text = request.headers[headerLength], let n = Int(text.trimmingCharacters(in: .whitespaces)), n >= 0 else {
            throw FineGrainError.invalidField(field: "FineGrain-Header-Length",
                                              reason: "a framed body needs this HTTP header: the byte length of its JSON part")
        }
        return n
    }

    /// Split, parse, compute, answer framed: `POST /v1/advantages`.
    static func advantages(_ buffer: ByteBuffer, headerLength n: Int, shared: SharedMemory?) -> FineGrainService.Outcome {
        handle(buffer, headerLength: n, shared: shared) { body, sources in
            try VerlEndpoint.advantages(body, sources: sources, answerInFrame: true)
        }
    }

    /// The same for `POST /v1/losses` (verl form: the gradient comes back in the frame).
    static func losses(_ buffer: ByteBuffer, headerLength n: Int, shared: SharedMemory?) -> FineGrainService.Outcome {
        handle(buffer, headerLength: n, shared: shared) { body, sources in
            try VerlLossEndpoint.losses(body, sources: sources, answerInFrame: true)
        }
    }

    static func handle(_ buffer: ByteBuffer, headerLength n: Int, shared: SharedMemory?,
                       _ work: ([String: JSONValue], TensorSources) throws -> (ServiceAnswer, tokens: Int)) -> FineGrainService.Outcome {
        guard n <= buffer.readableBytes else {
            return .refused(FineGrainError.invalidField(field: "FineGrain-Header-Length",
                                                        reason: "is \(n) but the body has only \(buffer.readableBytes) bytes"))
        }
        let header = buffer.getSlice(at: buffer.readerIndex, length: n)!
        let frame = buffer.getSlice(at: buffer.readerIndex + n, length: buffer.readableBytes - n)!
        guard let doc = try? header.withUnsafeReadableBytes({ try JSONValue.parse(bytes: $0) }), let body = doc.objectValue else {
            return Outcome(.badRequest, FineGrainService.errorData("the JSON part of the framed body (its first \(n) bytes) is not a valid JSON object"), tokens: 0)
        }
        guard body["verl"] != nil else {
            return .refused(FineGrainError.invalidField(field: "verl", reason: "a framed body carries a verl-layout batch"))
        }
        do {
            let (answer, tokens) = try work(body, TensorSources(shared: shared, frame: frame))
            let (head, tail): (ByteBuffer, ByteBuffer)
            switch answer {
            case let .framed(h, t): (head, tail) = (h, t)
            case let .bytes(h): (head, tail) = (h, ByteBuffer())   // the answer went to shared memory (answer_shm)
            case let .json(v): (head, tail) = (ByteBuffer(bytes: try v.serialized()), ByteBuffer())
            }
            // One copy of the frame behind the header (~0.1 ms per MB); a two-part response body would save
            // it at the price of a second buffer type through `Outcome`.
            var out = ByteBufferAllocator().buffer(capacity: head.readableBytes + tail.readableBytes)
            out.writeImmutableBuffer(head)
            out.writeImmutableBuffer(tail)
            var o = Outcome(.ok, out, tokens: tokens, contentType: mediaType)
            o.headerLength = head.readableBytes
            return o
        } catch {
            return .refused(error)
        }
    }

    typealias Outcome = FineGrainService.Outcome
}

/// Where the tensors a request sends by reference live: the server's shared-memory directory (`{"shm"}`,
/// nil when the server has none) and a framed body's binary part (`{"frame_offset"}`).
struct TensorSources: Sendable {
    var shared: SharedMemory?
    var frame: ByteBuffer?

    static let none = TensorSources()

    func decode(_ o: [String: JSONValue], field: String, rank: Int) throws -> WireTensor {
        if o["shm"] != nil {
            guard let shared else { throw SharedMemory.off }
            return try shared.decode(o, field: field, rank: rank)
        }
        guard let frame else {
            throw FineGrainError.invalidField(field: "\(field).frame_offset", reason: "only a framed body (Content-Type: \(FramedBody.mediaType)) has a frame")
        }
        let (dtype, size, shape, count) = try WireTensor.referenceHeader(o, field: field, rank: rank)
        let offset = try SharedMemory.integer(o["frame_offset"], field: "\(field).frame_offset")
        guard offset <= frame.readableBytes, count * size <= frame.readableBytes - offset else {
            throw FineGrainError.invalidField(field: "\(field).frame_offset",
                                              reason: "bytes [\(offset), \(offset + count * size)) are past the end of the frame (\(frame.readableBytes) bytes)")
        }
        let values = frame.withUnsafeReadableBytes { raw in
            [Double](unsafeUninitializedCapacity: count) { out, n in
                WireTensor.widen(UnsafeRawBufferPointer(rebasing: raw[offset ..< offset + count * size]), dtype: dtype, into: out.baseAddress!)
                n = count
            }
        }
        return WireTensor(shape: shape, values: values, wasCompact: true)
    }
}

/// Where the answer's dense tensors go instead of the JSON: a region of the client's shared-memory file
/// (`answer_shm`) or the framed answer's binary part.
enum AnswerDestination {
    case shared(SharedMemory.AnswerArea)
    case frame(ByteBuffer)

    /// Writes `values` as float32 and returns the JSON reference to them.
    mutating func write(_ values: [Double], rows: Int, width: Int) throws -> String {
        switch self {
        case var .shared(area):
            let ref = try area.write(values, rows: rows, width: width)
            self = .shared(area)
            return ref
        case .frame(var buffer):
            self = .frame(ByteBuffer())   // drop this copy's reference, so the writes below do not copy the buffer
            let offset = buffer.writerIndex
            buffer.reserveCapacity(minimumWritableBytes: values.count * 4)
            values.withUnsafeBufferPointer { v in
                _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: v.count * 4) { raw in
                    for k in 0 ..< v.count { raw.storeBytes(of: Float(v[k]).bitPattern.littleEndian, toByteOffset: k &* 4, as: UInt32.self) }
                    return v.count * 4
                }
            }
            self = .frame(buffer)
            return #"{"dtype":"float32","frame_offset":\#(offset),"shape":[\#(rows),\#(width)]}"#
        }
    }
}
