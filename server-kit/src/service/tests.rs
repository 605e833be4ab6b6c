use super::*;

#[test]
fn the_table_serves_every_declared_route_once() {
    for route in endpoint::ROUTES {
        let handlers = TABLE.iter().filter(|(served, _)| *served == route).count();
        assert_eq!(handlers, 1, "{route:?}");
    }
    assert_eq!(TABLE.len(), endpoint::ROUTES.len());
}
