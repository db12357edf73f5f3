//! One end of a link as `cnet link set` changes it and `cnet link ls` shows it: its admin state,
//! carrier and MTU, read and set with one request each.

use rtnetlink::{
    LinkUnspec,
    packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State},
};

use crate::{NetnsHandle, Result, link::check_ifname};

/// What `ip link show` says of an interface's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// The lower layer is up: for a veth, its peer is up (`IFLA_CARRIER`).
    pub carrier: bool,
    pub mtu: u32,
    /// RFC 2863 operational state, lowercase as `ip` prints it: `up`, `down`, `lowerlayerdown`…
    pub operstate: String,
}

impl LinkStatus {
    pub(crate) fn from_message(msg: &LinkMessage) -> LinkStatus {
        let mut status = LinkStatus {
            up: msg.header.flags.contains(LinkFlags::Up),
            carrier: msg.header.flags.contains(LinkFlags::LowerUp),
            mtu: 0,
            operstate: "unknown".to_string(),
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::Mtu(m) => status.mtu = *m,
                LinkAttribute::Carrier(c) => status.carrier = *c != 0,
                LinkAttribute::OperState(s) => status.operstate = operstate_name(s),
                _ => {}
            }
        }
        status
    }
}

fn operstate_name(s: &State) -> String {
    match s {
        State::Unknown => "unknown".into(),
        State::NotPresent => "notpresent".into(),
        State::Down => "down".into(),
        State::LowerLayerDown => "lowerlayerdown".into(),
        State::Testing => "testing".into(),
        State::Dormant => "dormant".into(),
        State::Up => "up".into(),
        State::Other(n) => format!("state {n}"),
        _ => "unknown".into(),
    }
}

impl NetnsHandle {
    /// `ip -n SANDBOX link show dev IFNAME`'s state; `None` when there is no such link.
    pub async fn link_status(&self, ifname: &str) -> Result<Option<LinkStatus>> {
        Ok(self.nl().link_message_by_name(ifname).await?.as_ref().map(LinkStatus::from_message))
    }

    /// `ip -n SANDBOX link set dev IFNAME [up|down] [mtu N]`, in one request. Taking a veth end
    /// down takes its peer's carrier away; bringing it up gives it back.
    pub async fn set_link_state(&self, ifname: &str, up: Option<bool>, mtu: Option<u32>) -> Result<()> {
        check_ifname(ifname)?;
        let mut b = LinkUnspec::new_with_name(ifname);
        let mut what = format!("set link {ifname}");
        match up {
            Some(true) => {
                b = b.up();
                what += " up";
            }
            Some(false) => {
                b = b.down();
                what += " down";
            }
            None => {}
        }
        if let Some(mtu) = mtu {
            b = b.mtu(mtu);
            what += &format!(" mtu {mtu}");
        }
        self.nl().set_link(ifname, b.build(), what).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_reads_flags_and_attributes() {
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.attributes =
            vec![LinkAttribute::Mtu(1500), LinkAttribute::Carrier(0), LinkAttribute::OperState(State::Down)];
        let s = LinkStatus::from_message(&msg);
        assert_eq!(s, LinkStatus { up: true, carrier: false, mtu: 1500, operstate: "down".into() });
        msg.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
        msg.attributes = vec![LinkAttribute::OperState(State::LowerLayerDown)];
        let s = LinkStatus::from_message(&msg);
        assert!(s.carrier && s.up);
        assert_eq!(s.operstate, "lowerlayerdown");
    }
}
