//! A real HTTP server on 127.0.0.1 standing in for a webhook endpoint: it
//! records every request and answers with the statuses and delay a test sets,
//! so tests can play a receiver that is failing, slow or fine.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The path that [`WebhookReceiver::url`] points at.
const WEBHOOK_PATH: &str = "/webhook";

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: Method,
    /// The path and query, such as `/webhook`.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the request arrived.
    pub at: Instant,
}

impl RecordedRequest {
    /// The value of a header, if present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The body as text, with invalid UTF-8 replaced.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How the receiver answers: queued statuses first, one per request, then
/// the default status; each answer after the delay.
struct Answers {
    queued: VecDeque<(StatusCode, HeaderMap)>,
    default: StatusCode,
    delay: Duration,
}

struct Shared {
    requests: Mutex<Vec<RecordedRequest>>,
    /// The number of requests recorded, for waiting without polling.
    count: watch::Sender<usize>,
    answers: Mutex<Answers>,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A running receiver; dropping it stops the server.
pub struct WebhookReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl WebhookReceiver {
    /// Starts the server on a free port; it answers 200 until told otherwise.
    pub async fn start() -> WebhookReceiver {
        Self::start_on("127.0.0.1:0".parse().expect("an address")).await
    }

    /// Starts the server on `addr`, such as a port reserved earlier with
    /// [`free_port`] to play an endpoint that is down at first.
    pub async fn start_on(addr: SocketAddr) -> WebhookReceiver {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|err| panic!("failed to bind the webhook receiver: {err}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("failed to read the webhook receiver's address: {err}"));
        let answers =
            Answers { queued: VecDeque::new(), default: StatusCode::OK, delay: Duration::ZERO };
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
            answers: Mutex::new(answers),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let app = Router::new().fallback(record).with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                eprintln!("webhook receiver stopped: {err}");
            }
        });
        WebhookReceiver { addr, shared, server }
    }

    /// The URL to configure as the webhook endpoint.
    pub fn url(&self) -> String {
        format!("http://{}{WEBHOOK_PATH}", self.addr)
    }

    /// Answers the next requests with these statuses, one each, in order.
    pub fn respond_with(&self, statuses: impl IntoIterator<Item = u16>) {
        let statuses = statuses.into_iter().map(|status| (status_code(status), HeaderMap::new()));
        lock(&self.shared.answers).queued.extend(statuses);
    }

    /// Queues one answer with headers, such as `Retry-After` or `Location`.
    pub fn respond_with_headers(&self, status: u16, headers: &[(&str, &str)]) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
            map.insert(name, HeaderValue::from_str(value).expect("a header value"));
        }
        lock(&self.shared.answers).queued.push_back((status_code(status), map));
    }

    /// The most requests that were ever being answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Answers with `status` once the queued statuses are used up.
    pub fn set_default_status(&self, status: u16) {
        lock(&self.shared.answers).default = status_code(status);
    }

    /// Waits this long before answering each request from now on.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.shared.answers).delay = delay;
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Waits until at least `n` requests arrived and returns them all; panics
    /// if they have not after `within`.
    pub async fn wait_for_requests(&self, n: usize, within: Duration) -> Vec<RecordedRequest> {
        let mut count = self.shared.count.subscribe();
        let arrived = tokio::time::timeout(within, count.wait_for(|count| *count >= n)).await;
        if !matches!(arrived, Ok(Ok(_))) {
            let got = self.requests().len();
            panic!("webhook receiver got {got} of {n} expected requests within {within:?}");
        }
        self.requests()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Records the request, then answers as configured at its arrival.
async fn record(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap) {
    let at = Instant::now();
    let _answering = InFlight::enter(&shared);
    let (answer, delay) = {
        let mut answers = lock(&shared.answers);
        let default = (answers.default, HeaderMap::new());
        (answers.queued.pop_front().unwrap_or(default), answers.delay)
    };
    let path = uri.path_and_query().map_or_else(|| uri.path().to_owned(), |pq| pq.to_string());
    lock(&shared.requests).push(RecordedRequest { method, path, headers, body, at });
    shared.count.send_modify(|count| *count += 1);
    tokio::time::sleep(delay).await;
    answer
}

/// Counts a request as being answered until dropped, also when the client
/// gives up and the answer is abandoned.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A loopback address nothing listens on (for now): bound, then released.
pub fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("the port's address")
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or_else(|_| panic!("{status} is not an http status code"))
}

/// Locks a mutex; a test that panicked while holding it left valid data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
