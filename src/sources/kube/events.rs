//! Reports objects the source skipped: one warning in the log and one Warning Event per
//! version of the object and reason, however often the set is rebuilt.
//!
//! Messages name the problem, never the object's content.

use std::collections::HashSet;
use std::fmt::Display;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::ResourceExt;

use super::version_key;

/// The longest Event message kube-idp writes, in characters.
const MAX_MESSAGE: usize = 300;
/// The action recorded on Events.
const ACTION: &str = "Load";

/// An object left out of the registry, and why.
pub(super) struct Rejection {
    reference: ObjectReference,
    version: (String, String),
    reason: &'static str,
    message: String,
}

impl Rejection {
    /// A rejection of the object `reference` names (with its uid and resourceVersion), with
    /// an Event `reason` (CamelCase) and a one-line message.
    pub(super) fn new(
        reference: ObjectReference,
        reason: &'static str,
        message: impl Display,
    ) -> Self {
        let uid = reference.uid.clone().or_else(|| reference.name.clone());
        let version = reference.resource_version.clone();
        Self {
            version: (uid.unwrap_or_default(), version.unwrap_or_default()),
            reference,
            reason,
            message: truncate(&message.to_string()),
        }
    }
}

/// Logs and records rejections, remembering what it already reported.
pub(super) struct Reporter {
    recorder: Recorder,
    reported: HashSet<(String, String, &'static str)>,
    warned: HashSet<(String, String)>,
    warned_now: HashSet<(String, String)>,
}

impl Reporter {
    pub(super) fn new(recorder: Recorder) -> Self {
        Self {
            recorder,
            reported: HashSet::new(),
            warned: HashSet::new(),
            warned_now: HashSet::new(),
        }
    }

    /// Logs configuration warnings of an accepted object, once per version.
    pub(super) fn note_warnings<K: ResourceExt>(&mut self, object: &K, warnings: &[String]) {
        if warnings.is_empty() {
            return;
        }
        let version = version_key(object);
        if !self.warned.contains(&version) {
            for warning in warnings {
                tracing::warn!(namespace = object.namespace().unwrap_or_default(),
                    name = %object.name_any(), %warning, "client configuration");
            }
        }
        self.warned_now.insert(version);
    }

    /// Reports the rejections of one rebuild; those already reported for the same version
    /// and reason are skipped. Forgets objects no longer rejected.
    pub(super) fn report(&mut self, rejections: Vec<Rejection>) {
        let mut current = HashSet::with_capacity(rejections.len());
        for rejection in rejections {
            let (uid, version) = rejection.version.clone();
            let key = (uid, version, rejection.reason);
            if !self.reported.contains(&key) {
                self.emit(rejection);
            }
            current.insert(key);
        }
        self.reported = current;
        self.warned = std::mem::take(&mut self.warned_now);
    }

    fn emit(&self, rejection: Rejection) {
        let Rejection {
            reference,
            reason,
            message,
            ..
        } = rejection;
        tracing::warn!(kind = reference.kind.as_deref().unwrap_or(""),
            namespace = reference.namespace.as_deref().unwrap_or(""),
            name = reference.name.as_deref().unwrap_or(""), reason, %message, "object skipped");
        let recorder = self.recorder.clone();
        let event = Event {
            type_: EventType::Warning,
            reason: reason.to_string(),
            note: Some(message),
            action: ACTION.to_string(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(error) = recorder.publish(&event, &reference).await {
                let name = reference.name.as_deref().unwrap_or("");
                tracing::warn!(name, reason = event.reason, %error, "could not record an Event");
            }
        });
    }
}

fn truncate(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let cut = truncate(&"é".repeat(MAX_MESSAGE + 5));
        assert_eq!(cut.chars().count(), MAX_MESSAGE + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn short_messages_are_kept() {
        assert_eq!(truncate("name: required"), "name: required");
    }
}
