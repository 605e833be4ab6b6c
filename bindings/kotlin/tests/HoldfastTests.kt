// The generated Kotlin bindings (package dev.holdfast) against a real holdfast-server:
// sessions, offline restore, devices and proofs, a Kotlin key provider, events, closing,
// errors as exceptions, and the sessions and account lifecycle (each session ended
// elsewhere says why). No test framework: `main` runs each test in `runBlocking`
// (under a timeout), prints PASS/FAIL and exits non-zero when any failed.
// run_tests.sh sets HOLDFAST_SERVER_BIN; the native library comes from the classpath.

package dev.holdfast.tests

import dev.holdfast.AuthClient
import dev.holdfast.AuthEvent
import dev.holdfast.AuthEventListener
import dev.holdfast.AuthState
import dev.holdfast.ClientConfig
import dev.holdfast.HoldfastException
import dev.holdfast.KeyProvider
import dev.holdfast.KeySource
import dev.holdfast.SessionEndReason
import dev.holdfast.SignInOutcome
import dev.holdfast.SignOutReason
import dev.holdfast.RequestHeaders
import dev.holdfast.SyncCredentials
import dev.holdfast.SyncRefusal
import dev.holdfast.events
import dev.holdfast.stateFlow
import java.io.File
import java.nio.file.Files
import java.util.UUID
import java.util.concurrent.TimeUnit
import kotlin.system.exitProcess
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.cancel
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout

const val SECRET = "kotlin-test-secret-of-at-least-thirty-two-characters"
const val PASSWORD = "correct horse battery staple"

class Failure(message: String) : AssertionError(message)

fun check(condition: Boolean, message: () -> String) {
    if (!condition) throw Failure(message())
}

fun <T> checkEqual(expected: T, actual: T, what: String) =
    check(expected == actual) { "$what: expected <$expected>, got <$actual>" }

/** Runs [block] and returns the exception of type [E] it threw; fails when it threw none or another kind. */
inline fun <reified E : Throwable> expectThrows(what: String, block: () -> Unit): E {
    try {
        block()
    } catch (error: Throwable) {
        if (error is E) return error
        throw Failure("$what: expected ${E::class.simpleName}, got $error")
    }
    throw Failure("$what: expected ${E::class.simpleName}, nothing was thrown")
}

/** holdfast-server on a free loopback port, its database in a temporary folder. */
class Server : AutoCloseable {
    private val folder: File = Files.createTempDirectory("holdfast-server-").toFile()
    private val process: Process
    val url: String

    init {
        val binary = System.getenv("HOLDFAST_SERVER_BIN")
            ?: error("HOLDFAST_SERVER_BIN must name the holdfast-server binary (run_tests.sh sets it)")
        val builder = ProcessBuilder(
            binary,
            "--listen", "127.0.0.1:0",
            "--database", "sqlite:${folder.path}/server.db",
            "--rate-limit", "off",
            "--ip-block", "off",
        ).redirectError(ProcessBuilder.Redirect.INHERIT)
        builder.environment()["HOLDFAST_SECRET"] = SECRET
        builder.environment()["RUST_LOG"] = "warn"
        process = builder.start()
        val line = process.inputStream.bufferedReader().readLine()?.trim().orEmpty()
        val prefix = "listening on "
        if (!line.startsWith(prefix)) {
            stop()
            error("holdfast-server did not start: '$line'")
        }
        url = line.removePrefix(prefix)
    }

    fun stop() {
        if (process.isAlive) {
            process.destroy() // SIGTERM: a graceful stop
            if (!process.waitFor(15, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor()
            }
        }
    }

    override fun close() {
        stop()
        folder.deleteRecursively()
    }
}

fun newEmail() = "kt-${UUID.randomUUID().toString().replace("-", "").take(12)}@example.com"

fun isJwt(token: String) = token.count { it == '.' } == 2

fun passphraseClient(
    serverUrl: String,
    storage: File,
    passphrase: String = "vault passphrase",
    timeoutMs: ULong = 10_000uL,
    deviceName: String? = null,
) = AuthClient(
    ClientConfig(
        serverUrl = serverUrl,
        storagePath = storage.path,
        keySource = KeySource.Passphrase(passphrase),
        deviceName = deviceName,
        connectTimeoutMs = timeoutMs,
        requestTimeoutMs = timeoutMs,
    )
)

fun providedClient(serverUrl: String, storage: File, provider: KeyProvider) =
    AuthClient(ClientConfig(serverUrl = serverUrl, storagePath = storage.path, keySource = KeySource.Provided(provider)))

suspend fun signUpAndSignIn(server: Server, dir: File) {
    passphraseClient(server.url, File(dir, "client.db"), deviceName = "kotlin test").use { client ->
        checkEqual(AuthState.Restoring, client.state(), "state before initialize")
        checkEqual(null, client.freshAccessToken(), "fresh token before initialize")
        checkEqual(AuthState.SignedOut(SignOutReason.NoStoredSession), client.initialize(), "fresh store")
        checkEqual(null, client.freshAccessToken(), "fresh token when signed out")

        val email = newEmail()
        val user = client.signUp(email, PASSWORD, "Ada")
        checkEqual(email, user.email, "email")
        checkEqual("Ada", user.name, "name")
        check(client.state() is AuthState.SignedIn) { "signed in after sign-up: ${client.state()}" }
        checkEqual(user, client.currentUser(), "current user")
        val first = client.accessToken()
        check(isJwt(first)) { "access token is a JWT: $first" }
        // A valid token is answered from memory: the same one.
        checkEqual(first, client.accessToken(), "second access token")
        // The synchronous fast path answers the same token.
        checkEqual(first, client.freshAccessToken(), "fresh token from memory")

        client.signOut()
        checkEqual(AuthState.SignedOut(SignOutReason.UserSignedOut), client.state(), "state after sign-out")
        checkEqual(null, client.currentUser(), "current user after sign-out")
        checkEqual(null, client.freshAccessToken(), "fresh token after sign-out")
        expectThrows<HoldfastException.NotSignedIn>("access token when signed out") { client.accessToken() }

        val again = client.signIn(email, PASSWORD)
        check(again is SignInOutcome.SignedIn) { "no second factor: $again" }
        checkEqual(user.id, (again as SignInOutcome.SignedIn).user.id, "same user after sign-in")
        check(isJwt(client.accessToken())) { "access token after sign-in" }

        expectThrows<HoldfastException.InvalidCredentials>("wrong password") { client.signIn(email, "not the password") }
        val taken = expectThrows<HoldfastException.Refused>("email taken") { client.signUp(email, PASSWORD) }
        checkEqual("EMAIL_TAKEN", taken.code, "refusal code")
    }
}

suspend fun restoresWhileTheServerIsDown(dir: File) {
    val storage = File(dir, "client.db")
    Server().use { server ->
        val (user, token) = passphraseClient(server.url, storage).use { client ->
            client.initialize()
            val user = client.signUp(newEmail(), PASSWORD)
            user to client.accessToken()
        }
        server.stop()

        passphraseClient(server.url, storage, timeoutMs = 2_000uL).use { client ->
            val state = client.initialize()
            check(state is AuthState.SignedIn && state.user.id == user.id) { "restored offline: $state" }
            // Still valid, so no network needed.
            checkEqual(token, client.accessToken(), "token restored offline")
            // A server call fails as transient: the session is kept.
            expectThrows<HoldfastException.Transient>("server call while it is down") { client.listDevices() }
            check(client.state() is AuthState.SignedIn) { "still signed in: ${client.state()}" }
        }
    }
}

suspend fun devicesAndProofs(server: Server, dir: File) {
    passphraseClient(server.url, File(dir, "client.db")).use { client ->
        client.initialize()
        val user = client.signUp(newEmail(), PASSWORD)

        val deviceId = client.deviceId()
        val device = client.registerDevice("kotlin laptop")
        checkEqual(deviceId, device.id, "registered device id")
        checkEqual(user.id, device.userId, "device owner")
        check(!device.revoked) { "device not revoked" }
        check(device.publicKey.contains("\"kty\"")) { "public key is a JWK: ${device.publicKey}" }
        checkEqual(43, client.deviceThumbprint().length, "thumbprint length")

        check(isJwt(client.deviceProof("GET", server.url + "/auth/devices"))) { "device proof is a JWT" }
        val credentials = client.syncCredentials(server.url.replace("http://", "ws://") + "/sync")
        checkEqual(deviceId, credentials.deviceId, "sync credentials device")
        check(isJwt(credentials.accessToken) && isJwt(credentials.proof)) { "sync credentials are JWTs" }

        // Bearer calls carry device proofs (DPoP-bound tokens); the server accepts them.
        val devices = client.listDevices()
        check(devices.any { it.id == deviceId }) { "this device is listed: $devices" }

        expectThrows<HoldfastException.InvalidInput>("bad challenge") { client.signChallenge("not a challenge") }
        expectThrows<HoldfastException.InvalidInput>("bad method") { client.deviceProof("GET /x", server.url) }
    }
}

/** The app's key keeper, in Kotlin (a real app would wrap it with the Android Keystore). */
class MemoryKeys : KeyProvider {
    @Volatile var key: ByteArray? = null
    @Volatile var stores = 0

    override fun loadKey(): ByteArray? = key

    override fun storeKey(key: ByteArray) {
        stores += 1
        this.key = key.copyOf()
    }
}

class LockedKeychain : KeyProvider {
    override fun loadKey(): ByteArray? = throw HoldfastException.StorageUnavailable("the keychain is locked")
    override fun storeKey(key: ByteArray) = throw HoldfastException.StorageUnavailable("the keychain is locked")
}

class BuggyKeychain : KeyProvider {
    override fun loadKey(): ByteArray? = throw IllegalStateException("a bug in the app")
    override fun storeKey(key: ByteArray) = throw IllegalStateException("a bug in the app")
}

suspend fun kotlinKeyProvider(server: Server, dir: File) {
    val storage = File(dir, "client.db")
    val keys = MemoryKeys()
    val user = providedClient(server.url, storage, keys).use { client ->
        check(client.initialize() is AuthState.SignedOut) { "fresh store is signed out" }
        checkEqual(1, keys.stores, "keys stored")
        checkEqual(32, keys.key?.size, "key length")
        client.signUp(newEmail(), PASSWORD)
    }
    providedClient(server.url, storage, keys).use { again ->
        val state = again.initialize()
        check(state is AuthState.SignedIn && state.user.id == user.id) { "restored with the provided key: $state" }
        checkEqual(1, keys.stores, "no new key")
    }
    // A locked keychain or a provider bug: unavailable, never signed out, no crash.
    for (provider in listOf(LockedKeychain(), BuggyKeychain())) {
        providedClient(server.url, storage, provider).use { blocked ->
            val state = blocked.initialize()
            check(state is AuthState.Unavailable) { "${provider::class.simpleName}: unavailable, got $state" }
            expectThrows<HoldfastException.StorageUnavailable>("access token, locked") { blocked.accessToken() }
            expectThrows<HoldfastException.StorageUnavailable>("sign-in, locked") { blocked.signIn(newEmail(), PASSWORD) }
            if (provider is LockedKeychain) {
                check((state as AuthState.Unavailable).reason.contains("keychain is locked")) { "the provider's message is kept: $state" }
            }
        }
    }
}

/** Collects events; called on a Holdfast thread, hence the lock. */
class Recorder : AuthEventListener {
    private val events = mutableListOf<AuthEvent>()

    override fun onEvent(event: AuthEvent) {
        synchronized(events) { events.add(event) }
    }

    fun count() = synchronized(events) { events.size }

    fun states() = synchronized(events) { events.filterIsInstance<AuthEvent.StateChanged>().map { it.state } }
}

class Throwing : AuthEventListener {
    override fun onEvent(event: AuthEvent) = throw RuntimeException("a listener bug")
}

suspend fun listenersUntilCancelled(server: Server, dir: File) {
    passphraseClient(server.url, File(dir, "client.db")).use { client ->
        val recorder = Recorder()
        val subscription = client.subscribe(recorder)
        val throwing = client.subscribe(Throwing()) // harms nobody
        client.initialize()
        val user = client.signUp(newEmail(), PASSWORD)
        client.signOut()

        val states = recorder.states()
        checkEqual(AuthState.SignedOut(SignOutReason.NoStoredSession), states.firstOrNull(), "first state")
        check(states.any { it is AuthState.SignedIn && it.user.id == user.id }) { "a signed-in state: $states" }
        checkEqual(AuthState.SignedOut(SignOutReason.UserSignedOut), states.lastOrNull(), "last state")

        subscription.cancel()
        subscription.close()
        throwing.use { it.cancel() }
        val seen = recorder.count()
        client.signIn(user.email, PASSWORD)
        check(client.state() is AuthState.SignedIn) { "signed in again" }
        checkEqual(seen, recorder.count(), "no events after cancel")
    }
}

fun checkRedacted(value: Any, vararg secrets: String) {
    for (text in listOf(value.toString(), "$value", listOf(value).toString())) {
        for (secret in secrets) check(!text.contains(secret)) { "a secret printed: $text" }
        check(text.contains("<redacted>")) { "not marked redacted: $text" }
    }
}

suspend fun secretsPrintRedacted(server: Server, dir: File) {
    val made = SyncCredentials(accessToken = "eyJ.access-secret.sig", deviceId = "dev-1", proof = "eyJ.proof-secret.sig")
    checkRedacted(made, "access-secret", "proof-secret")
    check(made.toString().contains("dev-1")) { "the device id prints: $made" }
    checkEqual("eyJ.access-secret.sig", made.accessToken, "the field keeps its value")

    val source = KeySource.Passphrase("passphrase-secret")
    checkRedacted(source, "passphrase-secret")
    val config = ClientConfig(serverUrl = server.url, storagePath = File(dir, "c.db").path, keySource = source)
    checkRedacted(config, "passphrase-secret")
    check(config.toString().contains(server.url)) { "the server URL prints: $config" }

    passphraseClient(server.url, File(dir, "client.db"), passphrase = "passphrase-secret").use { client ->
        client.initialize()
        client.signUp(newEmail(), PASSWORD)
        val real = client.syncCredentials(server.url.replace("http://", "ws://") + "/sync")
        checkRedacted(real, real.accessToken, real.proof)
    }
}

fun variantsAndErrorsReadAsText() {
    checkEqual("Refreshed", AuthEvent.Refreshed.toString(), "object variant")
    checkEqual("UserSignedOut", SignOutReason.UserSignedOut.toString(), "object variant")
    checkEqual("Restoring", AuthState.Restoring.toString(), "object variant")
    checkEqual("SignedOut { reason: DeviceRevoked }", AuthState.SignedOut(SignOutReason.DeviceRevoked).toString(), "data variant")
    checkEqual("invalid email or password", HoldfastException.InvalidCredentials().toString(), "error")
    checkEqual("invalid input: bad email", HoldfastException.InvalidInput("bad email").toString(), "error")
    checkEqual("refused by the server (EMAIL_TAKEN): taken", HoldfastException.Refused("EMAIL_TAKEN", "taken").toString(), "error")
}

suspend fun flowsFollowTheSession(server: Server, dir: File) = coroutineScope {
    passphraseClient(server.url, File(dir, "client.db")).use { client ->
        val received = Channel<AuthEvent>(Channel.UNLIMITED)
        val collector = launch { client.events().collect { received.send(it) } }
        val stateScope = CoroutineScope(Job())
        val state = client.stateFlow(stateScope)
        checkEqual(AuthState.Restoring, state.value, "state before initialize")

        client.initialize()
        checkEqual(AuthState.SignedOut(SignOutReason.NoStoredSession), state.first { it !is AuthState.Restoring }, "state flow after initialize")
        val user = client.signUp(newEmail(), PASSWORD)
        val signedIn = state.first { it is AuthState.SignedIn } as AuthState.SignedIn
        checkEqual(user.id, signedIn.user.id, "signed-in user in the state flow")
        while (true) {
            val event = received.receive()
            if (event is AuthEvent.StateChanged && event.state is AuthState.SignedIn) break
        }

        collector.cancel()
        stateScope.cancel()
        client.signOut()
        check(state.value is AuthState.SignedIn) { "no updates after the scope ended: ${state.value}" }
    }
}

suspend fun closedObjectsRefuseCalls(server: Server, dir: File) {
    val client = passphraseClient(server.url, File(dir, "client.db"))
    val handle = client.use {
        it.initialize()
        it.subscribe(Recorder())
    }
    check(client.uniffiIsDestroyed) { "use {} closed the client" }
    expectThrows<IllegalStateException>("a call on a closed client") { client.state() }
    expectThrows<IllegalStateException>("an async call on a closed client") { client.accessToken() }
    client.close() // closing again is harmless
    handle.close()
    check(handle.uniffiIsDestroyed) { "the subscription handle closed" }
    expectThrows<IllegalStateException>("cancel on a closed handle") { handle.cancel() }
}

suspend fun badInputGivesExceptions(server: Server, dir: File) {
    expectThrows<HoldfastException.InvalidInput>("empty server URL") { passphraseClient("", File(dir, "client.db")) }
    expectThrows<HoldfastException.InvalidInput>("empty storage path") { passphraseClient(server.url, File("")) }
    expectThrows<HoldfastException.InvalidInput>("not a URL") { passphraseClient("not a url", File(dir, "client.db")) }

    val notAFolder = File(dir, "a-file").apply { writeText("") }
    passphraseClient(server.url, File(notAFolder, "client.db")).use { client ->
        val state = client.initialize()
        check(state is AuthState.Unavailable) { "unwritable storage is unavailable: $state" }
        expectThrows<HoldfastException.StorageUnavailable>("sign-in on unwritable storage") {
            client.signIn(newEmail(), PASSWORD)
        }
    }

    val storage = File(dir, "vault.db")
    passphraseClient(server.url, storage, passphrase = "the right one").use { owner ->
        owner.initialize()
        owner.signUp(newEmail(), PASSWORD)
        passphraseClient(server.url, storage, passphrase = "a wrong one").use { intruder ->
            val state = intruder.initialize()
            check(state is AuthState.Unavailable && state.reason.contains("passphrase")) { "wrong passphrase: $state" }
            expectThrows<HoldfastException>("access token with a wrong passphrase") { intruder.accessToken() }
        }
        expectThrows<HoldfastException.WrongPassphrase>("change with a wrong passphrase") {
            owner.changePassphrase("a wrong one", "a new one")
        }
        check(isJwt(owner.accessToken())) { "the owner is still signed in" }
    }
}

/** GETs [url] with the headers: the status code. */
fun getStatus(url: String, headers: RequestHeaders): Int {
    val connection = java.net.URI(url).toURL().openConnection() as java.net.HttpURLConnection
    connection.setRequestProperty("Authorization", headers.authorization)
    headers.dpop?.let { connection.setRequestProperty("DPoP", it) }
    try {
        return connection.responseCode
    } finally {
        connection.disconnect()
    }
}

/** The `exp` claim of a JWT, seconds. */
fun expiresAt(token: String): Long {
    val payload = String(java.util.Base64.getUrlDecoder().decode(token.split(".")[1]))
    return Regex("\"exp\":(\\d+)").find(payload)!!.groupValues[1].toLong()
}

suspend fun requestHeadersOpenTheBackend(server: Server, dir: File) {
    passphraseClient(server.url, File(dir, "client.db")).use { client ->
        client.initialize()
        client.signUp(newEmail(), PASSWORD)
        val me = server.url + "/auth/me"
        val headers = client.requestHeaders("GET", me)
        check(headers.authorization.startsWith("DPoP ")) { "a bound token: ${headers.authorization.take(5)}" }
        val proof = headers.dpop ?: throw Failure("a bound token comes with a proof")
        checkRedacted(headers, headers.authorization.removePrefix("DPoP "), proof)
        checkEqual(200, getStatus(me, headers), "GET /auth/me with the headers")
        checkEqual(401, getStatus(me, headers), "the same proof again")
        checkEqual(200, getStatus(me, client.requestHeaders("GET", me)), "new headers")
    }
}

suspend fun syncRenewalAndRefusal(server: Server, dir: File) {
    passphraseClient(server.url, File(dir, "client.db")).use { client ->
        client.initialize()
        client.signUp(newEmail(), PASSWORD)
        val syncUrl = server.url + "/sync"
        val current = client.accessToken()
        val expiresMs = expiresAt(current) * 1000
        checkEqual(current, client.syncRenewal(syncUrl, expiresMs - 60_000).accessToken, "an earlier expiry")
        // The server stamps whole seconds: a newer token needs one to pass.
        kotlinx.coroutines.delay(1_100)
        val renewal = client.syncRenewal(syncUrl, expiresMs)
        check(expiresAt(renewal.accessToken) * 1000 > expiresMs) { "the renewal outlives the expiring token" }
        checkRedacted(renewal, renewal.accessToken, renewal.proof)

        client.handleSyncRefusal(SyncRefusal.Close(1001u, ""))
        check(client.state() is AuthState.SignedIn) { "a going-away close changes nothing" }
        client.handleSyncRefusal(SyncRefusal.Close(4001u, "DEVICE_REVOKED"))
        checkEqual(AuthState.SignedOut(SignOutReason.DeviceRevoked), client.state(), "4001 signs out at once")
    }
}

suspend fun usageErrorBeforeInitialize(server: Server, dir: File) {
    passphraseClient(server.url, File(dir, "client.db")).use { client ->
        val error = expectThrows<HoldfastException.Usage>("a call before initialize()") { client.accessToken() }
        checkEqual("usage error: call initialize() first", error.toString(), "the message")
        expectThrows<HoldfastException.Usage>("headers before initialize()") { client.requestHeaders("GET", server.url) }
        client.initialize()
        expectThrows<HoldfastException.NotSignedIn>("after initialize(), signed out") { client.accessToken() }
    }
}

const val NEW_PASSWORD = "a brand new passphrase"

/** A signed-in client of [email] on its own store in [dir], named [name]. */
suspend fun signedIn(server: Server, dir: File, name: String, email: String, signUp: Boolean = false): AuthClient {
    val client = passphraseClient(server.url, File(dir, "$name.db"))
    client.initialize()
    if (signUp) client.signUp(email, PASSWORD) else client.signIn(email, PASSWORD)
    return client
}

/** [client]'s next refresh finds its session ended elsewhere and signs it out, saying why. */
suspend fun checkEndedElsewhere(client: AuthClient, reason: SessionEndReason, what: String) {
    val refused = expectThrows<HoldfastException.SignInRequired>("$what: refresh") { client.refresh() }
    checkEqual("TOKEN_REVOKED", refused.code, "$what: code")
    checkEqual(AuthState.SignedOut(SignOutReason.SessionEnded(reason)), client.state(), "$what: state")
    checkEqual(null, client.currentUser(), "$what: user")
}

suspend fun sessionsEndedElsewhereSayWhy(server: Server, dir: File) {
    val email = newEmail()
    signedIn(server, dir, "here", email, signUp = true).use { here ->
        val sessions = signedIn(server, dir, "there", email).use { there ->
            val sessions = here.sessions()
            checkEqual(2, sessions.size, "sessions listed")
            checkEqual(1, sessions.count { it.current }, "one is this client's")
            val theirs = sessions.first { !it.current }
            checkEqual(there.deviceId(), theirs.deviceId, "the other session's device")
            check(theirs.toString().contains(theirs.id)) { "a session prints: $theirs" }
            val unknown = expectThrows<HoldfastException.Refused>("an unknown session") { here.revokeSession("no-such-session") }
            checkEqual("NOT_FOUND", unknown.code, "unknown session code")

            here.revokeSession(theirs.id)
            checkEndedElsewhere(there, SessionEndReason.REVOKED, "revoked by id")
            checkEqual("SignedOut { reason: SessionEnded { reason: Revoked } }", there.state().toString(), "the state reads as text")
            sessions
        }
        checkEqual(2, sessions.size, "listed before")
        signedIn(server, dir, "again", email).use { again ->
            checkEqual(1uL, here.revokeOtherSessions(), "others revoked")
            checkEndedElsewhere(again, SessionEndReason.REVOKED_BY_OTHER_SESSION, "revoked with the others")
        }
        check(isJwt(here.refresh())) { "this session lives on" }
        signedIn(server, dir, "last", email).use { last ->
            checkEqual(2uL, here.signOutEverywhere(), "every session ended")
            checkEqual(AuthState.SignedOut(SignOutReason.SessionEnded(SessionEndReason.SIGNED_OUT_EVERYWHERE)), here.state(), "signed out here too")
            checkEndedElsewhere(last, SessionEndReason.SIGNED_OUT_EVERYWHERE, "signed out everywhere")
        }
    }
}

suspend fun passwordsAndEmailVerification(server: Server, dir: File) {
    val email = newEmail()
    signedIn(server, dir, "here", email, signUp = true).use { here ->
        val token = here.sendVerification() ?: throw Failure("a development server answers the token")
        check(here.sendVerification(email) != null) { "sent to the account's own address" }
        val again = here.resendVerification() ?: throw Failure("a resent token")
        check(again != token) { "a new token" }
        val bad = expectThrows<HoldfastException.Refused>("a bad verification token") { here.confirmEmail("not-a-token") }
        checkEqual("VERIFY_TOKEN_INVALID", bad.code, "bad verification token code")
        val verified = here.confirmEmail(again)
        check(verified.emailVerified) { "verified: $verified" }
        check(here.currentUser()?.emailVerified == true) { "the stored user follows: ${here.currentUser()}" }

        signedIn(server, dir, "there", email).use { there ->
            expectThrows<HoldfastException.InvalidCredentials>("a wrong current password") { here.changePassword("not the password", NEW_PASSWORD) }
            check(here.state() is AuthState.SignedIn) { "still signed in after a wrong password" }
            here.changePassword(PASSWORD, NEW_PASSWORD)
            check(isJwt(here.refresh())) { "this session goes on after the change" }
            checkEndedElsewhere(there, SessionEndReason.PASSWORD_CHANGED, "password changed elsewhere")
        }

        val reset = here.requestPasswordReset(email) ?: throw Failure("a development server answers the token")
        checkEqual(null, here.requestPasswordReset(newEmail()), "an unknown address, the same answer")
        val invalid = expectThrows<HoldfastException.Refused>("a bad reset token") { here.resetPassword("not-a-token", PASSWORD) }
        checkEqual("RESET_TOKEN_INVALID", invalid.code, "bad reset token code")
        here.resetPassword(reset, PASSWORD)
        checkEndedElsewhere(here, SessionEndReason.PASSWORD_RESET, "password reset")
        val outcome = here.signIn(email, PASSWORD) as SignInOutcome.SignedIn
        checkEqual(verified.id, outcome.user.id, "signed in with the reset password")
    }
}

suspend fun deletingTheAccount(server: Server, dir: File) {
    passphraseClient(server.url, File(dir, "client.db")).use { client ->
        client.initialize()
        val email = newEmail()
        val user = client.signUp(email, PASSWORD, "Ada", "{\"plan\":\"pro\"}")
        checkEqual("{\"plan\":\"pro\"}", user.metadataJson, "sign-up metadata")
        expectThrows<HoldfastException.InvalidInput>("metadata that is not an object") { client.signUp(newEmail(), PASSWORD, null, "[1]") }
        expectThrows<HoldfastException.InvalidCredentials>("delete with a wrong password") { client.deleteAccount("not the password") }
        check(client.state() is AuthState.SignedIn) { "still signed in" }
        client.deleteAccount(PASSWORD)
        checkEqual(AuthState.SignedOut(SignOutReason.AccountDeleted), client.state(), "signed out, account deleted")
        expectThrows<HoldfastException.InvalidCredentials>("the account is gone") { client.signIn(email, PASSWORD) }
    }
}

/** The native library came from the classpath jar (extracted by JNA), not a library path. */
fun libraryLoadedFromTheJar() {
    checkEqual(null, System.getProperty("jna.library.path"), "jna.library.path")
    val resource = "${com.sun.jna.Platform.RESOURCE_PREFIX}/${System.mapLibraryName("holdfast_ffi")}"
    val url = Thread.currentThread().contextClassLoader.getResource(resource)
    check(url != null && url.protocol == "jar") { "$resource is in a jar on the classpath: $url" }
    val file = com.sun.jna.NativeLibrary.getInstance("holdfast_ffi").file
    check(file != null && !file.path.contains("/target/debug/")) { "loaded from an extracted copy: $file" }
}

fun main() {
    val root = Files.createTempDirectory("holdfast-kotlin-").toFile()
    var failed = 0
    var index = 0
    fun test(name: String, block: suspend (File) -> Unit) {
        val dir = File(root, "t${index++}").apply { mkdirs() }
        val started = System.nanoTime()
        try {
            runBlocking { withTimeout(120_000) { block(dir) } }
            println("PASS $name (${(System.nanoTime() - started) / 1_000_000} ms)")
        } catch (error: Throwable) {
            failed += 1
            println("FAIL $name: $error")
            error.printStackTrace()
        }
    }

    try {
        Server().use { server ->
            test("sign-up, sign-in and access token") { signUpAndSignIn(server, it) }
            test("a second client restores the session while the server is down") { restoresWhileTheServerIsDown(it) }
            test("device registration, proofs and bearer calls") { devicesAndProofs(server, it) }
            test("a Kotlin key provider keeps the vault key") { kotlinKeyProvider(server, it) }
            test("listeners receive state changes until cancelled") { listenersUntilCancelled(server, it) }
            test("secrets print redacted") { secretsPrintRedacted(server, it) }
            test("object variants and errors read as text") { variantsAndErrorsReadAsText() }
            test("state flow and event flow follow the session") { flowsFollowTheSession(server, it) }
            test("closed objects refuse calls") { closedObjectsRefuseCalls(server, it) }
            test("bad input gives exceptions, not crashes") { badInputGivesExceptions(server, it) }
            test("the native library loads from the jar") { libraryLoadedFromTheJar() }
            test("request headers open the app's backend") { requestHeadersOpenTheBackend(server, it) }
            test("sync renewal and a sync refusal") { syncRenewalAndRefusal(server, it) }
            test("a call before initialize() is a usage error") { usageErrorBeforeInitialize(server, it) }
            test("sessions ended elsewhere say why") { sessionsEndedElsewhereSayWhy(server, it) }
            test("password change and reset, email verification") { passwordsAndEmailVerification(server, it) }
            test("deleting the account, sign-up metadata") { deletingTheAccount(server, it) }
            test("a sign-in with a second factor") { signInWithASecondFactor(server, it) }
        }
    } finally {
        root.deleteRecursively()
    }
    println(if (failed == 0) "all $index Kotlin tests passed" else "$failed of $index Kotlin tests failed")
    exitProcess(if (failed == 0) 0 else 1)
}
