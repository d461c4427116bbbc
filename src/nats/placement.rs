//! Which stream an export's subject or an import's filter is in, adding it
//! to the bridge's stream where the options allow.

use super::bridge::{block_on, Bridge};
use super::error::BridgeError;
use super::permission::guarded;
use super::probe::{probe, Probe};
use super::subject;

impl Bridge {
    pub(crate) fn not_in_stream(
        &self,
        subject: &str,
        found: Option<(String, Vec<String>)>,
    ) -> BridgeError {
        let o = &self.inner.options;
        let (stream, subjects) = found.unwrap_or_else(|| (o.stream.clone(), o.subjects.clone()));
        BridgeError::NotInStream {
            subject: subject.to_owned(),
            stream,
            subjects,
        }
    }

    /// Makes sure a stream captures `subject` and that the user may publish
    /// to it (a probe JetStream answers without storing anything), adding
    /// the subject to the bridge's stream where the options allow.
    pub(crate) fn place_export(&self, subject: &str) -> Result<(), BridgeError> {
        let inner = self.inner.clone();
        let subject = subject.to_owned();
        let errors = self.inner.server_errors.clone();
        let verdict = block_on(self.handle()?, {
            let subject = subject.clone();
            async move { probe(&inner.js, &subject, &errors, inner.options.request_timeout).await }
        })?;
        match verdict {
            Probe::Captured => Ok(()),
            Probe::Denied(reason) => Err(BridgeError::Permission {
                operation: "publish to",
                subject,
                reason,
            }),
            Probe::NoAnswer(reason) => Err(BridgeError::JetStream {
                action: format!("answer a test publish to {subject:?}"),
                reason: format!(
                    "{reason}; the user may lack permission to publish to {subject:?} or to \
                     subscribe to _INBOX.> (for the acks), or JetStream is not running"
                ),
            }),
            Probe::NoStream => {
                let o = &self.inner.options;
                let ours = o.subjects.iter().any(|p| subject::covers(p, &subject));
                if o.stream_explicit && !ours {
                    return Err(self.not_in_stream(&subject, None));
                }
                let inner = self.inner.clone();
                let errors = self.inner.server_errors.clone();
                block_on(self.handle()?, async move {
                    guarded(
                        &errors,
                        super::stream::extend(&inner.js, &inner.options, &subject),
                    )
                    .await
                })?
            }
        }
    }

    /// The stream an import of `filter` reads: the bridge's if it covers
    /// the filter, else the server's stream that does, else (without an
    /// explicit `BridgeOptions::stream`) the bridge's, extended.
    pub(crate) fn place_import(&self, filter: &str) -> Result<String, BridgeError> {
        let o = &self.inner.options;
        if o.subjects.iter().any(|p| subject::covers(p, filter)) {
            return Ok(o.stream.clone());
        }
        let inner = self.inner.clone();
        let errors = self.inner.server_errors.clone();
        let owned = filter.to_owned();
        let found = block_on(self.handle()?, async move {
            guarded(&errors, super::stream::find(&inner.js, &owned)).await
        })??;
        match found {
            Some((name, subjects)) if subjects.iter().any(|p| subject::covers(p, filter)) => {
                Ok(name)
            }
            Some((name, _)) if name == o.stream && !o.stream_explicit => self.extend(filter),
            None if !o.stream_explicit => self.extend(filter),
            other => Err(self.not_in_stream(filter, other)),
        }
    }

    fn extend(&self, subject: &str) -> Result<String, BridgeError> {
        let inner = self.inner.clone();
        let errors = self.inner.server_errors.clone();
        let subject = subject.to_owned();
        block_on(self.handle()?, async move {
            guarded(
                &errors,
                super::stream::extend(&inner.js, &inner.options, &subject),
            )
            .await
        })??;
        Ok(self.inner.options.stream.clone())
    }
}
