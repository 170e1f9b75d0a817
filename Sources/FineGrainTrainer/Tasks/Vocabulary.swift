import FineGrain

/// A character-level vocabulary for the synthetic tasks.
///
/// Ids `0`, `1`, `2` are the special tokens PAD, BOS and EOS; the task's symbols (single characters) follow
/// from id 3 in the order given. Encoding maps each character of a string to its id; decoding maps ids
/// back, writing the special tokens as `<pad>`, `<bos>`, `<eos>` (or dropping them when asked).
public struct Vocabulary: Sendable, Equatable {
    public static let pad: Int32 = 0
    public static let bos: Int32 = 1
    public static let eos: Int32 = 2
    /// Number of special tokens before the first symbol.
    public static let specialCount = 3
    static let specialNames = ["<pad>", "<bos>", "<eos>"]

    /// The task's symbols, in id order (symbol `i` has id `i + 3`).
    public let symbols: [Character]
    private let ids: [Character: Int32]

    /// Total number of token ids, special tokens included (the model's vocabulary size).
    public var size: Int { symbols.count + Self.specialCount }

    /// Throws when a symbol repeats.
    public init(symbols: [Character]) throws {
        var ids: [Character: Int32] = [:]
        for (i, c) in symbols.enumerated() {
            if ids[c] != nil {
                throw FineGrainError.invalidField(field: "vocabulary.symbols", reason: "symbol '\(c)' appears twice")
            }
            ids[c] = Int32(i + Self.specialCount)
        }
        self.symbols = symbols
        self.ids = ids
    }

    /// Builds a vocabulary from the characters of a string, in order.
    public init(_ symbols: String) throws { try self.init(symbols: Array(symbols)) }

    /// The id of one symbol; throws naming the symbol when it is not in the vocabulary.
    public func id(_ symbol: Character) throws -> Int32 {
        guard let id = ids[symbol] else {
            throw FineGrainError.invalidField(field: "text", reason: "symbol '\(symbol)' is not in the vocabulary")
        }
        return id
    }

    /// The symbol of one id, or nil for special tokens and ids out of range.
    public func symbol(_ id: Int32) -> Character? {
        let i = Int(id) - Self.specialCount
        return i >= 0 && i < symbols.count ? symbols[i] : nil
    }

    /// Whether `id` is a valid token id of this vocabulary (special tokens included).
    public func contains(_ id: Int32) -> Bool { id >= 0 && Int(id) < size }

    /// Encodes each character of `text`; throws naming the first character that is not a symbol.
    public func encode(_ text: String) throws -> [Int32] { try text.map { try id($0) } }

    /// Decodes ids to text. Special tokens are written `<pad>`/`<bos>`/`<eos>` unless `skipSpecial`;
    /// throws naming the first id that is out of range.
    public func decode(_ tokens: [Int32], skipSpecial: Bool = false) throws -> String {
        var out = ""
        for (k, t) in tokens.enumerated() {
            if let c = symbol(t) { out.append(c); continue }
            guard t >= 0, Int(t) < Self.specialCount else {
                throw FineGrainError.invalidField(field: "tokens[\(k)]", reason: "token id \(t) is outside the vocabulary of size \(size)")
            }
            if !skipSpecial { out += Self.specialNames[Int(t)] }
        }
        return out
    }

    /// Like `decode`, but never throws: ids out of range are written `<?id>`. For logs and reports.
    public func render(_ tokens: [Int32]) -> String {
        tokens.map { t -> String in
            if let c = symbol(t) { return String(c) }
            if t >= 0, Int(t) < Self.specialCount { return Self.specialNames[Int(t)] }
            return "<?\(t)>"
        }.joined()
    }
}
