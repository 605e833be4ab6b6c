// The second factor (PROTOCOL 9) from Kotlin against a real holdfast-server: enrolment,
// a sign-in that waits for a code (an outcome and a state, not an exception), a restart that
// keeps it waiting, and the code alone finishing it. The TOTP codes are computed here
// (RFC 6238: HMAC-SHA1 with javax.crypto, dynamic truncation, 6 digits, 30 s steps) from
// the secret the enrolment hands out.

package dev.holdfast.tests

import dev.holdfast.AuthState
import dev.holdfast.HoldfastException
import dev.holdfast.SignInOutcome
import java.io.File
import javax.crypto.Mac
import javax.crypto.spec.SecretKeySpec

/** RFC 4648 base32 (upper case, padding optional) to bytes. */
fun base32Decode(text: String): ByteArray {
    val alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    val out = java.io.ByteArrayOutputStream()
    var buffer = 0
    var bits = 0
    for (char in text.trimEnd('=').uppercase()) {
        val value = alphabet.indexOf(char)
        require(value >= 0) { "not base32" }
        buffer = (buffer shl 5) or value
        bits += 5
        if (bits >= 8) {
            bits -= 8
            out.write((buffer shr bits) and 0xFF)
        }
    }
    return out.toByteArray()
}

/** The RFC 6238 code of [secret] for time step [step] (HMAC-SHA1, 6 digits). */
fun totp(secret: ByteArray, step: Long): String {
    val mac = Mac.getInstance("HmacSHA1")
    mac.init(SecretKeySpec(secret, "HmacSHA1"))
    val counter = ByteArray(8) { i -> (step ushr (8 * (7 - i))).toByte() }
    val hash = mac.doFinal(counter)
    val offset = hash[hash.size - 1].toInt() and 0x0F
    val binary = ((hash[offset].toInt() and 0x7F) shl 24) or
        ((hash[offset + 1].toInt() and 0xFF) shl 16) or
        ((hash[offset + 2].toInt() and 0xFF) shl 8) or
        (hash[offset + 3].toInt() and 0xFF)
    return (binary % 1_000_000).toString().padStart(6, '0')
}

/** An authenticator app: each code for a time step the server has not seen yet (it takes a step once, within one of its clock's). */
class Authenticator(secretBase32: String) {
    private val secret = base32Decode(secretBase32)
    private var nextStep = 0L

    fun code(): String {
        val current = System.currentTimeMillis() / 30_000
        val step = maxOf(nextStep, current - 1)
        check(step <= current + 1) { "no unused step left" }
        nextStep = step + 1
        return totp(secret, step)
    }
}

suspend fun signInWithASecondFactor(server: Server, dir: File) {
    // RFC 6238's SHA-1 vector (59 s, 8 digits: 94287082): the same truncation, 6 digits.
    checkEqual("287082", totp("12345678901234567890".toByteArray(), 59L / 30), "RFC 6238 vector")

    val email = newEmail()
    val storage = File(dir, "client.db")
    val app = passphraseClient(server.url, storage).use { client ->
        client.initialize()
        val user = client.signUp(email, PASSWORD)
        val enrollment = client.enrollMfa()
        check(enrollment.uri.startsWith("otpauth://totp/")) { "an otpauth URI" }
        check(enrollment.qrSvg.startsWith("<?xml") || enrollment.qrSvg.startsWith("<svg")) { "an SVG QR code" }
        val printed = enrollment.toString()
        check(!printed.contains(enrollment.secret) && !printed.contains("otpauth")) { "the secret is printed: $printed" }
        check(enrollment.recoveryCodes.none { printed.contains(it) }) { "a recovery code is printed: $printed" }
        val app = Authenticator(enrollment.secret)
        client.confirmMfa(app.code())
        check(client.mfaStatus().enabled) { "MFA on after confirmation" }

        client.signOut()
        val outcome = client.signIn(email, PASSWORD)
        check(outcome is SignInOutcome.SecondFactorRequired) { "a code is owed: $outcome" }
        checkEqual(user.id, (outcome as SignInOutcome.SecondFactorRequired).user.id, "the user signing in")
        check(client.state() is AuthState.SecondFactorRequired) { "state: ${client.state()}" }
        expectThrows<HoldfastException.SecondFactorRequired>("no token while a code is owed") { client.accessToken() }
        expectThrows<HoldfastException.InvalidCode>("a wrong code") {
            client.completeSignInWithCode(if (totp(base32Decode(enrollment.secret), System.currentTimeMillis() / 30_000) == "000000") "111111" else "000000")
        }
        app
    }

    // A restart keeps the sign-in waiting; the code alone (no password) finishes it.
    passphraseClient(server.url, storage).use { client ->
        val restored = client.initialize()
        check(restored is AuthState.SecondFactorRequired) { "restored waiting: $restored" }
        client.completeSignInWithCode(app.code())
        check(client.state() is AuthState.SignedIn) { "signed in: ${client.state()}" }
        check(isJwt(client.accessToken())) { "a token once verified" }
        client.stepUp(app.code())
        check(client.mfaStatus().enabled) { "still on" }
    }
}
