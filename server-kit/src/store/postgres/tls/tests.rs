//! Unit tests of `tls`.

use super::*;

fn split(url: &str) -> TlsParams {
    take_tls_params(url).expect("splits")
}

fn params(rest: &str, sslmode: Option<&str>, sslrootcert: Option<&str>) -> TlsParams {
    TlsParams {
        rest: rest.to_owned(),
        sslmode: sslmode.map(str::to_owned),
        sslrootcert: sslrootcert.map(str::to_owned),
    }
}

#[test]
fn tls_parameters_leave_a_url_and_every_other_parameter_stays() {
    assert_eq!(
        split("postgres://app:pw@db/auth"),
        params("postgres://app:pw@db/auth", None, None)
    );
    assert_eq!(
        split("postgres://app@db/auth?sslmode=require"),
        params("postgres://app@db/auth", Some("require"), None)
    );
    assert_eq!(
        split(
            "postgresql://app@db:5433/auth?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%201.pem&options=-c%20a%3Db"
        ),
        params(
            "postgresql://app@db:5433/auth?application_name=x&options=-c%20a%3Db",
            Some("verify-full"),
            Some("/etc/ca 1.pem")
        )
    );
    assert_eq!(
        split("postgres://app@db/auth?sslrootcert=/ca.pem&sslmode=require"),
        params("postgres://app@db/auth", Some("require"), Some("/ca.pem"))
    );
    // A `?` in the password (tokio-postgres takes the user info up to the first `@`).
    assert_eq!(
        split("postgres://app:p?w&sslmode=x@db/auth?sslmode=require"),
        params("postgres://app:p?w&sslmode=x@db/auth", Some("require"), None)
    );
    // Nothing taken: the URL as written, trailing `&` and unterminated pairs included.
    assert_eq!(
        split("postgres://db/auth?application_name=x&"),
        params("postgres://db/auth?application_name=x&", None, None)
    );
    assert_eq!(
        split("postgres://db/auth?sslmode=disable&junk"),
        params("postgres://db/auth?junk", Some("disable"), None)
    );
    assert_eq!(
        split("postgres://db/auth?%73slmode=require"),
        params("postgres://db/auth", Some("require"), None)
    );
}

#[test]
fn tls_parameters_leave_a_keyword_string() {
    assert_eq!(
        split("host=db user=app sslmode=verify-full sslrootcert='/ca dir/ca.pem' dbname=auth"),
        params(
            "host=db user=app   dbname=auth",
            Some("verify-full"),
            Some("/ca dir/ca.pem")
        )
    );
    assert_eq!(
        split("host=db password='it\\'s sslmode=disable' sslmode = require"),
        params(
            "host=db password='it\\'s sslmode=disable' ",
            Some("require"),
            None
        )
    );
    // Unsplittable: left whole for tokio-postgres to refuse.
    assert_eq!(
        split("host=db sslmode='require"),
        params("host=db sslmode='require", None, None)
    );
}

#[test]
fn tls_parameters_given_twice_are_refused() {
    let error = take_tls_params("postgres://db/auth?sslmode=require&sslmode=disable").unwrap_err();
    assert_eq!(error, "sslmode is given more than once");
}

#[test]
fn each_sslmode_connects_its_way() {
    let plain = Connector::from_url("postgres://app@db/auth").expect("no sslmode");
    assert!(!plain.uses_tls());
    assert_eq!(plain.config().get_ssl_mode(), SslMode::Disable);
    let disabled = Connector::from_url("postgres://app@db/auth?sslmode=disable").expect("disable");
    assert!(!disabled.uses_tls());
    for mode in ["require", "verify-ca", "verify-full"] {
        let url = format!("postgres://app@db/auth?sslmode={mode}&sslrootcert=system");
        match Connector::from_url(&url) {
            Ok(tls) => {
                assert!(tls.uses_tls(), "{mode}");
                assert_eq!(tls.config().get_ssl_mode(), SslMode::Require);
            }
            // A machine without system roots says so.
            Err(error) => assert!(error.contains("no system root certificate"), "{error}"),
        }
    }
    for mode in ["prefer", "allow"] {
        let error = Connector::from_url(&format!("postgres://app:secret@db/auth?sslmode={mode}"))
            .expect_err("refused");
        assert!(
            error.starts_with(&format!("sslmode={mode} is not supported")),
            "{error}"
        );
        assert!(
            error.contains("sslmode=require") && error.contains("sslmode=disable"),
            "{error}"
        );
        assert!(!error.contains("secret"), "{error}");
    }
    let error = Connector::from_url("postgres://db/auth?sslmode=verify_full").expect_err("refused");
    assert!(error.contains("invalid sslmode `verify_full`"), "{error}");
    let error = Connector::from_url("postgres://db/auth?sslrootcert=/ca.pem").expect_err("refused");
    assert!(error.contains("add sslmode=verify-full"), "{error}");
    let error =
        Connector::from_url("postgres://db/auth?sslmode=disable&sslrootcert=/ca.pem").expect_err("refused");
    assert!(error.contains("TLS is not"), "{error}");
}

#[test]
fn a_bad_root_certificate_file_is_named() {
    let missing = Connector::from_url("postgres://db/auth?sslmode=require&sslrootcert=/nonexistent/ca.pem")
        .expect_err("refused");
    assert!(
        missing.starts_with("cannot read sslrootcert /nonexistent/ca.pem"),
        "{missing}"
    );
}
