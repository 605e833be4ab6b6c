use super::*;

#[test]
fn routes_match_their_own_paths_only() {
    for route in ROUTES {
        let path = route.pattern.replace("{id}", "phone");
        assert!(route.matches(route.method, &path).is_some(), "{route:?}");
        let others = ROUTES
            .iter()
            .filter(|other| other.matches(route.method, &path).is_some())
            .count();
        assert_eq!(others, 1, "exactly one route is {} {path}", route.method.as_str());
    }
    let revoke = RevokeDevice::ROUTE;
    assert_eq!(revoke.matches(Method::Delete, "/device/"), None);
    assert_eq!(revoke.matches(Method::Delete, "/device/a/b"), None);
    assert_eq!(revoke.matches(Method::Get, "/device/a"), None);
    assert_eq!(Me::ROUTE.matches(Method::Get, "/me/"), None);
    assert_eq!(
        RevokeSession::ROUTE.matches(Method::Delete, "/sessions/revoke-others"),
        Some(Some("revoke-others")),
        "a DELETE of that path names a session id; the POST is another route"
    );
    let bodies: Vec<(&str, bool)> = ROUTES
        .iter()
        .filter(|route| route.method != Method::Post)
        .map(|route| (route.pattern, route.body))
        .collect();
    // Of the routes that are not POSTs, only the account deletion carries a body.
    assert!(
        bodies.contains(&("/me", true)) && bodies.contains(&("/me", false)),
        "{bodies:?}"
    );
    assert_eq!(bodies.iter().filter(|(_, body)| *body).count(), 1, "{bodies:?}");
    assert!(ROUTES.iter().filter(|r| r.method == Method::Post).all(|r| r.body));
}

#[test]
fn device_ids_become_one_path_segment() {
    assert_eq!(
        RevokeDevice::new("a/b?c").expect("id").path(),
        "/device/a%2Fb%3Fc"
    );
    assert_eq!(RevokeDevice::new("é").expect("id").path(), "/device/%C3%A9");
    assert_eq!(
        RevokeDevice::new("dev-1.x_~").expect("id").path(),
        "/device/dev-1.x_~"
    );
    for unusable in ["", ".", ".."] {
        assert_eq!(RevokeDevice::new(unusable), None);
        assert_eq!(RevokeSession::new(unusable), None);
    }
    assert_eq!(
        RevokeSession::new("3f1c/x").expect("id").path(),
        "/sessions/3f1c%2Fx"
    );
}

#[test]
fn methods_round_trip() {
    for method in [Method::Get, Method::Post, Method::Delete] {
        assert_eq!(Method::parse(method.as_str()), Some(method));
    }
    assert_eq!(Method::parse("get"), None);
}
