import ArgumentParser
import FineGrain
import FineGrainTrainer
import Foundation
import Logging

@main
struct FineGrainCLI: AsyncParsableCommand {
    static func main() async {
        BLASKernels.reexecIfWeakCore()   // OpenBLAS on a CPU it does not know: use the kernels the CPU has
        ProcessTuning.keepLargeFreedBlocks()
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
