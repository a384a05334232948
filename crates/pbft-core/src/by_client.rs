//! Requests grouped by client, so that settling one client's requests
//! (when one of them executes) touches only that client's entries, and
//! iteration is in request order, with no hashing.

use std::collections::BTreeMap;

use crate::request::Request;
use crate::types::ClientId;

/// A map from requests to `V`, grouped by client.
#[derive(Clone, Debug)]
pub(crate) struct ByClient<V> {
    clients: BTreeMap<ClientId, BTreeMap<Request, V>>,
}

impl<V> Default for ByClient<V> {
    fn default() -> Self {
        ByClient {
            clients: BTreeMap::new(),
        }
    }
}

impl<V> ByClient<V> {
    /// Inserts `request` with `value` unless it is already present.
    pub(crate) fn insert_if_absent(&mut self, request: Request, value: V) {
        self.clients
            .entry(request.client.clone())
            .or_default()
            .entry(request)
            .or_insert(value);
    }

    /// Removes `request`, returning its value.
    pub(crate) fn remove(&mut self, request: &Request) -> Option<V> {
        let requests = self.clients.get_mut(&request.client)?;
        let value = requests.remove(request);
        if requests.is_empty() {
            self.clients.remove(&request.client);
        }
        value
    }

    /// Removes every request of `client` with a timestamp at or below `t`.
    pub(crate) fn settle(&mut self, client: &ClientId, t: u64) {
        if let Some(requests) = self.clients.get_mut(client) {
            requests.retain(|r, _| !r.timestamp.is_some_and(|x| x <= t));
            if requests.is_empty() {
                self.clients.remove(client);
            }
        }
    }

    /// Every value.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.clients.values().flat_map(BTreeMap::values)
    }

    /// Every value, to change.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.clients.values_mut().flat_map(BTreeMap::values_mut)
    }

    /// Every request, in request order.
    pub(crate) fn requests(&self) -> impl Iterator<Item = &Request> {
        self.clients.values().flat_map(BTreeMap::keys)
    }

    /// Removes everything, returning the requests in request order.
    pub(crate) fn drain(&mut self) -> Vec<(Request, V)> {
        std::mem::take(&mut self.clients)
            .into_values()
            .flat_map(BTreeMap::into_iter)
            .collect()
    }
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
        assert_eq!(map.drain().len(), 2);
        assert_eq!(map.requests().count(), 0);
    }
}
