//! The live set of clients and accounts, swapped atomically as sources report changes.
//!
//! Readers take a snapshot (`Arc`) and never lock; a source replaces a whole set at once,
//! so a request sees either the old set or the new one, never half of each.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::model::{Account, Client, ObjectRef};

/// An object a source offered that did not make it into the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The object.
    pub origin: ObjectRef,
    /// Why, in one line.
    pub reason: String,
}

/// The clients, by client_id.
#[derive(Debug, Default)]
pub struct ClientSet {
    by_id: HashMap<String, Arc<Client>>,
}

impl ClientSet {
    /// Builds a set; when two clients share a name, the oldest wins and the others are
    /// returned as rejected. Ties in age keep the order given.
    pub fn build(mut clients: Vec<Client>) -> (Self, Vec<Rejected>) {
        clients.sort_by_key(|c| c.origin.created.unwrap_or(i64::MAX));
        let mut by_id: HashMap<String, Arc<Client>> = HashMap::with_capacity(clients.len());
        let mut rejected = Vec::new();
        for client in clients {
            if let Some(winner) = by_id.get(&client.id) {
                let reason = format!(
                    "client name {:?} is already used by {}",
                    client.id, winner.origin
                );
                rejected.push(Rejected {
                    origin: client.origin.clone(),
                    reason,
                });
                continue;
            }
            by_id.insert(client.id.clone(), Arc::new(client));
        }
        (Self { by_id }, rejected)
    }

    /// The client with this client_id.
    pub fn get(&self, id: &str) -> Option<&Arc<Client>> {
        self.by_id.get(id)
    }

    /// Every client.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Client>> {
        self.by_id.values()
    }

    /// How many clients there are.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// The accounts, by username and by email.
#[derive(Debug, Default)]
pub struct UserSet {
    by_name: HashMap<String, Arc<Account>>,
    by_email: HashMap<String, Option<String>>,
}

impl UserSet {
    /// Builds a set. An email shared by several accounts cannot be used to log in.
    pub fn build(accounts: Vec<Account>) -> Self {
        let mut by_email: HashMap<String, Option<String>> = HashMap::new();
        for account in &accounts {
            if let Some(email) = &account.email {
                by_email
                    .entry(email.to_lowercase())
                    .and_modify(|owner| *owner = None)
                    .or_insert_with(|| Some(account.username.clone()));
            }
        }
        let by_name = accounts
            .into_iter()
            .map(|a| (a.username.clone(), Arc::new(a)))
            .collect();
        Self { by_name, by_email }
    }

    /// The account with this username.
    pub fn get(&self, username: &str) -> Option<&Arc<Account>> {
        self.by_name.get(username)
    }

    /// The account whose username, or else whose unique email, is `login`.
    pub fn find_login(&self, login: &str) -> Option<&Arc<Account>> {
        if let Some(account) = self.by_name.get(login) {
            return Some(account);
        }
        let owner = self.by_email.get(&login.to_lowercase())?.as_ref()?;
        self.by_name.get(owner)
    }

    /// How many accounts there are.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// The registry shared by the sources (writers) and the HTTP server (readers).
#[derive(Debug, Default)]
pub struct Registry {
    clients: ArcSwap<ClientSet>,
    users: ArcSwap<UserSet>,
    clients_synced: AtomicBool,
    users_synced: AtomicBool,
}

impl Registry {
    /// An empty registry that is not ready.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The current clients.
    pub fn clients(&self) -> Arc<ClientSet> {
        self.clients.load_full()
    }

    /// The current accounts.
    pub fn users(&self) -> Arc<UserSet> {
        self.users.load_full()
    }

    /// Replaces the clients and marks them synced.
    pub fn set_clients(&self, clients: ClientSet) {
        self.clients.store(Arc::new(clients));
        self.clients_synced.store(true, Ordering::Release);
    }

    /// Replaces the accounts and marks them synced.
    pub fn set_users(&self, users: UserSet) {
        self.users.store(Arc::new(users));
        self.users_synced.store(true, Ordering::Release);
    }

    /// True once both clients and accounts have been loaded completely at least once.
    pub fn is_ready(&self) -> bool {
        self.clients_synced.load(Ordering::Acquire) && self.users_synced.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GrantMethod;

    fn client(id: &str, name: &str, created: Option<i64>) -> Client {
        Client {
            id: id.into(),
            secret: None,
            grant_method: GrantMethod::Auto,
            scope_restrictions: vec![],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            trusted: false,
            access_token_max_age: None,
            access_token_inactivity_timeout: None,
            origin: ObjectRef {
                name: name.into(),
                created,
                ..Default::default()
            },
        }
    }

    fn account(name: &str, email: &str) -> Account {
        Account {
            username: name.into(),
            email: Some(email.into()),
            display_name: None,
            lang: None,
            groups: vec![],
            password: None,
            state: "Active".into(),
            origin: ObjectRef::default(),
        }
    }

    #[test]
    fn oldest_secret_wins_a_name_clash() {
        let (set, rejected) = ClientSet::build(vec![
            client("harbor", "newer", Some(20)),
            client("harbor", "older", Some(10)),
        ]);
        assert_eq!(set.get("harbor").unwrap().origin.name, "older");
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].origin.name, "newer");
    }

    #[test]
    fn login_by_email_is_case_insensitive() {
        let set = UserSet::build(vec![account("admin", "Admin@Example.com")]);
        assert_eq!(
            set.find_login("admin@example.com").unwrap().username,
            "admin"
        );
        assert_eq!(set.find_login("admin").unwrap().username, "admin");
    }

    #[test]
    fn shared_email_is_not_a_login_name() {
        let set = UserSet::build(vec![
            account("a", "x@example.com"),
            account("b", "x@example.com"),
        ]);
        assert!(set.find_login("x@example.com").is_none());
    }

    #[test]
    fn registry_is_ready_only_after_both_sets() {
        let r = Registry::new();
        assert!(!r.is_ready());
        r.set_clients(ClientSet::default());
        assert!(!r.is_ready());
        r.set_users(UserSet::default());
        assert!(r.is_ready());
    }
}
