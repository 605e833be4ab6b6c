// Hand-written addition to the generated bindings: the client's events as an AsyncStream.
// bindings/swift/generate.sh --check keeps the generated declarations it relies on
// (AuthClient.subscribe(listener:), AuthEventListener.onEvent(event:),
// SubscriptionHandle.cancel()) in step with holdfast-ffi.

import Foundation

/// Forwards each event to an AsyncStream's continuation.
private final class StreamListener: AuthEventListener, @unchecked Sendable {
    private let continuation: AsyncStream<AuthEvent>.Continuation

    init(_ continuation: AsyncStream<AuthEvent>.Continuation) {
        self.continuation = continuation
    }

    func onEvent(event: AuthEvent) throws {
        continuation.yield(event)
    }
}

extension AuthClient {
    /// Every event from this call on, in order, without bound on buffering (a slow consumer
    /// never blocks Holdfast's thread). The subscription ends when the stream is terminated:
    /// the consuming task is cancelled or stops iterating and drops the stream.
    ///
    ///     for await event in client.events() { ... }
    public func events() -> AsyncStream<AuthEvent> {
        let (stream, continuation) = AsyncStream<AuthEvent>.makeStream(bufferingPolicy: .unbounded)
        let subscription = subscribe(listener: StreamListener(continuation))
        continuation.onTermination = { _ in subscription.cancel() }
        return stream
    }
}
