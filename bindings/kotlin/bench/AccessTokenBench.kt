// Times `client.accessToken()` on the hot path (a fresh token in memory) from Kotlin: the
// figure for docs/PERFORMANCE.md. bindings/kotlin/bench.sh compiles and runs it.
//
// Starts holdfast-server (the tests' Server), signs up, warms the JIT with 3 rounds, then
// runs 7 rounds of 20,000 calls inside one coroutine and prints each round's mean and the
// median round. Each call is a suspend call through UniFFI's Rust future and JNA.

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
                    val rounds = (1..WARM_UP_ROUNDS + ROUNDS).map {
                        val started = System.nanoTime()
                        repeat(CALLS) {
                            if (client.accessToken() != token) {
                                System.err.println("the token changed during the benchmark")
                                exitProcess(1)
                            }
                        }
                        (System.nanoTime() - started) / 1000.0 / CALLS
                    }.drop(WARM_UP_ROUNDS)
                    rounds.forEachIndexed { i, mean -> println("round ${i + 1}: ${"%.2f".format(mean)} us per call") }
                    val median = rounds.sorted()[ROUNDS / 2]
                    println("accessToken() from Kotlin: median of $ROUNDS rounds ${"%.2f".format(median)} us per call")
                }
            }
        }
    } finally {
        folder.deleteRecursively()
    }
}
