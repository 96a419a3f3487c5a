//! A test double of kube-apiserver on a loopback port: list (paged), watch (chunked,
//! ADDED/MODIFIED/DELETED/BOOKMARK/ERROR), PATCH of Users and of their `status` subresource,
//! create, replace and delete of Secrets, create and delete of namespaces, and POST of
//! Events, for Secrets in namespaces and cluster-scoped `users.iam.kubesphere.io/v1beta1`,
//! driven by kube-rs' real client through a kubeconfig. Controls change objects, fail with 500, refuse connections,
//! and restart with compacted history so that old resourceVersions get `410 Gone`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

/// The bearer token the double's kubeconfig carries and the double requires.
const TOKEN: &str = "double-token";
/// How often bookmarks are sent to watches that asked for them.
const BOOKMARK_EVERY: Duration = Duration::from_millis(500);
/// Creation times start here (2024-01-01T00:00:00Z) and advance a second per object.
const EPOCH: i64 = 1_704_067_200;

/// The resources the double serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `v1` `Secret`, namespaced.
    Secret,
    /// `iam.kubesphere.io/v1beta1` `User`, cluster-scoped.
    User,
}

impl Kind {
    fn of(object: &Value) -> Kind {
        match object["kind"].as_str() {
            Some("Secret") => Kind::Secret,
            Some("User") => Kind::User,
            other => panic!("the double serves Secrets and Users, not {other:?}"),
        }
    }

    fn list_kind(self) -> (&'static str, &'static str) {
        match self {
            Kind::Secret => ("v1", "SecretList"),
            Kind::User => ("iam.kubesphere.io/v1beta1", "UserList"),
        }
    }
}

/// A PATCH the double received.
#[derive(Clone, Debug)]
pub struct ReceivedPatch {
    /// The object's name.
    pub name: String,
    /// `Some("status")` for a patch of the status subresource, `None` for the object.
    pub subresource: Option<String>,
    /// The request's Content-Type.
    pub content_type: String,
    /// The patch document.
    pub body: Value,
}

/// One change, kept so that watches from an older resourceVersion can replay it.
#[derive(Clone)]
struct Change {
    rv: u64,
    kind: Kind,
    namespace: String,
    before: Option<Value>,
    after: Value,
    deleted: bool,
}

/// An open watch stream.
struct Watch {
    kind: Kind,
    namespace: Option<String>,
    selector: Vec<Requirement>,
    bookmarks: bool,
    deadline: Instant,
    tx: UnboundedSender<web::Bytes>,
}

/// One term of a label selector.
#[derive(Clone)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
}

#[derive(Default)]
struct State {
    rv: u64,
    compacted: u64,
    created: i64,
    objects: BTreeMap<(Kind, String, String), Value>,
    history: Vec<Change>,
    watches: Vec<Watch>,
    failing: bool,
    patches: Vec<ReceivedPatch>,
    events: Vec<Value>,
    gone_sent: usize,
    lists: usize,
    failed: usize,
    event_writes: usize,
    namespaces: BTreeMap<String, Value>,
}

type Shared = Arc<Mutex<State>>;

/// A running double. Dropping it does not stop it; call [`ApiServer::stop`].
pub struct ApiServer {
    state: Shared,
    addr: SocketAddr,
    handle: Mutex<Option<ServerHandle>>,
    ticker: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// Starts a double on 127.0.0.1 and a free port.
    pub async fn start() -> ApiServer {
        let state: Shared = Arc::default();
        let listener = bind(0).expect("bind the API server double on loopback");
        let addr = listener.local_addr().expect("local address");
        let handle = serve(state.clone(), listener);
        let ticker = tokio::spawn(tick(state.clone()));
        ApiServer {
            state,
            addr,
            handle: Mutex::new(Some(handle)),
            ticker,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig pointing at the double into `dir` and returns its path.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: double\n\
             clusters:\n- name: double\n  cluster:\n    server: {}\n\
             contexts:\n- name: double\n  context:\n    cluster: double\n    user: tester\n\
             users:\n- name: tester\n  user:\n    token: {TOKEN}\n",
            self.url()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// Creates or replaces an object (`kind` and `metadata.name` required; `stringData` of a
    /// Secret moves to `data`, as the real server does). Returns it as stored.
    pub fn apply(&self, mut object: Value) -> Value {
        let kind = Kind::of(&object);
        normalise(kind, &mut object);
        let mut state = self.lock();
        let key = object_key(kind, &object);
        let before = state.objects.get(&key).cloned();
        state.created += 1;
        let created = state.created;
        stamp(&mut object, before.as_ref(), created);
        state.commit(kind, before, object, false)
    }

    /// Deletes an object; true when it existed.
    pub fn delete(&self, kind: Kind, namespace: &str, name: &str) -> bool {
        let mut state = self.lock();
        let key = (kind, namespace.to_string(), name.to_string());
        let Some(before) = state.objects.get(&key).cloned() else {
            return false;
        };
        state.commit(kind, Some(before.clone()), before, true);
        true
    }

    /// The stored object, if any.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        let key = (kind, namespace.to_string(), name.to_string());
        self.lock().objects.get(&key).cloned()
    }

    /// Simulates a restart with an etcd compaction: every watch ends, and every
    /// resourceVersion handed out so far is too old to watch from (`410 Gone`).
    pub fn restart(&self) {
        let mut state = self.lock();
        state.watches.clear();
        state.history.clear();
        state.rv += 1;
        state.compacted = state.rv;
    }

    /// While true, every request is answered `500 Internal Server Error` and open watches
    /// are closed.
    pub fn fail_with_500(&self, failing: bool) {
        let mut state = self.lock();
        state.failing = failing;
        if failing {
            state.watches.clear();
        }
    }

    /// Stops listening: connections are refused until [`ApiServer::come_back`].
    pub async fn go_away(&self) {
        self.lock().watches.clear();
        let handle = self.handle.lock().expect("handle").take();
        if let Some(handle) = handle {
            handle.stop(false).await;
        }
    }

    /// Listens again on the same port.
    pub async fn come_back(&self) {
        let listener = bind(self.addr.port()).expect("rebind the API server double");
        let handle = serve(self.state.clone(), listener);
        *self.handle.lock().expect("handle") = Some(handle);
    }

    /// Stops the double.
    pub async fn stop(self) {
        self.go_away().await;
        self.ticker.abort();
    }

    /// The namespaces created through the API (and not deleted since).
    pub fn namespaces(&self) -> Vec<String> {
        self.lock().namespaces.keys().cloned().collect()
    }

    /// The PATCH requests received for Users.
    pub fn patches(&self) -> Vec<ReceivedPatch> {
        self.lock().patches.clone()
    }

    /// The Events created (either API group), as last patched.
    pub fn events(&self) -> Vec<Value> {
        self.lock().events.clone()
    }

    /// How many times Events were created or patched (a repeat is a patch of the series).
    pub fn event_writes(&self) -> usize {
        self.lock().event_writes
    }

    /// How many watches were answered with `410 Gone`.
    pub fn gone_sent(&self) -> usize {
        self.lock().gone_sent
    }

    /// How many requests were answered 500 on purpose.
    pub fn failed_requests(&self) -> usize {
        self.lock().failed
    }

    /// How many list requests (pages) were served.
    pub fn lists(&self) -> usize {
        self.lock().lists
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// A listener on 127.0.0.1 that can be re-bound right after it is closed.
fn bind(port: u16) -> std::io::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(64)?.into_std()
}

fn serve(state: Shared, listener: TcpListener) -> ServerHandle {
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(1 << 20))
            .default_service(web::to(handle))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(0)
    .listen(listener)
    .expect("listen")
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

/// Sends bookmarks and ends watches whose `timeoutSeconds` passed.
async fn tick(state: Shared) {
    let mut interval = tokio::time::interval(BOOKMARK_EVERY);
    loop {
        interval.tick().await;
        let mut state = lock(&state);
        let now = Instant::now();
        let rv = state.rv;
        state.watches.retain(|w| {
            if w.deadline <= now {
                return false;
            }
            !w.bookmarks || w.tx.send(bookmark(w.kind, rv)).is_ok()
        });
    }
}

impl State {
    /// True (and counted) when the double is failing on purpose.
    fn fail_request(&mut self) -> bool {
        self.failed += usize::from(self.failing);
        self.failing
    }

    /// Records a change, tells the watches, and returns the object as stored.
    fn commit(
        &mut self,
        kind: Kind,
        before: Option<Value>,
        mut after: Value,
        deleted: bool,
    ) -> Value {
        self.rv += 1;
        after["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let namespace = after["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let key = object_key(kind, &after);
        if deleted {
            self.objects.remove(&key);
        } else {
            self.objects.insert(key, after.clone());
        }
        let change = Change {
            rv: self.rv,
            kind,
            namespace,
            before,
            after: after.clone(),
            deleted,
        };
        self.watches.retain(|w| match event_for(w, &change) {
            Some(line) => w.tx.send(line).is_ok(),
            None => true,
        });
        self.history.push(change);
        after
    }
}

fn object_key(kind: Kind, object: &Value) -> (Kind, String, String) {
    let meta = &object["metadata"];
    let namespace = meta["namespace"].as_str().unwrap_or("").to_string();
    let name = meta["name"].as_str().expect("metadata.name").to_string();
    (kind, namespace, name)
}

/// What the real server adds or rewrites on write.
fn normalise(kind: Kind, object: &mut Value) {
    if kind == Kind::User {
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("namespace");
        }
        return;
    }
    if object["type"].is_null() {
        object["type"] = json!("Opaque");
    }
    let string_data = object.as_object_mut().and_then(|o| o.remove("stringData"));
    if let Some(Value::Object(entries)) = string_data {
        for (key, value) in entries {
            let text = value.as_str().unwrap_or("");
            let encoded = base64::engine::general_purpose::STANDARD.encode(text);
            object["data"][key] = json!(encoded);
        }
    }
}

/// Sets uid and creation time: new for a new object, kept for a replaced one.
fn stamp(object: &mut Value, before: Option<&Value>, created: i64) {
    let meta = &mut object["metadata"];
    match before {
        Some(old) => {
            meta["uid"] = old["metadata"]["uid"].clone();
            meta["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
        }
        None => {
            let at = k8s_openapi::jiff::Timestamp::from_second(EPOCH + created).expect("time");
            meta["uid"] = json!(format!("00000000-0000-4000-8000-{created:012}"));
            meta["creationTimestamp"] = json!(at.to_string());
        }
    }
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    })
}

fn status_response(code: u16, reason: &str, message: &str) -> HttpResponse {
    let code_ = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(code_).json(status(code, reason, message))
}

fn line(kind: &str, object: &Value) -> web::Bytes {
    let mut text = json!({ "type": kind, "object": object }).to_string();
    text.push('\n');
    web::Bytes::from(text)
}

fn bookmark(kind: Kind, rv: u64) -> web::Bytes {
    let (api_version, list) = kind.list_kind();
    let kind_name = list.trim_end_matches("List");
    let object = json!({
        "kind": kind_name, "apiVersion": api_version,
        "metadata": { "resourceVersion": rv.to_string() },
    });
    line("BOOKMARK", &object)
}

/// The watch event a change means to one watch, given its namespace and selector: an
/// object moving into the selection is ADDED, one moving out is DELETED.
fn event_for(watch: &Watch, change: &Change) -> Option<web::Bytes> {
    if watch.kind != change.kind {
        return None;
    }
    if watch
        .namespace
        .as_ref()
        .is_some_and(|ns| *ns != change.namespace)
    {
        return None;
    }
    let was = change
        .before
        .as_ref()
        .is_some_and(|b| selects(&watch.selector, b));
    let is = !change.deleted && selects(&watch.selector, &change.after);
    match (was, is) {
        (false, true) => Some(line("ADDED", &change.after)),
        (true, true) => Some(line("MODIFIED", &change.after)),
        (true, false) => Some(line("DELETED", &change.after)),
        (false, false) => None,
    }
}

fn parse_selector(text: &str) -> Vec<Requirement> {
    let terms = text.split(',').map(str::trim).filter(|t| !t.is_empty());
    terms
        .map(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                Requirement::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else {
                Requirement::Exists(term.into())
            }
        })
        .collect()
}

fn selects(selector: &[Requirement], object: &Value) -> bool {
    let labels = &object["metadata"]["labels"];
    selector.iter().all(|r| match r {
        Requirement::Equals(k, v) => labels[k].as_str() == Some(v),
        Requirement::NotEquals(k, v) => labels[k].as_str() != Some(v),
        Requirement::Exists(k) => !labels[k].is_null(),
    })
}

/// The request's query parameters.
struct Query(BTreeMap<String, String>);

impl Query {
    fn parse(text: &str) -> Query {
        Query(
            form_urlencoded::parse(text.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1"))
    }
}

async fn handle(req: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let authorised = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    if !authorised {
        return status_response(401, "Unauthorized", "Unauthorized");
    }
    if lock(&state).fail_request() {
        return status_response(500, "InternalError", "the double is failing on purpose");
    }
    let segments: Vec<&str> = req.path().trim_matches('/').split('/').collect();
    let query = Query::parse(req.query_string());
    let method = req.method().as_str();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    match (method, segments.as_slice()) {
        ("GET", ["api", "v1", "namespaces", ns, "secrets"]) => {
            collection(&state, Kind::Secret, Some(ns), &query)
        }
        ("GET", ["api", "v1", "namespaces", ns, "secrets", name]) => {
            let key = (Kind::Secret, ns.to_string(), name.to_string());
            match lock(&state).objects.get(&key) {
                Some(secret) => HttpResponse::Ok().json(secret),
                None => status_response(404, "NotFound", "secret not found"),
            }
        }
        ("POST", ["api", "v1", "namespaces"]) => create_namespace(&state, &body),
        ("DELETE", ["api", "v1", "namespaces", name]) => delete_namespace(&state, name),
        ("DELETE", ["api", "v1", "namespaces", ns, "secrets", name]) => {
            let key = (Kind::Secret, ns.to_string(), name.to_string());
            let mut state = lock(&state);
            match state.objects.get(&key).cloned() {
                Some(secret) => HttpResponse::Ok().json(state.commit(
                    Kind::Secret,
                    Some(secret.clone()),
                    secret,
                    true,
                )),
                None => status_response(404, "NotFound", "secret not found"),
            }
        }
        ("POST", ["api", "v1", "namespaces", ns, "secrets"]) => {
            write_secret(&state, ns, None, &body)
        }
        ("PUT", ["api", "v1", "namespaces", ns, "secrets", name]) => {
            write_secret(&state, ns, Some(name), &body)
        }
        ("GET", ["apis", "iam.kubesphere.io", "v1beta1", "users"]) => {
            collection(&state, Kind::User, None, &query)
        }
        ("GET", ["apis", "iam.kubesphere.io", "v1beta1", "users", name]) => {
            match lock(&state)
                .objects
                .get(&(Kind::User, String::new(), name.to_string()))
            {
                Some(user) => HttpResponse::Ok().json(user),
                None => status_response(404, "NotFound", "user not found"),
            }
        }
        ("PATCH", ["apis", "iam.kubesphere.io", "v1beta1", "users", name]) => {
            patch_user(&state, name, None, &content_type, &body)
        }
        ("PATCH", ["apis", "iam.kubesphere.io", "v1beta1", "users", name, "status"]) => {
            patch_user(&state, name, Some("status"), &content_type, &body)
        }
        ("POST", ["api", "v1", "namespaces", ns, "events"])
        | ("POST", ["apis", "events.k8s.io", "v1", "namespaces", ns, "events"]) => {
            create_event(&state, ns, &body)
        }
        ("PATCH", ["apis", "events.k8s.io", "v1", "namespaces", _, "events", name])
        | ("PATCH", ["api", "v1", "namespaces", _, "events", name]) => {
            patch_event(&state, name, &body)
        }
        _ => status_response(404, "NotFound", "the double does not serve this"),
    }
}

fn collection(state: &Shared, kind: Kind, namespace: Option<&str>, query: &Query) -> HttpResponse {
    let selector = parse_selector(query.get("labelSelector").unwrap_or(""));
    let namespace = namespace.map(str::to_string);
    if query.flag("watch") {
        return watch(state, kind, namespace, selector, query);
    }
    list(state, kind, namespace, &selector, query)
}

/// A page of a list. The continue token is `RV:LAST_NAME`; a token older than the last
/// compaction is refused with `410 Gone`, as etcd would.
fn list(
    state: &Shared,
    kind: Kind,
    namespace: Option<String>,
    selector: &[Requirement],
    query: &Query,
) -> HttpResponse {
    let mut state = lock(state);
    state.lists += 1;
    let (rv, after) = match query.get("continue").and_then(|c| c.split_once(':')) {
        Some((rv, name)) => (rv.parse().unwrap_or(0), Some(name.to_string())),
        None => (state.rv, None),
    };
    if rv < state.compacted {
        return status_response(410, "Expired", "the provided continue parameter is too old");
    }
    let limit = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX);
    let mut items: Vec<&Value> = state
        .objects
        .iter()
        .filter(|((k, ns, name), _)| {
            *k == kind
                && namespace.as_ref().is_none_or(|n| n == ns)
                && after.as_ref().is_none_or(|a| name > a)
        })
        .map(|(_, v)| v)
        .filter(|v| selects(selector, v))
        .collect();
    let more = items.len() > limit;
    items.truncate(limit);
    let mut metadata = json!({ "resourceVersion": rv.to_string() });
    if more {
        let last = items
            .last()
            .and_then(|v| v["metadata"]["name"].as_str())
            .unwrap_or("");
        metadata["continue"] = json!(format!("{rv}:{last}"));
    }
    let (api_version, list_kind) = kind.list_kind();
    HttpResponse::Ok().json(json!({
        "kind": list_kind, "apiVersion": api_version, "metadata": metadata, "items": items,
    }))
}

/// A chunked watch stream, replaying history after `resourceVersion` (or every current
/// object when it is absent or 0), then live changes.
fn watch(
    state: &Shared,
    kind: Kind,
    namespace: Option<String>,
    selector: Vec<Requirement>,
    query: &Query,
) -> HttpResponse {
    let (tx, mut rx) = unbounded_channel::<web::Bytes>();
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .unwrap_or(1800);
    let watch = Watch {
        kind,
        namespace,
        selector,
        bookmarks: query.flag("allowWatchBookmarks"),
        deadline: Instant::now() + Duration::from_secs(timeout),
        tx,
    };
    let from: u64 = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut state = lock(state);
    if from != 0 && from < state.compacted {
        state.gone_sent += 1;
        let message = format!("too old resource version: {from} ({})", state.compacted);
        let _ = watch
            .tx
            .send(line("ERROR", &status(410, "Expired", &message)));
    } else {
        replay(&state, &watch, from);
        state.watches.push(watch);
    }
    drop(state);
    let body = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|b| b.map(Ok::<_, actix_web::Error>))
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .streaming(body)
}

fn replay(state: &State, watch: &Watch, from: u64) {
    if from == 0 {
        for ((kind, ns, _), object) in &state.objects {
            let namespace_ok = watch.namespace.as_ref().is_none_or(|n| n == ns);
            if *kind == watch.kind && namespace_ok && selects(&watch.selector, object) {
                let _ = watch.tx.send(line("ADDED", object));
            }
        }
        return;
    }
    for change in state.history.iter().filter(|c| c.rv > from) {
        if let Some(line) = event_for(watch, change) {
            let _ = watch.tx.send(line);
        }
    }
}

/// A merge patch (RFC 7386) or JSON patch (RFC 6902) of a User; a `metadata.resourceVersion`
/// in a merge patch is a precondition, answered `409 Conflict` when stale. Through the
/// `status` subresource only the status changes, as with a CRD that enables it.
fn patch_user(
    state: &Shared,
    name: &str,
    subresource: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> HttpResponse {
    let Ok(patch) = serde_json::from_slice::<Value>(body) else {
        return status_response(400, "BadRequest", "the patch is not JSON");
    };
    let mut state = lock(state);
    state.patches.push(ReceivedPatch {
        name: name.to_string(),
        subresource: subresource.map(str::to_string),
        content_type: content_type.to_string(),
        body: patch.clone(),
    });
    let key = (Kind::User, String::new(), name.to_string());
    let Some(before) = state.objects.get(&key).cloned() else {
        return status_response(404, "NotFound", "user not found");
    };
    let mut after = before.clone();
    match content_type.split(';').next().unwrap_or("") {
        "application/merge-patch+json" => {
            let wanted = patch["metadata"]["resourceVersion"].as_str();
            if wanted.is_some_and(|rv| Some(rv) != before["metadata"]["resourceVersion"].as_str()) {
                return status_response(409, "Conflict", "the object has been modified");
            }
            merge(&mut after, &patch);
        }
        "application/json-patch+json" => {
            if let Err(message) = json_patch(&mut after, &patch) {
                return status_response(422, "Invalid", &message);
            }
        }
        other => return status_response(415, "UnsupportedMediaType", other),
    }
    if subresource == Some("status") {
        let status = after["status"].take();
        after = before.clone();
        after["status"] = status;
    }
    let stored = state.commit(Kind::User, Some(before), after, false);
    HttpResponse::Ok().json(stored)
}

fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(entries) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (key, value) in entries {
        if value.is_null() {
            if let Some(map) = target.as_object_mut() {
                map.remove(key);
            }
        } else {
            merge(&mut target[key], value);
        }
    }
}

/// `add`, `replace` and `remove` on object members, which is what a User patch needs.
fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    for op in patch.as_array().ok_or("a JSON patch is an array")? {
        let path = op["path"].as_str().ok_or("op without path")?;
        let (parent, member) = path.rsplit_once('/').ok_or("bad path")?;
        let parent = target.pointer_mut(parent).ok_or("no such parent")?;
        let map = parent.as_object_mut().ok_or("parent is not an object")?;
        match op["op"].as_str() {
            Some("add" | "replace") => {
                map.insert(member.to_string(), op["value"].clone());
            }
            Some("remove") => {
                map.remove(member).ok_or("nothing to remove")?;
            }
            other => return Err(format!("unsupported op {other:?}")),
        }
    }
    Ok(())
}

/// Creates a Secret (`name` is `None`: `409 AlreadyExists` when present) or replaces one
/// (`409 Conflict` when its `resourceVersion` is not the stored one), as the real server does.
fn write_secret(state: &Shared, namespace: &str, name: Option<&str>, body: &[u8]) -> HttpResponse {
    let Ok(mut secret) = serde_json::from_slice::<Value>(body) else {
        return status_response(400, "BadRequest", "the secret is not JSON");
    };
    secret["metadata"]["namespace"] = json!(namespace);
    let Some(secret_name) = secret["metadata"]["name"].as_str().map(str::to_string) else {
        return status_response(422, "Invalid", "metadata.name is required");
    };
    if name.is_some_and(|n| n != secret_name) {
        return status_response(400, "BadRequest", "the name in the body does not match");
    }
    normalise(Kind::Secret, &mut secret);
    let mut state = lock(state);
    let key = (Kind::Secret, namespace.to_string(), secret_name);
    let before = state.objects.get(&key).cloned();
    match (name, &before) {
        (None, Some(_)) => return status_response(409, "AlreadyExists", "secret already exists"),
        (Some(_), None) => return status_response(404, "NotFound", "secret not found"),
        (Some(_), Some(old)) => {
            let stored = old["metadata"]["resourceVersion"].as_str();
            if secret["metadata"]["resourceVersion"].as_str() != stored {
                return status_response(409, "Conflict", "the object has been modified");
            }
        }
        (None, None) => {}
    }
    state.created += 1;
    let created = state.created;
    stamp(&mut secret, before.as_ref(), created);
    let stored = state.commit(Kind::Secret, before, secret, false);
    let status = if name.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    HttpResponse::build(status).json(stored)
}

fn create_event(state: &Shared, namespace: &str, body: &[u8]) -> HttpResponse {
    let Ok(mut event) = serde_json::from_slice::<Value>(body) else {
        return status_response(400, "BadRequest", "the event is not JSON");
    };
    let mut state = lock(state);
    state.rv += 1;
    state.event_writes += 1;
    event["metadata"]["namespace"] = json!(namespace);
    event["metadata"]["resourceVersion"] = json!(state.rv.to_string());
    state.events.push(event.clone());
    HttpResponse::Created().json(event)
}

fn patch_event(state: &Shared, name: &str, body: &[u8]) -> HttpResponse {
    let Ok(patch) = serde_json::from_slice::<Value>(body) else {
        return status_response(400, "BadRequest", "the patch is not JSON");
    };
    let mut state = lock(state);
    state.event_writes += 1;
    let found = state
        .events
        .iter_mut()
        .find(|e| e["metadata"]["name"].as_str() == Some(name));
    match found {
        Some(event) => {
            merge(event, &patch);
            HttpResponse::Ok().json(event.clone())
        }
        None => status_response(404, "NotFound", "event not found"),
    }
}

/// Creates a namespace (`409 AlreadyExists` when present).
fn create_namespace(state: &Shared, body: &[u8]) -> HttpResponse {
    let Ok(mut namespace) = serde_json::from_slice::<Value>(body) else {
        return status_response(400, "BadRequest", "the namespace is not JSON");
    };
    let Some(name) = namespace["metadata"]["name"].as_str().map(str::to_string) else {
        return status_response(422, "Invalid", "metadata.name is required");
    };
    let mut state = lock(state);
    if state.namespaces.contains_key(&name) {
        return status_response(409, "AlreadyExists", "namespace already exists");
    }
    state.rv += 1;
    namespace["metadata"]["resourceVersion"] = json!(state.rv.to_string());
    namespace["status"] = json!({ "phase": "Active" });
    state.namespaces.insert(name, namespace.clone());
    HttpResponse::Created().json(namespace)
}

/// Deletes a namespace and every Secret in it (at once: the double has no finalizers).
fn delete_namespace(state: &Shared, name: &str) -> HttpResponse {
    let mut state = lock(state);
    let Some(mut namespace) = state.namespaces.remove(name) else {
        return status_response(404, "NotFound", "namespace not found");
    };
    let secrets: Vec<Value> = state
        .objects
        .iter()
        .filter(|((kind, ns, _), _)| *kind == Kind::Secret && ns == name)
        .map(|(_, secret)| secret.clone())
        .collect();
    for secret in secrets {
        state.commit(Kind::Secret, Some(secret.clone()), secret, true);
    }
    namespace["status"] = json!({ "phase": "Terminating" });
    HttpResponse::Ok().json(namespace)
}
