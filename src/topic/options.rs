//! A topic's options, fixed when it is created.

/// What a publish does when a lane is full.
///
/// ## Backpressure
///
/// - `Block`: wait until the worker frees room. On a worker thread (a handler
///   publishing) the event goes to that worker's backlog instead and is pushed
///   as room appears, so a handler never waits for its own worker — or for
///   another worker that waits for it.
/// - `Fail`: return [`PublishError::Full`](crate::PublishError::Full) with the event.
///
/// Either way nothing is lost: an event is in every lane it is meant for, or
/// handed back.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::{Backpressure, Engine, TopicOptions};
/// let engine = Engine::builder().workers(1).build()?;
/// let opts = TopicOptions::default().backpressure(Backpressure::Fail);
/// let jobs = engine.topic_with::<u32>("jobs", opts)?; // a full lane fails publish
/// # drop(jobs);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Backpressure {
    /// Wait for room.
    #[default]
    Block,
    /// Hand the event back.
    Fail,
}

/// Options of a topic, fixed when it is created.
///
/// # Examples
///
/// ```
/// use pinbus::{Backpressure, TopicOptions};
/// let opts = TopicOptions::default()
///     .backpressure(Backpressure::Fail)
///     .timestamps(false)
///     .worker(0);
/// # let _ = opts;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicOptions {
    pub(crate) backpressure: Backpressure,
    pub(crate) timestamps: bool,
    pub(crate) worker: Option<usize>,
}

impl Default for TopicOptions {
    fn default() -> Self {
        TopicOptions {
            backpressure: Backpressure::Block,
            timestamps: false,
            worker: None,
        }
    }
}

impl TopicOptions {
    /// What `publish` does when a lane is full (default `Block`).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::{Backpressure, TopicOptions};
    /// let opts = TopicOptions::default().backpressure(Backpressure::Fail);
    /// assert_ne!(opts, TopicOptions::default()); // the default is Block
    /// ```
    pub fn backpressure(mut self, backpressure: Backpressure) -> Self {
        self.backpressure = backpressure;
        self
    }

    /// Whether each publish reads the clock for an exact
    /// [`Event::published_at`](crate::Event::published_at) (default `false`). A clock read costs more than
    /// the rest of a publish; without it, `published_at` reports the worker's
    /// dispatch clock (see [`Event::published_at`](crate::Event::published_at)).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Engine, TopicOptions};
    /// let engine = Engine::builder().workers(1).build()?;
    /// let t = engine.topic_with::<u32>("t", TopicOptions::default().timestamps(true))?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let before = std::time::Instant::now();
    /// t.subscribe(move |ev| tx.send(ev.published_at()).unwrap())?;
    /// t.publish(1)?;
    /// assert!(rx.recv()? >= before);
    /// # Ok(()) }
    /// ```
    pub fn timestamps(mut self, on: bool) -> Self {
        self.timestamps = on;
        self
    }

    /// The worker that runs this topic's plain subscriptions (default: topics
    /// are spread over the workers in creation order).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Engine, TopicError, TopicOptions};
    /// let engine = Engine::builder().workers(2).build()?;
    /// let t = engine.topic_with::<u32>("t", TopicOptions::default().worker(1))?;
    /// assert_eq!(t.subscribe(|_| ())?.worker(), 1);
    /// let err = engine.topic_with::<u32>("u", TopicOptions::default().worker(2)).unwrap_err();
    /// assert!(matches!(err, TopicError::NoSuchWorker { worker: 2, workers: 2 }));
    /// # Ok(()) }
    /// ```
    pub fn worker(mut self, worker: usize) -> Self {
        self.worker = Some(worker);
        self
    }
}
