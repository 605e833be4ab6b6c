// Holdfast from Kotlin: sign in (or up), get an access token, register this device and
// make a device proof, then sign out.
//
//   java -cp holdfast-kotlin.jar:jna.jar:kotlinx-coroutines-core-jvm.jar:kotlin-stdlib.jar:quickstart.jar \
//       dev.holdfast.examples.QuickstartKt http://127.0.0.1:8080 [storage-folder]
//
// bindings/kotlin/run_tests.sh builds these jars and runs this against its test server.

package dev.holdfast.examples

import dev.holdfast.AuthClient
import dev.holdfast.AuthEvent
import dev.holdfast.AuthEventListener
import dev.holdfast.AuthState
import dev.holdfast.ClientConfig
import dev.holdfast.HoldfastException
import dev.holdfast.KeySource
import java.io.File
import java.nio.file.Files
import java.util.UUID
import kotlin.system.exitProcess
import kotlinx.coroutines.runBlocking

fun main(args: Array<String>) = runBlocking {
    val serverUrl = args.getOrNull(0) ?: run {
        System.err.println("usage: Quickstart SERVER_URL [STORAGE_FOLDER]")
        exitProcess(2)
    }
    val folder = args.getOrNull(1)?.let(::File) ?: Files.createTempDirectory("holdfast-quickstart-").toFile()

    val config = ClientConfig(
        serverUrl = serverUrl,
        storagePath = File(folder, "session.db").path,
        // A real app keeps its key in the Android Keystore through a KeyProvider
        // (KeySource.Provided); a passphrase keeps this example self-contained.
        keySource = KeySource.Passphrase("an example passphrase"),
        deviceName = "Kotlin quickstart",
    )
    // AuthClient and SubscriptionHandle hold Rust objects: close them (here with `use`).
    AuthClient(config).use { client ->
        client.subscribe(object : AuthEventListener {
            override fun onEvent(event: AuthEvent) {
                if (event is AuthEvent.StateChanged) println("event: ${event.state::class.simpleName}")
            }
        }).use {
            when (val state = client.initialize()) {
                is AuthState.SignedIn -> println("restored the session of ${state.user.email}")
                else -> {
                    val email = "quickstart-${UUID.randomUUID().toString().take(8)}@example.com"
                    val user = client.signUp(email, "correct horse battery staple", "Quickstart")
                    println("signed up ${user.email} (${user.id})")
                }
            }

            val token = client.accessToken()
            println("access token: ${token.take(16)}...")

            val device = client.registerDevice("Kotlin quickstart")
            println("device ${device.id}; ${client.listDevices().size} device(s) on the account")
            val proof = client.deviceProof("GET", "$serverUrl/auth/devices")
            println("device proof: ${proof.take(16)}...")

            try {
                client.signIn("nobody@example.com", "wrong password")
            } catch (error: HoldfastException.InvalidCredentials) {
                println("a wrong password is an exception: ${error::class.simpleName}")
            }

            client.signOut()
            println("signed out: ${client.state() is AuthState.SignedOut}")
        }
    }
}
