import ArgumentParser
import FineGrain
import Foundation
import Logging

#if os(Linux)
@_silgen_name("mallopt") func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

@main
struct FineGrainCLI: AsyncParsableCommand {
    /// Allocator tuning for a process that allocates many same-sized, multi-megabyte token columns in a
    /// loop (estimator outputs, per-step batches): glibc serves blocks above 128 KiB with fresh `mmap`s, so
    /// every call pays page faults and kernel zeroing for its outputs (measured: more system than user time
    /// in `bench`). Keeping freed blocks in the heap (as PyTorch's caching allocator does for tensors) lets
    /// the next call reuse them. Process-level only; the library itself changes nothing.
    static func tuneAllocator() {
        #if os(Linux)
        _ = glibcMallopt(-3, 1 << 30)  // M_MMAP_THRESHOLD (<malloc.h>, not exported by Swift's Glibc module)
        _ = glibcMallopt(-1, 1 << 30)  // M_TRIM_THRESHOLD
        #endif
    }

    static func main() async {
        tuneAllocator()
        do {
            var command = try parseAsRoot()
            if var async = command as? AsyncParsableCommand { try await async.run() } else { try command.run() }
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "finegrain",
        abstract: "Fine-grained reward design and credit assignment for RL post-training of language models.",
        subcommands: [Demo.self, Compare.self, Train.self, Serve.self, Advantages.self, Methods.self, ConformanceCommand.self, Bench.self],
        defaultSubcommand: nil
    )
}

/// Logs go to stderr so stdout stays machine-readable (JSONL, JSON lines).
enum CLILog {
    static let logger: Logger = {
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = ProcessInfo.processInfo.environment["FINEGRAIN_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
            return h
        }
        return Logger(label: "finegrain")
    }()
}

/// `key=value` parameters from the command line.
func parseParams(_ items: [String]) throws -> [String: ParamValue] {
    var out = [String: ParamValue]()
    for item in items {
        guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
            throw ValidationError("--param expects key=value, got '\(item)'")
        }
        out[String(item[..<eq])] = ParamValue(parsing: String(item[item.index(after: eq)...]))
    }
    return out
}

/// Reads a file, or stdin for nil / "-".
func readInput(_ path: String?) throws -> Data {
    if let path, path != "-" {
        guard let d = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read '\(path)'") }
        return d
    }
    return FileHandle.standardInput.readDataToEndOfFile()
}

/// Writes to a file, or stdout for nil / "-".
func writeOutput(_ data: Data, to path: String?) throws {
    if let path, path != "-" {
        try data.write(to: URL(fileURLWithPath: path))
    } else {
        FileHandle.standardOutput.write(data)
    }
}

/// A FineGrainError surfaces as a one-line message and exit code 1, never a crash trace.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ e: Error) { description = "\(e)" }
}
