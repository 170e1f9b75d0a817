import ArgumentParser
import AsyncHTTPClient
import FineGrain
import FineGrainServer
import Foundation
import NIOCore

/// "http://host:port[/...]" -> (host, port), for the blocking client (IPv4 literal hosts only).
func hostAndPort(_ url: String) throws -> (String, Int) {
    guard let u = URLComponents(string: url), let host = u.host, let port = u.port else { throw ValidationError("--url must be http://HOST:PORT, got \(url)") }
    return (host == "localhost" ? "127.0.0.1" : host, port)
}

/// Issue 5's target: a 256 x 1024 GRPO or GAE round trip costs at most 1.3x the in-process time of
/// decoding plus computing. Measured per estimator and encoding, medians over `--repeats`.
struct RoundTrip: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roundtrip", abstract: "Round trip of one verl-layout batch vs the same work in process.")

    @OptionGroup var target: Target
    @Option(help: "Rows (responses).") var rows = 256
    @Option(help: "Columns (response length; every row is padded to it, as in verl).") var width = 1024
    @Option(help: "Timed repeats per case (median reported).") var repeats = 20
    @Option(help: "Estimators.") var estimators = "grpo,gae"
    @Option(help: "Encodings: short (lossless short forms in JSON), framed (short forms, dense tensors as raw bytes after the JSON: the Python client's default), base64 (dense compact), json; shm (dense tensors and the answer by reference to files in --shm-dir) when --shm-dir is given.")
    var encodings = "short,framed,base64,json"
    @Option(help: "The server's --shm-dir (same-host shared-memory transport); adds the shm encoding.") var shmDir: String?
    @Flag(help: "JSON lines instead of a table.") var json = false

    func run() async throws {
        let client = makeClient(connections: 2)
        let rows = rows, width = width, repeats = repeats, json = json
        let estimators = estimators.split(separator: ",").map(String.init)
        let encodings = encodings.split(separator: ",").map(String.init) + (shmDir != nil && !encodings.contains("shm") ? ["shm"] : [])
        let shmDir = shmDir
        if !json {
            print("round trip of one \(rows) x \(width) verl batch (medians of \(repeats)); ratio = round trip / in-process decode+compute; pipeline = parse+compute+encode in process")
            print("round trip = blocking HTTP/1.1 client on a kept-alive socket (as the Python client); AHC = AsyncHTTPClient")
            print("estimator encoding  request MB  answer MB  decode+compute ms  pipeline ms  round trip ms  ratio  (vs pipeline)  AHC ms")
        }
        try await withServer(target, sharedMemoryDirectory: shmDir) { url in
            for estimator in estimators {
                var batch = SyntheticBatch.verlBenchmark(responses: rows, maxLength: width, group: 8, seed: 0)
                batch.oldLogprob = nil; batch.refLogprob = nil; batch.logprob = nil
                if estimator != "gae" { batch.value = nil }
                for encoding in encodings {
                    // As the Python client sends it: uint8 (or row-lengths) mask, no second copy of returns equal to the
                    // advantages; "short" adds sparse rewards and per-row answers (WireShortForms).
                    var headerLength: Int?
                    let body: Data
                    if encoding == "framed" {
                        (body, headerLength) = try ServiceRequests.verlAdvantagesFramed(estimator: estimator, batch: batch, width: width)
                    } else {
                        body = try ServiceRequests.verlAdvantages(estimator: estimator, batch: batch, width: width, encoding: encoding,
                                                                  omitReturnsIfAdvantages: true,
                                                                  sharedMemory: shmDir.map { ($0, "fg-roundtrip-\(getpid())-\(estimator)") })
                    }
                    let bodyBuffer = ByteBuffer(bytes: body)
                    let clock = ContinuousClock()
                    var inProc = [Double](), pipeline = [Double](), trip = [Double](), ahc = [Double]()
                    var answerBytes = 0
                    let blocking = try BlockingClient(url: url)
                    let bodyBytes = [UInt8](body)
                    // Interleaved: each repeat times all four one after another, so a change in the machine's
                    // load hits the in-process and the served figures alike (2 warm-up repeats).
                    for i in 0 ..< repeats + 2 {
                        let t0 = clock.now
                        _ = try InProcessService.decodeAndComputeAdvantages(bodyBuffer, sharedMemory: shmDir, headerLength: headerLength)
                        let t1 = clock.now
                        let (status, answer) = InProcessService.advantagesRoute(bodyBuffer, sharedMemory: shmDir, headerLength: headerLength)
                        let t2 = clock.now
                        guard status == 200 else { throw ValidationError("in-process \(estimator) answered \(status): \(String(buffer: answer).prefix(300))") }
                        answerBytes = answer.readableBytes
                        let (served, n) = try blocking.post("/v1/advantages", body: bodyBytes, headerLength: headerLength)
                        let t3 = clock.now
                        guard served == 200, n == answerBytes else { throw ValidationError("\(estimator) answered \(served) with \(n) bytes") }
                        let (viaAHC, body) = try await post(client, ahcURL(url, "/v1/advantages"), bodyBuffer, headerLength: headerLength)
                        let t4 = clock.now
                        guard viaAHC == 200 else { throw ValidationError("\(estimator) answered \(viaAHC): \(String(buffer: body).prefix(300))") }
                        if i >= 2 {
                            inProc.append(seconds(t1 - t0)); pipeline.append(seconds(t2 - t1))
                            trip.append(seconds(t3 - t2)); ahc.append(seconds(t4 - t3))
                        }
                    }
                    let (a, p, r, h) = (median(inProc), median(pipeline), median(trip), median(ahc))
                    if json {
                        let o: [String: Any] = ["case": "service_roundtrip", "estimator": estimator, "encoding": encoding, "rows": rows, "width": width,
                                                "request_bytes": body.count, "answer_bytes": answerBytes, "decode_compute_s": a,
                                                "pipeline_s": p, "roundtrip_s": r, "roundtrip_ahc_s": h, "ratio": r / a, "ratio_vs_pipeline": r / p,
                                                "tokens_per_s": Double(rows * width) / r, "peak_rss_mb": peakRSSMB()]
                        print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
                    } else {
                        print(estimator.padding(toLength: 9, withPad: " ", startingAt: 0) + " " + encoding.padding(toLength: 8, withPad: " ", startingAt: 0) + String(format: " %11.2f %10.2f %18.2f %11.2f %14.2f %6.2f  (%.2f)        %6.2f",
                                     Double(body.count) / 1e6, Double(answerBytes) / 1e6, a * 1e3, p * 1e3, r * 1e3, r / a, r / p, h * 1e3))
                    }
                }
            }
        }
        try await client.shutdown()
        if !json { print(String(format: "peak RSS of this process (client + in-process server): %.0f MB", peakRSSMB())) }
    }
}
