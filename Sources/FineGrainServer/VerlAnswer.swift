import FineGrain
import NIOCore

/// The answer of the verl form of `POST /v1/advantages`, written straight into the response buffer:
/// `{"advantages": T, "diagnostics": {...}, "returns": T}` with each `T` a `[B, R]` float32 tensor in the
/// requested encoding. In the compact encoding the base64 text is produced directly from the Double
/// columns (`Base64Columns`): no intermediate float array, String or escape scan.
///
/// `omitReturnsIfAdvantages` (request field `"omit_returns_if_advantages": true`): when the estimator's
/// returns equal its advantages (every outcome estimator: GRPO, RLOO, ...), the answer carries
/// `"returns_are_advantages": true` instead of a second copy of the tensor (half the answer's bytes). The
/// Python client asks for this and rebuilds `returns` itself.
enum VerlAnswer {
    /// `rowValuesMask`: the batch's mask when the request set `"row_values_if_constant": true`
    /// (`WireShortForms`); tensors that are a per-row value times it are then sent as `row_values`.
    static func write(_ out: AdvantageOutput, rows: Int, width: Int, encoding: WireTensor.Encoding,
                      omitReturnsIfAdvantages: Bool, rowValuesMask: [UInt8]? = nil,
                      area: inout AnswerDestination?) throws -> ByteBuffer {
        let same = out.returns.map { $0 == out.advantages } ?? true
        let tensors = (omitReturnsIfAdvantages && same) ? 1 : 2
        // An outcome estimator says so (`rowValues`, exact by construction); otherwise the scan decides.
        let shortAdvantages = rowValuesMask.flatMap { out.rowValues ?? WireTensor.rowValues(out.advantages, mask: $0, rows: rows, width: width) }
        var buffer = ByteBufferAllocator().buffer(capacity: shortAdvantages != nil || area != nil ? 8 * rows + 1024
                                                  : tensors * (out.advantages.count * 16 / 3 + 96) + 512)
        buffer.writeStaticString(#"{"advantages":"#)
        if let shortAdvantages, encoding == .base64 {
            WireTensor.writeRowValues(shortAdvantages, rows: rows, width: width, to: &buffer)
        } else {
            try writeTensor(out.advantages, rows: rows, width: width, encoding: encoding, to: &buffer, area: &area)
        }
        buffer.writeStaticString(#","diagnostics":"#)
        buffer.writeBytes(try JSONValue.object(out.diagnostics.mapValues(JSONValue.number)).serialized())
        if tensors == 1 {
            buffer.writeStaticString(#","returns_are_advantages":true}"#)
        } else {
            buffer.writeStaticString(#","returns":"#)
            let returns = out.returns ?? out.advantages
            let shortReturns = rowValuesMask.flatMap { mask in
                same && out.rowValues != nil ? out.rowValues : WireTensor.rowValues(returns, mask: mask, rows: rows, width: width)
            }
            if encoding == .base64, let short = shortReturns {
                WireTensor.writeRowValues(short, rows: rows, width: width, to: &buffer)
            } else {
                try writeTensor(returns, rows: rows, width: width, encoding: encoding, to: &buffer, area: &area)
            }
            buffer.writeStaticString("}")
        }
        return buffer
    }

    /// `writeTensor(_:rows:width:encoding:to:area:)` with no shared-memory area.
    static func writeTensor(_ values: [Double], rows: Int, width: Int, encoding: WireTensor.Encoding, to buffer: inout ByteBuffer) throws {
        var none: AnswerDestination?
        try writeTensor(values, rows: rows, width: width, encoding: encoding, to: &buffer, area: &none)
    }

    /// One `[rows, width]` tensor: `{"data": "<base64>", "dtype": "float32", "shape": [rows, width]}`, nested
    /// lists, or, when the request gave an `answer_shm` area, a reference to the float32 bytes written there.
    static func writeTensor(_ values: [Double], rows: Int, width: Int, encoding: WireTensor.Encoding,
                            to buffer: inout ByteBuffer, area: inout AnswerDestination?) throws {
        if area != nil {
            buffer.writeString(try area!.write(values, rows: rows, width: width))
            return
        }
        switch encoding {
        case .json:
            buffer.writeBytes(try WireTensor.encode(values, rows: rows, width: width, as: .json).serialized())
        case .base64:
            buffer.writeStaticString(#"{"data":"#)
            values.withUnsafeBufferPointer { Base64Columns.appendFloat32String($0, to: &buffer) }
            buffer.writeString(#","dtype":"float32","shape":[\#(rows),\#(width)]}"#)
        }
    }
}
