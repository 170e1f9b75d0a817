import ArgumentParser
import FineGrain
import FineGrainTrainer
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `finegrain bench`: throughput (tokens/s) and peak memory of the estimators and losses on the verl-style
/// benchmark batch. Each case runs in its own child process by default, so `peak_rss_mb` is that case's
/// own high-water mark (batch included; `batch_rss_mb` is the RSS right after building the batch).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark estimators and losses on the verl-style batch (512 x 1..4096 tokens, group 8)."
    )

    @Option(help: "Number of responses.") var responses = 512
    @Option(help: "Maximum response length (lengths are uniform in 1...max).") var maxLength = 4096
    @Option(help: "Responses per group.") var group = 8
    @Option(help: "Timed repetitions (median reported).") var repeats = 7
    @Option(help: "Comma-separated case names (default: all).") var only: String?
    @Option(help: "Batch seed.") var seed: UInt64 = 0
    @Flag(help: "Print one JSON object per line.") var json = false
    @Flag(help: "Run every case in this process (peak memory is then cumulative).") var inProcess = false
    @Flag(help: "Benchmark the embedded trainer's default model instead (forward+backward and sampling tokens/s, matmul efficiency).")
    var model = false
    @Option(help: "With --model: rows per batch.") var modelBatch = 16
    @Option(help: "With --model: tokens per row.") var modelLength = 64
    @Option(help: "With --model: the trainer's own thread count (Parallel.maxThreads; BLAS threads follow OPENBLAS_NUM_THREADS).")
    var modelThreads = 2
    @Flag(help: "With --model: also print where a forward+backward step spends its time, per layer kind.")
    var layers = false

    func run() throws {
        if model { return try runModel() }
        let names = only.map { $0.split(separator: ",").map(String.init) } ?? BenchCases.names
        for n in names where !BenchCases.names.contains(n) {
            throw ValidationError("unknown bench case '\(n)'; known: \(BenchCases.names.joined(separator: ", "))")
        }
        if inProcess || names.count == 1 {
            let shape = BenchShape(responses: responses, maxLength: maxLength, group: group, seed: seed)
            for name in names {
                let batch = BenchCases.builder(for: name)(shape)
                let batchRSS = peakRSSMegabytes()
                let r = try BenchCases.measure(name, batch: batch, repeats: repeats)
                emit(r, batchRSS: batchRSS)
            }
            return
        }
        // One child per case, so each case's peak memory is its own.
        for name in names {
            var args = CommandLine.arguments.dropFirst().filter { $0 != "--in-process" }
            if let i = args.firstIndex(of: "--only") { args.removeSubrange(i ... i + 1) }
            args = args.filter { !$0.hasPrefix("--only=") }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/proc/self/exe")
            p.arguments = Array(args) + ["--only", name]
            try p.run()
            p.waitUntilExit()
            if p.terminationStatus != 0 { throw ExitCode(p.terminationStatus) }
        }
    }

    /// The trainer's default model (`GPTConfig.small`, what `finegrain train` uses) at the RL update's shape.
    func runModel() throws {
        let config = GPTConfig.small()
        Parallel.maxThreads = modelThreads
        let r = try ModelBenchmark.run(config: config, batch: modelBatch, length: modelLength, repeats: repeats)
        let mm = ModelBenchmark.matmulEfficiency(config: config, batch: modelBatch, length: modelLength)
        let tokens = Double(modelBatch * modelLength)
        if json {
            for (name, tps) in [("model_fwd_bwd", r.fwdBwdTokensPerSec), ("model_sample", r.sampleTokensPerSec)] {
                let o = JSONValue.object(["name": .string(name), "impl": .string("finegrain"), "tokens": .number(tokens),
                                          "tokens_per_s": .number(tps), "parameters": .number(Double(config.parameterCount)),
                                          "peak_rss_mb": .number((peakRSSMegabytes() * 10).rounded() / 10)])
                print(String(decoding: try o.serialized(), as: UTF8.self))
            }
            for m in mm {
                let o = JSONValue.object(["name": .string("matmul/" + m.name), "m": .number(Double(m.m)), "n": .number(Double(m.n)),
                                          "k": .number(Double(m.k)), "layer_gflops": .number(m.layerGFlops),
                                          "sgemm_gflops": .number(m.sgemmGFlops), "efficiency": .number(m.efficiency)])
                print(String(decoding: try o.serialized(), as: UTF8.self))
            }
        } else {
            print(String(format: "model d=%d L=%d H=%d (%d parameters), batch %d x %d tokens", config.dModel, config.nLayers,
                         config.nHeads, config.parameterCount, modelBatch, modelLength))
            print(String(format: "forward+backward  %10.0f tokens/s", r.fwdBwdTokensPerSec))
            print(String(format: "sampling (KV)     %10.0f tokens/s", r.sampleTokensPerSec))
            for m in mm {
                print(String(format: "  %-24@ %4dx%4dx%4d  layer %6.1f GFLOP/s  sgemm %6.1f GFLOP/s  (%3.0f%%)",
                             m.name as NSString, m.m, m.n, m.k, m.layerGFlops, m.sgemmGFlops, 100 * m.efficiency))
            }
            if layers {
                let prof = try ModelBenchmark.layerProfile(config: config, batch: modelBatch, length: modelLength, repeats: repeats)
                let sum = prof.sections.reduce(0) { $0 + $1.ms }
                print(String(format: "fastest step %.3f ms; fastest of each section (sum %.3f ms):", prof.totalMs, sum))
                for s in prof.sections {
                    print(String(format: "  %-16@ %7.3f ms  %5.1f%%", s.name as NSString, s.ms, 100 * s.ms / sum))
                }
                // attention kernels on one thread: the model's per-shard rows, then longer sequences (crossover)
                let rows = max(1, modelBatch / max(1, Parallel.batchShards))
                print("attention on one thread, \(rows) rows, d=\(config.dModel) \(config.nHeads) heads (ms, forward / backward); "
                      + "BLAS core \(ModelBenchmark.blasCoreName), model uses \(Attention.preferTriangle ? "triangle" : "BLAS"):")
                let lengths = [modelLength] + [128, 256, 384, 512].filter { $0 != modelLength }
                for a in ModelBenchmark.attentionKernels(B: rows, lengths: lengths, C: config.dModel, NH: config.nHeads, repeats: repeats) {
                    print(String(format: "  T=%4d  triangle %7.3f / %7.3f   BLAS %7.3f / %7.3f   BLAS/triangle %.2fx",
                                 a.T, a.triangleForwardMs, a.triangleBackwardMs, a.blasForwardMs, a.blasBackwardMs, a.speedup))
                }
            }
            print(String(format: "peak RSS %.1f MB", peakRSSMegabytes()))
        }
    }

    func emit(_ r: BenchResult, batchRSS: Double) {
        let peak = peakRSSMegabytes()
        if json {
            let o = JSONValue.object([
                "name": .string(r.name), "impl": .string("finegrain"), "tokens": .number(Double(r.tokens)),
                "median_s": .number(r.medianSeconds), "tokens_per_s": .number(r.tokensPerSecond),
                "peak_rss_mb": .number((peak * 10).rounded() / 10), "batch_rss_mb": .number((batchRSS * 10).rounded() / 10),
            ])
            print(String(decoding: (try? o.serialized()) ?? Data(), as: UTF8.self))
        } else {
            let name = r.name.count < 30 ? r.name + String(repeating: " ", count: 30 - r.name.count) : r.name
            print(name + String(format: "%9d tokens  median %9.3f ms  %8.1f M tokens/s  peak %7.1f MB (batch %.1f MB)",
                                r.tokens, r.medianSeconds * 1e3, r.tokensPerSecond / 1e6, peak, batchRSS))
        }
    }
}

struct BenchResult {
    let name: String
    let tokens: Int
    let medianSeconds: Double
    var tokensPerSecond: Double { Double(tokens) / medianSeconds }
}

/// Process-wide resident-memory high-water mark in MB (Linux `ru_maxrss` is in KiB).
func peakRSSMegabytes() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_maxrss) / 1024
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
