//! Hosts in network namespaces: one namespace per replica, each with its
//! own address on a bridge in the calling namespace, where the clients
//! run. Links go down and up to partition a host (these machines have no
//! netem, so loss is all or nothing). Everything made here is removed when
//! the [`Hosts`] is dropped, whatever happened.

use std::process::{Command, Stdio};

/// The namespaces, their links and the bridge.
pub struct Hosts {
    tag: String,
    count: usize,
    subnet: String,
    /// What was made, for the cleanup, in the order it was made.
    made: Vec<Made>,
}

enum Made {
    Bridge(String),
    Namespace(String),
    Link(String),
}

/// Whether `why`, an error of [`Hosts::make`], says that this machine
/// cannot make namespaces at all (no `ip`, or no privilege), rather than
/// that something went wrong.
pub fn unavailable(why: &str) -> bool {
    why.starts_with("cannot run `ip`") || why.contains("Operation not permitted")
}

/// Runs `ip` with `args`; the error says what failed and how.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl Hosts {
    /// `count` hosts on the subnet `10.213.<third>.0/24`: host `i` is
    /// `.{i + 1}` in namespace [`Hosts::namespace`]`(i)`, and the calling
    /// namespace is `.254` on the bridge. Names carry `tag` so that runs
    /// side by side do not collide.
    pub fn make(count: usize, tag: &str, third: u8) -> Result<Hosts, String> {
        let mut hosts = Hosts {
            tag: tag.to_string(),
            count,
            subnet: format!("10.213.{third}"),
            made: Vec::new(),
        };
        let bridge = format!("pb{tag}");
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        hosts.made.push(Made::Bridge(bridge.clone()));
        ip(&[
            "addr",
            "add",
            &format!("{}.254/24", hosts.subnet),
            "dev",
            &bridge,
        ])?;
        ip(&["link", "set", &bridge, "up"])?;
        for i in 0..count {
            let ns = hosts.namespace(i);
            ip(&["netns", "add", &ns])?;
            hosts.made.push(Made::Namespace(ns.clone()));
            let outside = hosts.link(i);
            let inside = format!("pb{tag}n{i}");
            ip(&[
                "link", "add", &outside, "type", "veth", "peer", "name", &inside,
            ])?;
            hosts.made.push(Made::Link(outside.clone()));
            ip(&["link", "set", &inside, "netns", &ns])?;
            ip(&["link", "set", &outside, "master", &bridge])?;
            ip(&["link", "set", &outside, "up"])?;
            let address = format!("{}/24", hosts.address(i));
            ip(&["-n", &ns, "addr", "add", &address, "dev", &inside])?;
            ip(&["-n", &ns, "link", "set", &inside, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(hosts)
    }

    /// The namespace of host `i`.
    pub fn namespace(&self, i: usize) -> String {
        format!("pbft{}h{i}", self.tag)
    }

    /// The address of host `i`.
    pub fn address(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, i + 1)
    }

    /// The bridge end of host `i`'s link.
    fn link(&self, i: usize) -> String {
        format!("pb{}h{i}", self.tag)
    }

    /// Cuts host `i` off from every other host and the clients.
    pub fn cut(&self, i: usize) -> Result<(), String> {
        ip(&["link", "set", &self.link(i), "down"])
    }

    /// Joins host `i` again.
    pub fn heal(&self, i: usize) -> Result<(), String> {
        ip(&["link", "set", &self.link(i), "up"])
    }

    /// How many hosts.
    pub fn len(&self) -> usize {
        self.count
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for made in self.made.iter().rev() {
            // Best effort: deleting a namespace deletes the links in it,
            // and deleting one end of a veth deletes the other.
            let _ = match made {
                Made::Link(name) | Made::Bridge(name) => ip(&["link", "del", name]),
                Made::Namespace(name) => ip(&["netns", "del", name]),
            };
        }
    }
}
