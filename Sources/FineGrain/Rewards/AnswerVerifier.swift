import Foundation

/// Built-in answer verifiers: outcome rewards from a response's text and its reference label, for
/// `POST /v1/rewards` and the OpenRLHF remote-reward route.
///
/// These are the small, dependency-free checkers verifiable-reward RL starts from. Full symbolic math
/// equivalence (Math-Verify, `golden/math`) is a separate, larger piece; names here say what they check.
///
/// - `exact_match`: 1 when the trimmed response equals the trimmed label.
/// - `gsm8k`: verl's GSM8K reward (`verl/utils/reward_score/gsm8k.py`, strict mode), for the format of
///   "Training Verifiers to Solve Math Word Problems" (Cobbe et al., 2021): the answer is the number after the
///   last `#### ` in the final 300 characters, commas removed; reward 1 when it equals the label string
///   exactly, else 0 (verl's defaults `score` 1, `format_score` 0).
/// - `math_answer`: the final answer is the content of the last `\boxed{...}` (the convention of "Measuring
///   Mathematical Problem Solving With the MATH Dataset", Hendrycks et al., 2021), else the last number in
///   the response; reward 1 when it equals the label numerically (|a - b| <= 1e-6 * max(1, |b|)), or, when
///   either side is not a number, as text after removing spaces, `$` and a trailing period.
public enum AnswerVerifier: String, CaseIterable, Sendable {
    case exactMatch = "exact_match"
    case gsm8k
    case mathAnswer = "math_answer"

    /// Looks a verifier up by name, with an error listing the known ones.
    public static func named(_ name: String) throws -> AnswerVerifier {
        guard let v = AnswerVerifier(rawValue: name) else {
            throw FineGrainError.unknownMethod(kind: "verifier", name: name, known: allCases.map(\.rawValue))
        }
        return v
    }

    /// The reward in {0, 1} of one response against its label.
    public func score(response: String, label: String) -> Double {
        switch self {
        case .exactMatch:
            return trimmed(response) == trimmed(label) ? 1 : 0
        case .gsm8k:
            guard let answer = Self.gsm8kAnswer(response) else { return 0 }
            return answer == label ? 1 : 0
        case .mathAnswer:
            guard let answer = Self.finalAnswer(response) else { return 0 }
            let reference = Self.boxedContent(label) ?? label
            return Self.equivalent(answer, reference) ? 1 : 0
        }
    }

    /// Scores a batch; `responses` and `labels` must have equal lengths.
    public func score(responses: [String], labels: [String]) throws -> [Double] {
        guard responses.count == labels.count else {
            throw FineGrainError.invalidField(field: "labels", reason: "has \(labels.count) entries for \(responses.count) responses")
        }
        return zip(responses, labels).map { score(response: $0, label: $1) }
    }

    // MARK: - extraction

    /// verl's strict GSM8K extraction: within the last 300 characters (verl's clip for long responses), the
    /// last match of `#### ` followed by `-?[0-9.,]+`, commas removed.
    static func gsm8kAnswer(_ text: String) -> String? {
        let chars = Array(text.suffix(300))
        let marker: [Character] = ["#", "#", "#", "#", " "]
        var answer: String?
        var i = 0
        while i + marker.count < chars.count {
            if Array(chars[i ..< i + marker.count]) == marker {
                var j = i + marker.count
                if chars[j] == "-" { j += 1 }
                let start = j
                while j < chars.count, chars[j].isASCIIDigit || chars[j] == "." || chars[j] == "," { j += 1 }
                if j > start { answer = String(chars[(i + marker.count) ..< j]).replacingOccurrences(of: ",", with: "") }
            }
            i += 1
        }
        return answer
    }

    /// The last `\boxed{...}` content (braces balanced), else the last number in the text.
    static func finalAnswer(_ text: String) -> String? {
        boxedContent(text) ?? lastNumber(text)
    }

    static func boxedContent(_ text: String) -> String? {
        guard let start = text.range(of: "\\boxed{", options: .backwards) else { return nil }
        var depth = 1
        var i = start.upperBound
        while i < text.endIndex {
            let c = text[i]
            if c == "{" { depth += 1 }
            if c == "}" { depth -= 1; if depth == 0 { return String(text[start.upperBound ..< i]) } }
            i = text.index(after: i)
        }
        return nil
    }

    /// The last maximal run that reads as a number: optional '-', digits with ',' separators, optional
    /// decimal part, optional "/denominator".
    static func lastNumber(_ text: String) -> String? {
        let chars = Array(text)
        var i = chars.count - 1
        while i >= 0 && !chars[i].isASCIIDigit { i -= 1 }
        guard i >= 0 else { return nil }
        let end = i + 1
        while i >= 0 && (chars[i].isASCIIDigit || chars[i] == "." || chars[i] == "," || chars[i] == "/") { i -= 1 }
        if i >= 0 && chars[i] == "-" { i -= 1 }
        var s = String(chars[(i + 1) ..< end])
        while let f = s.first, f == "." || f == "," || f == "/" { s.removeFirst() }
        return s.replacingOccurrences(of: ",", with: "")
    }

    // MARK: - comparison

    static func equivalent(_ a: String, _ b: String) -> Bool {
        let na = normalized(a), nb = normalized(b)
        if let x = numericValue(na), let y = numericValue(nb) {
            return abs(x - y) <= 1e-6 * max(1, abs(y))
        }
        return na == nb
    }

    static func normalized(_ s: String) -> String {
        var t = s.filter { $0 != " " && $0 != "$" }
        if t.hasSuffix(".") { t.removeLast() }
        return t.replacingOccurrences(of: ",", with: "")
    }

    /// A decimal, integer or simple fraction `p/q` (also `\frac{p}{q}`).
    static func numericValue(_ s: String) -> Double? {
        if let d = Double(s), d.isFinite { return d }
        if s.hasPrefix("\\frac{") || s.hasPrefix("-\\frac{") {
            let negative = s.hasPrefix("-")
            let body = s.dropFirst(negative ? 7 : 6)
            let parts = body.split(separator: "}", omittingEmptySubsequences: false)
            guard parts.count >= 2, let p = Double(parts[0]), parts[1].hasPrefix("{"), let q = Double(parts[1].dropFirst()), q != 0 else { return nil }
            return (negative ? -1 : 1) * p / q
        }
        let parts = s.split(separator: "/")
        if parts.count == 2, let p = Double(parts[0]), let q = Double(parts[1]), q != 0 { return p / q }
        return nil
    }

    private func trimmed(_ s: String) -> String { s.trimmingCharacters(in: .whitespacesAndNewlines) }
}

private extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
