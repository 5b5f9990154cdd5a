//! The Lambda's S3 path: SQS messages that name CloudTrail log files ([`crate::notification`])
//! in, each file streamed from an [`ObjectStore`] (S3 in the Lambda) through the CLI's readers
//! and prefilter, its matched records through the one delivery loop ([`Delivery::record`]).
//!
//! A file is never held whole: a blocking thread reads it (inflating and splitting as
//! `sesguard scan` does, [`input::read_stream`]) and hands the records the prefilter lets through
//! to the async side over a bounded channel, so memory is one read buffer, one line buffer (or
//! one record, for lines over [`input::STREAM_LINES_OVER`]) and [`RECORDS_IN_FLIGHT`] records.
//!
//! Each message succeeds or fails on its own (SQS partial batch response): a file that cannot
//! be read or holds malformed input fails its message only; its valid records are still
//! evaluated, and a retry publishes nothing twice (claims on the signal ids, see
//! [`crate::deliver`]).

use std::future::Future;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

use super::{Handler, HandlerError, redact_quoted};
use crate::deliver::{Counts, DeliverError, Delivery, Sink};
use crate::input::{self, InputError, Position, Visitor};
use crate::model::FailureKind;
use crate::notification::{self, Notice, ObjectRef};
use crate::rules;
use crate::state::{HeartbeatStore, State};
use crate::text::truncate;

crate::port_error!(
    /// A log file that could not be fetched (GetObject failed, or its body stream broke).
    ObjectError,
    "reading a log file"
);

/// Where log files come from: S3 in the Lambda (`sesguard_lambda::aws::s3`).
pub trait ObjectStore: Sync {
    /// The object's bytes, read on a blocking thread.
    type Body: Read + Send + 'static;
    fn open(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<Self::Body, ObjectError>> + Send;
}

/// One SQS message: its id (named in the partial batch response) and body.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub id: &'a str,
    pub body: &'a str,
}

/// A message that failed: SQS makes it visible again, and after the queue's receive count moves
/// it to the dead-letter queue.
#[derive(Debug)]
pub struct MessageFailure {
    pub id: String,
    pub error: HandlerError,
}

/// Records read ahead of the delivery loop: what a file costs in memory beyond its buffers.
pub const RECORDS_IN_FLIGHT: usize = 64;

/// Problems of one file reported in full; the rest are counted.
const PROBLEMS_SHOWN: usize = 10;

impl<S: State + HeartbeatStore, K: Sink> Handler<S, K> {
    /// One SQS batch: each message on its own, in order (log file notifications, or redriven
    /// events: [`super::is_redriven_event`]). Returns the messages that failed.
    pub async fn handle_messages<O: ObjectStore>(
        &self,
        store: &O,
        messages: &[Message<'_>],
        counts: &mut Counts,
    ) -> Vec<MessageFailure> {
        let mut failures = Vec::new();
        for message in messages {
            // A redriven event (from the failure queue or the rules' dead-letter queue, via a
            // redrive queue) is evaluated as an invocation with it would be; anything else is a
            // log file notification.
            let result = if super::is_redriven_heartbeat(message.body) {
                // A heartbeat run that failed: the next run checks every region again.
                tracing::info!(message_id = %truncate(message.id, 100), "a failed heartbeat run redriven: nothing to redo");
                Ok(())
            } else if super::is_redriven_event(message.body) {
                self.handle(message.body, message.id, counts).await
            } else {
                self.handle_message(store, message.body, counts).await
            };
            if let Err(error) = result {
                tracing::error!(
                    message_id = %truncate(message.id, 100),
                    error = %truncate(&error.to_string(), 2000),
                    error_type = error.error_type(),
                    transient = error.is_transient(),
                    "message failed; SQS delivers it again, then to the dead-letter queue"
                );
                failures.push(MessageFailure {
                    id: message.id.to_owned(),
                    error,
                });
            }
        }
        failures
    }

    /// One notification: every log file it names (the first failure is returned, after the
    /// others were read).
    pub async fn handle_message<O: ObjectStore>(
        &self,
        store: &O,
        body: &str,
        counts: &mut Counts,
    ) -> Result<(), HandlerError> {
        let notices = notification::parse(body).map_err(|err| {
            counts.malformed += 1;
            HandlerError::Malformed(redact_quoted(&err.to_string()))
        })?;
        let mut first = None;
        for notice in notices {
            match notice {
                Notice::LogFile(object) => {
                    if let Err(err) = self.handle_object(store, &object, counts).await {
                        first.get_or_insert(err);
                    }
                }
                Notice::Ignored { object, reason } => {
                    tracing::debug!(object = %object.url(), reason = reason.as_str(), "not read");
                }
                Notice::Test => tracing::info!("test or subscription message: nothing to read"),
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// One log file, streamed: its records read as `sesguard scan` reads a file, those the
    /// prefilter lets through evaluated and their signals emitted.
    pub async fn handle_object<O: ObjectStore>(
        &self,
        store: &O,
        object: &ObjectRef,
        counts: &mut Counts,
    ) -> Result<(), HandlerError> {
        let body = store.open(object).await?;
        counts.files += 1;
        let name: Arc<str> = Arc::from(object.url());
        let stop = Arc::new(AtomicBool::new(false));
        let broken = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = mpsc::channel(RECORDS_IN_FLIGHT);
        let reading = {
            let body = Watched {
                inner: body,
                stop: stop.clone(),
                broken: broken.clone(),
            };
            let name = name.clone();
            tokio::task::spawn_blocking(move || {
                let mut forward = Forward {
                    tx,
                    records: 0,
                    shown: 0,
                    not_shown: 0,
                    closed: false,
                };
                input::read_stream(&name, body, &mut forward);
                (forward.records, forward.not_shown)
            })
        };
        let engine = self.engine();
        let delivery = Delivery {
            engine: &engine,
            state: &self.state,
            sink: &self.sink,
        };
        let in_flight_before = counts.in_flight;
        let mut problems = Problems::default();
        let mut failure = None;
        while let Some(found) = rx.recv().await {
            match found {
                Found::Record(json, _) if self.is_logged_canary(&json) => {}
                Found::Record(json, position) => {
                    match delivery.record(&json, &position, counts).await {
                        Ok(()) => {}
                        Err(DeliverError::Malformed(problem)) => problems.add(problem),
                        Err(DeliverError::State(err)) => failure = Some(err.into()),
                        Err(DeliverError::Sink(err)) => failure = Some(err.into()),
                    }
                    if failure.is_some() {
                        break;
                    }
                }
                Found::Problem(problem) => problems.add(problem),
            }
        }
        // After a failure the reader stops at its next read; its sends fail once `rx` is gone.
        stop.store(true, Ordering::Relaxed);
        drop(rx);
        let (records, not_shown) = reading.await.map_err(|err| {
            ObjectError::new(
                FailureKind::Internal,
                format!("{name}: reader failed: {err}"),
            )
        })?;
        counts.records += records;
        if let Some(failure) = failure {
            return Err(failure);
        }
        problems.not_shown += not_shown;
        let in_flight = counts.in_flight - in_flight_before;
        tracing::info!(
            object = %truncate(&name, 300),
            records,
            problems = problems.shown.len() as u64 + problems.not_shown,
            "log file read"
        );
        if broken.load(Ordering::Relaxed) {
            // The body stream broke (network): a retry reads it again.
            counts.unreadable += 1;
            return Err(ObjectError::new(FailureKind::Unavailable, problems.describe()).into());
        }
        if !problems.is_empty() {
            for problem in &problems.shown {
                counts.problem(problem);
            }
            counts.malformed += problems.not_shown;
            return Err(HandlerError::Malformed(problems.describe()));
        }
        if in_flight > 0 {
            return Err(HandlerError::InFlight(in_flight));
        }
        Ok(())
    }
}

/// What the reading thread finds, in order.
enum Found {
    Record(String, Position),
    Problem(InputError),
}

/// The reading thread's visitor: counts records, prefilters, forwards.
struct Forward {
    tx: mpsc::Sender<Found>,
    records: u64,
    shown: usize,
    not_shown: u64,
    /// The delivery side stopped listening.
    closed: bool,
}

impl Forward {
    fn send(&mut self, found: Found) {
        if !self.closed && self.tx.blocking_send(found).is_err() {
            self.closed = true;
        }
    }
}

impl Visitor for Forward {
    fn record(&mut self, json: &str, position: &Position) {
        self.records += 1;
        // The CLI's prefilter: records naming no event source a rule reads are not parsed.
        if !self.closed && rules::may_match(json) {
            self.send(Found::Record(json.to_owned(), position.clone()));
        }
    }

    fn error(&mut self, error: InputError) {
        self.shown += 1;
        self.send(Found::Problem(error));
    }

    fn shows_errors(&self) -> bool {
        self.shown < PROBLEMS_SHOWN
    }

    fn error_not_shown(&mut self) {
        self.not_shown += 1;
    }
}

/// The object's body as the reader sees it: a failed read marks the file `broken` (a transport
/// failure, unlike a corrupt file, which the inflater or the parser reports), and once the
/// delivery side has failed, reads stop.
struct Watched<R> {
    inner: R,
    stop: Arc<AtomicBool>,
    broken: Arc<AtomicBool>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("reading stopped"));
        }
        self.inner.read(buf).inspect_err(|err| {
            if err.kind() != io::ErrorKind::Interrupted {
                self.broken.store(true, Ordering::Relaxed);
            }
        })
    }
}

/// The problems of one file: the first few in full.
#[derive(Default)]
struct Problems {
    shown: Vec<InputError>,
    not_shown: u64,
}

impl Problems {
    fn add(&mut self, problem: InputError) {
        if self.shown.len() < PROBLEMS_SHOWN {
            self.shown.push(problem);
        } else {
            self.not_shown += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.shown.is_empty() && self.not_shown == 0
    }

    /// For the log and the error: values quoted by the parser are replaced by `…` (the records
    /// are not to reach the logs).
    fn describe(&self) -> String {
        let mut text: Vec<String> = self
            .shown
            .iter()
            .map(|p| truncate(&redact_quoted(&p.to_string()), 500))
            .collect();
        if self.not_shown > 0 {
            text.push(format!("and {} more problems", self.not_shown));
        }
        truncate(&text.join("; "), 2000)
    }
}
