//! Requests grouped by client, so that settling one client's requests
//! (when one of them executes) touches only that client's entries.
//!
//! Clients are found by hash, since a primary under load acknowledges and
//! settles a request of a different client at every step. Whatever leaves
//! the map in order (the requests to forward or to order after a view
//! change) is sorted first, so the hash order never shows.

use std::collections::HashMap;

use crate::request::Request;
use crate::types::ClientId;

/// A map from requests to `V`, grouped by client. Each client's requests
/// are few (nearly always one), kept by timestamp, then in arrival order.
#[derive(Clone, Debug)]
pub(crate) struct ByClient<V> {
    clients: HashMap<ClientId, Vec<(Request, V)>>,
    /// Requests held, over every client.
    len: usize,
}

impl<V> Default for ByClient<V> {
    fn default() -> Self {
        ByClient {
            clients: HashMap::new(),
            len: 0,
        }
    }
}

impl<V> ByClient<V> {
    /// Inserts `request` with `value` unless it is already present.
    /// Returns whether it was inserted.
    pub(crate) fn insert_if_absent(&mut self, request: Request, value: V) -> bool {
        let requests = self.clients.entry(request.client.clone()).or_default();
        if requests.iter().any(|(held, _)| same(held, &request)) {
            return false;
        }
        // After every request with the same or an earlier timestamp.
        let at = requests.partition_point(|(held, _)| held.timestamp <= request.timestamp);
        requests.insert(at, (request, value));
        self.len += 1;
        true
    }

    /// How many requests are held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Removes `request`, returning its value.
    pub(crate) fn remove(&mut self, request: &Request) -> Option<V> {
        let requests = self.clients.get_mut(&request.client)?;
        let i = requests.iter().position(|(held, _)| same(held, request))?;
        let (_, value) = requests.remove(i);
        self.len -= 1;
        if requests.is_empty() {
            self.clients.remove(&request.client);
        }
        Some(value)
    }

    /// Removes every request of `client` with a timestamp at or below `t`.
    pub(crate) fn settle(&mut self, client: &ClientId, t: u64) {
        if let Some(requests) = self.clients.get_mut(client) {
            let before = requests.len();
            requests.retain(|(held, _)| held.timestamp.is_none_or(|x| x > t));
            self.len -= before - requests.len();
            if requests.is_empty() {
                self.clients.remove(client);
            }
        }
    }

    /// Removes every request of `client` with a timestamp at or below `t`,
    /// returning them.
    pub(crate) fn take_settled(&mut self, client: &ClientId, t: u64) -> Vec<(Request, V)> {
        let Some(requests) = self.clients.get_mut(client) else {
            return Vec::new();
        };
        let (settled, kept): (Vec<_>, Vec<_>) = std::mem::take(requests)
            .into_iter()
            .partition(|(held, _)| held.timestamp.is_some_and(|x| x <= t));
        self.len -= settled.len();
        if kept.is_empty() {
            self.clients.remove(client);
        } else {
            *requests = kept;
        }
        settled
    }

    /// The value held for `request`.
    pub(crate) fn get(&self, request: &Request) -> Option<&V> {
        let requests = self.clients.get(&request.client)?;
        requests
            .iter()
            .find(|(held, _)| same(held, request))
            .map(|(_, value)| value)
    }

    /// The value held for `request`, to change.
    pub(crate) fn get_mut(&mut self, request: &Request) -> Option<&mut V> {
        let requests = self.clients.get_mut(&request.client)?;
        requests
            .iter_mut()
            .find(|(held, _)| same(held, request))
            .map(|(_, value)| value)
    }

    /// Every request with its value: by client, then timestamp, then
    /// arrival.
    pub(crate) fn entries(&self) -> Vec<(&Request, &V)> {
        let mut clients: Vec<_> = self.clients.iter().collect();
        clients.sort_unstable_by(|a, b| a.0.cmp(b.0));
        clients
            .into_iter()
            .flat_map(|(_, requests)| requests.iter().map(|(request, value)| (request, value)))
            .collect()
    }

    /// As [`settle`](Self::settle) for `request`'s client and timestamp
    /// `t`, and adds the removed requests with timestamp `t` other than
    /// `request` whose value `tell` accepts to `others`, once each.
    pub(crate) fn settle_noting(
        &mut self,
        request: &Request,
        t: u64,
        tell: impl Fn(&V) -> bool,
        others: &mut Vec<Request>,
    ) {
        let Some(requests) = self.clients.get_mut(&request.client) else {
            return;
        };
        let before = requests.len();
        requests.retain(|(held, value)| {
            let settled = held.timestamp.is_some_and(|x| x <= t);
            if settled
                && held.timestamp == Some(t)
                && !same(held, request)
                && tell(value)
                && !others.contains(held)
            {
                others.push(held.clone());
            }
            !settled
        });
        self.len -= before - requests.len();
        if requests.is_empty() {
            self.clients.remove(&request.client);
        }
    }

    /// Every value, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.clients.values().flatten().map(|(_, value)| value)
    }

    /// Every value, to change, in no particular order.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.clients.values_mut().flatten().map(|(_, value)| value)
    }

    /// Every request: by client, then timestamp, then arrival.
    pub(crate) fn requests(&self) -> Vec<&Request> {
        let mut clients: Vec<_> = self.clients.iter().collect();
        clients.sort_unstable_by(|a, b| a.0.cmp(b.0));
        clients
            .into_iter()
            .flat_map(|(_, requests)| requests.iter().map(|(request, _)| request))
            .collect()
    }

    /// Removes everything, returning the requests in the order of
    /// [`requests`](Self::requests).
    pub(crate) fn drain(&mut self) -> Vec<(Request, V)> {
        let mut clients: Vec<_> = self.clients.drain().collect();
        self.len = 0;
        clients.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        clients
            .into_iter()
            .flat_map(|(_, requests)| requests)
            .collect()
    }
}

/// Whether two requests of one client are the same request.
fn same(a: &Request, b: &Request) -> bool {
    a.timestamp == b.timestamp && a.operation == b.operation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settling_a_client_removes_only_its_older_requests() {
        let mut map = ByClient::default();
        for (client, t) in [("a", 1), ("a", 2), ("a", 3), ("b", 1)] {
            map.insert_if_absent(Request::new(client, Some(t), "get x"), t);
        }
        map.insert_if_absent(Request::new("a", None, "get x"), 0);
        map.insert_if_absent(Request::new("a", Some(1), "get x"), 99);
        map.settle(&ClientId::from("a"), 2);
        let left: Vec<(String, Option<u64>)> = map
            .requests()
            .into_iter()
            .map(|r| (r.client.as_str().to_string(), r.timestamp))
            .collect();
        assert_eq!(
            left,
            vec![
                ("a".to_string(), None),
                ("a".to_string(), Some(3)),
                ("b".to_string(), Some(1))
            ]
        );
        assert_eq!(map.remove(&Request::new("b", Some(1), "get x")), Some(1));
        assert_eq!(map.values().copied().collect::<Vec<_>>(), vec![0, 3]);
        assert_eq!(map.len(), 2);
        assert_eq!(map.drain().len(), 2);
        assert_eq!(map.len(), 0);
        assert!(map.requests().is_empty());
    }

    #[test]
    fn requests_leave_in_client_then_timestamp_order() {
        let mut map = ByClient::default();
        let mut expected = Vec::new();
        for c in 0..200u64 {
            for t in [3, 1, 2] {
                map.insert_if_absent(Request::new(&format!("c{c:03}"), Some(t), "get x"), c);
            }
            expected.extend((1..=3).map(|t| (format!("c{c:03}"), Some(t))));
        }
        // A second request with the same timestamp comes after its twin.
        map.insert_if_absent(Request::new("c000", Some(2), "get y"), 0);
        expected.insert(2, ("c000".to_string(), Some(2)));
        let order = |requests: Vec<&Request>| -> Vec<(String, Option<u64>)> {
            requests
                .into_iter()
                .map(|r| (r.client.as_str().to_string(), r.timestamp))
                .collect()
        };
        assert_eq!(order(map.requests()), expected);
        assert_eq!(map.requests()[2].operation.as_ref(), "get y");
        let drained: Vec<Request> = map.drain().into_iter().map(|(r, _)| r).collect();
        assert_eq!(order(drained.iter().collect()), expected);
    }
}
