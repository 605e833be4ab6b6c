// Times `client.accessToken()` on the hot path (a fresh token in memory) from Kotlin: the
// figure for docs/PERFORMANCE.md. bindings/kotlin/bench.sh compiles and runs it.
//
// Starts holdfast-server (the tests' Server), signs up, warms the JIT with 3 rounds, then
// runs 7 rounds of 20,000 calls inside one coroutine and prints each round's mean and the
// median round. Each call is a suspend call through UniFFI's Rust future and JNA. Then the
// same for an app's fast path, `freshAccessToken() ?: accessToken()` (one synchronous call
// while the token is fresh), printed on a line of its own.

package dev.holdfast.bench

import dev.holdfast.AuthClient
import dev.holdfast.ClientConfig
import dev.holdfast.KeySource
import dev.holdfast.tests.PASSWORD
import dev.holdfast.tests.Server
import java.io.File
import java.nio.file.Files
import java.util.UUID
import kotlin.system.exitProcess
import kotlinx.coroutines.runBlocking

const val CALLS = 20_000
const val WARM_UP_ROUNDS = 3
const val ROUNDS = 7

/** Runs `call` in warm-up and measured rounds: each measured round's mean in µs, and whether every call answered the first token. */
private suspend fun rounds(call: suspend () -> String): Pair<List<Double>, String?> {
    var seen: String? = null
    var changed = false
    val means = (1..WARM_UP_ROUNDS + ROUNDS).map {
        val started = System.nanoTime()
        repeat(CALLS) {
            val token = call()
            if (seen == null) seen = token
            if (token != seen) changed = true
        }
        (System.nanoTime() - started) / 1000.0 / CALLS
    }.drop(WARM_UP_ROUNDS)
    return Pair(means, if (changed) null else seen)
}

private fun check(expected: String, seen: String?) {
    if (seen != expected) {
        System.err.println("the token changed during the benchmark")
        exitProcess(1)
    }
}

fun main() {
    val folder = Files.createTempDirectory("holdfast-bench-").toFile()
    try {
        Server().use { server ->
            val config = ClientConfig(
                serverUrl = server.url,
                storagePath = File(folder, "bench.db").path,
                keySource = KeySource.Passphrase("bench"),
                deviceName = "bench",
            )
            AuthClient(config).use { client ->
                runBlocking {
                    client.initialize()
                    client.signUp("bench-${UUID.randomUUID().toString().take(8)}@example.com", PASSWORD, null)
                    val token = client.accessToken()
                    val plain = rounds { client.accessToken() }
                    // The app's fast path: a synchronous freshAccessToken(), the suspend call
                    // only when it has no fresh token (it never lacks one here).
                    val fresh = rounds { client.freshAccessToken() ?: client.accessToken() }
                    check(token, plain.second)
                    check(token, fresh.second)
                    plain.first.forEachIndexed { i, mean -> println("round ${i + 1}: ${"%.2f".format(mean)} us per call") }
                    println(
                        "freshAccessToken() ?: accessToken() from Kotlin: ${"%.2f".format(fresh.first.sorted()[ROUNDS / 2])} us " +
                            "per call (median round)",
                    )
                    val median = plain.first.sorted()[ROUNDS / 2]
                    println("accessToken() from Kotlin: median of $ROUNDS rounds ${"%.2f".format(median)} us per call")
                }
            }
        }
    } finally {
        folder.deleteRecursively()
    }
}
