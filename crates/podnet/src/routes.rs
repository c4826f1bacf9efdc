//! host-gw routes: other nodes' podCIDRs via their InternalIP, marked with our own protocol.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use futures::TryStreamExt;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol};
use rtnetlink::{Handle, RouteMessageBuilder};

use crate::node::netlink;
use crate::{Error, Ipv4Cidr};

/// Route protocol number (`proto 107` in `ip route`) that marks the routes this library
/// owns. Routes with any other protocol are never changed or removed.
pub const ROUTE_PROTOCOL: u8 = 107;
/// The main routing table (RT_TABLE_MAIN).
const MAIN_TABLE: u8 = 254;

/// What `sync_routes` changes: routes to delete first, then routes to add.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RoutePlan {
    pub(crate) delete: Vec<(Ipv4Cidr, Option<Ipv4Addr>)>,
    pub(crate) add: Vec<(Ipv4Cidr, Ipv4Addr)>,
}

/// Compares our current routes with the wanted ones. Routes to `own` (this node's podCIDR,
/// reached through the bridge) are never wanted. Two gateways for one destination are an
/// error.
pub(crate) fn plan(
    own: Ipv4Cidr,
    current: &[(Ipv4Cidr, Option<Ipv4Addr>)],
    wanted: &[(Ipv4Cidr, Ipv4Addr)],
) -> Result<RoutePlan, Error> {
    let mut want = BTreeMap::new();
    for &(cidr, gateway) in wanted.iter().filter(|(cidr, _)| *cidr != own) {
        if let Some(other) = want.insert(cidr, gateway)
            && other != gateway
        {
            return Err(Error::Config(format!(
                "route to {cidr} wanted via both {other} and {gateway}"
            )));
        }
    }
    let mut plan = RoutePlan::default();
    for &(cidr, gateway) in current {
        if gateway.is_none() || want.get(&cidr).copied() != gateway {
            plan.delete.push((cidr, gateway));
        }
    }
    for (cidr, gateway) in want {
        if !current.contains(&(cidr, Some(gateway))) {
            plan.add.push((cidr, gateway));
        }
    }
    Ok(plan)
}

/// Our routes in the main table, read from the kernel.
async fn current(handle: &Handle) -> Result<Vec<(Ipv4Cidr, Option<Ipv4Addr>)>, Error> {
    let dump = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let routes: Vec<RouteMessage> = handle
        .route()
        .get(dump)
        .execute()
        .try_collect()
        .await
        .map_err(|e| netlink("listing routes", e))?;
    let mut ours = Vec::new();
    for route in routes {
        if u8::from(route.header.protocol) != ROUTE_PROTOCOL || route.header.table != MAIN_TABLE {
            continue;
        }
        let mut destination = Ipv4Addr::UNSPECIFIED;
        let mut gateway = None;
        for attr in &route.attributes {
            match attr {
                RouteAttribute::Destination(RouteAddress::Inet(a)) => destination = *a,
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => gateway = Some(*g),
                _ => {}
            }
        }
        let cidr = Ipv4Cidr::new(destination, route.header.destination_prefix_length)?;
        ours.push((cidr, gateway));
    }
    Ok(ours)
}

fn message(cidr: Ipv4Cidr, gateway: Option<Ipv4Addr>) -> RouteMessage {
    let mut builder = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(cidr.network(), cidr.prefix_len())
        .protocol(RouteProtocol::from(ROUTE_PROTOCOL));
    if let Some(gateway) = gateway {
        builder = builder.gateway(gateway);
    }
    builder.build()
}

pub(crate) async fn sync(handle: &Handle, own: Ipv4Cidr, wanted: &[(Ipv4Cidr, Ipv4Addr)]) -> Result<(), Error> {
    let plan = plan(own, &current(handle).await?, wanted)?;
    let mut first_error = None;
    for (cidr, gateway) in plan.delete {
        if let Err(e) = handle.route().del(message(cidr, gateway)).execute().await {
            let gw = gateway.map(|g| g.to_string()).unwrap_or_default();
            tracing::warn!(%cidr, gateway = %gw, error = %e, "deleting a host-gw route");
            first_error.get_or_insert(netlink(format!("deleting route to {cidr} via {gw}"), e));
        }
    }
    for (cidr, gateway) in plan.add {
        if let Err(e) = handle.route().add(message(cidr, Some(gateway))).execute().await {
            tracing::warn!(%cidr, %gateway, error = %e, "adding a host-gw route");
            first_error.get_or_insert(netlink(format!("adding route to {cidr} via {gateway}"), e));
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn plans() {
        let own = c("10.244.1.0/24");
        type Current = Vec<(Ipv4Cidr, Option<Ipv4Addr>)>;
        type Wanted = Vec<(Ipv4Cidr, Ipv4Addr)>;
        let cases: Vec<(Current, Wanted, RoutePlan)> = vec![
            (vec![], vec![], RoutePlan::default()),
            (
                vec![],
                vec![(c("10.244.2.0/24"), ip("192.168.0.2")), (own, ip("192.168.0.1"))],
                RoutePlan {
                    delete: vec![],
                    add: vec![(c("10.244.2.0/24"), ip("192.168.0.2"))],
                },
            ),
            (
                vec![
                    (c("10.244.2.0/24"), Some(ip("192.168.0.2"))),
                    (c("10.244.3.0/24"), Some(ip("192.168.0.3"))),
                    (c("10.244.4.0/24"), None),
                ],
                vec![
                    (c("10.244.2.0/24"), ip("192.168.0.2")),
                    (c("10.244.3.0/24"), ip("192.168.0.33")),
                    (c("10.244.2.0/24"), ip("192.168.0.2")),
                ],
                RoutePlan {
                    delete: vec![
                        (c("10.244.3.0/24"), Some(ip("192.168.0.3"))),
                        (c("10.244.4.0/24"), None),
                    ],
                    add: vec![(c("10.244.3.0/24"), ip("192.168.0.33"))],
                },
            ),
        ];
        for (current, wanted, expected) in cases {
            assert_eq!(
                plan(own, &current, &wanted).unwrap(),
                expected,
                "{current:?} {wanted:?}"
            );
        }
    }

    #[test]
    fn conflicting_gateways_are_an_error() {
        let wanted = [
            (c("10.244.2.0/24"), ip("192.168.0.2")),
            (c("10.244.2.0/24"), ip("192.168.0.3")),
        ];
        assert!(plan(c("10.244.1.0/24"), &[], &wanted).is_err());
    }
}
