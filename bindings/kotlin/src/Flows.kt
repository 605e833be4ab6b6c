// Hand-written additions to the generated bindings (package dev.holdfast): the session's
// state as a StateFlow and its events as a Flow, on kotlinx-coroutines. Compiled with the
// generated sources into the bindings jar by run_tests.sh.

package dev.holdfast

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow

private class Forward(private val onEvent: (AuthEvent) -> Unit) : AuthEventListener {
    override fun onEvent(event: AuthEvent) = onEvent.invoke(event)
}

/**
 * Every [AuthEvent] from the moment the flow is collected, in order, until the collector
 * stops (which cancels the subscription). Events are buffered without bound, so a slow
 * collector never blocks Holdfast's thread.
 */
fun AuthClient.events(): Flow<AuthEvent> = callbackFlow {
    val subscription = subscribe(Forward { trySend(it) })
    awaitClose {
        subscription.cancel()
        subscription.close()
    }
}.buffer(Channel.UNLIMITED)

/**
 * The session's state, kept current by the client's events for as long as [scope] lives
 * (its end cancels the subscription). Starts with [AuthClient.state].
 */
fun AuthClient.stateFlow(scope: CoroutineScope): StateFlow<AuthState> {
    val state = MutableStateFlow(state())
    val subscription = subscribe(Forward { event ->
        if (event is AuthEvent.StateChanged) state.value = event.state
    })
    // A change between the first read and the subscription has no event of ours: read again.
    // A later event carries a newer state still, so the value ends current either way.
    state.value = state()
    val job = scope.coroutineContext[Job]
    if (job == null) {
        subscription.cancel()
        subscription.close()
        throw IllegalArgumentException("stateFlow needs a scope with a Job, whose end stops the updates")
    }
    job.invokeOnCompletion {
        subscription.cancel()
        subscription.close()
    }
    return state.asStateFlow()
}
