import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// Hummingbird's HTTP/1 child channel with two changes: `Expect: 100-continue` is answered
/// (`ExpectContinueHandler`), and socket reads of up to `maxRead` bytes instead of
/// NIO's default 64 KiB. A 256 x 1024 batch is ~3 MB; in 64 KiB reads its body arrives as ~45 chunks, each
/// a hop through the request-body async sequence, and collecting it ran at ~1 GB/s on loopback.
struct LargeReadHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel
    let maxRead: Int

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.setOption(ChannelOptions.recvAllocator,
                          value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: maxRead))
            .flatMap { inner.setup(channel: channel, logger: logger) }
    }

    func handle(value: Value, logger: Logger) async { await inner.handle(value: value, logger: logger) }
}

extension HTTPServerBuilder {
    /// HTTP/1 with reads of up to `maxRead` bytes and `100 Continue` (`LargeReadHTTP1Channel`).
    static func http1(maxRead: Int) -> HTTPServerBuilder {
        .init { responder in
            LargeReadHTTP1Channel(inner: HTTP1Channel(responder: responder,
                                                      configuration: .init(additionalChannelHandlers: [ExpectContinueHandler()])),
                                  maxRead: maxRead)
        }
    }
}
