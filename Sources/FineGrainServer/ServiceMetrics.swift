import Prometheus

/// The service's Prometheus metrics (`GET /metrics`, text exposition format), one registry per service
/// instance so tests and several in-process servers do not share counters.
///
/// - `finegrain_http_requests_total{route, status}`: answered requests;
/// - `finegrain_http_request_duration_seconds{route}`: latency from body received to response ready
///   (histogram; buckets from 0.5 ms to 10 s);
/// - `finegrain_tokens_processed_total{route}`: tokens in successful estimator / loss requests;
/// - `finegrain_requests_in_flight`, `finegrain_requests_rejected_total` (503 when the queue is full).
public final class ServiceMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let inFlightGauge: Gauge
    private let rejectedCounter: Counter
    static let buckets: [Duration] = [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                      .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                      .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10)]

    public init() {
        inFlightGauge = registry.makeGauge(descriptor: MetricNameDescriptor(
            namespace: "finegrain", metricName: "requests_in_flight", helpText: "Requests being computed or queued"))
        rejectedCounter = registry.makeCounter(descriptor: MetricNameDescriptor(
            namespace: "finegrain", metricName: "requests_rejected", unitName: "total",
            helpText: "Requests answered 503 because the compute queue was full"), labels: [])
    }

    func record(route: String, status: Int, duration: Duration, tokens: Int) {
        registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "finegrain", subsystem: "http", metricName: "requests",
                                                              unitName: "total", helpText: "Answered HTTP requests"),
                             labels: [("route", route), ("status", String(status))]).increment()
        registry.makeDurationHistogram(descriptor: MetricNameDescriptor(
            namespace: "finegrain", subsystem: "http", metricName: "request_duration", unitName: "seconds",
            helpText: "Time from request body received to response ready"),
            labels: [("route", route)], buckets: Self.buckets).recordNanoseconds(duration.nanoseconds)
        if tokens > 0 {
            registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "finegrain", metricName: "tokens_processed",
                                                                  unitName: "total", helpText: "Tokens in successful requests"),
                                 labels: [("route", route)]).increment(by: Double(tokens))
        }
    }

    func inFlight(_ delta: Double) { inFlightGauge.increment(by: delta) }
    func rejected() { rejectedCounter.increment() }

    /// The exposition text.
    public func render() -> [UInt8] { registry.emitToBuffer() }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
}
