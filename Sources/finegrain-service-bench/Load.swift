import ArgumentParser
import AsyncHTTPClient
import FineGrain
import FineGrainServer
import Foundation
import NIOCore

/// Issue 5's reliability check: `--clients` concurrent clients each send `--requests` requests of mixed
/// sizes (and a few malformed ones, which must be answered 4xx); reports errors and latency percentiles.
struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "load", abstract: "Concurrent clients x requests of mixed sizes.")

    @OptionGroup var target: Target
    @Option(help: "Concurrent clients (one connection each).") var clients = 32
    @Option(help: "Requests per client.") var requests = 200
    @Flag(help: "JSON lines instead of text.") var json = false

    /// One kind of request in the mix: its body and the status it must get.
    struct Kind: Sendable { let name: String; let body: ByteBuffer; let expect: Int; let weight: Int }

    static func mix() throws -> [Kind] {
        func verl(_ estimator: String, rows: Int, width: Int, encoding: String, values: Bool = false) throws -> ByteBuffer {
            var b = SyntheticBatch.verlBenchmark(responses: rows, maxLength: width, group: 8, seed: UInt64(rows))
            b.oldLogprob = nil; b.refLogprob = nil
            if !values { b.value = nil }
            return ByteBuffer(bytes: try ServiceRequests.verlAdvantages(estimator: estimator, batch: b, width: width, encoding: encoding))
        }
        let small = (0 ..< 8).map { i in #"{"group": \#(i / 4), "tokens": [1, 2, 3, 4, 5, 6], "reward": \#(i % 2)}"# }.joined(separator: ", ")
        return [
            Kind(name: "rollouts grpo 8x6 json", body: ByteBuffer(string: #"{"estimator": "grpo", "rollouts": [\#(small)]}"#), expect: 200, weight: 8),
            Kind(name: "verl grpo 64x512 base64", body: try verl("grpo", rows: 64, width: 512, encoding: "base64"), expect: 200, weight: 4),
            Kind(name: "verl gae 32x1024 base64", body: try verl("gae", rows: 32, width: 1024, encoding: "base64", values: true), expect: 200, weight: 3),
            Kind(name: "verl rloo 16x256 json", body: try verl("rloo", rows: 16, width: 256, encoding: "json"), expect: 200, weight: 3),
            Kind(name: "bad: NaN reward", body: ByteBuffer(string: #"{"estimator": "grpo", "rollouts": [{"group": 0, "tokens": [1], "reward": "NaN"}]}"#), expect: 400, weight: 1),
            Kind(name: "bad: unknown estimator", body: ByteBuffer(string: #"{"estimator": "nope", "rollouts": [{"group": 0, "tokens": [1], "reward": 1}]}"#), expect: 404, weight: 1),
        ]
    }

    func run() async throws {
        let kinds = try Self.mix()
        let schedule = kinds.indices.flatMap { Array(repeating: $0, count: kinds[$0].weight) }   // [20]
        let client = makeClient(connections: clients)
        let (clients, requests) = (clients, requests)
        let clock = ContinuousClock()
        let (samples, wall) = try await withServer(target) { url in
            let start = clock.now
            let all = await withTaskGroup(of: [(Int, Double, Bool)].self) { group in
                for c in 0 ..< clients {
                    group.addTask {
                        var out = [(Int, Double, Bool)](); out.reserveCapacity(requests)
                        for i in 0 ..< requests {
                            let k = schedule[(c &* 7 &+ i) % schedule.count]
                            let t0 = clock.now
                            let status = (try? await post(client, ahcURL(url, "/v1/advantages"), kinds[k].body).0) ?? -1
                            out.append((k, seconds(clock.now - t0), status == kinds[k].expect))
                        }
                        return out
                    }
                }
                var all = [(Int, Double, Bool)]()
                for await part in group { all.append(contentsOf: part) }
                return all
            }
            return (all, seconds(clock.now - start))
        }
        try await client.shutdown()
        let errors = samples.filter { !$0.2 }.count
        let latencies = samples.map(\.1).sorted()
        let p = (p50: percentile(latencies, 0.5), p90: percentile(latencies, 0.9), p99: percentile(latencies, 0.99), max: latencies.last ?? .nan)
        if json {
            let o: [String: Any] = ["case": "service_load", "clients": clients, "requests": samples.count, "errors": errors, "seconds": wall,
                                    "requests_per_s": Double(samples.count) / wall, "p50_ms": p.p50 * 1e3, "p90_ms": p.p90 * 1e3,
                                    "p99_ms": p.p99 * 1e3, "max_ms": p.max * 1e3, "peak_rss_mb": peakRSSMB()]
            print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print("\(clients) clients x \(requests) requests = \(samples.count) in \(String(format: "%.1f", wall)) s "
              + "(\(String(format: "%.0f", Double(samples.count) / wall)) req/s); unexpected answers: \(errors)")
        print(String(format: "latency p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms", p.p50 * 1e3, p.p90 * 1e3, p.p99 * 1e3, p.max * 1e3))
        for (k, kind) in kinds.enumerated() {
            let l = samples.filter { $0.0 == k }.map(\.1).sorted()
            let bad = samples.filter { $0.0 == k && !$0.2 }.count
            print(String(format: "  %-26@ n=%5d  p50 %7.2f ms  p99 %7.2f ms  expected %d, wrong %d", kind.name as NSString, l.count,
                         percentile(l, 0.5) * 1e3, percentile(l, 0.99) * 1e3, kind.expect, bad))
        }
        print(String(format: "peak RSS of this process: %.0f MB", peakRSSMB()))
        if errors > 0 { throw ExitCode(1) }
    }
}
